//! Pattern subscriptions in a group: resolution, the refresh interval, invalid patterns, restore.

use super::errors::*;
use super::regex::REFRESH_INTERVAL_MS;
use super::tests::{config, join_request, ORDERS, REBALANCE_MS};
use super::*;

const PAYMENTS: Uuid = Uuid::from_u128(2);
const REFUNDS: Uuid = Uuid::from_u128(3);

fn view(names: &[(&str, Uuid, i32)]) -> TopicMetadata {
    names
        .iter()
        .map(|(name, id, partitions)| (name.to_string(), (*id, *partitions)))
        .collect()
}

fn pattern_join(member_id: &str, pattern: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some(pattern.to_string()),
        ..join_request(member_id)
    }
}

/// A full heartbeat (as a client sends after a change) owning `owned`; answered with the assignment.
fn full_beat(member_id: &str, epoch: i32, owned: Vec<(Uuid, Vec<i32>)>) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member_id.to_string(),
        member_epoch: epoch,
        rebalance_timeout_ms: REBALANCE_MS,
        subscribed_topic_names: Some(vec![]),
        owned_partitions: Some(owned),
        ..Default::default()
    }
}

fn topic_ids(response: &HeartbeatResponse) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = response
        .assignment
        .iter()
        .flatten()
        .map(|(id, _)| *id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_pattern_subscribes_to_the_matching_topics_and_follows_new_ones_after_the_interval() {
    let mut group = ConsumerGroup::new("g", config());
    let before = view(&[("orders", ORDERS, 2), ("payments", PAYMENTS, 1)]);
    let response = group.heartbeat(
        pattern_join("a", "orders|pay.*"),
        &before,
        0,
        || unreachable!(),
    );
    assert_eq!(response.error_code, NONE, "{response:?}");
    assert_eq!(topic_ids(&response), vec![ORDERS, PAYMENTS]);
    assert_eq!(
        group.describe().members[0]
            .subscribed_topic_regex
            .as_deref(),
        Some("orders|pay.*")
    );
    let epoch = response.member_epoch;
    let owned = response.assignment.clone().unwrap_or_default();

    // A matching topic appears: picked up once the last resolution is REFRESH_INTERVAL_MS old.
    let after = view(&[
        ("orders", ORDERS, 2),
        ("payments", PAYMENTS, 1),
        ("payouts", REFUNDS, 1),
    ]);
    let early = group.heartbeat(
        full_beat("a", epoch, owned.clone()),
        &after,
        1_000,
        || unreachable!(),
    );
    assert_eq!(
        (early.member_epoch, topic_ids(&early)),
        (epoch, vec![ORDERS, PAYMENTS])
    );
    let due = group.heartbeat(
        full_beat("a", epoch, owned.clone()),
        &after,
        REFRESH_INTERVAL_MS,
        || unreachable!(),
    );
    assert_eq!(
        due.member_epoch,
        epoch + 1,
        "the new topic bumps the group epoch"
    );
    assert_eq!(topic_ids(&due), vec![ORDERS, PAYMENTS, REFUNDS]);

    // A deleted topic leaves the assignment at the next heartbeat.
    let owned = due.assignment.clone().unwrap_or_default();
    let shrunk = view(&[("orders", ORDERS, 2), ("payouts", REFUNDS, 1)]);
    let gone = group.heartbeat(
        full_beat("a", epoch + 1, owned),
        &shrunk,
        REFRESH_INTERVAL_MS + 1,
        || unreachable!(),
    );
    assert_eq!(topic_ids(&gone), vec![ORDERS, REFUNDS]);
}

#[test]
fn an_invalid_pattern_is_refused_and_changes_nothing() {
    let mut group = ConsumerGroup::new("g", config());
    let response = group.heartbeat(
        pattern_join("a", "orders("),
        &super::tests::topics(),
        0,
        || unreachable!(),
    );
    assert_eq!(response.error_code, INVALID_REGULAR_EXPRESSION);
    assert!(
        response
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("orders(")),
        "{response:?}"
    );
    assert!(group.is_empty());
    assert_eq!(group.group_epoch(), 0);
    let neither = HeartbeatRequest {
        subscribed_topic_names: None,
        ..join_request("a")
    };
    let response = group.heartbeat(neither, &super::tests::topics(), 0, || unreachable!());
    assert_eq!(
        response.error_code, INVALID_REQUEST,
        "names or a pattern are needed to join"
    );
}

#[test]
fn an_empty_pattern_removes_the_subscription_and_the_pattern_survives_a_restore() {
    let topics = view(&[("orders", ORDERS, 2), ("payments", PAYMENTS, 1)]);
    let mut group = ConsumerGroup::new("g", config());
    let joined = group.heartbeat(pattern_join("a", "pay.*"), &topics, 0, || unreachable!());
    assert_eq!(topic_ids(&joined), vec![PAYMENTS]);

    let image = group.image();
    let restored = ConsumerGroup::restore("g", config(), &image, &topics, 5_000);
    let member = &restored.describe().members[0];
    assert_eq!(member.subscribed_topic_regex.as_deref(), Some("pay.*"));
    assert_eq!(restored.group_epoch(), group.group_epoch(), "nothing moved");

    let orders_only =
        |epoch: i32, owned: Vec<(Uuid, Vec<i32>)>, pattern: Option<&str>| HeartbeatRequest {
            subscribed_topic_names: Some(vec!["orders".to_string()]),
            subscribed_topic_regex: pattern.map(str::to_string),
            ..full_beat("a", epoch, owned)
        };
    let owned = joined.assignment.clone().unwrap_or_default();
    let response = group.heartbeat(
        orders_only(joined.member_epoch, owned, Some("")),
        &topics,
        1_000,
        || unreachable!(),
    );
    assert_eq!(
        response.member_epoch, joined.member_epoch,
        "payments must be revoked first"
    );
    assert_eq!(group.describe().members[0].subscribed_topic_regex, None);
    let response = group.heartbeat(
        orders_only(response.member_epoch, vec![], None),
        &topics,
        1_001,
        || unreachable!(),
    );
    assert_eq!(response.member_epoch, joined.member_epoch + 1);
    assert_eq!(topic_ids(&response), vec![ORDERS]);
}
