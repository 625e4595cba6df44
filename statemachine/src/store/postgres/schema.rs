//! The PostgreSQL schema, one migration per version, applied in order by the first store
//! that opens the database at an older version (under an advisory lock, so that workers
//! starting together migrate once).

/// The newest schema this release writes.
pub(super) const SCHEMA_VERSION: i64 = 4;

/// Key of the transaction-scoped advisory lock that serializes migrations
/// (`pg_advisory_xact_lock`): "statemachine" in ASCII, truncated to eight bytes.
pub(super) const MIGRATION_LOCK: i64 = 0x7374_6174_656d_6163;

/// `MIGRATIONS[n]` takes a database from version `n` to `n + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    r"
    -- 1: what SQLite's schema 4 holds: instances, the audit trail, idempotency keys,
    -- timers, human tasks and the outbox. Times are microseconds since the Unix epoch,
    -- as in SQLite, so that both stores read and write the same values.
    CREATE TABLE statemachine_instances (
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        version    BIGINT  NOT NULL,
        seq        BIGINT  NOT NULL CHECK (seq >= 0),
        state      TEXT    NOT NULL,
        snapshot   TEXT    NOT NULL,
        created_at BIGINT  NOT NULL,
        updated_at BIGINT  NOT NULL,
        PRIMARY KEY (machine, id)
    );
    CREATE INDEX statemachine_instances_by_state
        ON statemachine_instances (machine, state, id);

    CREATE TABLE statemachine_audit (
        position        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        machine         TEXT    NOT NULL,
        id              TEXT    NOT NULL,
        version         BIGINT  NOT NULL,
        seq             BIGINT  NOT NULL,
        kind            TEXT    NOT NULL
            CHECK (kind IN ('created', 'applied', 'refused', 'task', 'task_refused')),
        from_state      TEXT,
        event           TEXT,
        to_state        TEXT,
        guard           TEXT,
        reason          TEXT,
        payload         TEXT,
        at              BIGINT  NOT NULL,
        actor           TEXT,
        correlation_id  TEXT,
        idempotency_key TEXT
    );
    CREATE INDEX statemachine_audit_by_instance
        ON statemachine_audit (machine, id, position);
    CREATE UNIQUE INDEX statemachine_audit_one_per_seq
        ON statemachine_audit (machine, id, seq) WHERE kind IN ('created', 'applied');

    CREATE TABLE statemachine_idempotency (
        machine     TEXT   NOT NULL,
        id          TEXT   NOT NULL,
        key         TEXT   NOT NULL,
        seq         BIGINT NOT NULL,
        from_state  TEXT   NOT NULL,
        event       TEXT   NOT NULL,
        to_state    TEXT,
        reason      TEXT,
        at          BIGINT NOT NULL,
        fingerprint TEXT,
        PRIMARY KEY (machine, id, key)
    );

    CREATE TABLE statemachine_timers (
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        seq        BIGINT  NOT NULL CHECK (seq >= 0),
        timer      TEXT    NOT NULL,
        kind       TEXT    NOT NULL
            CHECK (kind IN ('deadline', 'reminder', 'task_reminder', 'task_escalation')),
        due_at     BIGINT  NOT NULL,
        run_at     BIGINT  NOT NULL,
        attempts   BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error TEXT,
        fence      BIGINT  NOT NULL DEFAULT 0 CHECK (fence >= 0),
        PRIMARY KEY (machine, id, seq, timer)
    );
    CREATE INDEX statemachine_timers_by_run_at
        ON statemachine_timers (run_at, due_at, machine, id, seq, timer);

    CREATE TABLE statemachine_tasks (
        machine     TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        seq         BIGINT  NOT NULL CHECK (seq >= 0),
        state       TEXT    NOT NULL,
        assignee    TEXT,
        candidates  TEXT    NOT NULL,
        due_at      BIGINT,
        due_key     BIGINT  NOT NULL,
        entered_at  BIGINT  NOT NULL,
        escalations BIGINT  NOT NULL DEFAULT 0 CHECK (escalations >= 0),
        revision    BIGINT  NOT NULL DEFAULT 0 CHECK (revision >= 0),
        PRIMARY KEY (machine, id)
    );
    CREATE INDEX statemachine_tasks_by_assignee
        ON statemachine_tasks (assignee, due_key, machine, id) WHERE assignee IS NOT NULL;
    CREATE INDEX statemachine_tasks_by_due
        ON statemachine_tasks (due_key, machine, id);

    CREATE TABLE statemachine_task_groups (
        grp     TEXT   NOT NULL,
        due_key BIGINT NOT NULL,
        machine TEXT   NOT NULL,
        id      TEXT   NOT NULL,
        PRIMARY KEY (grp, due_key, machine, id)
    );
    CREATE INDEX statemachine_task_groups_by_task
        ON statemachine_task_groups (machine, id);

    CREATE TABLE statemachine_outbox (
        key        TEXT    NOT NULL PRIMARY KEY,
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        topic      TEXT    NOT NULL,
        payload    TEXT    NOT NULL,
        created_at BIGINT  NOT NULL,
        run_at     BIGINT  NOT NULL,
        attempts   BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error TEXT
    );
    CREATE INDEX statemachine_outbox_by_run_at ON statemachine_outbox (run_at, key);
",
    r"
    -- 2: many workers. A claimed timer carries its worker and the end of its lease (it
    -- is claimed again only after the lease ends, with a higher fencing token); workers
    -- say they are alive in statemachine_workers. Timer and outbox rows are written and
    -- deleted all day: vacuum them after 1% of their rows changed, not the default 20%.
    ALTER TABLE statemachine_timers ADD COLUMN owner TEXT;
    ALTER TABLE statemachine_timers ADD COLUMN lease_until BIGINT;
    CREATE INDEX statemachine_timers_by_owner
        ON statemachine_timers (owner, lease_until) WHERE owner IS NOT NULL;

    CREATE TABLE statemachine_workers (
        name         TEXT   NOT NULL PRIMARY KEY,
        started_at   BIGINT NOT NULL,
        heartbeat_at BIGINT NOT NULL,
        lease_until  BIGINT NOT NULL,
        host         TEXT,
        pid          BIGINT
    );

    ALTER TABLE statemachine_timers SET (
        autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);
    ALTER TABLE statemachine_outbox SET (
        autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);
",
    r"
    -- 3: run leases. A saga's run is claimed on its instance's row: who runs it, until
    -- when, and a fencing token raised by every claim and checked by every commit made
    -- under the lease. Constant defaults: adding the columns rewrites no rows.
    ALTER TABLE statemachine_instances ADD COLUMN run_owner TEXT;
    ALTER TABLE statemachine_instances ADD COLUMN run_until BIGINT;
    ALTER TABLE statemachine_instances ADD COLUMN run_fence BIGINT NOT NULL DEFAULT 0;
    -- An outbox message's claim raises its fencing token; settling checks it.
    ALTER TABLE statemachine_outbox ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
",
    r"
    -- 4: the machines' shapes (their transition tables as JSON), one per version of a
    -- table that ever wrote, so that process mining and diagrams need no Rust types.
    CREATE TABLE statemachine_definitions (
        machine    TEXT   NOT NULL,
        shape_hash TEXT   NOT NULL,
        version    BIGINT NOT NULL,
        definition TEXT   NOT NULL,
        stored_at  BIGINT NOT NULL,
        PRIMARY KEY (machine, shape_hash)
    );
",
];
