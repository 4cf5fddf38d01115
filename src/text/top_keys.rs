//! A top-k collector that visits every matching document and returns definition keys.
//!
//! tantivy's `TopDocs` by score uses block-WAND, which wins for a query of two or three terms
//! but loses badly on a brief: with dozens of terms whose summed maximum scores nearly always
//! beat the k-th best, almost every document becomes a pivot and every pivot re-sorts all the
//! scorers (12x slower than a plain union at 100k documents, see ARCHITECTURE.md). This
//! collector goes through `Weight::for_each`, the exhaustive union, and reads each hit's key
//! from the `key` fast field rather than the document store. A filter's answer (a key set from
//! the registry) is applied here too, as a membership test on each scored document: cheaper than
//! a term-set query, which builds an automaton and a bitset over every document per search.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// The `limit` best (key, score) pairs, best first; ties go to the smaller key.
pub(super) struct TopKeys {
    pub limit: usize,
    /// The u64 fast field holding each document's definition key.
    pub key_field: &'static str,
    /// When given, only these keys may be returned.
    pub only: Option<Arc<HashSet<u64>>>,
}

/// A hit ordered by score, then by key descending, so the heap's minimum is the hit to drop.
#[derive(Clone, Copy, PartialEq)]
struct Ranked {
    score: Score,
    key: u64,
}

impl Eq for Ranked {}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.key.cmp(&self.key))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Keeps the best `limit` hits seen so far.
struct Best {
    limit: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl Best {
    fn new(limit: usize) -> Best {
        Best {
            limit,
            heap: BinaryHeap::with_capacity(limit.saturating_add(1).min(4096)),
        }
    }

    fn push(&mut self, hit: Ranked) {
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(hit));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && hit > worst.0
        {
            *worst = Reverse(hit);
        }
    }

    fn into_sorted(self) -> Vec<(u64, Score)> {
        // Ascending order of `Reverse` is descending order of the hits.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(h)| (h.key, h.score))
            .collect()
    }
}

pub(super) struct SegmentTopKeys {
    keys: Column<u64>,
    only: Option<Arc<HashSet<u64>>>,
    best: Best,
    threshold: Option<Ranked>,
}

impl SegmentCollector for SegmentTopKeys {
    type Fruit = Vec<(u64, Score)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        // Most documents of a long query score below the current k-th best: skip the key read.
        if self.threshold.is_some_and(|t| score < t.score) {
            return;
        }
        let Some(key) = self.keys.first(doc) else {
            return;
        };
        if self.only.as_ref().is_some_and(|only| !only.contains(&key)) {
            return;
        }
        self.best.push(Ranked { score, key });
        if self.best.heap.len() == self.best.limit {
            self.threshold = self.best.heap.peek().map(|r| r.0);
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.best.into_sorted()
    }
}

impl Collector for TopKeys {
    type Fruit = Vec<(u64, Score)>;
    type Child = SegmentTopKeys;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTopKeys> {
        Ok(SegmentTopKeys {
            keys: reader.fast_fields().u64(self.key_field)?,
            only: self.only.clone(),
            best: Best::new(self.limit),
            threshold: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, segments: Vec<Vec<(u64, Score)>>) -> tantivy::Result<Self::Fruit> {
        let mut best = Best::new(self.limit);
        for (key, score) in segments.into_iter().flatten() {
            best.push(Ranked { score, key });
        }
        Ok(best.into_sorted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_with_ties_to_the_smaller_key() {
        let mut best = Best::new(3);
        for (key, score) in [(5, 1.0), (4, 3.0), (9, 2.0), (1, 2.0), (7, 0.5), (2, 3.0)] {
            best.push(Ranked { score, key });
        }
        assert_eq!(best.into_sorted(), [(2, 3.0), (4, 3.0), (1, 2.0)]);
        let mut none = Best::new(0);
        none.push(Ranked { score: 1.0, key: 1 });
        assert!(none.into_sorted().is_empty());
    }
}
