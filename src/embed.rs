//! Sentence embeddings for semantic search: all-MiniLM-L6-v2 (384 dimensions) run in-process
//! with candle, from the weights `scripts/setup` unpacks from PyPI. Nothing is downloaded at
//! run time; without the model folder search is BM25 alone.
//!
//! Texts are mean-pooled over real tokens and L2-normalised, so a dot product is the cosine.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use quick_cache::sync::Cache;
use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationParams};

use crate::library::KeySet;

pub const DIMENSIONS: usize = 384;

/// Definitions are embedded from their routing text only (name, description, use-when), cut
/// here: the first sentences carry what an agent is for, and attention cost grows with length.
const DEFINITION_TOKENS: usize = 128;
/// A query may be a 70-word brief: keep all of it.
const QUERY_TOKENS: usize = 256;
/// Texts embedded per forward pass when indexing, sorted by length so padding stays small.
const BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model in {dir}: {message}")]
    Load { dir: String, message: String },
    #[error("embedding: {0}")]
    Run(String),
}

fn run_error(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Run(e.to_string())
}

/// The model, loaded on first use: a process that opens a library too large to embed on
/// opening (`Config::embed_limit`) never needs it, and its weights are some 90 MB and 100 ms.
pub struct Embedder {
    dir: PathBuf,
    model: OnceLock<Result<Model, String>>,
    queries: Cache<String, Arc<Vec<f32>>>,
}

struct Model {
    bert: BertModel,
    /// Truncating at QUERY_TOKENS, for requests.
    query_tokenizer: Tokenizer,
    /// Truncating at DEFINITION_TOKENS, for definitions. Two configured copies, because
    /// cloning a tokenizer to change its truncation copies its whole vocabulary (milliseconds).
    definition_tokenizer: Tokenizer,
    /// How long loading took: what every process with semantic search pays once.
    load_time: std::time::Duration,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Embedder(all-MiniLM-L6-v2)")
    }
}

impl Embedder {
    /// The model in `dir` (`config.json`, `tokenizer.json`, `model.safetensors`), read when
    /// first needed.
    pub fn open(dir: &Path) -> Embedder {
        Embedder {
            dir: dir.to_path_buf(),
            model: OnceLock::new(),
            queries: Cache::new(4096),
        }
    }

