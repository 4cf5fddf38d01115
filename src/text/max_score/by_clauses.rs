//! A long request ranked exhaustively, its clauses shared out between the threads.
//!
//! Each thread takes a part of the clauses (about as many postings in each), opens one cursor
//! per clause of its part, and walks them over the whole segment a window at a time, summing
//! into a score array of its own. Once every part has summed a window, the last thread to finish
//! it (or, once one has no part left, that idle thread) adds the parts' arrays together and
//! keeps the window's documents that reach the threshold. No thread waits for another before the
//! end: arrays are handed over, not shared, and a thread starts the next window on a fresh one.
//!
//! Against MaxScore over ranges of documents (the parent module), each clause's cursor is opened
//! once rather than once a thread, and never sought across the other thread's range; nothing is
//! pruned, which costs a long request little, its threshold staying low (`LONG_REQUEST`). Every
//! document's score is the same `f64` sum of the same clause scores, so the hits are those of
//! MaxScore, to the bit (tested below).

use std::cmp::Reverse;
use std::hint::spin_loop;
use std::mem;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, Score, Searcher, SegmentReader};

use super::{Best, Clause, FieldCache, Floor, Lookups, Ranked, Segment, TermScorer, lock, workers};
use crate::library::KeySet;

/// Documents summed per window: more than MaxScore's, since nothing is pruned between windows
/// here, and each window costs every clause a call and the threads an adding up. At 100k, a
/// brief's p50 in `eval` (binaries alternated, five runs): 8,192 0.861 ms, 16,384 0.764, 32,768
/// 0.749 (three more runs: 0.767 against 0.751). The four arrays of two threads, 256 KiB each,
/// stay in the 2 MiB L2 cache.
pub(super) const WINDOW: usize = 32_768;

/// How long a thread with no part left spins for the others' windows before it yields its CPU
/// between looks: a brief's whole ranking takes about 0.6 ms.
const SPIN: Duration = Duration::from_millis(2);

/// The `limit` best documents for the sum of `clauses`, as `super::top_keys` promises, with
/// the clauses cut into `parts` ranked at once by the calling thread and the workers, summed in
/// windows of `W` documents (`WINDOW`, but for tests; a power of two).
pub(super) fn top_keys<const W: usize>(
    searcher: &Searcher,
    clauses: &[Clause],
    looked: &Lookups,
    only: Option<&KeySet>,
    limit: usize,
    parts: usize,
) -> tantivy::Result<Vec<(u64, Score)>> {
    let floor = Floor::default();
    let mut best = Best::new(limit);
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let segment = Segment::new(reader, only, &floor)?;
        let ranking = Ranking::<W> {
            clauses,
            looked,
            ord,
            reader,
            segment,
            parts: cut(looked, ord, parts),
            limit,
            next_part: AtomicUsize::new(0),
            summed: (0..(reader.max_doc() as usize).div_ceil(W))
                .map(|_| Window {
                    arrays: Mutex::new(Vec::new()),
                    parts_in: AtomicUsize::new(0),
                    merged: AtomicBool::new(false),
                })
                .collect(),
            spare: Mutex::new(Vec::new()),
            idle: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            ranked: Mutex::new(Vec::new()),
        };
        let run = || ranking.run();
        match workers() {
            Some(workers) if ranking.parts.len() > 1 => {
                workers.run_beside(ranking.parts.len() - 1, &run)
            }
            _ => run(),
        }
        for part in ranking
            .ranked
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
        {
            for Reverse(hit) in part?.heap {
                best.push(hit);
            }
        }
    }
    Ok(best.into_sorted())
}

/// The clauses with postings in segment `ord`, in at most `parts` parts of about as many
/// postings each: the longest lists first, each to the part with the fewest so far.
fn cut(looked: &Lookups, ord: usize, parts: usize) -> Vec<Vec<usize>> {
    let doc_freq = |i: usize| {
        looked.infos[ord][i]
            .as_ref()
            .map_or(0, |(_, info)| u64::from(info.doc_freq))
    };
    let mut present: Vec<usize> = (0..looked.weights.len())
        .filter(|&i| doc_freq(i) > 0)
        .collect();
    present.sort_by_key(|&i| Reverse(doc_freq(i)));
    let mut cut: Vec<(u64, Vec<usize>)> =
        vec![(0, Vec::new()); parts.clamp(1, present.len().max(1))];
    for i in present {
        if let Some(part) = cut.iter_mut().min_by_key(|part| part.0) {
            part.0 += doc_freq(i);
            part.1.push(i);
        }
    }
    cut.into_iter().map(|(_, part)| part).collect()
}

/// One window's score arrays, one from each part, and whether they have been added up.
struct Window<const W: usize> {
    arrays: Mutex<Vec<Box<[f64; W]>>>,
    /// How many arrays `arrays` holds, read without its lock.
    parts_in: AtomicUsize,
    merged: AtomicBool,
}

/// One segment's ranking, shared by the threads that take its parts.
struct Ranking<'a, const W: usize> {
    clauses: &'a [Clause],
    looked: &'a Lookups,
    ord: usize,
    reader: &'a SegmentReader,
    segment: Segment<'a>,
    parts: Vec<Vec<usize>>,
    limit: usize,
    /// The first part no thread has taken.
    next_part: AtomicUsize,
    summed: Vec<Window<W>>,
    /// Zeroed arrays, handed back by the threads that added them up.
    spare: Mutex<Vec<Box<[f64; W]>>>,
    /// Threads with no part left: the last part to sum a window then leaves it to them.
    idle: AtomicUsize,
    /// Set when a thread fails: an idle thread then stops waiting for windows.
    failed: AtomicBool,
    /// Each thread's best hits.
    ranked: Mutex<Vec<tantivy::Result<Best>>>,
}

