//! Top-k retrieval by MaxScore (Turtle and Flood, 1995), in windows of documents as Lucene's
//! `MaxScoreBulkScorer` does it.
//!
//! A query is a sum of term clauses, one per stem and field. The clauses are sorted once by the
//! largest score each can give. Once `limit` hits are held, the weakest clauses whose bounds
//! together fall short of the worst hit are *non-essential*: a document matching only those
//! cannot enter, so only the *essential* clauses' postings are walked, summed term at a time
//! into a score array over a window of 8,192 documents. The documents they bring up that could
//! still enter are then completed by seeking the non-essential clauses, strongest first,
//! dropping each document as soon as the clauses left cannot lift it; the partition is
//! recomputed between windows as the threshold rises.
//!
//! This replaced tantivy's block-WAND (short queries) and exhaustive union (long or filtered
//! ones): at 100k definitions a two-word query's p50 fell from 1.0 to 0.6 ms and a four-word one
//! from 1.5 to 1.1 ms. A long request gains little: its threshold stays low next to the sum of
//! its many clauses, so most documents remain candidates; there the non-essential lists are
//! walked through the window instead of sought, and the cost stays that of the union (see
//! benches/README.md). The result is exact, the documents and scores of summing every clause
//! (tested against tantivy's own top-k below).
//!
//! Postings are read from tantivy's decoded blocks of 128 (`BlockSegmentPostings`) rather than
//! one `advance` call at a time: summing a window is one loop over a block's document and
//! frequency arrays (100k, p50: a brief 3.6 -> 3.2 ms, a sentence 1.0 -> 0.9).
//!
//! A request of `LONG_REQUEST` clauses or more prunes next to nothing, and is ranked
//! exhaustively by `by_clauses` instead, its clauses shared out between the threads.
//!
//! A large library is cut into one range of documents per core, ranked at once by the calling
//! thread and the workers (`workers.rs`), each thread with its own best hits; the threads share
//! a floor, the highest k-th best score any of them holds, so each prunes with what the others
//! have found. A thread that finishes first takes the back half of what another has not yet
//! reached (`Share`).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use tantivy::columnar::Column;
use tantivy::fastfield::AliveBitSet;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{BlockSegmentPostings, TermInfo};
use tantivy::query::{Bm25StatisticsProvider, Bm25Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, InvertedIndexReader, Score, Searcher, SegmentReader, Term};

use super::KEY;
use super::workers::workers;
use crate::library::KeySet;

mod by_clauses;

/// Documents summed per window. Each clause pays a fixed cost per window (finding its postings
/// before the window's end, the partition, the candidates), which a brief's hundreds of
/// clauses feel: at 100k, 8,192 rather than 4,096 took a brief's p50 2.16-2.19 -> 2.10-2.11 ms
/// and its p99 2.84-2.86 -> 2.71-2.77 (binaries alternated), shorter requests unchanged; the
/// score array (64 KiB) still stays in the 2 MiB L2 cache. 16,384 gained nothing more.
const WINDOW: u32 = 8192;
const WINDOW_LEN: usize = WINDOW as usize;

/// A window's scores, by document's place in the window, summed in `f64` although each
/// clause's score is an `f32`. The order in which a document's clauses are added varies: which
/// clauses are essential depends on the threshold, and with several threads the threshold on
/// how they were scheduled. Summed in `f32`, two documents a rounding apart swapped places from
/// one run of a request to the next. `f64` holds the sum of a few hundred `f32` scores exactly
/// (whatever the order) while they lie within 2^29 of one another, and rounds otherwise far
/// below the `f32` the sum is reported in. It costs a brief at 100k about 4% (p50).
type Scores = [f64; WINDOW_LEN];
/// A window's documents that an essential clause matched, one bit each.
type Matched = [u64; WINDOW_LEN / 64];

/// One term in one field, scored by BM25 times `boost`.
pub(super) struct Clause {
    pub term: Term,
    /// Above zero, so that every posting scores above zero (`mark_scored` relies on it).
    pub boost: Score,
    /// The document frequency its idf is computed from, when not the term's own in its field.
    pub doc_freq: Option<u64>,
    /// The term's entry in each segment's dictionary, when the request's analysis already
    /// looked it up (in the same searcher): not looked up twice.
    pub found: Option<Vec<Option<TermInfo>>>,
}

/// Fewest documents worth a thread of their own: below this the wake-up and the setup of a
/// second set of cursors cost more than they save.
const MIN_PART: u32 = 16_384;

/// Wakes the workers ahead of a ranking of `searcher` large enough to be shared with them
/// (`Workers::wake`): called as a request's analysis begins.
pub(super) fn wake_workers(searcher: &Searcher) {
    let docs: u32 = searcher.segment_readers().iter().map(|r| r.max_doc()).sum();
    if docs > MIN_PART
        && let Some(workers) = workers()
    {
        workers.wake();
    }
}

