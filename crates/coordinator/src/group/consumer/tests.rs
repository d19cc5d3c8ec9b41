use super::errors::*;
use super::*;

pub(super) const ORDERS: Uuid = Uuid::from_u128(1);
const PAYMENTS: Uuid = Uuid::from_u128(2);
const SESSION_MS: i64 = 10_000;
pub(super) const REBALANCE_MS: i32 = 20_000;

pub(super) fn config() -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 1_000,
        max_size: 3,
        default_assignor: AssignorKind::Uniform,
    }
}

/// "orders" with 6 partitions, "payments" with 3.
pub(super) fn topics() -> TopicMetadata {
    [
        ("orders".to_string(), (ORDERS, 6)),
        ("payments".to_string(), (PAYMENTS, 3)),
    ]
    .into()
}

pub(super) fn join_request(member_id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member_id.to_string(),
        member_epoch: JOIN_EPOCH,
        rebalance_timeout_ms: REBALANCE_MS,
        subscribed_topic_names: Some(vec!["orders".to_string()]),
        owned_partitions: Some(vec![]),
        client_id: format!("client-{member_id}"),
        client_host: "/127.0.0.1".to_string(),
        ..Default::default()
    }
}

/// A lightweight heartbeat: only what changed (here: the owned partitions of "orders").
pub(super) fn beat_request(member_id: &str, epoch: i32, owned: &BTreeSet<i32>) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member_id.to_string(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned_partitions: Some(vec![(ORDERS, owned.iter().copied().collect())]),
        client_id: format!("client-{member_id}"),
        client_host: "/127.0.0.1".to_string(),
        ..Default::default()
    }
}

pub(super) fn heartbeat(
    group: &mut ConsumerGroup,
    request: HeartbeatRequest,
    now: i64,
) -> HeartbeatResponse {
    group.heartbeat(request, &topics(), now, || "generated".to_string())
}

/// The "orders" partitions of a response's assignment, if it carries one.
pub(super) fn orders(response: &HeartbeatResponse) -> Option<BTreeSet<i32>> {
    response.assignment.as_ref().map(|topics| {
        topics
            .iter()
            .filter(|(topic_id, _)| *topic_id == ORDERS)
            .flat_map(|(_, partitions)| partitions.iter().copied())
            .collect()
    })
}

pub(super) fn set(partitions: impl IntoIterator<Item = i32>) -> BTreeSet<i32> {
    partitions.into_iter().collect()
}

/// A well-behaved client: it adopts every assignment it is sent at once (revoking or taking partitions).
#[derive(Debug, Clone)]
pub(super) struct Client {
    pub(super) id: String,
    pub(super) epoch: i32,
    pub(super) owned: BTreeSet<i32>,
}

impl Client {
    pub(super) fn join(group: &mut ConsumerGroup, request: HeartbeatRequest, now: i64) -> Client {
        let response = heartbeat(group, request, now);
        assert_eq!(response.error_code, NONE, "{response:?}");
        Client {
            id: response.member_id.clone(),
            epoch: response.member_epoch,
            owned: orders(&response).expect("a join is answered with the assignment"),
        }
    }

    pub(super) fn beat(&mut self, group: &mut ConsumerGroup, now: i64) -> HeartbeatResponse {
        let response = heartbeat(group, beat_request(&self.id, self.epoch, &self.owned), now);
        assert_eq!(response.error_code, NONE, "{response:?}");
        self.epoch = response.member_epoch;
        if let Some(owned) = orders(&response) {
            self.owned = owned;
        }
        response
    }
}

/// Heartbeats every client in turn until the group is stable.
pub(super) fn settle(group: &mut ConsumerGroup, clients: &mut [Client], now: i64) {
    for _ in 0..5 {
        for client in clients.iter_mut() {
            client.beat(group, now);
        }
        if group.state() == ConsumerGroupState::Stable {
            return;
        }
    }
    panic!("group did not settle: {:?}", group.describe());
}

/// Members joined at time 0 and settled.
pub(super) fn stable_group(names: &[&str]) -> (ConsumerGroup, Vec<Client>) {
    let mut group = ConsumerGroup::new("g", config());
    let mut clients: Vec<Client> = names
        .iter()
        .map(|name| Client::join(&mut group, join_request(name), 0))
        .collect();
    settle(&mut group, &mut clients, 0);
    (group, clients)
}