impl<const W: usize> Ranking<'_, W> {
    /// One thread's share: parts while any is left, then the windows still to add up.
    fn run(&self) {
        let mut best = Best::new(self.limit);
        let result = self.sum_parts(&mut best);
        if result.is_err() {
            self.failed.store(true, Ordering::Release);
        } else {
            self.idle.fetch_add(1, Ordering::AcqRel);
            self.merge_the_rest(&mut best);
        }
        lock(&self.ranked).push(result.map(|()| best));
    }

    fn sum_parts(&self, best: &mut Best) -> tantivy::Result<()> {
        let mut norms = FieldCache::default();
        while let Some(part) = self
            .parts
            .get(self.next_part.fetch_add(1, Ordering::Relaxed))
        {
            let mut scorers = Vec::with_capacity(part.len());
            for &i in part {
                let Some((index, info)) = &self.looked.infos[self.ord][i] else {
                    continue;
                };
                let field = self.clauses[i].term.field();
                scorers.push(TermScorer {
                    block: index
                        .read_block_postings_from_terminfo(info, IndexRecordOption::WithFreqs)?,
                    at: 0,
                    norms: norms.get(field, |f| self.reader.get_fieldnorms_reader(f))?,
                    weight: self.looked.weights[i].clone(),
                });
            }
            for (w, window) in self.summed.iter().enumerate() {
                let (start, end) = self.bounds(w);
                let mut scores = lock(&self.spare)
                    .pop()
                    .unwrap_or_else(|| Box::new([0.0; W]));
                for scorer in &mut scorers {
                    scorer.add_until(start, end, &mut scores);
                }
                let complete = {
                    let mut arrays = lock(&window.arrays);
                    arrays.push(scores);
                    window.parts_in.store(arrays.len(), Ordering::Release);
                    // An idle thread would otherwise wait while this one adds up.
                    (arrays.len() == self.parts.len() && self.idle.load(Ordering::Acquire) == 0)
                        .then(|| mem::take(&mut *arrays))
                };
                if let Some(arrays) = complete {
                    self.merge(w, arrays, best);
                }
            }
        }
        Ok(())
    }

    /// Adds up every window not yet added up, waiting for the parts still summing it.
    fn merge_the_rest(&self, best: &mut Best) {
        let since = Instant::now();
        for (w, window) in self.summed.iter().enumerate() {
            while !window.merged.load(Ordering::Acquire) && !self.failed.load(Ordering::Acquire) {
                let complete = (window.parts_in.load(Ordering::Acquire) == self.parts.len())
                    .then(|| mem::take(&mut *lock(&window.arrays)))
                    .filter(|arrays| arrays.len() == self.parts.len());
                match complete {
                    Some(arrays) => self.merge(w, arrays, best),
                    // A part's thread that another process keeps off its CPU could otherwise
                    // be kept waiting by this one's spinning.
                    None if since.elapsed() > SPIN => std::thread::yield_now(),
                    None => spin_loop(),
                }
            }
        }
    }

    fn bounds(&self, w: usize) -> (DocId, DocId) {
        let len = W as DocId;
        let start = (w as DocId).saturating_mul(len);
        (start, start.saturating_add(len).min(self.segment.max_doc))
    }

    /// Adds up window `w`'s arrays, keeping the documents that enter `best`, and hands the
    /// arrays back zeroed.
    fn merge(&self, w: usize, mut arrays: Vec<Box<[f64; W]>>, best: &mut Best) {
        let (start, end) = self.bounds(w);
        let segment = &self.segment;
        // A sum below this cannot enter: the threshold, a little lowered so that no `f64` sum
        // whose `f32` reaches it is passed over, or any score above zero (a matched document).
        let lowest = |best: &Best| {
            segment
                .threshold(best)
                .map_or(f64::MIN_POSITIVE, |t| f64::from(t) * (1.0 - 1e-6))
        };
        let mut low = lowest(best);
        // Eight documents at a time, every part's array read and zeroed in one pass.
        for first in (0..(end - start) as usize).step_by(8) {
            let mut sums = [0.0f64; 8];
            for array in arrays.iter_mut() {
                for (sum, score) in sums.iter_mut().zip(&mut array[first..first + 8]) {
                    *sum += *score;
                    *score = 0.0;
                }
            }
            if sums.iter().all(|&sum| sum < low) {
                continue;
            }
            for (j, &sum) in sums.iter().enumerate() {
                let doc = start + (first + j) as DocId;
                let score = sum as Score;
                if sum <= 0.0 || doc >= end || segment.threshold(best).is_some_and(|t| score < t) {
                    continue;
                }
                if segment.admits(doc)
                    && let Some(key) = segment.keys.first(doc)
                {
                    best.push(Ranked { score, key });
                }
            }
            low = lowest(best);
        }
        if let Some(worst) = best.threshold() {
            segment.floor.raise(worst.score);
        }
        self.summed[w].merged.store(true, Ordering::Release);
        lock(&self.spare).extend(arrays);
    }
}