    /// The model in `dir`, read now.
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        let embedder = Embedder::open(dir);
        embedder.model()?;
        Ok(embedder)
    }

    /// The model, read on the first call; an error is kept and returned again.
    fn model(&self) -> Result<&Model, EmbedError> {
        self.model
            .get_or_init(|| {
                let model = Model::load(&self.dir);
                if let Ok(model) = &model {
                    let ms = model.load_time.as_millis() as u64;
                    tracing::debug!(ms, "embedding model loaded");
                }
                model
            })
            .as_ref()
            .map_err(|message| EmbedError::Load {
                dir: self.dir.display().to_string(),
                message: message.clone(),
            })
    }

    /// Reads the model if it is not yet read: whether it can be used.
    pub fn ready(&self) -> Result<(), EmbedError> {
        self.model().map(|_| ())
    }

    /// How long reading the model took, once it was read.
    pub fn load_time(&self) -> Option<std::time::Duration> {
        self.model.get()?.as_ref().ok().map(|m| m.load_time)
    }

    /// The vector of a query, cached: orchestrators repeat themselves.
    pub fn query(&self, text: &str) -> Result<Arc<Vec<f32>>, EmbedError> {
        if let Some(v) = self.queries.get(text) {
            return Ok(v);
        }
        let model = self.model()?;
        let mut vectors = model.embed(&[text], &model.query_tokenizer)?;
        let v = Arc::new(
            vectors
                .pop()
                .ok_or_else(|| EmbedError::Run("no vector".into()))?,
        );
        self.queries.insert(text.to_string(), Arc::clone(&v));
        Ok(v)
    }

    /// Vectors of definition texts, in input order.
    pub fn documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = self.model()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
            for (&i, v) in chunk
                .iter()
                .zip(model.embed(&batch, &model.definition_tokenizer)?)
            {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

impl Model {
    fn load(dir: &Path) -> Result<Model, String> {
        let started = std::time::Instant::now();
        let config = std::fs::read_to_string(dir.join("config.json")).map_err(|e| e.to_string())?;
        let config: Config = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| e.to_string())?;
        // The shipped tokenizer.json pads every text to 128 tokens; pooling must see real
        // tokens only, and padding a 5-word query costs five times the work.
        tokenizer.with_padding(None);
        // SAFETY: the weights file is mapped read-only and belongs to the model folder that
        // scripts/setup wrote; nothing rewrites it while a process runs.
        let weights = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DType::F32,
                &Device::Cpu,
            )
        }
        .map_err(|e| e.to_string())?;
        let bert = BertModel::load(weights, &config).map_err(|e| e.to_string())?;
        let truncated = |max_length: usize| {
            let mut t = tokenizer.clone();
            t.with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| e.to_string())?;
            Ok::<_, String>(t)
        };
        Ok(Model {
            bert,
            query_tokenizer: truncated(QUERY_TOKENS)?,
            definition_tokenizer: truncated(DEFINITION_TOKENS)?,
            load_time: started.elapsed(),
        })
    }

    fn embed(&self, texts: &[&str], tokenizer: &Tokenizer) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(run_error)?;
        let (n, len) = (
            encodings.len(),
            encodings.iter().map(|e| e.len()).max().unwrap_or(0).max(1),
        );
        let (mut ids, mut mask) = (vec![0u32; n * len], vec![0u32; n * len]);
        for (i, e) in encodings.iter().enumerate() {
            for (j, (&id, &m)) in e.get_ids().iter().zip(e.get_attention_mask()).enumerate() {
                ids[i * len + j] = id;
                mask[i * len + j] = m;
            }
        }
        let ids = Tensor::from_vec(ids, (n, len), &Device::Cpu).map_err(run_error)?;
        let mask = Tensor::from_vec(mask, (n, len), &Device::Cpu).map_err(run_error)?;
        let types = ids.zeros_like().map_err(run_error)?;
        let hidden = self
            .bert
            .forward(&ids, &types, Some(&mask))
            .map_err(run_error)?;
        let weights = mask
            .to_dtype(DType::F32)
            .and_then(|m| m.unsqueeze(2))
            .map_err(run_error)?;
        let summed = hidden
            .broadcast_mul(&weights)
            .and_then(|h| h.sum(1))
            .map_err(run_error)?;
        let counts = weights
            .sum(1)
            .and_then(|c| c.clamp(1e-9, f32::MAX))
            .map_err(run_error)?;
        let mean = summed.broadcast_div(&counts).map_err(run_error)?;
        let norm = mean
            .sqr()
            .and_then(|s| s.sum_keepdim(1))
            .and_then(|s| s.sqrt())
            .and_then(|s| s.clamp(1e-12, f32::MAX))
            .map_err(run_error)?;
        mean.broadcast_div(&norm)
            .and_then(|v| v.to_vec2::<f32>())
            .map_err(run_error)
    }
}

/// What a definition is embedded from: its name in words, its description without
/// `<example>` blocks, and its use-when scenarios.
pub(crate) fn routing_text(d: &crate::library::Definition) -> String {
    let mut text = d.name.replace(['-', '_'], " ");
    text.push_str(". ");
    text.push_str(&crate::library::one_line(&d.description, 600));
    for scenario in d.use_when.iter().take(5) {
        text.push(' ');
        text.push_str(scenario);
    }
    text
}

/// Definition vectors held for search, quantised to 8 bits a dimension with one scale per
/// vector, and scanned brute force. At 100k definitions the f32 matrix was 154 MB and a scan
/// 34 ms, bound by memory bandwidth and a float sum the compiler may not reorder; as i8 it is
/// 38 MB and an integer dot product the compiler vectorises. Rounding moves a cosine by about
/// 0.002 (tested below), far below the gaps that decide a ranking; the persisted vectors stay
/// f32, so the quantisation can change without re-embedding.
#[derive(Default)]
pub struct Vectors {
    keys: Vec<u64>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    position: std::collections::HashMap<u64, usize>,
}

/// From this many vectors on, an unfiltered scan is split across threads.
const PARALLEL_ROWS: usize = 16_384;

/// `vector` as i8 codes and the scale that maps a code back to its value.
fn quantise(vector: &[f32]) -> (Vec<i8>, f32) {
    let max = vector.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; vector.len()], 0.0);
    }
    let scale = max / 127.0;
    let codes = vector
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, scale)
}

