use super::*;

const LIMITS: GroupLimits = GroupLimits {
    min_session_timeout_ms: 1_000,
    max_session_timeout_ms: 60_000,
    initial_rebalance_delay_ms: 3_000,
    max_size: 100,
};

fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        client_id: "client".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 20_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), format!("meta-{member_id}-{p}").into_bytes()))
            .collect(),
        require_known_member_id: true,
        group_instance_id: None,
        client_host: "/127.0.0.1".into(),
    }
}

/// First join (MEMBER_ID_REQUIRED) and the rejoin with the id; returns the id.
fn join_new(
    group: &mut ClassicGroup,
    name: &str,
    protocols: &[&str],
    now: i64,
) -> (String, Vec<Reply>) {
    let (outcome, replies) = group.join(request("", protocols), now, || name.to_string());
    assert!(replies.is_empty());
    let JoinOutcome::Immediate(response) = outcome else {
        panic!("first join must answer at once")
    };
    assert_eq!(
        (response.error_code, response.member_id.as_str()),
        (MEMBER_ID_REQUIRED, name)
    );
    let (outcome, replies) = group.join(request(name, protocols), now, || unreachable!());
    assert_eq!(
        outcome,
        JoinOutcome::Pending {
            member_id: name.to_string()
        }
    );
    (name.to_string(), replies)
}

fn join_replies(replies: &[Reply]) -> BTreeMap<String, JoinResponse> {
    replies
        .iter()
        .filter_map(|r| match r {
            Reply::Join {
                member_id,
                response,
            } => Some((member_id.clone(), response.clone())),
            _ => None,
        })
        .collect()
}

/// A stable group of the given members, formed at time 0; returns (group, generation).
fn stable_group(names: &[&str]) -> ClassicGroup {
    let mut g = ClassicGroup::new("g", LIMITS);
    for name in names {
        join_new(&mut g, name, &["range"], 0);
    }
    let replies = g.tick(LIMITS.initial_rebalance_delay_ms);
    assert_eq!(join_replies(&replies).len(), names.len());
    let leader = g.leader().expect("leader").to_string();
    let assignments = names
        .iter()
        .map(|n| (n.to_string(), format!("assign-{n}").into_bytes()))
        .collect();
    let (outcome, _) = g.sync(
        &leader,
        None,
        g.generation_id(),
        Some("consumer"),
        Some("range"),
        assignments,
        3_000,
    );
    assert!(matches!(
        outcome,
        SyncOutcome::Immediate {
            error_code: NONE,
            ..
        }
    ));
    assert_eq!(g.state(), GroupState::Stable);
    g
}

#[test]
fn first_generation_waits_for_the_initial_delay_then_answers_everyone() {
    let mut g = ClassicGroup::new("g", LIMITS);
    let (a, replies) = join_new(&mut g, "a", &["range"], 0);
    assert!(replies.is_empty(), "initial delay: no answer yet");
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let (_b, replies) = join_new(&mut g, "b", &["range"], 1_000);
    assert!(replies.is_empty());
    // b's arrival extends the delay (Kafka's InitialDelayedJoin): from 3,000 to 4,000.
    assert!(g.tick(3_999).is_empty());
    let replies = join_replies(&g.tick(4_000));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.generation_id(), 1);
    let leader = g.leader().expect("leader").to_string();
    assert_eq!(leader, a, "the first member leads");
    assert_eq!(
        replies[&leader].members.len(),
        2,
        "the leader gets the members"
    );
    assert_eq!(replies[&leader].members[0].2, b"meta-a-range".to_vec());
    assert!(replies["b"].members.is_empty(), "followers do not");
    assert_eq!(replies["b"].protocol_name.as_deref(), Some("range"));
}