/// The `limit` best documents for the sum of `clauses`, as (key, score), best first; ties go to
/// the smaller key. With `only`, documents whose key is not in it are skipped.
pub(super) fn top_keys(
    searcher: &Searcher,
    clauses: &[Clause],
    only: Option<&KeySet>,
    limit: usize,
) -> tantivy::Result<Vec<(u64, Score)>> {
    let docs: u32 = searcher.segment_readers().iter().map(|r| r.max_doc()).sum();
    let threads = u32::try_from(rayon::current_num_threads())
        .unwrap_or(1)
        .max(1);
    let looked = Lookups::new(searcher, clauses)?;
    if clauses.len() >= LONG_REQUEST {
        let parts = if docs > MIN_PART { threads } else { 1 };
        return by_clauses::top_keys::<{ by_clauses::WINDOW }>(
            searcher,
            clauses,
            &looked,
            only,
            limit,
            parts as usize,
        );
    }
    let cut = Cut {
        part: docs.div_ceil(threads).max(MIN_PART),
        steal: WINDOW,
    };
    top_keys_in_parts(searcher, clauses, &looked, only, limit, cut)
}

/// Clauses from which a request is ranked exhaustively, its clauses shared out between the
/// threads (`by_clauses`), rather than by MaxScore over ranges of documents. A long request's
/// threshold stays low next to the sum of its clauses' bounds, so MaxScore walks nearly every
/// posting anyway, and cutting the documents into ranges made each thread open a cursor for
/// every clause (at 100k a brief's 260, 110-170 us a thread). With about 260 clauses a brief's
/// p50 in `eval` at 100k fell 0.871 -> 0.768 ms (six alternated runs, same hits). Shorter
/// requests keep MaxScore: from 16 clauses, a sentence gained (bench p50 0.28-0.29 -> 0.25 ms)
/// but a capability filter with four words lost (0.30-0.32 -> 0.41-0.49 ms, p99 0.5 -> 1.1-1.3),
/// its filter leaving MaxScore documents to skip.
const LONG_REQUEST: usize = 128;

/// A clause's term in one segment: its field's inverted index and the term's entry there.
type Found = (Arc<InvertedIndexReader>, TermInfo);

/// What both rankings read of each clause: its dictionary entry in each segment, and its
/// BM25 weight.
struct Lookups {
    /// By segment, then clause.
    infos: Vec<Vec<Option<Found>>>,
    weights: Vec<Bm25Weight>,
}

impl Lookups {
    fn new(searcher: &Searcher, clauses: &[Clause]) -> tantivy::Result<Lookups> {
        let segments = searcher.segment_readers();
        // One dictionary lookup per clause and segment gives both the document frequency and the
        // postings (tantivy's TermQuery looks each term up twice), none when analysis made it.
        let mut infos = Vec::with_capacity(segments.len());
        for (ord, reader) in segments.iter().enumerate() {
            let mut row = Vec::with_capacity(clauses.len());
            let mut inverted = FieldCache::default();
            for clause in clauses {
                let index = inverted.get(clause.term.field(), |f| reader.inverted_index(f))?;
                let info = match &clause.found {
                    Some(found) => found.get(ord).cloned().flatten(),
                    None => index.get_term_info(&clause.term)?,
                };
                row.push(info.map(|info| (index.clone(), info)));
            }
            infos.push(row);
        }
        // Each clause's documents over the whole index, unless it names its own: its idf.
        let doc_freqs: Vec<u64> = (0..clauses.len())
            .map(|i| {
                clauses[i].doc_freq.unwrap_or_else(|| {
                    infos
                        .iter()
                        .filter_map(|row| row[i].as_ref())
                        .map(|(_, info)| u64::from(info.doc_freq))
                        .sum()
                })
            })
            .collect();
        let weights = bm25_weights(searcher, clauses, &doc_freqs)?;
        Ok(Lookups { infos, weights })
    }
}

/// How a request's documents are shared out between threads.
#[derive(Clone, Copy)]
struct Cut {
    /// Each segment is cut into ranges of at most this many documents, one per thread.
    part: u32,
    /// The fewest documents a thread with no range left takes from another's: the back half of
    /// what that range has not yet claimed, once that half is at least this long.
    steal: u32,
}

