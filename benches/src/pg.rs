//! The raw-driver baseline of the PostgreSQL benchmarks (`benches/durable_pg.rs` and
//! `src/bin/pg/`): the `postgres` driver doing, statement for statement, what
//! `Repository::apply` and `Repository::save_all` on a `PostgresStore` send to the
//! server for a transition of the [`Ring`](crate::Ring), with the statements prepared
//! once per connection.
//!
//! One transition: read the instance's row (outside the transaction, as
//! `Repository::load` does), decode its snapshot with serde_json, compute the next state
//! and encode the snapshot, then in one transaction lock the row (`SELECT .. FOR
//! UPDATE`) and check its sequence number, look the idempotency key up, update the row
//! guarded by the sequence number, insert the audit record and the key. A batch reads
//! every row first, in one statement (as `Repository::load_all` does), then writes them
//! in one transaction with one statement per table, as the store's `commit_batch` does:
//! lock the rows (in the order of their ids, the store's lock order) and look the keys
//! up, then update the rows, insert the records and the keys, each from arrays.

use std::time::{SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls, Statement};
use serde::{Deserialize, Serialize};

/// The machine's name in the store's tables.
pub const MACHINE: &str = "Ring";

const RING: [&str; 10] = ["S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"];

/// The store's own statements (`statemachine/src/store/postgres/{rows,write}.rs`).
/// `Store::load_many`: the rows of a batch in one statement.
const LOAD_MANY: &str = "SELECT id, seq, state, snapshot, created_at, updated_at
     FROM statemachine_instances WHERE machine = $1 AND id = ANY($2)";
const LOAD: &str = "SELECT seq, state, snapshot, created_at, updated_at
     FROM statemachine_instances WHERE machine = $1 AND id = $2";
const LOCK_INSTANCE: &str =
    "SELECT seq FROM statemachine_instances WHERE machine = $1 AND id = $2 FOR UPDATE";
const FIRST_RESULT: &str = "SELECT seq, from_state, event, to_state, reason, at, fingerprint
     FROM statemachine_idempotency WHERE machine = $1 AND id = $2 AND key = $3";
const UPDATE_INSTANCE: &str = "UPDATE statemachine_instances
     SET version = $1, seq = $2, state = $3, snapshot = $4, updated_at = $5
     WHERE machine = $6 AND id = $7 AND seq = $8";
const INSERT_RECORD: &str = "INSERT INTO statemachine_audit
         (machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
          payload, at, actor, correlation_id, idempotency_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
const INSERT_KEY: &str = "INSERT INTO statemachine_idempotency
         (machine, id, key, seq, from_state, event, to_state, reason, at, fingerprint)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The store's batch statements (`statemachine/src/store/postgres/bulk.rs`).
const LOCK_MANY: &str = "SELECT i.machine, i.id, i.seq, i.run_owner, i.run_fence
     FROM statemachine_instances AS i
     JOIN unnest($1::text[], $2::text[]) AS k(machine, id)
       ON i.machine = k.machine AND i.id = k.id
     ORDER BY i.machine, i.id
     FOR UPDATE OF i";
const KEYS_USED: &str = "SELECT k.machine, k.id, k.seq, k.from_state, k.event, k.to_state,
            k.reason, k.at, k.fingerprint
     FROM statemachine_idempotency AS k
     JOIN unnest($1::text[], $2::text[], $3::text[]) AS q(machine, id, key)
       ON k.machine = q.machine AND k.id = q.id AND k.key = q.key";
const UPDATE_MANY: &str = "UPDATE statemachine_instances AS i
     SET version = f.version, seq = f.seq, state = f.state, snapshot = f.snapshot,
         updated_at = f.at
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
                 $7::bigint[], $8::bigint[])
         AS f(machine, id, version, seq, state, snapshot, at, expected)
     WHERE i.machine = f.machine AND i.id = f.id AND i.seq = f.expected";
const INSERT_RECORDS: &str = "INSERT INTO statemachine_audit
         (machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
          payload, at, actor, correlation_id, idempotency_key)
     SELECT machine, id, version, seq, kind, from_state, event, to_state, guard, reason,
            payload, at, actor, correlation_id, idempotency_key
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[],
                 $13::text[], $14::text[], $15::text[])
         WITH ORDINALITY AS r(machine, id, version, seq, kind, from_state, event, to_state,
                              guard, reason, payload, at, actor, correlation_id,
                              idempotency_key, n)
     ORDER BY n";
const INSERT_KEYS: &str = "INSERT INTO statemachine_idempotency
         (machine, id, key, seq, from_state, event, to_state, reason, at, fingerprint)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                          $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[])";

