use super::*;

fn topic_id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Topics "t1", "t2", ... with the given partition counts; "tN" has id N.
fn topics(counts: &[i32]) -> TopicMetadata {
    (1..)
        .zip(counts)
        .map(|(n, count)| (format!("t{n}"), (topic_id(n), *count)))
        .collect()
}

fn members(spec: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    spec.iter()
        .map(|(id, names)| {
            let names = names.iter().map(|n| n.to_string()).collect();
            (id.to_string(), names)
        })
        .collect()
}

fn partitions_of(assignment: &Assignment) -> BTreeSet<(Uuid, i32)> {
    assignment
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
        .collect()
}

/// Asserts no partition is given twice and returns every assigned partition.
fn assert_disjoint(result: &BTreeMap<String, Assignment>) -> BTreeSet<(Uuid, i32)> {
    let mut seen = BTreeSet::new();
    for (member_id, assignment) in result {
        for tp in partitions_of(assignment) {
            assert!(seen.insert(tp), "{tp:?} given twice (again to {member_id})");
        }
    }
    seen
}

fn all_partitions(topics: &TopicMetadata) -> BTreeSet<(Uuid, i32)> {
    topics
        .values()
        .flat_map(|(t, count)| (0..*count).map(move |p| (*t, p)))
        .collect()
}

fn loads(result: &BTreeMap<String, Assignment>) -> Vec<usize> {
    result.values().map(partition_count).collect()
}

fn assert_balanced(result: &BTreeMap<String, Assignment>) {
    let loads = loads(result);
    let (min, max) = (loads.iter().min(), loads.iter().max());
    assert!(
        matches!((min, max), (Some(min), Some(max)) if max - min <= 1),
        "unbalanced loads {loads:?}"
    );
}

#[test]
fn names_round_trip_and_unknown_names_are_rejected() {
    for kind in AssignorKind::ALL {
        assert_eq!(kind.name().parse::<AssignorKind>(), Ok(kind));
    }
    assert_eq!(AssignorKind::default(), AssignorKind::Uniform);
    assert_eq!(
        "sticky".parse::<AssignorKind>(),
        Err(UnsupportedAssignor("sticky".into()))
    );
}

#[test]
fn uniform_is_disjoint_complete_and_balanced() {
    let topics = topics(&[7, 5, 1]);
    let names: &[&str] = &["t1", "t2", "t3"];
    let group = members(&[("a", names), ("b", names), ("c", names), ("d", names)]);
    let result = AssignorKind::Uniform.assign(&group, &topics, &BTreeMap::new());
    assert_eq!(result.len(), 4, "every member appears");
    assert_eq!(assert_disjoint(&result), all_partitions(&topics));
    assert_balanced(&result);
}

#[test]
fn unknown_topics_are_ignored_and_unsubscribed_topics_unassigned() {
    let topics = topics(&[3, 4]);
    let group = members(&[("a", &["t1", "missing"]), ("b", &["missing"])]);
    for kind in AssignorKind::ALL {
        let result = kind.assign(&group, &topics, &BTreeMap::new());
        assert_eq!(result["a"].keys().collect::<Vec<_>>(), vec![&topic_id(1)]);
        assert_eq!(partition_count(&result["a"]), 3, "{kind}");
        assert!(result["b"].is_empty(), "{kind}");
    }
}

#[test]
fn uniform_keeps_previous_partitions_when_nothing_changed() {
    let topics = topics(&[6]);
    let group = members(&[("a", &["t1"]), ("b", &["t1"])]);
    // A deliberately non-round-robin previous target that is already balanced.
    let previous: BTreeMap<String, Assignment> = [
        ("a".to_string(), [(topic_id(1), [0, 1, 5].into())].into()),
        ("b".to_string(), [(topic_id(1), [2, 3, 4].into())].into()),
    ]
    .into();
    let result = AssignorKind::Uniform.assign(&group, &topics, &previous);
    assert_eq!(result, previous);
}