pub(super) fn assert_disjoint_and_complete(clients: &[Client]) {
    let mut all = BTreeSet::new();
    for client in clients {
        for p in &client.owned {
            assert!(all.insert(*p), "partition {p} owned twice: {clients:?}");
        }
    }
    assert_eq!(all, set(0..6));
}

#[test]
fn first_member_gets_every_partition() {
    let mut group = ConsumerGroup::new("g", config());
    let response = heartbeat(&mut group, join_request("a"), 0);
    assert_eq!(response.error_code, NONE);
    assert_eq!(
        (response.member_id.as_str(), response.member_epoch),
        ("a", 1)
    );
    assert_eq!(response.heartbeat_interval_ms, 1_000);
    assert_eq!(orders(&response), Some(set(0..6)));
    assert_eq!(group.group_epoch(), 1);
    assert_eq!(group.state(), ConsumerGroupState::Stable);
}

#[test]
fn a_v0_join_without_member_id_gets_a_generated_one() {
    let mut group = ConsumerGroup::new("g", config());
    let response = heartbeat(&mut group, join_request(""), 0);
    assert_eq!(response.member_id, "generated");
    assert_eq!(group.member_ids().collect::<Vec<_>>(), vec!["generated"]);
}

#[test]
fn second_member_gets_partitions_only_once_the_first_released_them() {
    let (mut group, mut clients) = stable_group(&["a"]);
    let mut b = Client::join(&mut group, join_request("b"), 0);
    assert_eq!(group.group_epoch(), 2);
    assert_eq!(b.epoch, 2);
    assert!(b.owned.is_empty(), "a still holds everything");
    assert_eq!(group.state(), ConsumerGroupState::Reconciling);

    let a = &mut clients[0];
    let response = a.beat(&mut group, 1_000);
    assert_eq!(
        response.member_epoch, 1,
        "epoch stays until the revocation is confirmed"
    );
    assert_eq!(a.owned.len(), 3);
    let revoked: BTreeSet<i32> = set(0..6).difference(&a.owned).copied().collect();

    // a's heartbeat above still listed the revoked partitions as owned: b must not get them yet.
    let response = b.beat(&mut group, 1_000);
    assert!(orders(&response).unwrap_or_default().is_empty());
    assert!(b.owned.is_empty());

    let response = a.beat(&mut group, 2_000);
    assert_eq!(response.member_epoch, 2);
    assert_eq!(response.assignment, None, "a's assignment did not change");

    let response = b.beat(&mut group, 2_000);
    assert_eq!(orders(&response), Some(revoked));
    assert_eq!(group.state(), ConsumerGroupState::Stable);
    clients.push(b);
    assert_disjoint_and_complete(&clients);
}

#[test]
fn third_member_takes_one_partition_from_each_and_nothing_else_moves() {
    let (mut group, mut clients) = stable_group(&["a", "b"]);
    let before: Vec<BTreeSet<i32>> = clients.iter().map(|c| c.owned.clone()).collect();
    clients.push(Client::join(&mut group, join_request("c"), 0));
    settle(&mut group, &mut clients, 1_000);
    for (client, before) in clients.iter().zip(&before) {
        assert_eq!(client.owned.len(), 2, "{client:?}");
        assert!(
            client.owned.is_subset(before),
            "{client:?} gained a partition"
        );
    }
    assert_eq!(clients[2].owned.len(), 2);
    assert_disjoint_and_complete(&clients);
}

