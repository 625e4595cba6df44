//! Part 4: what `NOTIFY` costs a commit that arms a timer.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Part 4: commits that arm a timer, with and without `NOTIFY`, by the raw driver.
pub(super) fn notify_cost(args: &Args, results: &mut Results) {
    let schema = schema_name("bench_pg_notify");
    // A store whose worker would listen: it keeps a connection in LISTEN and drains it.
    let listener = Arc::new(connect(&args.url, &schema, 1));
    let heard = Arc::new(AtomicU64::new(0));
    {
        let heard = heard.clone();
        listener.on_armed(Arc::new(move || {
            heard.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let channel = statemachine_benches::pg::channel(&schema);
    let warm = Duration::from_millis(500);
    let measure = Duration::from_secs_f64(args.seconds.min(3.0));
    let next = AtomicU64::new(0);
    // Each thread count's rounds back to back, with and without alternating which goes
    // first, so that both sides meet the same background load.
    for threads in [1, 4] {
        for round in 0..args.rounds {
            let sides = if (round + threads) % 2 == 0 {
                ["with", "without"]
            } else {
                ["without", "with"]
            };
            for side in sides {
                let (rate, _) = throughput(threads, warm, measure, 1, &|_| {
                    let mut client =
                        postgres::Client::connect(&args.url, postgres::NoTls).expect("connected");
                    client
                        .batch_execute(&format!("SET search_path = \"{schema}\""))
                        .expect("schema");
                    let instance = client
                        .prepare(
                            "INSERT INTO statemachine_instances
                                 (machine, id, version, seq, state, snapshot, created_at, updated_at)
                             VALUES ('Invoice', $1, 1, 0, 'Unpaid', '{}', $2, $2)",
                        )
                        .expect("prepared");
                    let timer = client
                        .prepare(
                            "INSERT INTO statemachine_timers (machine, id, seq, timer, kind, due_at, run_at)
                             VALUES ('Invoice', $1, 0, 'expire', 'deadline', $2, $2)",
                        )
                        .expect("prepared");
                    let notify = client
                        .prepare("SELECT pg_notify($1, '')")
                        .expect("prepared");
                    let (channel, next) = (&channel, &next);
                    move |_| {
                        let id = format!("n-{}", next.fetch_add(1, Ordering::Relaxed));
                        let at = micros(SystemTime::now() + HOUR);
                        let mut tx = client.transaction().expect("begun");
                        tx.execute(&instance, &[&id, &at]).expect("inserted");
                        tx.execute(&timer, &[&id, &at]).expect("inserted");
                        if side == "with" {
                            tx.execute(&notify, &[channel]).expect("notified");
                        }
                        tx.commit().expect("committed");
                    }
                });
                results.push(&format!("notify.{threads}.{side}.rate"), rate);
                eprintln!("notify, {threads} thread(s), {side}: {rate:.0} commits/s");
            }
        }
    }
    eprintln!(
        "the listening store heard {} notifications",
        heard.load(Ordering::Relaxed)
    );
    results.push("notify.heard", heard.load(Ordering::Relaxed) as f64);
    drop(listener);
    drop_schema(&args.url, &schema);
}