/// `top_keys`, with each segment cut into ranges as `cut` says, ranked by the calling thread
/// and the workers (`rank_shares`). Each thread keeps its own best hits; all share the best
/// known threshold (no thread's `limit`-th best can beat the global one), so one thread's good
/// hits let the others skip early.
fn top_keys_in_parts(
    searcher: &Searcher,
    clauses: &[Clause],
    looked: &Lookups,
    only: Option<&KeySet>,
    limit: usize,
    cut: Cut,
) -> tantivy::Result<Vec<(u64, Score)>> {
    let segments = searcher.segment_readers();
    let Lookups { infos, weights } = looked;
    // Weakest first, as `collect` wants them: sorting the clauses' numbers once, rather than
    // each range's scorers (a scorer holds a decoded block of postings, about a kilobyte; moving
    // 450 of them was a tenth of a brief's time), by bounds computed once rather than at each
    // comparison (a brief's sort, 18 -> 6 us).
    let bounds: Vec<Score> = weights.iter().map(Bm25Weight::max_score).collect();
    let mut order: Vec<usize> = (0..clauses.len()).collect();
    order.sort_by(|&a, &b| bounds[a].total_cmp(&bounds[b]));
    let part = cut.part.max(1);
    let ranges: Vec<Arc<Share>> = segments
        .iter()
        .enumerate()
        .flat_map(|(ord, reader)| {
            let max_doc = reader.max_doc();
            (0..max_doc.div_ceil(part))
                .map(move |i| Arc::new(Share::new(ord, i * part..max_doc.min((i + 1) * part))))
        })
        .collect();
    let floor = Floor::default();
    // One set of cursors per thread and segment, positioned at `start`.
    let open = |ord: usize, start: DocId| -> tantivy::Result<Vec<TermScorer>> {
        let reader = &segments[ord];
        let mut norms = FieldCache::default();
        let mut scorers = Vec::with_capacity(clauses.len());
        for &i in &order {
            let Some((index, info)) = &infos[ord][i] else {
                continue;
            };
            let field = clauses[i].term.field();
            let mut scorer = TermScorer {
                block: index
                    .read_block_postings_from_terminfo(info, IndexRecordOption::WithFreqs)?,
                at: 0,
                norms: norms.get(field, |f| reader.get_fieldnorms_reader(f))?,
                weight: weights[i].clone(),
            };
            scorer.seek(start);
            scorers.push(scorer);
        }
        Ok(scorers)
    };
    let rank = |share: &Share, held: Option<Cursors>, best: &mut Best| {
        let reader = &segments[share.ord];
        let start = share.next();
        let mut cursors = match held {
            Some(held) if held.ord == share.ord && held.reached <= start => held,
            _ => Cursors {
                ord: share.ord,
                reached: start,
                scorers: open(share.ord, start)?,
            },
        };
        let segment = Segment::new(reader, only, &floor)?;
        segment.collect(&mut cursors.scorers, share, best);
        cursors.reached = share.end();
        Ok(cursors)
    };
    let mut best = Best::new(limit);
    for part in rank_shares(&ranges, cut.steal, limit, rank) {
        for Reverse(hit) in part?.heap {
            best.push(hit);
        }
    }
    Ok(best.into_sorted())
}

/// A thread's cursors over one segment's postings; every posting before `reached` that the
/// thread will need has been read, so they serve any later range of that segment.
struct Cursors {
    ord: usize,
    reached: DocId,
    scorers: Vec<TermScorer>,
}

/// A range of one segment's documents, ranked window by window by the thread that took it.
/// A thread with no range left takes the back half of what another has not yet claimed: the
/// two threads of the 2-core machine often rank at different speeds (one the other's 1.7 times
/// per posting, for the same number of postings), and halves fixed in advance left one idle
/// while the other finished. Both ends live in one atomic word, so a claim and a split never
/// overlap.
struct Share {
    ord: usize,
    /// The first document not yet claimed (low half) and the end (high half).
    state: AtomicU64,
}

impl Share {
    fn new(ord: usize, docs: Range<DocId>) -> Share {
        Share {
            ord,
            state: AtomicU64::new(pack(docs.start, docs.end)),
        }
    }

    fn next(&self) -> DocId {
        unpack(self.state.load(AtomicOrdering::Acquire)).0
    }

    fn end(&self) -> DocId {
        unpack(self.state.load(AtomicOrdering::Acquire)).1
    }

    fn left(&self) -> u32 {
        let (next, end) = unpack(self.state.load(AtomicOrdering::Acquire));
        end.saturating_sub(next)
    }

    /// Claims the window that begins at `first`, or at the first unclaimed document if that
    /// is later; None once `first` is past the end.
    fn claim(&self, first: DocId) -> Option<Range<DocId>> {
        let mut window = None;
        self.state
            .fetch_update(AtomicOrdering::AcqRel, AtomicOrdering::Acquire, |state| {
                let (next, end) = unpack(state);
                let start = first.max(next);
                window = (start < end).then(|| start..start.saturating_add(WINDOW).min(end));
                window.as_ref().map(|w| pack(w.end, end))
            })
            .ok()?;
        window
    }