#[test]
fn followers_wait_for_the_leaders_assignment_and_missing_ones_are_empty() {
    let mut g = ClassicGroup::new("g", LIMITS);
    join_new(&mut g, "a", &["range"], 0);
    join_new(&mut g, "b", &["range"], 0);
    join_new(&mut g, "c", &["range"], 0);
    g.tick(3_000);
    let generation = g.generation_id();
    let (outcome, replies) = g.sync(
        "b",
        None,
        generation,
        Some("consumer"),
        Some("range"),
        vec![],
        3_100,
    );
    assert_eq!((outcome, replies.len()), (SyncOutcome::Pending, 0));
    let (outcome, replies) = g.sync(
        "a",
        None,
        generation,
        Some("consumer"),
        Some("range"),
        vec![("a".into(), b"A".to_vec()), ("b".into(), b"B".to_vec())],
        3_200,
    );
    assert_eq!(
        outcome,
        SyncOutcome::Immediate {
            error_code: NONE,
            assignment: b"A".to_vec()
        }
    );
    assert_eq!(
        replies,
        vec![Reply::Sync {
            member_id: "b".into(),
            error_code: NONE,
            assignment: b"B".to_vec()
        }]
    );
    assert_eq!(g.state(), GroupState::Stable);
    // c was not given anything: a valid, empty assignment.
    let (outcome, _) = g.sync("c", None, generation, None, None, vec![], 3_300);
    assert_eq!(
        outcome,
        SyncOutcome::Immediate {
            error_code: NONE,
            assignment: vec![]
        }
    );
}

#[test]
fn a_new_member_triggers_a_rebalance_that_completes_when_everyone_rejoined() {
    let mut g = stable_group(&["a", "b"]);
    let (_, replies) = join_new(&mut g, "c", &["range"], 5_000);
    assert!(replies.is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat("a", None, 1, 5_100),
        REBALANCE_IN_PROGRESS,
        "members learn to rejoin from heartbeats"
    );
    let (outcome, replies) = g.join(request("a", &["range"]), 5_200, || unreachable!());
    assert_eq!(
        (outcome, replies.len()),
        (
            JoinOutcome::Pending {
                member_id: "a".into()
            },
            0
        ),
        "b has not rejoined yet"
    );
    let (_, replies) = g.join(request("b", &["range"]), 5_300, || unreachable!());
    let replies = join_replies(&replies);
    assert_eq!(
        replies.len(),
        3,
        "no initial delay after the first generation"
    );
    assert_eq!(g.generation_id(), 2);
    assert_eq!(g.leader(), Some("a"), "the leader keeps leading");
}

