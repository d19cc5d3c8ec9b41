//! Where a new partition's replicas go: Kafka's striped placement over the live brokers (registered and not
//! fenced), rack-aware when brokers name their racks.
//!
//! ```text
//!   brokers sorted by id (or, with racks, alternating between racks), a random start:
//!   partition p: first replica (the leader) = brokers[(start + p) % n]
//!                the others follow it, shifted by 1 + (p / n) % (n - 1), so leaders and followers spread
//! ```

use ferrite_metadata::MetadataImage;
use ferrite_replication::NodeId;

/// Replicas for partitions `first..first + count`, first replica first; the reason when impossible.
pub fn place_replicas(
    image: &MetadataImage,
    first: i32,
    count: i32,
    replication: i16,
    seed: u64,
) -> Result<Vec<Vec<NodeId>>, String> {
    let brokers = ordered_brokers(image);
    let n = brokers.len();
    let factor = usize::try_from(replication).unwrap_or(0);
    if factor == 0 {
        return Err(format!(
            "replication factor must be at least 1, not {replication}"
        ));
    }
    if factor > n {
        return Err(format!(
            "replication factor {replication} is larger than the {n} live broker{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    let start = usize::try_from(seed % n as u64).unwrap_or(0);
    Ok((first..first + count)
        .map(|p| {
            let p = usize::try_from(p).unwrap_or(0);
            let leader = (start + p) % n;
            let shift = if n > 1 { 1 + (p / n) % (n - 1) } else { 0 };
            (0..factor)
                .map(|r| brokers[(leader + r * shift) % n])
                .collect()
        })
        .collect())
}

/// Live brokers by id; with racks, interleaved rack by rack (Kafka's rack-alternated list), so consecutive
/// replicas land on different racks.
fn ordered_brokers(image: &MetadataImage) -> Vec<NodeId> {
    let mut brokers: Vec<(Option<String>, NodeId)> = image
        .live_brokers()
        .map(|b| (b.rack.clone(), b.node_id))
        .collect();
    brokers.sort_by_key(|(_, id)| *id);
    if brokers.iter().all(|(rack, _)| rack.is_none()) {
        return brokers.into_iter().map(|(_, id)| id).collect();
    }
    let mut racks: std::collections::BTreeMap<String, Vec<NodeId>> = Default::default();
    for (rack, id) in brokers {
        racks.entry(rack.unwrap_or_default()).or_default().push(id);
    }
    let longest = racks.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| racks.values().filter_map(move |ids| ids.get(i).copied()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrite_metadata::{BrokerRegistration, MetadataRecord};

    fn image(brokers: &[(i32, Option<&str>)], fenced: &[i32]) -> MetadataImage {
        let mut records: Vec<MetadataRecord> = brokers
            .iter()
            .map(|(id, rack)| {
                MetadataRecord::RegisterBroker(BrokerRegistration {
                    node_id: NodeId(*id),
                    incarnation_id: uuid::Uuid::nil(),
                    host: "h".into(),
                    port: 1,
                    rack: rack.map(str::to_string),
                    epoch: 1,
                })
            })
            .collect();
        records.extend(fenced.iter().map(|id| MetadataRecord::FenceBroker {
            node_id: NodeId(*id),
        }));
        MetadataImage::from_records(&records).unwrap()
    }

    #[test]
    fn partitions_stripe_across_live_brokers() {
        let image = image(&[(1, None), (2, None), (3, None), (4, None)], &[4]);
        let placed = place_replicas(&image, 0, 6, 1, 1).unwrap();
        let leaders: Vec<i32> = placed.iter().map(|r| r[0].0).collect();
        assert_eq!(
            leaders,
            vec![2, 3, 1, 2, 3, 1],
            "striped from a start, never the fenced broker"
        );
        let more = place_replicas(&image, 6, 2, 1, 1).unwrap();
        assert_eq!(more[0][0].0, 2, "new partitions continue the stripe");
    }

    #[test]
    fn factors_the_cluster_cannot_give_are_refused() {
        let image = image(&[(1, None), (2, None)], &[]);
        assert!(place_replicas(&image, 0, 1, 3, 0)
            .unwrap_err()
            .contains("larger than the 2 live brokers"));
        assert!(place_replicas(&image, 0, 1, 0, 0).is_err());
        let two = place_replicas(&image, 0, 4, 2, 0).unwrap();
        assert!(
            two.iter().all(|r| r.len() == 2 && r[0] != r[1]),
            "two distinct replicas each: {two:?}"
        );
        let empty = MetadataImage::default();
        assert!(place_replicas(&empty, 0, 1, 1, 0).is_err());
    }

    #[test]
    fn racks_alternate() {
        let image = image(
            &[
                (1, Some("a")),
                (2, Some("a")),
                (3, Some("b")),
                (4, Some("b")),
            ],
            &[],
        );
        assert_eq!(
            ordered_brokers(&image),
            vec![NodeId(1), NodeId(3), NodeId(2), NodeId(4)]
        );
    }
}
