//! Parts 2 and 3: due timers drained by N workers, and the latency of idle workers woken by `NOTIFY`.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Creates `n` invoices with their deadline armed in `schema`, from 4 threads through
/// the repository, on a clock two hours back (so every deadline is in the past).
pub(super) fn prepare_invoices(url: &str, schema: &str, n: usize) {
    let store = Arc::new(connect(url, schema, 4));
    let clock = Arc::new(statemachine::ManualClock::new(SystemTime::now() - 2 * HOUR));
    std::thread::scope(|s| {
        for t in 0..4 {
            let repo = Repository::<AnyInvoice, _>::new(store.clone()).with_clock(clock.clone());
            s.spawn(move || {
                for i in (t..n).step_by(4) {
                    repo.create(Invoice::new(format!("inv-{i:06}"), bill(i)).into())
                        .expect("created");
                }
            });
        }
    });
    assert_eq!(store.timer_count().expect("counted"), n as u64);
}

/// A copy of `template`'s instances and timers in `schema` (created by a store first),
/// every timer due at `due`; analyzed, as autovacuum would have.
pub(super) fn copy_invoices(url: &str, template: &str, schema: &str, due: SystemTime) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connected");
    let columns: Vec<String> = client
        .query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = 'statemachine_timers'
             ORDER BY ordinal_position",
            &[&template],
        )
        .expect("columns")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let select: Vec<String> = columns
        .iter()
        .map(|c| match c.as_str() {
            "due_at" | "run_at" => "$1".to_owned(),
            c => c.to_owned(),
        })
        .collect();
    let mut tx = client.transaction().expect("begun");
    tx.batch_execute(&format!(
        "INSERT INTO \"{schema}\".statemachine_instances
         SELECT * FROM \"{template}\".statemachine_instances"
    ))
    .expect("instances copied");
    tx.execute(
        &format!(
            "INSERT INTO \"{schema}\".statemachine_timers ({})
             SELECT {} FROM \"{template}\".statemachine_timers",
            columns.join(", "),
            select.join(", ")
        ),
        &[&micros(due)],
    )
    .expect("timers copied");
    tx.commit().expect("committed");
    client
        .batch_execute(&format!(
            "VACUUM ANALYZE \"{schema}\".statemachine_instances"
        ))
        .expect("analyzed");
    client
        .batch_execute(&format!("VACUUM ANALYZE \"{schema}\".statemachine_timers"))
        .expect("analyzed");
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// Part 2: `--timers` deadlines due at once, fired by 1, 2, 4 workers.
pub(super) fn drain(args: &Args, results: &mut Results) {
    let n = args.timers;
    let template = schema_name("bench_pg_invoices");
    let began = Instant::now();
    prepare_invoices(&args.url, &template, n);
    eprintln!(
        "prepared {n} invoices in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    results.push("drain.timers", n as f64);
    for &workers in &args.drain_workers {
        let schema = schema_name(&format!("bench_pg_drain{workers}"));
        let stores: Vec<Arc<PostgresStore>> = (0..workers)
            .map(|_| Arc::new(connect(&args.url, &schema, 8)))
            .collect();
        let start = SystemTime::now() + Duration::from_secs(3);
        copy_invoices(&args.url, &template, &schema, start);
        let workers_built: Vec<Arc<Worker<PostgresStore>>> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                Arc::new(
                    Worker::new(store.clone())
                        .machine::<AnyInvoice>()
                        .with_name(format!("drain-{i}")),
                )
            })
            .collect();
        let rt = runtime();
        match start.duration_since(SystemTime::now()) {
            Ok(wait) => std::thread::sleep(wait),
            Err(_) => eprintln!("drain: the copy took longer than its lead"),
        }
        let began = Instant::now();
        let cpu = cpu_now();
        let handles: Vec<_> = workers_built
            .iter()
            .map(|worker| {
                let worker = worker.clone();
                rt.spawn(async move {
                    let reports = worker.run_due().await.expect("claimed");
                    (reports, began.elapsed())
                })
            })
            .collect();
        let mut lateness = Vec::with_capacity(n);
        let mut seconds = 0.0_f64;
        let mut applied = 0;
        for handle in handles {
            let (reports, took) = rt.block_on(handle).expect("a worker");
            seconds = seconds.max(took.as_secs_f64());
            for report in reports {
                if matches!(report.outcome, Outcome::Applied { .. }) {
                    applied += 1;
                    lateness.push(report.lateness());
                }
            }
        }
        let used = cpu_since(&cpu);
        assert_eq!(applied, n, "every timer fired, once");
        assert_eq!(stores[0].timer_count().expect("counted"), 0);
        let key = format!("drain.{workers}");
        let rate = n as f64 / seconds;
        results.push(&format!("{key}.rate"), rate);
        results.push(&format!("{key}.machine_cpu"), used.machine);
        results.push(&format!("{key}.other_cpu"), used.other);
        results.push(&format!("{key}.client_us"), used.process / n as f64 * 1e6);
        results.push(&format!("{key}.server_us"), used.server / n as f64 * 1e6);
        results.push(&format!("{key}.switches"), used.switches / n as f64);
        record_lateness(results, &key, &mut lateness);
        eprintln!(
            "drain, {workers} worker(s): {rate:.0} timers/s, machine CPU {:.0}%, client {:.0} µs, server {:.0} µs per timer",
            used.machine * 100.0,
            used.process / n as f64 * 1e6,
            used.server / n as f64 * 1e6,
        );
        drop(rt);
        drop(workers_built);
        drop(stores);
        drop_schema(&args.url, &schema);
    }
    drop_schema(&args.url, &template);
}