#[test]
fn members_that_do_not_rejoin_in_time_are_dropped() {
    let mut g = stable_group(&["a", "b"]);
    g.leave(&[("nobody".to_string(), None)], 4_000);
    join_new(&mut g, "c", &["range"], 5_000);
    g.join(request("a", &["range"]), 5_100, || unreachable!());
    // b keeps heartbeating but never rejoins: at the rebalance deadline (max rebalance timeout, 20 s) the phase
    // completes without it.
    for now in [12_000, 20_000] {
        assert_eq!(g.heartbeat("b", None, 1, now), REBALANCE_IN_PROGRESS);
        assert!(join_replies(&g.tick(now)).is_empty());
    }
    assert!(join_replies(&g.tick(24_999)).is_empty());
    let replies = join_replies(&g.tick(25_000));
    assert_eq!(
        replies.keys().cloned().collect::<Vec<_>>(),
        vec!["a".to_string(), "c".to_string()]
    );
    assert_eq!(
        g.heartbeat("b", None, g.generation_id(), 25_001),
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn an_expired_session_causes_a_rebalance() {
    let mut g = stable_group(&["a", "b"]);
    assert_eq!(g.heartbeat("a", None, 1, 12_000), NONE);
    // b's last heartbeat was its sync at 3,000; its 10 s session runs out at 13,000.
    assert!(g.tick(12_999).is_empty());
    g.tick(13_000);
    assert_eq!(g.member_ids().collect::<Vec<_>>(), vec!["a"]);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let (_, replies) = g.join(request("a", &["range"]), 13_100, || unreachable!());
    assert_eq!(join_replies(&replies).len(), 1);
    assert_eq!(g.generation_id(), 2);
}

/// A member that died without leaving (b: no heartbeat since its sync at 3,000, 10 s session) must not hold up
/// the join phase a new member starts: it is removed at its session timeout, and the join completes then with
/// the members that rejoined, long before the 20 s rebalance deadline.
#[test]
fn a_dead_member_is_removed_at_its_session_timeout_while_the_group_prepares_a_rebalance() {
    let mut g = stable_group(&["a", "b"]);
    join_new(&mut g, "c", &["range"], 5_000);
    assert_eq!(g.heartbeat("a", None, 1, 5_100), REBALANCE_IN_PROGRESS);
    g.join(request("a", &["range"]), 5_200, || unreachable!());
    assert!(
        join_replies(&g.tick(12_999)).is_empty(),
        "b's session lasts until 13,000"
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let replies = join_replies(&g.tick(13_000));
    assert_eq!(
        replies.keys().cloned().collect::<Vec<_>>(),
        vec!["a".to_string(), "c".to_string()],
        "the join completes without b at b's session timeout"
    );
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.generation_id(), 2);
    assert_eq!(g.heartbeat("b", None, 2, 13_001), UNKNOWN_MEMBER_ID);
}

/// The same for a static member: Kafka removes static members at their session timeout too, and the instance
/// id is free again afterwards.
#[test]
fn a_dead_static_member_is_removed_at_its_session_timeout_while_the_group_prepares_a_rebalance() {
    let (mut g, m1, m2) = stable_static_group();
    let (_, replies) = g.join(static_request("", "i3"), 5_000, || "m3".into());
    assert!(replies.is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    g.join(static_request(&m1, "i1"), 5_100, || unreachable!());
    assert!(join_replies(&g.tick(12_999)).is_empty());
    let replies = join_replies(&g.tick(13_000));
    assert_eq!(
        replies.keys().cloned().collect::<Vec<_>>(),
        vec![m1.clone(), "m3".to_string()]
    );
    assert!(!g.member_ids().any(|id| id == m2));
    let (outcome, _) = g.join(static_request("", "i2"), 13_100, || "m2-new".into());
    assert_eq!(
        outcome,
        JoinOutcome::Pending {
            member_id: "m2-new".into()
        },
        "i2 is free for a new member"
    );
}

#[test]
fn leaving_rebalances_and_the_last_one_out_empties_the_group() {
    let mut g = stable_group(&["a", "b"]);
    let (results, _) = g.leave(&[("b".to_string(), None), ("zz".to_string(), None)], 4_000);
    assert_eq!(results, vec![NONE, UNKNOWN_MEMBER_ID]);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    g.leave(&[("a".to_string(), None)], 4_100);
    assert_eq!(g.state(), GroupState::Empty);
    assert!(g.delete().is_ok());
    assert_eq!(g.state(), GroupState::Dead);
    let (outcome, _) = g.join(request("", &["range"]), 5_000, || "x".into());
    assert!(matches!(
        outcome,
        JoinOutcome::Immediate(JoinResponse {
            error_code: COORDINATOR_NOT_AVAILABLE,
            ..
        })
    ));
}

#[test]
fn fencing_errors() {
    let mut g = stable_group(&["a", "b"]);
    assert_eq!(g.heartbeat("a", None, 0, 4_000), ILLEGAL_GENERATION);
    assert_eq!(g.heartbeat("ghost", None, 1, 4_000), UNKNOWN_MEMBER_ID);
    let (outcome, _) = g.sync("a", None, 7, None, None, vec![], 4_000);
    assert_eq!(
        outcome,
        SyncOutcome::Immediate {
            error_code: ILLEGAL_GENERATION,
            assignment: vec![]
        }
    );
    let (outcome, _) = g.sync("a", None, 1, Some("connect"), None, vec![], 4_000);
    assert_eq!(
        outcome,
        SyncOutcome::Immediate {
            error_code: INCONSISTENT_GROUP_PROTOCOL,
            assignment: vec![]
        }
    );
    let (outcome, _) = g.join(
        request("never-issued", &["range"]),
        4_000,
        || unreachable!(),
    );
    assert!(matches!(
        outcome,
        JoinOutcome::Immediate(JoinResponse {
            error_code: UNKNOWN_MEMBER_ID,
            ..
        })
    ));
    let (outcome, _) = g.join(request("", &["sticky"]), 4_000, || "new".into());
    assert!(matches!(
        outcome,
        JoinOutcome::Immediate(JoinResponse {
            error_code: INCONSISTENT_GROUP_PROTOCOL,
            ..
        })
    ));
    let mut short = request("", &["range"]);
    short.session_timeout_ms = 10;
    let (outcome, _) = g.join(short, 4_000, || "new".into());
    assert!(matches!(
        outcome,
        JoinOutcome::Immediate(JoinResponse {
            error_code: INVALID_SESSION_TIMEOUT,
            ..
        })
    ));
}

#[test]
fn protocol_chosen_is_supported_by_all_with_most_votes() {
    let mut g = ClassicGroup::new("g", LIMITS);
    join_new(&mut g, "a", &["range", "roundrobin"], 0);
    join_new(&mut g, "b", &["roundrobin", "range", "sticky"], 0);
    join_new(&mut g, "c", &["roundrobin", "range"], 0);
    g.tick(3_000);
    assert_eq!(g.protocol_name(), Some("roundrobin"));
}

#[test]
fn a_follower_waiting_for_its_assignment_is_told_to_rejoin_when_membership_changes() {
    let mut g = ClassicGroup::new("g", LIMITS);
    join_new(&mut g, "a", &["range"], 0);
    join_new(&mut g, "b", &["range"], 0);
    g.tick(3_000);
    let (outcome, _) = g.sync("b", None, 1, None, None, vec![], 3_100);
    assert_eq!(outcome, SyncOutcome::Pending);
    let (_, replies) = join_new(&mut g, "c", &["range"], 3_200);
    assert_eq!(
        replies,
        vec![Reply::Sync {
            member_id: "b".into(),
            error_code: REBALANCE_IN_PROGRESS,
            assignment: vec![]
        }]
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn a_stable_follower_rejoining_unchanged_gets_the_current_generation() {
    let mut g = stable_group(&["a", "b"]);
    let (outcome, replies) = g.join(request("b", &["range"]), 4_000, || unreachable!());
    assert!(replies.is_empty());
    let JoinOutcome::Immediate(response) = outcome else {
        panic!("answered at once")
    };
    assert_eq!(
        (
            response.error_code,
            response.generation_id,
            response.leader.as_str()
        ),
        (NONE, 1, "a")
    );
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn pending_member_ids_lapse() {
    let mut g = ClassicGroup::new("g", LIMITS);
    let (outcome, _) = g.join(request("", &["range"]), 0, || "late".into());
    assert!(matches!(
        outcome,
        JoinOutcome::Immediate(JoinResponse {
            error_code: MEMBER_ID_REQUIRED,
            ..
        })
    ));
    g.tick(10_000);
    let (outcome, _) = g.join(request("late", &["range"]), 10_001, || unreachable!());
    assert!(matches!(
        outcome,
        JoinOutcome::Immediate(JoinResponse {
            error_code: UNKNOWN_MEMBER_ID,
            ..
        })
    ));
}

fn static_request(member_id: &str, instance: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.to_string()),
        ..request(member_id, &["range"])
    }
}

/// A stable group of two static members "i1" and "i2"; returns (group, member ids).
fn stable_static_group() -> (ClassicGroup, String, String) {
    let mut g = ClassicGroup::new("g", LIMITS);
    let (o1, _) = g.join(static_request("", "i1"), 0, || "m1".into());
    let (o2, _) = g.join(static_request("", "i2"), 0, || "m2".into());
    assert_eq!(
        (o1, o2),
        (
            JoinOutcome::Pending {
                member_id: "m1".into()
            },
            JoinOutcome::Pending {
                member_id: "m2".into()
            }
        ),
        "static members skip MEMBER_ID_REQUIRED"
    );
    assert_eq!(join_replies(&g.tick(3_000)).len(), 2);
    let assignments = vec![
        ("m1".to_string(), b"p0".to_vec()),
        ("m2".to_string(), b"p1".to_vec()),
    ];
    let leader = g.leader().expect("leader").to_string();
    g.sync(
        &leader,
        Some(if leader == "m1" { "i1" } else { "i2" }),
        1,
        None,
        None,
        assignments,
        3_000,
    );
    assert_eq!(g.state(), GroupState::Stable);
    (g, "m1".into(), "m2".into())
}

#[test]
fn restarted_static_member_takes_over_without_a_rebalance() {
    let (mut g, _m1, m2) = stable_static_group();
    let generation = g.generation_id();
    let (outcome, replies) = g.join(static_request("", "i2"), 4_000, || "m2-new".into());
    assert!(replies.is_empty());
    let JoinOutcome::Immediate(response) = outcome else {
        panic!("a stable group answers a known static member at once")
    };
    assert_eq!(
        (
            response.error_code,
            response.generation_id,
            response.member_id.as_str()
        ),
        (NONE, generation, "m2-new")
    );
    assert_eq!(g.state(), GroupState::Stable);
    let (sync, _) = g.sync("m2-new", Some("i2"), generation, None, None, vec![], 4_100);
    assert_eq!(
        sync,
        SyncOutcome::Immediate {
            error_code: NONE,
            assignment: b"p1".to_vec()
        },
        "the assignment moves with the instance id"
    );
    assert_eq!(
        g.heartbeat(&m2, Some("i2"), generation, 4_200),
        FENCED_INSTANCE_ID
    );
    assert_eq!(g.heartbeat(&m2, None, generation, 4_200), UNKNOWN_MEMBER_ID);
    let (outcome, _) = g.join(static_request(&m2, "i2"), 4_300, || unreachable!());
    let JoinOutcome::Immediate(response) = outcome else {
        panic!("fenced")
    };
    assert_eq!(response.error_code, FENCED_INSTANCE_ID);
}

#[test]
fn static_member_leave_by_instance_id_rebalances_and_forgets_it() {
    let (mut g, m1, _m2) = stable_static_group();
    let (results, _) = g.leave(&[(String::new(), Some("i2".into()))], 5_000);
    assert_eq!(results, vec![NONE]);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.member_ids().collect::<Vec<_>>(), vec![m1.as_str()]);
    let (results, _) = g.leave(&[("m1".into(), Some("i2".into()))], 5_000);
    assert_eq!(results, vec![UNKNOWN_MEMBER_ID], "i2 is gone");
}

#[test]
fn snapshot_restores_a_stable_group() {
    let (g, m1, m2) = stable_static_group();
    let snapshot = g.snapshot(3_500);
    let encoded = crate::group_metadata::encode_value(&snapshot);
    let decoded = crate::group_metadata::decode_value(&encoded).expect("decodes");
    let mut restored = ClassicGroup::restore("g", decoded, LIMITS, 10_000);
    assert_eq!(restored.state(), GroupState::Stable);
    assert_eq!(restored.generation_id(), g.generation_id());
    assert_eq!(restored.leader(), g.leader());
    assert_eq!(restored.protocol_name(), Some("range"));
    assert_eq!(restored.describe(), g.describe());
    let generation = g.generation_id();
    assert_eq!(
        restored.heartbeat(&m1, Some("i1"), generation, 10_100),
        NONE
    );
    assert_eq!(
        restored.heartbeat(&m2, Some("i1"), generation, 10_100),
        FENCED_INSTANCE_ID
    );
    // A member that never comes back expires a session after the restart.
    let replies = restored.tick(10_000 + 10_000);
    assert!(replies.is_empty());
    assert_eq!(restored.state(), GroupState::PreparingRebalance);
}

#[test]
fn offset_commit_checks_membership_and_generation() {
    let mut empty = ClassicGroup::new("g", LIMITS);
    assert_eq!(
        empty.validate_offset_commit("", None, -1),
        NONE,
        "admin commit"
    );
    let (g, m1, _) = stable_static_group();
    let generation = g.generation_id();
    assert_eq!(g.validate_offset_commit(&m1, Some("i1"), generation), NONE);
    assert_eq!(g.validate_offset_commit(&m1, None, generation), NONE);
    assert_eq!(
        g.validate_offset_commit(&m1, None, generation - 1),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        g.validate_offset_commit("nobody", None, generation),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        g.validate_offset_commit("", None, -1),
        UNKNOWN_MEMBER_ID,
        "a non-member cannot commit for a live group"
    );
    assert_eq!(
        g.validate_offset_commit(&m1, Some("i2"), generation),
        FENCED_INSTANCE_ID
    );
    empty.delete().expect("empty group deletes");
    assert_eq!(
        empty.validate_offset_commit("", None, -1),
        COORDINATOR_NOT_AVAILABLE
    );
}