/// Integer dot product: exact and associative, so it vectorises without fast-math (384 products
/// of at most 127 * 127 fit an i32 many times over).
fn dot(a: &[i8], b: &[i8]) -> i32 {
    // Fixed-width lanes let the compiler use whole SIMD registers (16 products a step with
    // SSE2's pmaddwd) instead of a few bytes at a time.
    let mut lanes = [0i32; 16];
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += i32::from(x) * i32::from(y);
        }
    }
    lanes.iter().sum()
}

impl Vectors {
    pub fn new(rows: Vec<(u64, Vec<f32>)>) -> Vectors {
        let mut v = Vectors::default();
        for (key, vector) in rows {
            v.push(key, &vector);
        }
        v
    }

    /// Adds one definition's vector, quantised; a vector of the wrong length is skipped.
    pub(crate) fn push(&mut self, key: u64, vector: &[f32]) {
        if vector.len() != DIMENSIONS {
            return;
        }
        let (codes, scale) = quantise(vector);
        self.position.insert(key, self.keys.len());
        self.keys.push(key);
        self.codes.extend_from_slice(&codes);
        self.scales.push(scale);
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `limit` nearest definitions to `query` by dot product, best first; with `only`,
    /// among those keys.
    pub fn nearest(&self, query: &[f32], only: Option<&KeySet>, limit: usize) -> Vec<(u64, f32)> {
        if query.len() != DIMENSIONS {
            return Vec::new();
        }
        let (query, query_scale) = quantise(query);
        let score = |row: usize, codes: &[i8]| -> (u64, f32) {
            let value = dot(codes, &query) as f32 * self.scales[row] * query_scale;
            (self.keys[row], value)
        };
        let mut scored: Vec<(u64, f32)> = match only {
            // Large libraries are scanned on every core; below that, threads cost more than
            // they save.
            None if self.keys.len() >= PARALLEL_ROWS => self
                .codes
                .par_chunks_exact(DIMENSIONS)
                .enumerate()
                .map(|(row, codes)| score(row, codes))
                .collect(),
            None => self
                .codes
                .chunks_exact(DIMENSIONS)
                .enumerate()
                .map(|(row, codes)| score(row, codes))
                .collect(),
            Some(keys) => keys
                .iter()
                .filter_map(|k| self.position.get(k))
                .map(|&row| score(row, &self.codes[row * DIMENSIONS..(row + 1) * DIMENSIONS]))
                .collect(),
        };
        let limit = limit.min(scored.len());
        if limit == 0 {
            return Vec::new();
        }
        let best_first = |a: &(u64, f32), b: &(u64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        scored.select_nth_unstable_by(limit - 1, best_first);
        scored.truncate(limit);
        scored.sort_by(best_first);
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::Vectors;
    use crate::library::KeySet;

    #[test]
    fn nearest_ranks_by_dot_product_within_a_filter() {
        let unit = |i: usize| {
            let mut v = vec![0.0; super::DIMENSIONS];
            v[i] = 1.0;
            v
        };
        let vectors = Vectors::new(vec![(1, unit(0)), (2, unit(1)), (3, unit(2))]);
        let mut query = unit(1);
        query[0] = 0.5;
        assert_eq!(
            vectors
                .nearest(&query, None, 2)
                .iter()
                .map(|h| h.0)
                .collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(
            vectors
                .nearest(&query, Some(&KeySet::from_iter([1, 3])), 5)
                .iter()
                .map(|h| h.0)
                .collect::<Vec<_>>(),
            [1, 3]
        );
    }

    #[test]
    fn quantised_scores_stay_within_a_hair_of_the_exact_cosine() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut unit = || {
            let v: Vec<f32> = (0..super::DIMENSIONS).map(|_| rng.f32() - 0.5).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        let rows: Vec<(u64, Vec<f32>)> = (0..200).map(|k| (k, unit())).collect();
        let query = unit();
        let vectors = Vectors::new(rows.clone());
        let hits = vectors.nearest(&query, None, rows.len());
        assert_eq!(hits.len(), rows.len());
        for (key, score) in hits {
            let exact: f32 = rows[key as usize]
                .1
                .iter()
                .zip(&query)
                .map(|(a, b)| a * b)
                .sum();
            assert!((score - exact).abs() < 0.005, "{key}: {score} vs {exact}");
        }
        assert!(
            vectors.nearest(&[1.0; 3], None, 5).is_empty(),
            "wrong length"
        );
    }
}
