//! The checker: what the final log must say given what the producer was told and what consumers read.
//!
//! Per partition:
//! - every acknowledged record is in the log exactly once, at the offset it was acknowledged at;
//! - acknowledged records are in the log in the order they were sent (one producer, idempotent);
//! - every record a consumer read is in the log at the offset it was read at, unchanged: nothing a consumer
//!   saw later disappeared or changed, and no offset ever had two contents.

use super::workload::{value_of, Ack, Read};
use std::collections::BTreeMap;

/// What went wrong; empty lists mean the run kept every promise.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Acknowledged records not in the log.
    pub lost: Vec<String>,
    /// Acknowledged records in the log, but elsewhere than acknowledged.
    pub moved: Vec<String>,
    /// Values at more than one offset.
    pub duplicates: Vec<String>,
    /// Acknowledged records out of send order in their partition.
    pub reordered: Vec<String>,
    /// Records a consumer read that the final log does not hold (at that offset, with that value).
    pub unstable_reads: Vec<String>,
    pub acknowledged: usize,
    pub reads_checked: usize,
}

impl Verdict {
    pub fn holds(&self) -> bool {
        self.lost.is_empty()
            && self.moved.is_empty()
            && self.duplicates.is_empty()
            && self.reordered.is_empty()
            && self.unstable_reads.is_empty()
    }
}

pub fn check(acks: &[Ack], consumers: &[(&str, Vec<Read>)], log: &[Read]) -> Verdict {
    let mut verdict = Verdict {
        acknowledged: acks.len(),
        ..Verdict::default()
    };
    let mut at: BTreeMap<(i32, i64), &str> = BTreeMap::new();
    let mut where_is: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for r in log {
        if let Some(other) = at.insert((r.partition, r.offset), &r.value) {
            verdict.duplicates.push(format!(
                "offset {}/{} read twice by the final reader: {other} and {}",
                r.partition, r.offset, r.value
            ));
        }
        where_is
            .entry(&r.value)
            .or_default()
            .push((r.partition, r.offset));
    }
    for (value, places) in &where_is {
        if places.len() > 1 {
            verdict.duplicates.push(format!("{value} at {places:?}"));
        }
    }
    for ack in acks {
        let value = value_of(ack.seq);
        match at.get(&(ack.partition, ack.offset)) {
            Some(v) if *v == value => {}
            _ => match where_is.get(value.as_str()) {
                Some(places) => verdict.moved.push(format!(
                    "{value} acknowledged at {}/{}, found at {places:?}",
                    ack.partition, ack.offset
                )),
                None => verdict.lost.push(format!(
                    "{value} acknowledged at {}/{}",
                    ack.partition, ack.offset
                )),
            },
        }
    }
    let mut by_partition: BTreeMap<i32, Vec<&Ack>> = BTreeMap::new();
    for ack in acks {
        by_partition.entry(ack.partition).or_default().push(ack);
    }
    for (partition, mut list) in by_partition {
        list.sort_by_key(|a| a.offset);
        for pair in list.windows(2) {
            if pair[0].seq > pair[1].seq {
                verdict.reordered.push(format!(
                    "partition {partition}: record {} at {} before record {} at {}",
                    pair[0].seq, pair[0].offset, pair[1].seq, pair[1].offset
                ));
            }
        }
    }
    for (name, reads) in consumers {
        for r in reads {
            verdict.reads_checked += 1;
            match at.get(&(r.partition, r.offset)) {
                Some(v) if *v == r.value => {}
                found => verdict.unstable_reads.push(format!(
                    "{name} read {} at {}/{}; the log has {found:?}",
                    r.value, r.partition, r.offset
                )),
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn ack(seq: u64, partition: i32, offset: i64) -> Ack {
        Ack {
            seq,
            partition,
            offset,
            at: Instant::now(),
        }
    }

    fn read(partition: i32, offset: i64, seq: u64) -> Read {
        Read {
            partition,
            offset,
            value: value_of(seq),
        }
    }

    #[test]
    fn the_checker_finds_each_kind_of_violation() {
        let log = vec![
            read(0, 0, 0),
            read(0, 1, 2),
            read(0, 2, 1),
            read(0, 3, 3),
            read(1, 0, 3),
        ];
        let acks = vec![
            ack(0, 0, 0),
            ack(1, 0, 2),
            ack(2, 0, 1),
            ack(4, 0, 4),
            ack(5, 1, 5),
        ];
        let consumers = vec![("c", vec![read(0, 0, 0), read(1, 1, 9)])];
        let v = check(&acks, &consumers, &log);
        assert_eq!(v.lost.len(), 2, "{v:?}");
        assert_eq!(v.reordered.len(), 1, "{v:?}");
        assert_eq!(v.duplicates.len(), 1, "value 3 twice: {v:?}");
        assert_eq!(v.unstable_reads.len(), 1, "{v:?}");
        assert!(!v.holds());
        let clean = check(&acks[..1], &[("c", vec![read(0, 0, 0)])], &log[..1]);
        assert!(clean.holds(), "{clean:?}");
    }
}