    /// Gives up what is left: nothing in it can enter the best hits.
    fn close(&self) {
        let _ = self
            .state
            .fetch_update(AtomicOrdering::AcqRel, AtomicOrdering::Acquire, |state| {
                let (_, end) = unpack(state);
                Some(pack(end, end))
            });
    }

    /// Takes the back half of what is left, when that half holds at least `least` documents.
    fn split(&self, least: u32) -> Option<Range<DocId>> {
        let mut taken = None;
        self.state
            .fetch_update(AtomicOrdering::AcqRel, AtomicOrdering::Acquire, |state| {
                let (next, end) = unpack(state);
                let half = end.saturating_sub(next) / 2;
                taken = (half >= least.max(1)).then(|| end - half..end);
                taken.as_ref().map(|t| pack(next, t.start))
            })
            .ok()?;
        taken
    }
}

fn pack(next: DocId, end: DocId) -> u64 {
    u64::from(next) | u64::from(end) << 32
}

fn unpack(state: u64) -> (DocId, DocId) {
    (state as DocId, (state >> 32) as DocId)
}

/// Ranks every range, the calling thread and the workers each taking the next range no one has
/// taken yet and then, while any is worth it, the back half of another's that lies ahead of its
/// own cursors (`Share`), which it keeps from one range to the next. Returns each thread's best
/// hits.
fn rank_shares<R>(
    ranges: &[Arc<Share>],
    steal: u32,
    limit: usize,
    rank: R,
) -> Vec<tantivy::Result<Best>>
where
    R: Fn(&Share, Option<Cursors>, &mut Best) -> tantivy::Result<Cursors> + Sync,
{
    let next = AtomicUsize::new(0);
    // Every range, and every half taken from one since.
    let shares = Mutex::new(ranges.to_vec());
    let ranked = Mutex::new(Vec::new());
    let run = || {
        let mut best = Best::new(limit);
        let mut held: Option<Cursors> = None;
        let result = loop {
            let share = match ranges.get(next.fetch_add(1, AtomicOrdering::Relaxed)) {
                Some(range) => Arc::clone(range),
                None => match take_half(&shares, held.as_ref(), steal) {
                    Some(half) => half,
                    None => break Ok(best),
                },
            };
            match rank(&share, held.take(), &mut best) {
                Ok(cursors) => held = Some(cursors),
                Err(error) => break Err(error),
            }
        };
        lock(&ranked).push(result);
    };
    match workers() {
        Some(workers) if ranges.len() > 1 => workers.run_beside(ranges.len() - 1, &run),
        _ => run(),
    }
    ranked.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// The back half of the share with the most left ahead of `held` (in its segment, past where
/// it reached), when that half holds at least `steal` documents.
///
/// Only a half the thread's own cursors can serve is taken. New cursors cost about a window's
/// ranking to open, and a thread with none to use is often one woken late because another
/// process holds its CPU: a half it took could keep the caller waiting for it
/// (benches/README.md).
fn take_half(
    shares: &Mutex<Vec<Arc<Share>>>,
    held: Option<&Cursors>,
    steal: u32,
) -> Option<Arc<Share>> {
    let held = held?;
    let mut shares = lock(shares);
    let mut victims: Vec<&Arc<Share>> = shares
        .iter()
        .filter(|s| s.ord == held.ord && held.reached <= s.next())
        .collect();
    victims.sort_by_key(|s| Reverse(s.left()));
    let half = victims.into_iter().find_map(|victim| {
        let docs = victim.split(steal)?;
        Some(Arc::new(Share::new(victim.ord, docs)))
    })?;
    shares.push(Arc::clone(&half));
    Some(half)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The highest `limit`-th best score any thread has reached: a lower bound on the global one.
/// Scores are never negative, and the bits of non-negative floats order as the floats do.
#[derive(Default)]
struct Floor(AtomicU32);

impl Floor {
    fn get(&self) -> Option<Score> {
        let bits = self.0.load(AtomicOrdering::Relaxed);
        (bits != 0).then(|| Score::from_bits(bits))
    }

    fn raise(&self, score: Score) {
        self.0
            .fetch_max(score.max(0.0).to_bits(), AtomicOrdering::Relaxed);
    }
}

/// One clause's postings in one segment, scored as tantivy's own term scorer scores them (which
/// tantivy does not export). It reads tantivy's decoded blocks directly: summing a window walks
/// a block's document and frequency arrays in one loop instead of a call per posting. Every
/// text field is indexed with frequencies (`schema`), so a block's two arrays have one length.
struct TermScorer {
    block: BlockSegmentPostings,
    /// The current posting's place in the decoded block. tantivy pads the last block with
    /// `TERMINATED`, and an exhausted list decodes an empty one, so `doc` is always readable.
    at: usize,
    norms: FieldNormReader,
    weight: Bm25Weight,
}

impl TermScorer {
    fn doc(&self) -> DocId {
        self.block.doc(self.at)
    }

    /// Moves to the first posting at or after `target`; never backwards.
    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc() < target {
            self.at = self.block.seek(target);
        }
        self.doc()
    }

    /// The largest score this clause can give.
    fn max(&self) -> Score {
        self.weight.max_score()
    }

    /// Documents in this segment containing the term.
    fn doc_freq(&self) -> u32 {
        self.block.doc_freq()
    }

    fn score(&self) -> Score {
        self.score_of(self.doc(), self.block.freq(self.at))
    }

    fn score_of(&self, doc: DocId, term_freq: u32) -> Score {
        self.weight.score(self.norms.fieldnorm_id(doc), term_freq)
    }

    /// Adds this clause's score of every posting before `end` to `scores`, indexed from
    /// `start`; leaves the cursor at the first posting at or after `end`.
    fn add_until<const N: usize>(&mut self, start: DocId, end: DocId, scores: &mut [f64; N]) {
        loop {
            let all = self.block.docs();
            let from = self.at.min(all.len());
            // A block's documents ascend (the padding too), so those before `end` are a prefix:
            // the loops below need no test per posting. Most blocks of a long list lie wholly
            // inside the window, which its last document tells without a search.
            let docs = &all[from..];
            let before = match docs.last() {
                Some(&last) if last < end => docs.len(),
                _ => docs.partition_point(|&doc| doc < end),
            };
            // `get`: a damaged index must not panic a search.
            let freqs = self.block.freqs().get(from..).unwrap_or_default();
            let postings = docs[..before].iter().zip(freqs);
            // The window's size is a power of two: the modulo is a mask, and lets the compiler
            // drop the bounds checks.
            let slot = |doc: DocId| doc.wrapping_sub(start) as usize % N;
            for (&doc, &term_freq) in postings {
                scores[slot(doc)] += f64::from(self.score_of(doc, term_freq));
            }
            if before < docs.len() {
                self.at = from + before;
                return;
            }
            if all.len() < BLOCK {
                // The last block: the cursor rests on its padding.
                self.at = all.len();
                return;
            }
            self.block.advance();
            self.at = 0;
        }
    }
}

/// Sets the bit of each document of the window that has a score: every posting scores above
/// zero, so those are the documents the clauses summed so far matched. Marking them while
/// summing made each posting read and write back its bit's word, a chain through memory for
/// the dense lists of a long request, where consecutive postings share a word: at 100k a
/// brief's p50 2.05-2.07 -> 1.89-1.90 ms (binaries alternated, same ranking), other requests
/// unchanged.
fn mark_scored(scores: &Scores, matched: &mut Matched) {
    for (bits, chunk) in matched.iter_mut().zip(scores.chunks_exact(64)) {
        *bits = chunk
            .iter()
            .enumerate()
            .fold(0, |bits, (j, &score)| bits | u64::from(score != 0.0) << j);
    }
}

/// Postings per decoded block (tantivy's `COMPRESSION_BLOCK_SIZE`).
const BLOCK: usize = 128;

/// BM25 weights as tantivy's TermQuery computes them from whole-index statistics, times each
/// clause's boost. tantivy builds a 256-entry length table per term; the table depends only on
/// the field, so one is built per field and scaled by each term's idf.
fn bm25_weights(
    searcher: &Searcher,
    clauses: &[Clause],
    doc_freqs: &[u64],
) -> tantivy::Result<Vec<Bm25Weight>> {
    let docs = searcher.total_num_docs()?;
    let base_idf = idf(0, docs);
    let mut per_field = FieldCache::default();
    let mut weights = Vec::with_capacity(clauses.len());
    for (clause, &doc_freq) in clauses.iter().zip(doc_freqs) {
        let field = clause.term.field();
        let base: Bm25Weight = per_field.get(field, |f| {
            let tokens = searcher.total_num_tokens(f)?;
            Ok(Bm25Weight::for_one_term_without_explain(
                0,
                docs,
                tokens as Score / docs.max(1) as Score,
            ))
        })?;
        weights.push(base.boost_by(clause.boost * idf(doc_freq, docs) / base_idf));
    }
    Ok(weights)
}

/// BM25's inverse document frequency, as tantivy computes it (`bm25::idf` is private).
fn idf(doc_freq: u64, docs: u64) -> Score {
    let x = (docs.saturating_sub(doc_freq) as Score + 0.5) / (doc_freq as Score + 0.5);
    (1.0 + x).ln()
}

/// One value per field, made on first use: a query has several terms in each field.
struct FieldCache<T>(Vec<(Field, T)>);

impl<T> Default for FieldCache<T> {
    fn default() -> Self {
        FieldCache(Vec::new())
    }
}

impl<T: Clone> FieldCache<T> {
    fn get(
        &mut self,
        field: Field,
        make: impl FnOnce(Field) -> tantivy::Result<T>,
    ) -> tantivy::Result<T> {
        if let Some((_, value)) = self.0.iter().find(|(f, _)| *f == field) {
            return Ok(value.clone());
        }
        let value = make(field)?;
        self.0.push((field, value.clone()));
        Ok(value)
    }
}

/// What ranking one range of a segment reads besides the scorers.
struct Segment<'a> {
    keys: Column<u64>,
    max_doc: DocId,
    /// Deleted documents still have postings until their segment is merged.
    alive: Option<&'a AliveBitSet>,
    only: Option<&'a KeySet>,
    floor: &'a Floor,
}

