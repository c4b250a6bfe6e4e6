//! The channel conformance suite, `redisutil::conformance`: every scenario
//! runs on the in-memory fake (`memory::*`), on a private redis-server
//! (`redis::*`) and, with the `cluster` feature, on a private 3-master Redis
//! Cluster (`cluster::*`).

use crate::support;

macro_rules! conformance {
    ($suite:ident from $list:ident: $($scenario:ident),* $(,)?) => { mod $suite {
        mod memory {
            $( #[test] fn $scenario() {
                redisutil::conformance::scenario::$scenario(&redisutil::conformance::MemoryHarness::new());
            } )*
        }
        mod redis {
            $( #[test] fn $scenario() {
                redisutil::conformance::scenario::$scenario(&super::super::support::RedisBackend::new());
            } )*
        }
        #[cfg(feature = "cluster")]
        mod cluster {
            $( #[test] fn $scenario() {
                redisutil::conformance::scenario::$scenario(&super::super::support::ClusterBackend::new());
            } )*
        }

        /// The list the crate publishes is the list this file runs.
        #[test]
        fn every_published_scenario_runs_here() {
            let here = [$(stringify!($scenario)),*];
            let published: Vec<&str> = redisutil::conformance::$list::<redisutil::conformance::MemoryHarness>()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            assert_eq!(published, here);
        }
    } };
}

conformance!(
    lists from scenarios:
    store_list_semantics,
    store_binary_values_round_trip,
    store_push_nothing_is_refused,
    store_ttl_zero_deletes,
    store_scan_matches_globs_like_redis,
    store_blocking_pop_returns_queued_element,
    send_and_receive_both_ways,
    lists_are_named_like_the_python_original,
    messages_keep_fifo_order,
    null_zero_and_empty_messages_are_not_absence,
    non_ascii_is_written_unescaped,
    python_formatted_json_is_accepted,
    typed_messages_round_trip,
    decode_error_keeps_raw_bytes_and_channel_goes_on,
    send_msgs_is_one_ordered_batch,
    recv_last_takes_newest_and_clears,
    brecv_last_waits_then_takes_newest,
    peek_and_rpeek_leave_messages,
    brecv_wakes_when_another_thread_sends,
    brecv_times_out_with_none,
    blocked_receive_does_not_stall_other_calls,
    blocked_receivers_are_served_longest_waiting_first,
    a_push_goes_to_the_blocked_receiver_before_any_later_pop,
    list_channel_finds_both_peers_sorted_once,
    list_channel_matches_glob_characters_literally,
    invalid_names_and_prefixes_are_refused_before_sending,
    channel_ttl_expires_and_is_refreshed_by_sends,
    wrong_type_keys_are_refused_and_left_untouched,
    out_of_range_ttls_are_refused_and_nothing_is_written,
    brecv_last_never_drops_what_it_waited_for,
    huge_timeouts_wait_without_limit,
    numbers_arrive_exactly_or_not_at_all,
    batch_receive_takes_up_to_max_in_order,
    messages_of_any_size_arrive_whole,
    batch_receive_keeps_undecodable_messages_in_place,
    blocking_batch_receive_waits_then_takes_what_is_there,
);

conformance!(
    leases from lease_scenarios:
    leased_messages_are_acked_or_delivered_again,
    nacked_messages_come_back_then_become_dead_letters,
    expired_leases_are_reclaimed_then_dead_lettered,
    extend_holds_a_lease_longer,
    leased_batches_are_taken_and_acked_at_once,
    blocking_leased_receive_waits_for_sends_and_expiries,
    huge_lease_timeouts_and_delays_never_overflow,
    leases_keep_the_wire_format_and_documented_keys,
    lease_operations_refuse_bad_input_and_foreign_keys,
    acking_a_whole_batch_counts_what_it_still_held,
    a_batch_outlives_the_ttl_of_the_list_it_emptied,
    released_messages_come_back_first_without_spending_a_delivery,
    rejected_messages_are_dead_letters_at_once,
    a_nack_wakes_a_blocked_leased_receive,
    dead_letters_are_picked_by_id,
    channel_stats_count_every_state_under_a_prefix,
);
