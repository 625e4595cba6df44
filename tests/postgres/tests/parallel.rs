//! Parallel saga branches on PostgreSQL: sagas whose `parallel` block runs three
//! branches side by side, many at once on one executor, under run leases. Every saga
//! ends as its plan says, each completed step of a compensated saga is compensated in
//! the reverse of the order its completion was committed (after an `uncertain` step
//! that was attempted and did not complete), and the checkpoints of
//! every instance are contiguous.
#![cfg(pg_tests)]

use std::collections::BTreeMap;
use std::sync::Arc;

use statemachine::saga::{Saga, SagaExecutor, SagaOutcome, StepKind};
use statemachine::store::Store;
use statemachine::{InstanceId, RecordKind};
use statemachine_postgres_tests as pg;
use statemachine_tests::tour::{Effects, Plan, Tour};

const SAGAS: u64 = 24;

#[test]
fn parallel_sagas_run_side_by_side_and_compensate_in_reverse_completion_order() {
    let schema = pg::fresh_schema();
    let store = Arc::new(pg::store_in(&schema));
    let dir = std::env::temp_dir().join(format!("statemachine-pg-parallel-{schema}"));
    std::fs::create_dir_all(&dir).unwrap();
    let effects_db = dir.join("effects.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let executor = Arc::new(
        SagaExecutor::<Tour, _>::new(store.clone(), Effects::open(&effects_db).unwrap())
            .with_retry(
                statemachine::saga::RetryPolicy::default()
                    .with_initial_interval(std::time::Duration::from_millis(1))
                    .with_maximum_attempts(4),
            ),
    );
    let outcomes: Vec<(u64, SagaOutcome)> = runtime.block_on(async {
        let mut runs = tokio::task::JoinSet::new();
        for i in 0..SAGAS {
            let executor = Arc::clone(&executor);
            runs.spawn(async move { (i, executor.start(format!("t-{i}"), Plan::of(i)).await) });
        }
        let mut outcomes = Vec::new();
        while let Some(done) = runs.join_next().await {
            let (i, outcome) = done.unwrap();
            outcomes.push((i, outcome.unwrap()));
        }
        outcomes
    });
    let applied: BTreeMap<String, i64> = executor.env().order();
    let definition = Tour::DEFINITION;
    for (i, outcome) in outcomes {
        let id = format!("t-{i}");
        let plan = Plan::of(i);
        assert_eq!(
            matches!(outcome, SagaOutcome::Compensated { .. }),
            plan.fails(),
            "{id}: {outcome:?}"
        );
        assert_eq!(
            matches!(outcome, SagaOutcome::Completed),
            !plan.fails(),
            "{id}"
        );
        let history = store
            .history("Tour", &InstanceId::from(id.as_str()))
            .unwrap();
        let seqs: Vec<u64> = history
            .iter()
            .filter(|r| r.kind.is_transition() || r.kind == RecordKind::Created)
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "{id}");
        if !plan.fails() {
            continue;
        }
        let committed: Vec<&str> = history
            .iter()
            .filter_map(|r| r.event.as_deref()?.strip_prefix("done "))
            .filter(|s| {
                definition
                    .step(s)
                    .is_some_and(|(_, info)| info.kind == StepKind::Compensable)
            })
            .collect();
        let mut undone: Vec<(i64, &str)> = definition
            .steps
            .iter()
            .filter_map(|s| {
                applied
                    .get(&format!("Tour/{id}/{}/compensation", s.name))
                    .map(|at| (*at, s.name))
            })
            .collect();
        undone.sort();
        let undone: Vec<&str> = undone.into_iter().map(|(_, s)| s).collect();
        // An `uncertain` step that was attempted and did not complete comes first.
        let mut expected: Vec<&str> = undone
            .iter()
            .copied()
            .take_while(|s| {
                !committed.contains(s) && definition.step(s).is_some_and(|(_, info)| info.uncertain)
            })
            .collect();
        expected.extend(committed.iter().rev());
        assert_eq!(undone, expected, "{id}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
