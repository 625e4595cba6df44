//! The macros that run the conformance cases as `#[test]`s: [`store_conformance!`] and
//! [`log_conformance!`] (the timer and task cases have theirs beside them).
//!
//! [`store_conformance!`]: crate::store_conformance
//! [`log_conformance!`]: crate::log_conformance

/// Runs the [`ProcessLog`](crate::mining::ProcessLog) cases (the log read in bulk, the
/// stored shapes, and process mining's figures for a fixed trail) as `#[test]`s against a
/// fresh store from `$make`. Use it next to [`store_conformance!`](crate::store_conformance)
/// for stores that keep a process log.
#[macro_export]
macro_rules! log_conformance {
    ($make:expr, $damage:expr) => {
        $crate::store_conformance!(@cases $make, $damage;
            the_log_reads_every_record_in_instance_order,
            shapes_are_stored_once_per_hash,
            mining_counts_the_fixed_trail,
            the_census_counts_what_is_there_now,
        );
    };
}

/// Runs every conformance case as its own `#[test]`, against the store `$make` builds,
/// damaging rows with `$damage`.
#[macro_export]
macro_rules! store_conformance {
    ($make:expr, $damage:expr) => {
        $crate::store_conformance!(@cases $make, $damage;
            create_then_load_round_trips,
            creating_twice_is_a_duplicate_id,
            a_missing_instance_is_not_found,
            a_stale_commit_is_a_conflict_and_writes_nothing,
            a_commit_writes_snapshot_records_and_key_together,
            an_idempotency_key_applies_once,
            a_refused_key_stays_refused,
            refusals_are_recorded_and_change_nothing,
            list_filters_by_state,
            history_replays_to_the_snapshot,
            apply_retries_after_losing_a_race,
            a_batch_commits_all_or_nothing,
            damaged_rows_are_corrupt_errors,
            records_are_stamped_by_the_repository_clock,
            non_finite_numbers_are_refused_naming_the_field,
            deep_nesting_is_refused_on_write,
            payloads_that_do_not_serialize_are_refused_on_every_path,
            save_reports_a_used_key_and_hands_back_what_is_stored,
            a_key_reused_for_another_request_is_refused,
            a_batch_naming_one_instance_twice_is_a_conflict,
            listing_and_history_page_with_a_cursor,
            a_snapshot_past_the_size_limit_is_refused,
            an_exhausted_sequence_number_is_the_callers_problem_not_damage,
            load_json_is_the_text_load_parses,
            a_commit_without_records_only_looks_its_key_up,
            load_many_reads_in_the_order_asked,
        );
    };
    (@cases $make:expr, $damage:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testing::conformance::$case($make, $damage);
            }
        )*
    };
}