#[test]
fn leaving_frees_the_partitions_for_the_others() {
    let (mut group, mut clients) = stable_group(&["a", "b"]);
    let epoch = group.group_epoch();
    let leave = HeartbeatRequest {
        member_epoch: LEAVE_EPOCH,
        ..beat_request("b", clients[1].epoch, &BTreeSet::new())
    };
    let response = heartbeat(&mut group, leave, 1_000);
    assert_eq!(
        (response.error_code, response.member_epoch),
        (NONE, LEAVE_EPOCH)
    );
    assert_eq!(group.group_epoch(), epoch + 1);
    let response = clients[0].beat(&mut group, 1_000);
    assert_eq!(orders(&response), Some(set(0..6)));
    assert_eq!(group.state(), ConsumerGroupState::Stable);
    let response = heartbeat(&mut group, beat_request("b", 3, &BTreeSet::new()), 2_000);
    assert_eq!(response.error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn the_last_member_leaving_empties_the_group() {
    let (mut group, clients) = stable_group(&["a"]);
    let leave = HeartbeatRequest {
        member_epoch: LEAVE_EPOCH,
        ..beat_request("a", clients[0].epoch, &BTreeSet::new())
    };
    assert_eq!(heartbeat(&mut group, leave, 0).error_code, NONE);
    assert!(group.is_empty());
    assert_eq!(group.state(), ConsumerGroupState::Empty);
    assert_eq!(group.delete(), Ok(()));
    assert_eq!(group.state(), ConsumerGroupState::Dead);
    let response = heartbeat(&mut group, join_request("a"), 0);
    assert_eq!(response.error_code, COORDINATOR_NOT_AVAILABLE);
}

#[test]
fn a_group_with_members_cannot_be_deleted() {
    let (mut group, _) = stable_group(&["a"]);
    assert_eq!(group.delete(), Err(ConsumerGroupError::NotEmpty));
    assert_eq!(group.state(), ConsumerGroupState::Stable);
}

#[test]
fn a_silent_member_expires_after_its_session_timeout() {
    let (mut group, mut clients) = stable_group(&["a", "b"]);
    clients[0].beat(&mut group, 8_000);
    assert_eq!(group.next_deadline_ms(), Some(SESSION_MS));
    assert!(group.tick(SESSION_MS - 1, &topics()).is_empty());
    assert_eq!(group.tick(SESSION_MS, &topics()), vec!["b".to_string()]);
    let response = clients[0].beat(&mut group, SESSION_MS);
    assert_eq!(orders(&response), Some(set(0..6)));
    assert_eq!(group.state(), ConsumerGroupState::Stable);
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_removed() {
    let (mut group, mut clients) = stable_group(&["a"]);
    let mut b = Client::join(&mut group, join_request("b"), 0);
    let a = &mut clients[0];
    let all = a.owned.clone();
    let response = a.beat(&mut group, 1_000);
    assert_eq!(
        orders(&response).map(|o| o.len()),
        Some(3),
        "asked to revoke 3"
    );
    // A stuck client: it keeps reporting all six, at its old epoch, without ever revoking.
    for now in [5_000, 10_000, 15_000, 20_000] {
        let response = heartbeat(&mut group, beat_request("a", 1, &all), now);
        assert_eq!((response.error_code, response.member_epoch), (NONE, 1));
        b.beat(&mut group, now);
        assert!(b.owned.is_empty());
    }
    assert!(group.tick(20_999, &topics()).is_empty());
    assert_eq!(group.tick(21_000, &topics()), vec!["a".to_string()]);
    let response = b.beat(&mut group, 21_000);
    assert_eq!(orders(&response), Some(set(0..6)));
}

pub(super) fn static_join(member_id: &str, instance_id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        instance_id: Some(instance_id.to_string()),
        ..join_request(member_id)
    }
}

#[test]
fn a_static_member_leaving_for_now_keeps_its_partitions_for_its_successor() {
    let mut group = ConsumerGroup::new("g", config());
    let mut clients = vec![
        Client::join(&mut group, join_request("a"), 0),
        Client::join(&mut group, static_join("s1", "instance-1"), 0),
    ];
    settle(&mut group, &mut clients, 0);
    let (epoch, s_owned) = (group.group_epoch(), clients[1].owned.clone());

    let leave = HeartbeatRequest {
        member_epoch: STATIC_LEAVE_EPOCH,
        instance_id: Some("instance-1".to_string()),
        ..beat_request("s1", clients[1].epoch, &s_owned)
    };
    let response = heartbeat(&mut group, leave, 1_000);
    assert_eq!(
        (response.error_code, response.member_epoch),
        (NONE, STATIC_LEAVE_EPOCH)
    );
    assert_eq!(group.group_epoch(), epoch, "nothing is reassigned");
    let away = group
        .describe()
        .members
        .into_iter()
        .find(|m| m.member_id == "s1");
    assert_eq!(away.map(|m| m.member_epoch), Some(STATIC_LEAVE_EPOCH));
    let response = clients[0].beat(&mut group, 2_000);
    assert_eq!(response.assignment, None, "a does not get s1's partitions");
    let ghost = heartbeat(
        &mut group,
        beat_request("s1", clients[1].epoch, &s_owned),
        2_000,
    );
    assert_eq!(
        ghost.error_code, FENCED_MEMBER_EPOCH,
        "s1 left; only a rejoin brings it back"
    );

    let response = heartbeat(&mut group, static_join("s2", "instance-1"), 3_000);
    assert_eq!(response.error_code, NONE);
    assert_eq!(response.member_epoch, clients[1].epoch);
    assert_eq!(orders(&response), Some(s_owned));
    assert_eq!(group.group_epoch(), epoch);
    assert_eq!(group.member_ids().collect::<Vec<_>>(), vec!["a", "s2"]);
    assert_eq!(group.state(), ConsumerGroupState::Stable);
}

#[test]
fn an_away_static_member_expires_after_its_session_timeout() {
    let mut group = ConsumerGroup::new("g", config());
    let s = Client::join(&mut group, static_join("s1", "instance-1"), 0);
    let leave = HeartbeatRequest {
        member_epoch: STATIC_LEAVE_EPOCH,
        instance_id: Some("instance-1".to_string()),
        ..beat_request("s1", s.epoch, &s.owned)
    };
    assert_eq!(heartbeat(&mut group, leave, 5_000).error_code, NONE);
    assert!(group.tick(5_000 + SESSION_MS - 1, &topics()).is_empty());
    assert_eq!(
        group.tick(5_000 + SESSION_MS, &topics()),
        vec!["s1".to_string()]
    );
    assert_eq!(group.state(), ConsumerGroupState::Empty);
    // The instance id is free again.
    let response = heartbeat(&mut group, static_join("s3", "instance-1"), 20_000);
    assert_eq!(response.error_code, NONE);
}

#[test]
fn an_instance_id_in_use_is_refused_to_another_member() {
    let mut group = ConsumerGroup::new("g", config());
    Client::join(&mut group, static_join("s1", "instance-1"), 0);
    let epoch = group.group_epoch();
    let response = heartbeat(&mut group, static_join("s2", "instance-1"), 1_000);
    assert_eq!(response.error_code, UNRELEASED_INSTANCE_ID);
    assert_eq!(group.member_ids().collect::<Vec<_>>(), vec!["s1"]);
    assert_eq!(group.group_epoch(), epoch);
    // A heartbeat claiming someone else's instance id is fenced.
    let mut request = beat_request("s1", 1, &set(0..6));
    request.instance_id = Some("instance-9".to_string());
    assert_eq!(
        heartbeat(&mut group, request, 1_000).error_code,
        FENCED_INSTANCE_ID
    );
}

#[test]
fn member_epochs_are_fenced() {
    let (mut group, mut clients) = stable_group(&["a"]);
    let unknown = heartbeat(&mut group, beat_request("zz", 1, &BTreeSet::new()), 0);
    assert_eq!(unknown.error_code, UNKNOWN_MEMBER_ID);
    let ahead = heartbeat(&mut group, beat_request("a", 2, &set(0..6)), 0);
    assert_eq!(ahead.error_code, FENCED_MEMBER_EPOCH);

    // b joins; a revokes and moves from epoch 1 to 2.
    let mut b = Client::join(&mut group, join_request("b"), 0);
    clients[0].beat(&mut group, 0);
    clients[0].beat(&mut group, 0);
    let a = &clients[0];
    assert_eq!(a.epoch, 2);
    b.beat(&mut group, 0);
    // The response with epoch 2 may have been lost: epoch 1 is accepted if a owns nothing it was not given.
    let retry = heartbeat(&mut group, beat_request("a", 1, &a.owned), 0);
    assert_eq!((retry.error_code, retry.member_epoch), (NONE, 2));
    let grabbing = heartbeat(&mut group, beat_request("a", 1, &set(0..6)), 0);
    assert_eq!(grabbing.error_code, FENCED_MEMBER_EPOCH);
    let stale = heartbeat(&mut group, beat_request("b", 1, &BTreeSet::new()), 0);
    assert_eq!(
        stale.error_code, FENCED_MEMBER_EPOCH,
        "b never was at epoch 1"
    );
}

#[test]
fn a_fenced_member_rejoining_with_epoch_zero_gets_its_assignment_back() {
    let (mut group, clients) = stable_group(&["a", "b"]);
    let epoch = group.group_epoch();
    let response = heartbeat(&mut group, join_request("a"), 1_000);
    assert_eq!(response.error_code, NONE);
    assert_eq!(response.member_epoch, clients[0].epoch);
    assert_eq!(orders(&response), Some(clients[0].owned.clone()));
    assert_eq!(group.group_epoch(), epoch, "nothing changed for the group");
}

#[test]
fn malformed_heartbeats_are_invalid_requests_and_change_nothing() {
    let mut group = ConsumerGroup::new("g", config());
    let cases = [
        HeartbeatRequest {
            subscribed_topic_names: None,
            ..join_request("a")
        },
        HeartbeatRequest {
            rebalance_timeout_ms: -1,
            ..join_request("a")
        },
        HeartbeatRequest {
            owned_partitions: Some(vec![(ORDERS, vec![0])]),
            ..join_request("a")
        },
        HeartbeatRequest {
            instance_id: Some(String::new()),
            ..join_request("a")
        },
        HeartbeatRequest {
            member_epoch: -3,
            ..join_request("a")
        },
        HeartbeatRequest {
            member_epoch: STATIC_LEAVE_EPOCH,
            ..join_request("a")
        },
        beat_request("", 1, &BTreeSet::new()),
    ];
    for request in cases {
        let response = heartbeat(&mut group, request.clone(), 0);
        assert_eq!(response.error_code, INVALID_REQUEST, "{request:?}");
        assert!(response.error_message.is_some());
    }
    let unsupported = HeartbeatRequest {
        server_assignor: Some("sticky".to_string()),
        ..join_request("a")
    };
    assert_eq!(
        heartbeat(&mut group, unsupported, 0).error_code,
        UNSUPPORTED_ASSIGNOR
    );
    assert!(group.is_empty());
    assert_eq!(
        (group.group_epoch(), group.state()),
        (0, ConsumerGroupState::Empty)
    );
}

#[test]
fn a_full_group_refuses_new_members() {
    let (mut group, _) = stable_group(&["a", "b", "c"]);
    let response = heartbeat(&mut group, join_request("d"), 0);
    assert_eq!(response.error_code, GROUP_MAX_SIZE_REACHED);
    assert_eq!(group.member_ids().count(), 3);
}

#[test]
fn offset_commits_are_checked_against_the_member_epoch() {
    let mut group = ConsumerGroup::new("g", config());
    assert_eq!(
        group.validate_offset_commit("", -1),
        NONE,
        "tools commit into an empty group"
    );
    let a = Client::join(&mut group, join_request("a"), 0);
    assert_eq!(group.validate_offset_commit("a", a.epoch), NONE);
    assert_eq!(
        group.validate_offset_commit("a", a.epoch + 1),
        STALE_MEMBER_EPOCH
    );
    assert_eq!(
        group.validate_offset_commit("a", a.epoch - 1),
        STALE_MEMBER_EPOCH
    );
    assert_eq!(
        group.validate_offset_commit("zz", a.epoch),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(group.validate_offset_commit("", -1), UNKNOWN_MEMBER_ID);
    assert_eq!(group.validate_offset_fetch("", -1), NONE);
    assert_eq!(group.validate_offset_fetch("a", 7), STALE_MEMBER_EPOCH);
}

#[test]
fn the_range_assignor_is_used_when_members_ask_for_it() {
    let mut group = ConsumerGroup::new("g", config());
    for name in ["a", "b"] {
        let request = HeartbeatRequest {
            server_assignor: Some("range".to_string()),
            subscribed_topic_names: Some(vec!["orders".to_string(), "payments".to_string()]),
            ..join_request(name)
        };
        assert_eq!(heartbeat(&mut group, request, 0).error_code, NONE);
    }
    let description = group.describe();
    assert_eq!(description.assignor_name, "range");
    let targets: Vec<_> = description
        .members
        .iter()
        .map(|m| m.target_assignment.clone())
        .collect();
    assert_eq!(
        targets,
        vec![
            vec![(ORDERS, vec![0, 1, 2]), (PAYMENTS, vec![0, 1])],
            vec![(ORDERS, vec![3, 4, 5]), (PAYMENTS, vec![2])],
        ]
    );
}

#[test]
fn the_assignment_is_sent_only_when_it_changed_or_the_request_is_full() {
    let (mut group, mut clients) = stable_group(&["a"]);
    assert_eq!(clients[0].beat(&mut group, 1_000).assignment, None);
    let full = HeartbeatRequest {
        rebalance_timeout_ms: REBALANCE_MS,
        subscribed_topic_names: Some(vec!["orders".to_string()]),
        ..beat_request("a", clients[0].epoch, &clients[0].owned)
    };
    let response = heartbeat(&mut group, full, 1_000);
    assert_eq!(orders(&response), Some(set(0..6)));
}

#[test]
fn more_partitions_bump_the_group_epoch_and_reach_the_members() {
    let (mut group, mut clients) = stable_group(&["a"]);
    let epoch = group.group_epoch();
    assert!(!group.topics_changed(&topics()));
    let grown: TopicMetadata = [("orders".to_string(), (ORDERS, 8))].into();
    assert!(group.topics_changed(&grown));
    assert_eq!(group.group_epoch(), epoch + 1);
    let request = beat_request("a", clients[0].epoch, &clients[0].owned);
    let response = group.heartbeat(request, &grown, 0, || unreachable!());
    assert_eq!(response.member_epoch, epoch + 1);
    assert_eq!(orders(&response), Some(set(0..8)));
    // Heartbeats read the metadata too: back in a 6-partition view, partitions 6 and 7 must be given up.
    let (a, epoch) = (&mut clients[0], epoch + 1);
    (a.epoch, a.owned) = (epoch, set(0..8));
    let response = a.beat(&mut group, 0);
    assert_eq!(group.group_epoch(), epoch + 1);
    assert_eq!(
        (response.member_epoch, orders(&response)),
        (epoch, Some(set(0..6)))
    );
    assert_eq!(a.beat(&mut group, 0).member_epoch, epoch + 1);
}

#[test]
fn a_subscription_change_bumps_the_epoch_and_revokes_the_dropped_topic() {
    let mut group = ConsumerGroup::new("g", config());
    let both = Some(vec!["orders".to_string(), "payments".to_string()]);
    let mut joined = Vec::new();
    for name in ["a", "b"] {
        let request = HeartbeatRequest {
            subscribed_topic_names: both.clone(),
            ..join_request(name)
        };
        joined.push(heartbeat(&mut group, request, 0));
    }
    assert_eq!(
        joined[0].assignment.as_ref().map(Vec::len),
        Some(2),
        "a has both"
    );
    // b still subscribes to payments, so only a's own subscription change can bump the epoch.
    let narrower = HeartbeatRequest {
        subscribed_topic_names: Some(vec!["orders".to_string()]),
        owned_partitions: joined[0].assignment.clone(),
        ..beat_request("a", joined[0].member_epoch, &BTreeSet::new())
    };
    let response = heartbeat(&mut group, narrower, 1_000);
    assert_eq!(group.group_epoch(), 3);
    assert_eq!(response.member_epoch, 1, "revocation first");
    let kept = response.assignment.unwrap_or_default();
    assert!(
        kept.iter().all(|(topic_id, _)| *topic_id == ORDERS),
        "{kept:?}"
    );
    let a = &group.describe().members[0];
    assert!(a
        .target_assignment
        .iter()
        .all(|(topic_id, _)| *topic_id == ORDERS));
    assert_eq!(a.subscribed_topic_names, vec!["orders".to_string()]);
}

#[test]
fn describe_reports_members_and_epochs() {
    let mut group = ConsumerGroup::new("g", config());
    let request = HeartbeatRequest {
        rack_id: Some("rack-1".to_string()),
        subscribed_topic_names: Some(vec!["payments".to_string(), "orders".to_string()]),
        ..static_join("a", "instance-1")
    };
    assert_eq!(heartbeat(&mut group, request, 0).error_code, NONE);
    let description = group.describe();
    assert_eq!(description.state.kafka_name(), "Stable");
    assert_eq!(
        (description.group_epoch, description.assignment_epoch),
        (1, 1)
    );
    assert_eq!(description.assignor_name, "uniform");
    let everything = vec![(ORDERS, (0..6).collect()), (PAYMENTS, (0..3).collect())];
    let expected = MemberDescription {
        member_id: "a".to_string(),
        instance_id: Some("instance-1".to_string()),
        rack_id: Some("rack-1".to_string()),
        member_epoch: 1,
        client_id: "client-a".to_string(),
        client_host: "/127.0.0.1".to_string(),
        subscribed_topic_names: vec!["orders".to_string(), "payments".to_string()],
        subscribed_topic_regex: None,
        assignment: everything.clone(),
        target_assignment: everything,
    };
    assert_eq!(description.members, vec![expected]);
}