impl<'a> Segment<'a> {
    fn new(
        reader: &'a SegmentReader,
        only: Option<&'a KeySet>,
        floor: &'a Floor,
    ) -> tantivy::Result<Segment<'a>> {
        Ok(Segment {
            keys: reader.fast_fields().u64(KEY)?,
            max_doc: reader.max_doc(),
            alive: reader.alive_bitset(),
            only,
            floor,
        })
    }

    /// The score a document must reach: this thread's `limit`-th best, or another's if higher.
    fn threshold(&self, best: &Best) -> Option<Score> {
        match (best.threshold().map(|worst| worst.score), self.floor.get()) {
            (Some(local), Some(floor)) => Some(local.max(floor)),
            (local, floor) => local.or(floor),
        }
    }

    /// Ranks the documents of `share` into `best`, a window at a time, until none is left or
    /// none left can enter; `scorers` come weakest first.
    fn collect(&self, scorers: &mut [TermScorer], share: &Share, best: &mut Best) {
        // below[i]: the most the clauses before i can add together.
        let below: Vec<Score> = scorers
            .iter()
            .scan(0.0, |sum, s| {
                let before = *sum;
                *sum += s.max();
                Some(before)
            })
            .collect();
        let total = below
            .last()
            .zip(scorers.last())
            .map_or(0.0, |(b, s)| b + s.max());
        let mut scores: Box<Scores> = Box::new([0.0; WINDOW_LEN]);
        let mut matched: Matched = [0; WINDOW_LEN / 64];
        let mut candidates: Vec<u16> = Vec::with_capacity(WINDOW_LEN);
        loop {
            let threshold = self.threshold(best);
            // Clauses [..essential] are non-essential: together they cannot reach the threshold.
            let essential =
                threshold.map_or(0, |t| below.partition_point(|&b| b < t).saturating_sub(1));
            let first = scorers[essential..].iter().map(|s| s.doc()).min();
            let window = first
                .filter(|_| threshold.is_none_or(|t| total >= t))
                .and_then(|first| share.claim(first));
            // Nothing left in the range can enter: no thread need rank the rest.
            let Some(Range { start, end }) = window else {
                share.close();
                return;
            };
            let (optional, essential) = scorers.split_at_mut(essential);
            for s in essential {
                // Cursors kept from an earlier range may rest before this one.
                s.seek(start);
                s.add_until(start, end, &mut scores);
            }
            mark_scored(&scores, &mut matched);
            let beaten = |score: Score| threshold.is_some_and(|t| score < t);
            // Completing a candidate costs about one seek per non-essential clause; walking
            // those clauses' lists through the window costs one step per posting. When walking
            // is cheaper even were every document the essential clauses touched a candidate (a
            // long query, whose threshold stays low next to the sum of its many terms, leaves
            // nearly all of them one), the lists are walked first and each document is then
            // weighed once, complete.
            let span = u64::from(end.min(self.max_doc).saturating_sub(start));
            let steps: u64 = optional
                .iter()
                .map(|s| u64::from(s.doc_freq()) * span / u64::from(self.max_doc.max(1)))
                .sum();
            let touched: u64 = matched
                .iter()
                .map(|bits| u64::from(bits.count_ones()))
                .sum();
            let walked = steps < touched * optional.len() as u64;
            if walked {
                walk(optional, start, end, &mut scores);
            }
            // Documents that reach the threshold, or that the non-essential clauses could still
            // lift over it.
            let reach = if walked {
                0.0
            } else {
                below.get(optional.len()).copied().unwrap_or(0.0)
            };
            candidates.clear();
            for (word, bits) in matched.iter_mut().enumerate() {
                while *bits != 0 {
                    let i = word * 64 + bits.trailing_zeros() as usize;
                    *bits &= *bits - 1;
                    if !beaten(scores[i] as Score + reach) && self.admits(start + i as u32) {
                        candidates.push(i as u16);
                    }
                }
            }
            if walked {
                // Every candidate is complete.
            } else if steps < (candidates.len() * optional.len()) as u64 {
                walk(optional, start, end, &mut scores);
            } else {
                // Clause at a time, strongest first, each seeking forward through the
                // candidates (its cursor and decoded block stay hot); a candidate that even
                // this clause and all weaker ones cannot lift is dropped.
                for (j, s) in optional.iter_mut().enumerate().rev() {
                    let reach = below[j] + s.max();
                    candidates.retain(|&i| {
                        let i = usize::from(i);
                        if beaten(scores[i] as Score + reach) {
                            return false;
                        }
                        let doc = start + i as u32;
                        if s.seek(doc) == doc {
                            scores[i] += f64::from(s.score());
                        }
                        true
                    });
                }
            }
            for &i in &candidates {
                let score = scores[usize::from(i)] as Score;
                let doc = start + u32::from(i);
                if self.threshold(best).is_some_and(|t| score < t) {
                    continue;
                }
                if let Some(key) = self.keys.first(doc) {
                    best.push(Ranked { score, key });
                }
            }
            if let Some(worst) = best.threshold() {
                self.floor.raise(worst.score);
            }
            scores.fill(0.0);
        }
    }

    /// Whether `doc` may be returned at all: not deleted, and inside the filter if there is one.
    fn admits(&self, doc: DocId) -> bool {
        self.alive.is_none_or(|a| a.is_alive(doc))
            && self
                .only
                .is_none_or(|only| self.keys.first(doc).is_some_and(|key| only.contains(&key)))
    }
}

