//! The SQLite store's schema: the version this release writes and the steps that take an
//! older file to it.

/// The schema this release writes. Older schemas are upgraded when a store opens them;
/// newer ones are refused.
pub(super) const SCHEMA_VERSION: i64 = 5;

/// Each step takes the schema from version `n` to `n + 1`; step 0 creates it.
pub(super) const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE statemachine_instances (
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        seq        INTEGER NOT NULL CHECK (seq >= 0),
        state      TEXT    NOT NULL,
        snapshot   TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (machine, id)
    ) WITHOUT ROWID;
    CREATE INDEX statemachine_instances_by_state
        ON statemachine_instances (machine, state, id);

    CREATE TABLE statemachine_audit (
        position        INTEGER PRIMARY KEY,
        machine         TEXT    NOT NULL,
        id              TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        kind            TEXT    NOT NULL CHECK (kind IN ('created', 'applied', 'refused')),
        from_state      TEXT,
        event           TEXT,
        to_state        TEXT,
        guard           TEXT,
        reason          TEXT,
        payload         TEXT,
        at              INTEGER NOT NULL,
        actor           TEXT,
        correlation_id  TEXT,
        idempotency_key TEXT
    );
    CREATE INDEX statemachine_audit_by_instance
        ON statemachine_audit (machine, id, position);
    CREATE UNIQUE INDEX statemachine_audit_one_per_seq
        ON statemachine_audit (machine, id, seq) WHERE kind <> 'refused';

    CREATE TABLE statemachine_idempotency (
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        from_state TEXT    NOT NULL,
        event      TEXT    NOT NULL,
        to_state   TEXT,
        reason     TEXT,
        at         INTEGER NOT NULL,
        PRIMARY KEY (machine, id, key)
    ) WITHOUT ROWID;
",
    r"
    -- 2: a fingerprint of the payload a key was first used with, so that a key reused
    -- with another payload is refused (NULL for keys written by schema 1).
    ALTER TABLE statemachine_idempotency ADD COLUMN fingerprint TEXT;
",
    r"
    -- 3: the timers of the state each instance is in, keyed by the sequence number they
    -- were armed at (a row whose seq is not the instance's is stale and never fires).
    CREATE TABLE statemachine_timers (
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        seq        INTEGER NOT NULL CHECK (seq >= 0),
        timer      TEXT    NOT NULL,
        kind       TEXT    NOT NULL CHECK (kind IN ('deadline', 'reminder')),
        due_at     INTEGER NOT NULL,
        run_at     INTEGER NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error TEXT,
        fence      INTEGER NOT NULL DEFAULT 0 CHECK (fence >= 0),
        PRIMARY KEY (machine, id, seq, timer)
    ) WITHOUT ROWID;
    CREATE INDEX statemachine_timers_by_run_at
        ON statemachine_timers (run_at, due_at, machine, id, seq, timer);
",
    r"
    -- 4: human tasks. Task actions in the audit trail (kinds `task`, `task_refused`,
    -- which move no sequence number), timers for a task's reminders and escalations,
    -- and the open tasks with the groups that may claim them. SQLite cannot change a
    -- CHECK constraint in place, so the audit and timer tables are copied once.
    CREATE TABLE statemachine_audit_4 (
        position        INTEGER PRIMARY KEY,
        machine         TEXT    NOT NULL,
        id              TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        kind            TEXT    NOT NULL
            CHECK (kind IN ('created', 'applied', 'refused', 'task', 'task_refused')),
        from_state      TEXT,
        event           TEXT,
        to_state        TEXT,
        guard           TEXT,
        reason          TEXT,
        payload         TEXT,
        at              INTEGER NOT NULL,
        actor           TEXT,
        correlation_id  TEXT,
        idempotency_key TEXT
    );
    INSERT INTO statemachine_audit_4 SELECT * FROM statemachine_audit;
    DROP TABLE statemachine_audit;
    ALTER TABLE statemachine_audit_4 RENAME TO statemachine_audit;
    CREATE INDEX statemachine_audit_by_instance
        ON statemachine_audit (machine, id, position);
    CREATE UNIQUE INDEX statemachine_audit_one_per_seq
        ON statemachine_audit (machine, id, seq) WHERE kind IN ('created', 'applied');

    CREATE TABLE statemachine_timers_4 (
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        seq        INTEGER NOT NULL CHECK (seq >= 0),
        timer      TEXT    NOT NULL,
        kind       TEXT    NOT NULL
            CHECK (kind IN ('deadline', 'reminder', 'task_reminder', 'task_escalation')),
        due_at     INTEGER NOT NULL,
        run_at     INTEGER NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error TEXT,
        fence      INTEGER NOT NULL DEFAULT 0 CHECK (fence >= 0),
        PRIMARY KEY (machine, id, seq, timer)
    ) WITHOUT ROWID;
    INSERT INTO statemachine_timers_4 SELECT * FROM statemachine_timers;
    DROP TABLE statemachine_timers;
    ALTER TABLE statemachine_timers_4 RENAME TO statemachine_timers;
    CREATE INDEX statemachine_timers_by_run_at
        ON statemachine_timers (run_at, due_at, machine, id, seq, timer);

    CREATE TABLE statemachine_tasks (
        machine     TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        seq         INTEGER NOT NULL CHECK (seq >= 0),
        state       TEXT    NOT NULL,
        assignee    TEXT,
        candidates  TEXT    NOT NULL,
        due_at      INTEGER,
        due_key     INTEGER NOT NULL,
        entered_at  INTEGER NOT NULL,
        escalations INTEGER NOT NULL DEFAULT 0 CHECK (escalations >= 0),
        revision    INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0),
        PRIMARY KEY (machine, id)
    ) WITHOUT ROWID;
    CREATE INDEX statemachine_tasks_by_assignee
        ON statemachine_tasks (assignee, due_key, machine, id) WHERE assignee IS NOT NULL;
    CREATE INDEX statemachine_tasks_by_due
        ON statemachine_tasks (due_key, machine, id);

    CREATE TABLE statemachine_task_groups (
        grp     TEXT    NOT NULL,
        due_key INTEGER NOT NULL,
        machine TEXT    NOT NULL,
        id      TEXT    NOT NULL,
        PRIMARY KEY (grp, due_key, machine, id)
    ) WITHOUT ROWID;
    CREATE INDEX statemachine_task_groups_by_task
        ON statemachine_task_groups (machine, id);

    -- The transactional outbox: messages written with the change that caused them,
    -- deleted when delivered.
    CREATE TABLE statemachine_outbox (
        key        TEXT    NOT NULL PRIMARY KEY,
        machine    TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        topic      TEXT    NOT NULL,
        payload    TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        run_at     INTEGER NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error TEXT
    ) WITHOUT ROWID;
    CREATE INDEX statemachine_outbox_by_run_at ON statemachine_outbox (run_at, key);
",
    r"
    -- 5: the machines' shapes (their transition tables as JSON), one per version of a
    -- table that ever wrote, so that process mining and diagrams need no Rust types.
    CREATE TABLE statemachine_definitions (
        machine    TEXT    NOT NULL,
        shape_hash TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        definition TEXT    NOT NULL,
        stored_at  INTEGER NOT NULL,
        PRIMARY KEY (machine, shape_hash)
    ) WITHOUT ROWID;
",
];
