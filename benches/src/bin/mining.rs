//! Comparison 10: process mining over a large audit trail.
//!
//! Writes `--records` audit records (default 1 000 000) of the 10-state document workflow
//! (`workflow.rs`) into a SQLite file (and, with `STATEMACHINE_PG_URL`, a PostgreSQL
//! schema of its own): instances created over 30 days, each taking 4 to 15 random
//! events, one in ten of them refused, with minutes to days between them; the created
//! records carry their snapshot as payload, as the store writes them. Then, per round,
//! times `mining::mine` over the whole trail against the baseline: one raw scan of the
//! same columns in the same order that reads every value and builds nothing.
//!
//! `cargo run --release -p statemachine-benches --bin mining -- --records 1000000 --rounds 3`

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use statemachine::SqliteStore;
use statemachine::mining::{self, ProcessLog as _, Shape, Window};
use statemachine::store::Store as _;
use statemachine::store::{PostgresOptions, PostgresStore};
use statemachine_benches::workflow::AnyWorkflow;

/// One audit row, as the store writes it.
struct Row {
    id: String,
    seq: i64,
    kind: &'static str,
    from: Option<&'static str>,
    event: Option<&'static str>,
    to: Option<&'static str>,
    reason: Option<String>,
    payload: Option<String>,
    at: i64,
}

/// xorshift64*: a fixed, dependency-free sequence.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn trail(records: usize) -> Vec<Row> {
    let definition = AnyWorkflow::DEFINITION;
    let start = 1_790_000_000_000_000_i64; // 2026-09-21, in microseconds
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut rows = Vec::with_capacity(records + 16);
    let mut n = 0;
    while rows.len() < records {
        let id = format!("doc-{n:07}");
        n += 1;
        let mut at = start + i64::try_from(random.below(30 * 86_400_000_000)).unwrap_or(0);
        let mut state = definition.initial.name;
        let mut seq = 0;
        rows.push(Row {
            id: id.clone(),
            seq,
            kind: "created",
            from: None,
            event: None,
            to: Some(state),
            reason: None,
            payload: Some(format!(
                r#"{{"machine":"Workflow","version":1,"id":"{id}","seq":0,"state":{{"name":"Draft","data":null}},"data":null}}"#
            )),
            at,
        });
        for _ in 0..4 + random.below(12) {
            // Minutes to days: a tenth of the waits are long.
            let wait = if random.below(10) == 0 {
                random.below(3 * 86_400)
            } else {
                60 + random.below(4 * 3600)
            };
            at += i64::try_from(wait).unwrap_or(0) * 1_000_000;
            let allowed = definition.allowed_events(state);
            if random.below(10) == 0 {
                let event =
                    definition.events[random.below(definition.events.len() as u64) as usize].name;
                if !allowed.contains(&event) {
                    rows.push(Row {
                        id: id.clone(),
                        seq,
                        kind: "refused",
                        from: Some(state),
                        event: Some(event),
                        to: None,
                        reason: Some(format!("`{state}` cannot take event `{event}`")),
                        payload: None,
                        at,
                    });
                    continue;
                }
            }
            let event = allowed[random.below(allowed.len() as u64) as usize];
            let to = definition
                .candidates(state, event)
                .next()
                .map_or(state, |t| t.to);
            seq += 1;
            rows.push(Row {
                id: id.clone(),
                seq,
                kind: "applied",
                from: Some(state),
                event: Some(event),
                to: Some(to),
                reason: None,
                payload: None,
                at,
            });
            state = to;
        }
    }
    rows
}

const INSERT: &str = "INSERT INTO statemachine_audit
    (machine, id, version, seq, kind, from_state, event, to_state, reason, payload, at)
    VALUES ('Workflow', ?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const SCAN: &str = "SELECT position, id, kind, from_state, event, to_state, at
    FROM statemachine_audit WHERE machine = 'Workflow' ORDER BY id, position";

fn load_sqlite(path: &std::path::Path, rows: &[Row]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; BEGIN")
        .unwrap();
    {
        let mut insert = conn.prepare(INSERT).unwrap();
        for r in rows {
            insert
                .execute(rusqlite::params![
                    r.id, r.seq, r.kind, r.from, r.event, r.to, r.reason, r.payload, r.at
                ])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT; ANALYZE").unwrap();
}

/// The baseline: every value of the scan read, nothing built.
fn raw_sqlite(path: &std::path::Path) -> u64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut scan = conn.prepare(SCAN).unwrap();
    let mut rows = scan.query([]).unwrap();
    let mut checksum = 0_u64;
    while let Some(row) = rows.next().unwrap() {
        let position: i64 = row.get(0).unwrap();
        let id = row.get_ref(1).unwrap().as_str().unwrap();
        let kind = row.get_ref(2).unwrap().as_str().unwrap();
        let from = row.get_ref(3).unwrap().as_str_or_null().unwrap();
        let event = row.get_ref(4).unwrap().as_str_or_null().unwrap();
        let to = row.get_ref(5).unwrap().as_str_or_null().unwrap();
        let at: i64 = row.get(6).unwrap();
        checksum = checksum
            .wrapping_add(position as u64 ^ at as u64)
            .wrapping_add((id.len() + kind.len()) as u64)
            .wrapping_add(from.map_or(0, str::len) as u64)
            .wrapping_add(event.map_or(0, str::len) as u64 + to.map_or(0, str::len) as u64);
    }
    checksum
}

fn raw_pg(url: &str, schema: &str) -> u64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("SET search_path = \"{schema}\""))
        .unwrap();
    let mut checksum = 0_u64;
    let params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
    let rows = client.query_raw(SCAN, params).unwrap();
    let mut rows = rows;
    use postgres::fallible_iterator::FallibleIterator as _;
    while let Some(row) = rows.next().unwrap() {
        let position: i64 = row.get(0);
        let id: &str = row.get(1);
        let kind: &str = row.get(2);
        let from: Option<&str> = row.get(3);
        let event: Option<&str> = row.get(4);
        let to: Option<&str> = row.get(5);
        let at: i64 = row.get(6);
        checksum = checksum
            .wrapping_add(position as u64 ^ at as u64)
            .wrapping_add((id.len() + kind.len()) as u64)
            .wrapping_add(from.map_or(0, str::len) as u64)
            .wrapping_add(event.map_or(0, str::len) as u64 + to.map_or(0, str::len) as u64);
    }
    checksum
}