/// The due time a fired timer's audit payload carries.
pub(super) fn payload_due(payload: &str) -> Option<SystemTime> {
    let json: serde_json::Value = serde_json::from_str(payload).ok()?;
    let due = &json["due"];
    Some(
        UNIX_EPOCH
            + Duration::new(
                due["secs_since_epoch"].as_u64()?,
                u32::try_from(due["nanos_since_epoch"].as_u64()?).ok()?,
            ),
    )
}

/// Part 3: from due time to fired, idle workers woken by `NOTIFY`.
pub(super) fn latency(args: &Args, results: &mut Results) {
    let count = ((args.rate * args.latency_seconds) as usize).max(1);
    results.push("latency.rate", args.rate);
    results.push("latency.timers", count as f64);
    for &workers in &args.latency_workers {
        for &lead in &args.leads {
            let schema = schema_name(&format!("bench_pg_wake{workers}"));
            let writer = Arc::new(connect(&args.url, &schema, 2));
            let stores: Vec<Arc<PostgresStore>> = (0..workers)
                .map(|_| Arc::new(connect(&args.url, &schema, 8)))
                .collect();
            let built: Vec<Arc<Worker<PostgresStore>>> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    Arc::new(
                        Worker::new(store.clone())
                            .machine::<AnyInvoice>()
                            .with_name(format!("idle-{i}"))
                            .with_poll_interval(Duration::from_secs(600)),
                    )
                })
                .collect();
            let rt = runtime();
            let token = CancellationToken::new();
            let running: Vec<_> = built
                .iter()
                .map(|worker| {
                    let (worker, token) = (worker.clone(), token.clone());
                    rt.spawn(async move { worker.run(token).await })
                })
                .collect();
            // Let every worker look once and start listening.
            std::thread::sleep(Duration::from_millis(500));
            let wakeups: u64 = built.iter().map(|w| w.stats().wakeups).sum();
            let repo = Repository::<AnyInvoice, _>::new(writer.clone())
                .with_clock(Arc::new(Ahead(Duration::from_millis(lead))));
            let step = Duration::from_secs_f64(1.0 / args.rate);
            let cpu = cpu_now();
            let t0 = Instant::now();
            for i in 0..count {
                let at = t0 + step * u32::try_from(i).expect("a count");
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                repo.create(Invoice::new(format!("inv-{i:06}"), bill(i)).into())
                    .expect("created");
            }
            let give_up = Instant::now() + Duration::from_secs(30);
            let fired = || built.iter().map(|w| w.stats().fired).sum::<u64>();
            while fired() < count as u64 && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(20));
            }
            let used = cpu_since(&cpu);
            token.cancel();
            for handle in running {
                rt.block_on(handle).expect("a worker").expect("ran");
            }
            let wakeups = built.iter().map(|w| w.stats().wakeups).sum::<u64>() - wakeups;
            let mut client =
                postgres::Client::connect(&args.url, postgres::NoTls).expect("connected");
            let rows = client
                .query(
                    &format!(
                        "SELECT at, payload FROM \"{schema}\".statemachine_audit
                         WHERE actor = 'timer'"
                    ),
                    &[],
                )
                .expect("the audit trail");
            let mut late: Vec<Duration> = rows
                .iter()
                .filter_map(|row| {
                    let at: i64 = row.get(0);
                    let payload: Option<String> = row.get(1);
                    let due = payload_due(payload.as_deref()?)?;
                    let at = UNIX_EPOCH + Duration::from_micros(u64::try_from(at).ok()?);
                    Some(at.duration_since(due).unwrap_or_default())
                })
                .collect();
            assert_eq!(late.len(), count, "every timer fired, once");
            let key = format!("latency.{workers}.{lead}");
            results.push(&format!("{key}.wakeups"), wakeups as f64);
            results.push(&format!("{key}.machine_cpu"), used.machine);
            results.push(&format!("{key}.other_cpu"), used.other);
            record_lateness(results, &key, &mut late);
            eprintln!(
                "latency, {workers} idle worker(s), due {lead} ms after the commit: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {wakeups} wake-ups for {count} timers, machine CPU {:.0}% (others {:.0}%)",
                quantile_ms(&mut late, 0.5),
                quantile_ms(&mut late, 0.99),
                quantile_ms(&mut late, 1.0),
                used.machine * 100.0,
                used.other * 100.0,
            );
            drop(rt);
            drop(built);
            drop(stores);
            drop(writer);
            drop_schema(&args.url, &schema);
        }
    }
}