/// Adds the postings of `clauses` in the window from `start` to `end` to `scores`. These are
/// non-essential clauses, whose cursors lag where their last seek left them.
fn walk(clauses: &mut [TermScorer], start: DocId, end: DocId, scores: &mut Scores) {
    for s in clauses {
        s.seek(start);
        s.add_until(start, end, scores);
    }
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

    /// The hit a newcomer must beat, once `limit` hits are held.
    fn threshold(&self) -> Option<Ranked> {
        if self.heap.len() < self.limit {
            return None;
        }
        self.heap.peek().map(|r| r.0)
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

    #[test]
    fn a_range_is_claimed_from_the_front_and_halved_from_the_back() {
        let share = Share::new(0, 100..30_000);
        assert_eq!(share.claim(0), Some(100..100 + WINDOW));
        // A window begins where the first essential posting is.
        assert_eq!(share.claim(9_000), Some(9_000..9_000 + WINDOW));
        let left = 30_000 - (9_000 + WINDOW);
        assert_eq!(share.left(), left);
        assert_eq!(share.split(left / 2 + 1), None, "the half is too short");
        assert_eq!(share.split(left / 2), Some(30_000 - left / 2..30_000));
        assert_eq!(share.end(), 30_000 - left / 2);
        // The owner's last window stops where the taken half begins.
        assert_eq!(share.claim(0), Some(9_000 + WINDOW..30_000 - left / 2));
        assert_eq!(share.claim(0), None);
        let rest = Share::new(1, 0..50_000);
        rest.close();
        assert_eq!((rest.left(), rest.split(1), rest.claim(0)), (0, None, None));
    }

    /// The reference: tantivy's own ranking of the same sum of boosted term queries, every
    /// match scored, then filtered and cut as `top_keys` promises.
    fn tantivy_top(
        searcher: &Searcher,
        clauses: &[Clause],
        only: Option<&KeySet>,
        limit: usize,
    ) -> Vec<(u64, Score)> {
        use tantivy::collector::TopDocs;
        use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
        let query = BooleanQuery::new(
            clauses
                .iter()
                .map(|c| {
                    let term = TermQuery::new(c.term.clone(), IndexRecordOption::WithFreqs);
                    let boosted: Box<dyn Query> =
                        Box::new(BoostQuery::new(Box::new(term), c.boost));
                    (Occur::Should, boosted)
                })
                .collect(),
        );
        let everything = TopDocs::with_limit(searcher.num_docs() as usize).order_by_score();
        let mut hits: Vec<(u64, Score)> = searcher
            .search(&query, &everything)
            .unwrap()
            .into_iter()
            .map(|(score, address)| {
                let keys = searcher
                    .segment_reader(address.segment_ord)
                    .fast_fields()
                    .u64(KEY)
                    .unwrap();
                (keys.first(address.doc_id).unwrap(), score)
            })
            .filter(|(key, _)| only.is_none_or(|o| o.contains(key)))
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(limit);
        hits
    }

    /// Random documents over a skewed vocabulary in several segments with deletions, random
    /// queries of 1 to 150 clauses over two fields, with and without a filter, segments whole
    /// or cut into ranges: MaxScore returns what scoring every match returns, and so does the
    /// exhaustive ranking of a long request.
    #[test]
    fn returns_what_scoring_every_match_returns() {
        use tantivy::schema::{FAST, INDEXED, Schema, TEXT};
        use tantivy::{Index, IndexWriter, TantivyDocument};
        let mut schema = Schema::builder();
        let key = schema.add_u64_field(KEY, INDEXED | FAST);
        let fields = [
            schema.add_text_field("short", TEXT),
            schema.add_text_field("long", TEXT),
        ];
        let index = Index::create_in_ram(schema.build());
        let mut rng = fastrand::Rng::with_seed(7);
        // Word i is drawn with probability falling as i grows: a few words are everywhere.
        let word = |rng: &mut fastrand::Rng| format!("w{}", (rng.f64().powi(2) * 2000.0) as u32);
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        let mut next_key = 0u64;
        // One segment spans several windows.
        for size in [3_000, 3_000, 2 * WINDOW + 100] {
            for _ in 0..size {
                let mut doc = TantivyDocument::default();
                doc.add_u64(key, next_key);
                next_key += 1;
                for (field, most) in fields.iter().zip([6, 300]) {
                    let text: Vec<String> =
                        (0..rng.usize(1..=most)).map(|_| word(&mut rng)).collect();
                    doc.add_text(*field, text.join(" "));
                }
                writer.add_document(doc).unwrap();
            }
            writer.commit().unwrap();
        }
        for _ in 0..300 {
            writer.delete_term(Term::from_field_u64(key, rng.u64(0..next_key)));
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        assert!(searcher.segment_readers().len() >= 3);
        for round in 0..200 {
            let clauses: Vec<Clause> = (0..rng.usize(1..=150))
                .map(|_| {
                    let term = Term::from_field_text(fields[rng.usize(0..2)], &word(&mut rng));
                    // Looked up ahead, as analysis does, or left to the ranking.
                    let found = rng.bool().then(|| {
                        (searcher.segment_readers().iter())
                            .map(|r| r.inverted_index(term.field()).unwrap())
                            .map(|index| index.get_term_info(&term).unwrap())
                            .collect()
                    });
                    Clause {
                        term,
                        boost: [1.0, 1.5, 3.0][rng.usize(0..3)],
                        doc_freq: None,
                        found,
                    }
                })
                .collect();
            let only: Option<KeySet> =
                (round % 3 == 0).then(|| (0..next_key).filter(|_| rng.bool()).collect());
            let limit = [1, 10, 20, 100][rng.usize(0..4)];
            // Whole segments, and segments cut into ranges ranked on several threads, which
            // take halves of each other's ranges down to a single document.
            let part = [100, 1_000, 2_500, 6_000, 100_000][rng.usize(0..5)];
            let steal = [1, 64, WINDOW][rng.usize(0..3)];
            let looked = Lookups::new(&searcher, &clauses).unwrap();
            let ranked = |part: u32| {
                let cut = Cut { part, steal };
                top_keys_in_parts(&searcher, &clauses, &looked, only.as_ref(), limit, cut).unwrap()
            };
            let ours = ranked(part);
            // Cut otherwise, the ranges prune otherwise and add each document's clauses in
            // another order: the same hits, to the bit.
            let cut_otherwise = ranked(part / 3 + 7);
            assert_eq!(ours, cut_otherwise, "round {round}");
            // Ranked whole, the clauses shared out between one to three threads, in windows
            // short enough that each segment has several.
            let by_clauses = by_clauses::top_keys::<1024>(
                &searcher,
                &clauses,
                &looked,
                only.as_ref(),
                limit,
                rng.usize(1..=3),
            )
            .unwrap();
            assert_eq!(ours, by_clauses, "round {round}");
            let theirs = tantivy_top(&searcher, &clauses, only.as_ref(), limit);
            assert_eq!(ours.len(), theirs.len(), "round {round}");
            let close = |a: Score, b: Score| (a - b).abs() <= 1e-4 * a.abs().max(1.0);
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!(close(a.1, b.1), "round {round}, rank {i}: {a:?} vs {b:?}");
                // Sums taken in another order may break an exact tie the other way.
                let tied = |j: usize| theirs.get(j).is_some_and(|n| close(n.1, b.1));
                if !(tied(i + 1) || i.checked_sub(1).is_some_and(tied)) {
                    assert_eq!(a.0, b.0, "round {round}, rank {i}");
                }
            }
        }
    }
}