fn load_pg(url: &str, schema: &str, rows: &[Row]) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("SET search_path = \"{schema}\""))
        .unwrap();
    for chunk in rows.chunks(20_000) {
        let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
        let seqs: Vec<i64> = chunk.iter().map(|r| r.seq).collect();
        let kinds: Vec<&str> = chunk.iter().map(|r| r.kind).collect();
        let froms: Vec<Option<&str>> = chunk.iter().map(|r| r.from).collect();
        let events: Vec<Option<&str>> = chunk.iter().map(|r| r.event).collect();
        let tos: Vec<Option<&str>> = chunk.iter().map(|r| r.to).collect();
        let reasons: Vec<Option<&str>> = chunk.iter().map(|r| r.reason.as_deref()).collect();
        let payloads: Vec<Option<&str>> = chunk.iter().map(|r| r.payload.as_deref()).collect();
        let ats: Vec<i64> = chunk.iter().map(|r| r.at).collect();
        client
            .execute(
                "INSERT INTO statemachine_audit
                 (machine, id, version, seq, kind, from_state, event, to_state, reason, payload, at)
                 SELECT 'Workflow', id, 1, seq, kind, f, e, t, r, p, at
                 FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $8::text[], $9::int8[])
                      AS u(id, seq, kind, f, e, t, r, p, at)",
                &[
                    &ids, &seqs, &kinds, &froms, &events, &tos, &reasons, &payloads, &ats,
                ],
            )
            .unwrap();
    }
    client.batch_execute("ANALYZE statemachine_audit").unwrap();
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let records = arg("--records", 1_000_000);
    let rounds = arg("--rounds", 3).max(1);
    let began = Instant::now();
    let rows = trail(records);
    println!(
        "{} records of {} instances generated in {:.1}s",
        rows.len(),
        rows.iter().filter(|r| r.kind == "created").count(),
        began.elapsed().as_secs_f64()
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/mining-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mining.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("mining.db{suffix}")));
    }
    let store = SqliteStore::open(&path).unwrap();
    store
        .as_process_log()
        .unwrap()
        .save_shape(&Shape::of(AnyWorkflow::DEFINITION), SystemTime::now())
        .unwrap();
    let began = Instant::now();
    load_sqlite(&path, &rows);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "SQLite: loaded in {:.1}s, {:.0} MB",
        began.elapsed().as_secs_f64(),
        size as f64 / 1e6
    );
    measure(
        "SQLite",
        rounds,
        || raw_sqlite(&path),
        || mining::mine(&store, "Workflow", Window::all()).unwrap(),
    );

    if let Ok(url) = std::env::var("STATEMACHINE_PG_URL") {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let schema = format!("mining_{micros}");
        let store =
            PostgresStore::connect_with(&url, PostgresOptions::default().with_schema(&schema))
                .expect("the benchmark's database is reachable");
        store
            .save_shape(&Shape::of(AnyWorkflow::DEFINITION), SystemTime::now())
            .unwrap();
        let began = Instant::now();
        load_pg(&url, &schema, &rows);
        println!(
            "PostgreSQL: loaded in {:.1}s",
            began.elapsed().as_secs_f64()
        );
        measure(
            "PostgreSQL",
            rounds,
            || raw_pg(&url, &schema),
            || mining::mine(&store, "Workflow", Window::all()).unwrap(),
        );
        drop(store);
        if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
        }
    }
}

fn measure(name: &str, rounds: usize, raw: impl Fn() -> u64, mine: impl Fn() -> mining::Report) {
    let mut raws = Vec::new();
    let mut mined = Vec::new();
    let mut report = None;
    for round in 0..rounds {
        let began = Instant::now();
        std::hint::black_box(raw());
        let r = began.elapsed();
        let began = Instant::now();
        let got = mine();
        let m = began.elapsed();
        println!(
            "{name} round {}: raw scan {:.2}s, mining {:.2}s ({:.2}x)",
            round + 1,
            r.as_secs_f64(),
            m.as_secs_f64(),
            m.as_secs_f64() / r.as_secs_f64()
        );
        raws.push(r);
        mined.push(m);
        report = Some(got);
    }
    let (r, m) = (median(raws), median(mined));
    let report = report.unwrap();
    println!(
        "{name} median: raw scan {:.2}s, mining {:.2}s ({:.2}x); {} records, {} instances, \
         {} transitions kinds, worst p95 dwell {}",
        r.as_secs_f64(),
        m.as_secs_f64(),
        m.as_secs_f64() / r.as_secs_f64(),
        report.records,
        report.instances,
        report.transitions.len(),
        report
            .bottlenecks
            .first()
            .map_or_else(String::new, |b| format!("{} {:?}", b.state, b.p95)),
    );
}
