//! Producer ids, unique across the cluster: the controller hands each broker a block of ids (recorded in the
//! metadata log before it is handed out, so never given twice, even after a restart), and the broker gives
//! them to InitProducerId requests one by one, asking for a new block when it runs out.

use super::{Node, TopicError};

/// Ids per block, Kafka's.
const BLOCK_SIZE: i64 = 1000;

/// The ids `next..end` are this broker's to give.
#[derive(Debug, Default)]
pub struct ProducerIdBlock {
    next: i64,
    end: i64,
}

impl ProducerIdBlock {
    /// The next id of the block, if it has one left.
    fn take(&mut self) -> Option<i64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
}

impl Node {
    /// A producer id no other producer in the cluster has had. Blocking (a new block comes from the
    /// controller).
    pub fn allocate_producer_id(&self) -> Result<i64, TopicError> {
        let mut block = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = block.take() {
            return Ok(id);
        }
        let first = self.allocate_producer_ids(BLOCK_SIZE)?;
        *block = ProducerIdBlock {
            next: first,
            end: first + BLOCK_SIZE,
        };
        block
            .take()
            .ok_or_else(|| TopicError::Storage("an empty producer id block".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_gives_each_id_once() {
        let mut block = ProducerIdBlock { next: 5, end: 7 };
        assert_eq!(block.take(), Some(5));
        assert_eq!(block.take(), Some(6));
        assert_eq!(block.take(), None);
        assert_eq!(ProducerIdBlock::default().take(), None);
    }
}