/// `STATEMACHINE_PG_URL`, when set and not empty.
pub fn url() -> Option<String> {
    std::env::var("STATEMACHINE_PG_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// A schema name of its own for one run: `prefix` and the time in microseconds.
pub fn schema_name(prefix: &str) -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    format!("{prefix}_{micros}")
}

/// The `NOTIFY` channel of a store working in `schema` (as the store names it: FNV-1a
/// of the schema's name), so that a raw loop can send what the store sends.
pub fn channel(schema: &str) -> String {
    format!("statemachine_armed_{}", fingerprint(schema))
}

/// Microseconds since the Unix epoch, as the store writes times.
pub fn micros(time: SystemTime) -> i64 {
    i64::try_from(
        time.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(i64::MAX)
}

/// The snapshot, as raw code would read and write it: the same fields.
#[derive(Serialize, Deserialize)]
struct HandSnapshot {
    machine: String,
    version: u32,
    shape: String,
    id: String,
    seq: u64,
    state: HandState,
    data: (),
}

#[derive(Serialize, Deserialize)]
struct HandState {
    name: String,
    data: (),
}

/// FNV-1a of a payload's JSON, as 16 hex digits: the key's fingerprint.
fn fingerprint(text: &str) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// One connection with the statements prepared.
pub struct Raw {
    client: Client,
    load: Statement,
    load_many: Statement,
    lock: Statement,
    key: Statement,
    update: Statement,
    audit: Statement,
    insert_key: Statement,
    /// The batch statements.
    many: [Statement; 5],
}

/// A row as read before the transaction, and what the transition writes.
struct Step {
    id: String,
    key: String,
    seq: i64,
    from: &'static str,
    to: &'static str,
    json: String,
}

impl Raw {
    /// Connects to `url` and works in `schema` (which the store created).
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or a statement does not prepare.
    pub fn connect(url: &str, schema: &str) -> Result<Self, postgres::Error> {
        let mut client = Client::connect(url, NoTls)?;
        client.batch_execute(&format!("SET search_path = \"{schema}\""))?;
        Ok(Self {
            load: client.prepare(LOAD)?,
            load_many: client.prepare(LOAD_MANY)?,
            lock: client.prepare(LOCK_INSTANCE)?,
            key: client.prepare(FIRST_RESULT)?,
            update: client.prepare(UPDATE_INSTANCE)?,
            audit: client.prepare(INSERT_RECORD)?,
            insert_key: client.prepare(INSERT_KEY)?,
            many: [
                client.prepare(LOCK_MANY)?,
                client.prepare(KEYS_USED)?,
                client.prepare(UPDATE_MANY)?,
                client.prepare(INSERT_RECORDS)?,
                client.prepare(INSERT_KEYS)?,
            ],
            client,
        })
    }

    /// The connection, for statements of the caller's own.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn read(&mut self, id: &str, key: String) -> Result<Step, postgres::Error> {
        let row = self.client.query_one(&self.load, &[&MACHINE, &id])?;
        Ok(Self::next_step(
            id,
            key,
            row.get(0),
            &row.get::<_, String>(2),
        ))
    }

    /// The transition of instance `id`, read at `seq` with snapshot `json`.
    fn next_step(id: &str, key: String, seq: i64, json: &str) -> Step {
        let mut snapshot: HandSnapshot =
            serde_json::from_str(json).expect("a snapshot of the ring");
        let from = RING
            .iter()
            .position(|s| *s == snapshot.state.name)
            .expect("a state of the ring");
        let to = RING[(from + 1) % RING.len()];
        snapshot.seq += 1;
        to.clone_into(&mut snapshot.state.name);
        Step {
            id: id.to_owned(),
            key,
            seq,
            from: RING[from],
            to,
            json: serde_json::to_string(&snapshot).expect("a snapshot encodes"),
        }
    }

    fn write(
        tx: &mut postgres::Transaction<'_>,
        statements: [&Statement; 5],
        step: &Step,
    ) -> Result<(), postgres::Error> {
        let [lock, key, update, audit, insert_key] = statements;
        let at = micros(SystemTime::now());
        let id = step.id.as_str();
        let locked: i64 = tx.query_one(lock, &[&MACHINE, &id])?.get(0);
        assert_eq!(locked, step.seq, "nobody else writes this instance");
        assert!(
            tx.query_opt(key, &[&MACHINE, &id, &step.key])?.is_none(),
            "a new key"
        );
        let next = step.seq + 1;
        let updated = tx.execute(
            update,
            &[
                &1_i64, &next, &step.to, &step.json, &at, &MACHINE, &id, &step.seq,
            ],
        )?;
        assert_eq!(updated, 1);
        let payload = "null";
        tx.execute(
            audit,
            &[
                &MACHINE,
                &id,
                &1_i64,
                &next,
                &"applied",
                &Some(step.from),
                &Some("next"),
                &Some(step.to),
                &None::<&str>,
                &None::<&str>,
                &Some(payload),
                &at,
                &None::<&str>,
                &None::<&str>,
                &Some(step.key.as_str()),
            ],
        )?;
        tx.execute(
            insert_key,
            &[
                &MACHINE,
                &id,
                &step.key,
                &next,
                &step.from,
                &"next",
                &Some(step.to),
                &None::<&str>,
                &at,
                &Some(fingerprint(payload)),
            ],
        )?;
        Ok(())
    }

    /// One transition of instance `id` with idempotency key `key`, in one transaction.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub fn step(&mut self, id: &str, key: String) -> Result<(), postgres::Error> {
        let step = self.read(id, key)?;
        self.commit(std::slice::from_ref(&step))
    }

    /// One transition of each instance of `ids` (`key(i)` the key of the `i`th), in one
    /// transaction.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub fn batch(
        &mut self,
        ids: &[String],
        key: impl Fn(usize) -> String,
    ) -> Result<(), postgres::Error> {
        // Every row in one statement, as `Repository::load_all` reads them.
        let rows = self.client.query(&self.load_many, &[&MACHINE, &ids])?;
        let by_id: std::collections::HashMap<String, (i64, String)> = rows
            .iter()
            .map(|row| (row.get(0), (row.get(1), row.get(3))))
            .collect();
        let mut steps: Vec<Step> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let (seq, json) = &by_id[id];
                Self::next_step(id, key(i), *seq, json)
            })
            .collect();
        steps.sort_by(|a, b| a.id.cmp(&b.id));
        self.commit_many(&steps)
    }

    /// Writes `steps` (different instances, in id order) in one transaction, one
    /// statement per table.
    fn commit_many(&mut self, steps: &[Step]) -> Result<(), postgres::Error> {
        let [lock, keys_used, update, audit, insert_key] = &self.many;
        let at = micros(SystemTime::now());
        let n = steps.len();
        let machines = vec![MACHINE; n];
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let keys: Vec<&str> = steps.iter().map(|s| s.key.as_str()).collect();
        let seqs: Vec<i64> = steps.iter().map(|s| s.seq).collect();
        let next: Vec<i64> = steps.iter().map(|s| s.seq + 1).collect();
        let from: Vec<&str> = steps.iter().map(|s| s.from).collect();
        let to: Vec<&str> = steps.iter().map(|s| s.to).collect();
        let json: Vec<&str> = steps.iter().map(|s| s.json.as_str()).collect();
        let ats = vec![at; n];
        let versions = vec![1_i64; n];
        let payload = "null";
        let mut tx = self.client.transaction()?;
        let locked = tx.query(lock, &[&machines, &ids])?;
        assert_eq!(locked.len(), n, "every row is there");
        for (row, step) in locked.iter().zip(steps) {
            assert_eq!(row.get::<_, i64>(2), step.seq, "nobody else writes it");
        }
        assert!(
            tx.query(keys_used, &[&machines, &ids, &keys])?.is_empty(),
            "new keys"
        );
        let updated = tx.execute(
            update,
            &[&machines, &ids, &versions, &next, &to, &json, &ats, &seqs],
        )?;
        assert_eq!(updated, n as u64);
        let none = vec![None::<&str>; n];
        let kinds = vec!["applied"; n];
        let events = vec!["next"; n];
        let payloads = vec![payload; n];
        tx.execute(
            audit,
            &[
                &machines, &ids, &versions, &next, &kinds, &from, &events, &to, &none, &none,
                &payloads, &ats, &none, &none, &keys,
            ],
        )?;
        let fingerprints = vec![fingerprint(payload); n];
        tx.execute(
            insert_key,
            &[
                &machines,
                &ids,
                &keys,
                &next,
                &from,
                &events,
                &to,
                &none,
                &ats,
                &fingerprints,
            ],
        )?;
        tx.commit()
    }

    /// Writes `steps` in one transaction, in their order.
    fn commit(&mut self, steps: &[Step]) -> Result<(), postgres::Error> {
        let Self {
            client,
            lock,
            key,
            update,
            audit,
            insert_key,
            ..
        } = self;
        let mut tx = client.transaction()?;
        for step in steps {
            Self::write(&mut tx, [lock, key, update, audit, insert_key], step)?;
        }
        tx.commit()
    }
}