#[test]
fn uniform_joining_member_takes_only_from_others_moving_the_minimum() {
    let topics = topics(&[10, 3]);
    let names: &[&str] = &["t1", "t2"];
    let before = members(&[("a", names), ("b", names)]);
    let first = AssignorKind::Uniform.assign(&before, &topics, &BTreeMap::new());
    let after = members(&[("a", names), ("b", names), ("c", names)]);
    let second = AssignorKind::Uniform.assign(&after, &topics, &first);
    assert_eq!(assert_disjoint(&second), all_partitions(&topics));
    assert_balanced(&second);
    for member in ["a", "b"] {
        let kept = partitions_of(&second[member]);
        assert!(
            kept.is_subset(&partitions_of(&first[member])),
            "{member} gained partitions from someone else"
        );
    }
    // 13 partitions over 3 members: c's share is 4, and exactly those 4 moved.
    assert_eq!(partition_count(&second["c"]), 4);
    let moved: usize = ["a", "b"]
        .iter()
        .map(|m| partition_count(&first[*m]) - partition_count(&second[*m]))
        .sum();
    assert_eq!(moved, 4);
}

#[test]
fn uniform_leaving_member_partitions_go_to_the_others_only() {
    let topics = topics(&[9]);
    let names: &[&str] = &["t1"];
    let before = members(&[("a", names), ("b", names), ("c", names)]);
    let first = AssignorKind::Uniform.assign(&before, &topics, &BTreeMap::new());
    let after = members(&[("a", names), ("c", names)]);
    let second = AssignorKind::Uniform.assign(&after, &topics, &first);
    assert_eq!(assert_disjoint(&second), all_partitions(&topics));
    assert_balanced(&second);
    for member in ["a", "c"] {
        assert!(partitions_of(&first[member]).is_subset(&partitions_of(&second[member])));
    }
}

#[test]
fn uniform_drops_partitions_of_unsubscribed_or_shrunk_topics() {
    let group = members(&[("a", &["t1"])]);
    let previous: BTreeMap<String, Assignment> = [(
        "a".to_string(),
        [(topic_id(1), [0, 1, 7].into()), (topic_id(2), [0].into())].into(),
    )]
    .into();
    let result = AssignorKind::Uniform.assign(&group, &topics(&[2, 1]), &previous);
    let expected: Assignment = [(topic_id(1), [0, 1].into())].into();
    assert_eq!(result["a"], expected);
}

#[test]
fn uniform_with_different_subscriptions_covers_everything_subscribed() {
    let topics = topics(&[4, 4]);
    let group = members(&[("a", &["t1"]), ("b", &["t1", "t2"]), ("c", &["t2"])]);
    let result = AssignorKind::Uniform.assign(&group, &topics, &BTreeMap::new());
    assert_eq!(assert_disjoint(&result), all_partitions(&topics));
    assert!(!result["a"].contains_key(&topic_id(2)));
    assert!(!result["c"].contains_key(&topic_id(1)));
    // 8 partitions, 3 members: b can take from either side, so the loads even out.
    assert_balanced(&result);
}

#[test]
fn range_gives_contiguous_ranges_per_topic_extra_to_the_first_members() {
    let topics = topics(&[7, 2]);
    let names: &[&str] = &["t1", "t2"];
    let group = members(&[("c", names), ("a", names), ("b", names)]);
    let result = AssignorKind::Range.assign(&group, &topics, &BTreeMap::new());
    let expect = |t1: &[i32], t2: &[i32]| -> Assignment {
        let mut assignment = Assignment::new();
        for (topic, partitions) in [(1, t1), (2, t2)] {
            if !partitions.is_empty() {
                assignment.insert(topic_id(topic), partitions.iter().copied().collect());
            }
        }
        assignment
    };
    assert_eq!(result["a"], expect(&[0, 1, 2], &[0]));
    assert_eq!(result["b"], expect(&[3, 4], &[1]));
    assert_eq!(result["c"], expect(&[5, 6], &[]));
}

#[test]
fn range_only_counts_subscribers_of_each_topic() {
    let topics = topics(&[4, 4]);
    let group = members(&[("a", &["t1", "t2"]), ("b", &["t2"])]);
    let result = AssignorKind::Range.assign(&group, &topics, &BTreeMap::new());
    assert_eq!(assert_disjoint(&result), all_partitions(&topics));
    assert_eq!(result["a"][&topic_id(1)], (0..4).collect());
    assert_eq!(result["a"][&topic_id(2)], [0, 1].into());
    assert_eq!(result["b"][&topic_id(2)], [2, 3].into());
}
