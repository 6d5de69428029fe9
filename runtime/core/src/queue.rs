//! A bounded input queue with its QoS policy. Executors add the waiting (real time) or the
//! stepping; the policy logic lives here once.

use std::collections::VecDeque;

use quiver_graph::Policy;

use crate::pack::Pack;

pub(crate) struct Item {
    /// Global arrival order within the consumer.
    pub ticket: u64,
    /// Step the pack was produced in (stepped mode; 0 in real time).
    pub step: u64,
    pub pack: Pack,
}

pub(crate) enum Offer {
    Queued,
    /// Queued after dropping the oldest item (counted as a drop).
    QueuedDropping,
    /// `block` policy and full: the producer must wait (the item is handed back).
    Full(Item),
}

pub(crate) struct Queue {
    pub items: VecDeque<Item>,
    pub depth: usize,
    pub policy: Policy,
}

impl Queue {
    pub fn new(depth: usize, policy: Policy) -> Self {
        let depth = if policy == Policy::Latest { 1 } else { depth.max(1) };
        Queue {
            items: VecDeque::with_capacity(depth.min(1024)),
            depth,
            policy,
        }
    }

    /// Offers an item. `grow`: a full `block` queue takes it anyway (stepped mode, where nobody
    /// can wait; nothing is lost, the queue grows past its depth).
    pub fn offer(&mut self, item: Item, grow: bool) -> Offer {
        if self.items.len() < self.depth {
            self.items.push_back(item);
            return Offer::Queued;
        }
        match self.policy {
            Policy::Block if grow => {
                self.items.push_back(item);
                Offer::Queued
            }
            Policy::Block => Offer::Full(item),
            Policy::DropOldest | Policy::Latest => {
                self.items.pop_front();
                self.items.push_back(item);
                Offer::QueuedDropping
            }
        }
    }
}

/// The queue whose head arrived first, among heads with a ticket below `limit`.
pub(crate) fn oldest(queues: &[Queue], limit: u64) -> Option<usize> {
    queues
        .iter()
        .enumerate()
        .filter_map(|(i, q)| q.items.front().filter(|it| it.ticket < limit).map(|it| (it.ticket, i)))
        .min()
        .map(|(_, i)| i)
}
