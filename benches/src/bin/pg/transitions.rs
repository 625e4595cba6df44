//! Part 1: durable transitions per second, ours against the raw driver, with N threads.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Runs `make(thread)`'s operation in a loop on `workers` threads; counts `per_op` for
/// each operation that ends inside the measured window (after `warm`, for `measure`).
/// Returns operations per second and the CPU used in the window.
pub(super) fn throughput<F: FnMut(u64)>(
    workers: usize,
    warm: Duration,
    measure: Duration,
    per_op: u64,
    make: &(dyn Fn(usize) -> F + Sync),
) -> (f64, CpuUse) {
    let barrier = Barrier::new(workers + 1);
    // The threads stay (with their connections) until the window's CPU time is read.
    let end = Barrier::new(workers + 1);
    let start = OnceLock::<Instant>::new();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..workers)
            .map(|w| {
                let (barrier, end, start) = (&barrier, &end, &start);
                s.spawn(move || {
                    let mut op = make(w);
                    barrier.wait();
                    let from = *start.get().expect("set before the barrier") + warm;
                    let to = from + measure;
                    let mut counted = 0;
                    for n in 0.. {
                        op(n);
                        let now = Instant::now();
                        if now >= to {
                            break;
                        }
                        if now >= from {
                            counted += per_op;
                        }
                    }
                    end.wait();
                    counted
                })
            })
            .collect();
        let began = Instant::now();
        start.set(began).expect("set once");
        barrier.wait();
        std::thread::sleep(warm);
        let cpu = cpu_now();
        std::thread::sleep(measure);
        let used = cpu_since(&cpu);
        end.wait();
        let total: u64 = threads
            .into_iter()
            .map(|t| t.join().expect("a benchmark thread"))
            .sum();
        (total as f64 / measure.as_secs_f64(), used)
    })
}

pub(super) fn ring_ids(side: &str, thread: usize) -> Vec<InstanceId> {
    (0..BATCH)
        .map(|i| InstanceId::from(format!("{side}-{thread}-{i:03}")))
        .collect()
}

/// Part 1: durable transitions per second, ours against raw.
pub(super) fn transitions(args: &Args, results: &mut Results) {
    let most = args.workers.iter().copied().max().unwrap_or(1);
    let schema = schema_name("bench_pg_tx");
    let shared = Arc::new(connect(&args.url, &schema, most));
    let per_worker: Vec<Arc<PostgresStore>> = if args.stores == Stores::PerWorker {
        (0..most)
            .map(|_| Arc::new(connect(&args.url, &schema, 1)))
            .collect()
    } else {
        Vec::new()
    };
    let store = |w: usize| per_worker.get(w).unwrap_or(&shared).clone();
    // Every thread's instances, ours and raw's, created through the repository.
    std::thread::scope(|s| {
        for w in 0..most {
            let shared = &shared;
            s.spawn(move || {
                let repo = Repository::<AnyRing, _>::new(shared.clone());
                for side in ["sm", "raw"] {
                    for id in ring_ids(side, w) {
                        repo.create(Ring::new(id).into()).expect("created");
                    }
                }
            });
        }
    });
    let warm = Duration::from_secs(1);
    let measure = Duration::from_secs_f64(args.seconds);
    // Each cell's rounds run back to back, ours and raw alternating which goes first, so
    // that both sides of a ratio meet the same background load.
    let mut order = 0;
    for mode in ["single", "batch"] {
        for &workers in &args.workers {
            for round in 0..args.rounds {
                order += 1;
                let sides = if order % 2 == 0 {
                    ["ours", "raw"]
                } else {
                    ["raw", "ours"]
                };
                let mut rates = BTreeMap::new();
                for side in sides.into_iter().filter(|s| args.sides.contains(s)) {
                    let tag = format!("r{round}-{mode}-{workers}");
                    let per_op = if mode == "batch" { BATCH as u64 } else { 1 };
                    let (rate, cpu) = match (side, mode) {
                        ("ours", "single") => throughput(workers, warm, measure, per_op, &|w| {
                            let repo = Repository::<AnyRing, _>::new(store(w));
                            let ids = ring_ids("sm", w);
                            let tag = tag.clone();
                            move |n| {
                                let id = &ids[n as usize % ids.len()];
                                repo.apply(id, Next, &Meta::new().key(format!("{tag}-{n}")))
                                    .expect("applied");
                            }
                        }),
                        ("ours", _) => throughput(workers, warm, measure, per_op, &|w| {
                            let repo = Repository::<AnyRing, _>::new(store(w));
                            let ids = ring_ids("sm", w);
                            let tag = tag.clone();
                            move |n| {
                                let moved: Vec<AnyRing> = repo
                                    .load_all(&ids)
                                    .expect("loaded")
                                    .into_iter()
                                    .map(|mut ring| {
                                        ring.audit_mut()
                                            .set_idempotency_key(Some(format!("{tag}-{n}")));
                                        ring.fire(Next).expect("moved")
                                    })
                                    .collect();
                                repo.save_all(moved).expect("saved");
                            }
                        }),
                        (_, "single") => throughput(workers, warm, measure, per_op, &|w| {
                            let mut raw = Raw::connect(&args.url, &schema).expect("connected");
                            let ids: Vec<String> =
                                ring_ids("raw", w).iter().map(|i| i.to_string()).collect();
                            let tag = tag.clone();
                            move |n| {
                                let id = &ids[n as usize % ids.len()];
                                raw.step(id, format!("{tag}-{n}")).expect("stepped");
                            }
                        }),
                        _ => throughput(workers, warm, measure, per_op, &|w| {
                            let mut raw = Raw::connect(&args.url, &schema).expect("connected");
                            let ids: Vec<String> =
                                ring_ids("raw", w).iter().map(|i| i.to_string()).collect();
                            let tag = tag.clone();
                            move |n| {
                                raw.batch(&ids, |_| format!("{tag}-{n}")).expect("stepped");
                            }
                        }),
                    };
                    let key = format!("tx.{mode}.{workers}.{side}");
                    results.push(&format!("{key}.rate"), rate);
                    results.push(&format!("{key}.machine_cpu"), cpu.machine);
                    results.push(&format!("{key}.other_cpu"), cpu.other);
                    let done = rate * measure.as_secs_f64();
                    results.push(&format!("{key}.client_us"), cpu.process / done * 1e6);
                    results.push(&format!("{key}.server_us"), cpu.server / done * 1e6);
                    results.push(&format!("{key}.switches"), cpu.switches / done);
                    rates.insert(side, rate);
                    eprintln!(
                        "round {round}, {mode}, {workers} worker(s), {side}: {rate:.0}/s, machine CPU {:.0}% (others {:.0}%), client {:.0} µs, server {:.0} µs, {:.1} client context switches per transition",
                        cpu.machine * 100.0,
                        cpu.other * 100.0,
                        cpu.process / done * 1e6,
                        cpu.server / done * 1e6,
                        cpu.switches / done,
                    );
                }
                if let (Some(raw), Some(ours)) = (rates.get("raw"), rates.get("ours")) {
                    eprintln!(
                        "  ratio (time per transition, ours / raw): {:.2}",
                        raw / ours
                    );
                }
            }
        }
    }
    drop(shared);
    drop(per_worker);
    drop_schema(&args.url, &schema);
}
