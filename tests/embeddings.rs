//! Our embeddings agree with an independent implementation of the same model: plain numpy
//! with its own WordPiece tokenizer (`tests/fixtures/embeddings/reference.py`, whose output is
//! `reference.json`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orchestr8::embed::{DIMENSIONS, Embedder};
use orchestr8::{Config, Engine, Filters, Query};
use serde_json::Value;

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("ORCHESTR8_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/orchestr8/models/all-minilm-l6-v2")
        });
    assert!(
        dir.join("model.safetensors").is_file(),
        "the embedding model is missing in {}: run scripts/setup",
        dir.display()
    );
    dir
}

#[test]
fn vectors_match_an_independent_implementation() {
    let embedder = Embedder::load(&model_dir()).expect("the model loads");
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/embeddings/reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for sentence in reference["sentences"].as_array().unwrap() {
        let text = sentence["text"].as_str().unwrap();
        let expected: Vec<f32> = sentence["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(expected.len(), DIMENSIONS);
        let ours = embedder.query(text).unwrap();
        let cosine: f32 = ours.iter().zip(&expected).map(|(a, b)| a * b).sum::<f32>()
            / (expected.iter().map(|b| b * b).sum::<f32>().sqrt());
        assert!(cosine >= 0.99, "cosine {cosine} for {text:?}");
        println!("{cosine:.6}  {text}");
    }
}

#[test]
fn similar_requests_are_closer_than_unrelated_ones() {
    let embedder = Embedder::load(&model_dir()).expect("the model loads");
    let dot = |a: &str, b: &str| -> f32 {
        let (x, y) = (embedder.query(a).unwrap(), embedder.query(b).unwrap());
        x.iter().zip(y.iter()).map(|(p, q)| p * q).sum()
    };
    let near = dot(
        "the app freezes whenever someone scrolls the feed",
        "find and fix performance problems and slow rendering",
    );
    let far = dot(
        "the app freezes whenever someone scrolls the feed",
        "write the quarterly tax report",
    );
    assert!(near > far, "{near} <= {far}");
}

/// Opening embeds at most `embed_limit` definitions that have no vector: past it, searches rank
/// by BM25 alone (and the model is never read) until an open without a limit (`index
/// --embed-all`) embeds them all; after that, a reopen has nothing left to embed, whatever its
/// limit.
#[test]
fn opening_embeds_no_more_than_its_limit() {
    let embedder = Arc::new(Embedder::open(&model_dir()));
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-code");
    let index = tempfile::tempdir().expect("a temporary directory");
    let config = |embed_limit: usize| Config {
        index_dir: Some(index.path().to_path_buf()),
        embedder: Some(Arc::clone(&embedder)),
        embed_limit,
        ..Config::new(vec![library.clone()])
    };
    let opened = |embed_limit| Engine::open(&config(embed_limit)).expect("the library opens");
    let first = opened(1);
    assert!(first.stats().definitions > 1);
    assert!(!first.has_semantic());
    let request = Query {
        text: "terraform modules for our infrastructure".into(),
        filters: Filters::default(),
        limit: 5,
    };
    let found = first.search(&request).expect("BM25 still ranks");
    assert!(!found.plan.semantic && !found.results.is_empty());
    assert!(
        embedder.load_time().is_none(),
        "the model was read for nothing"
    );
    drop(first);
    assert!(opened(usize::MAX).has_semantic());
    let reopened = opened(0);
    assert!(reopened.has_semantic());
    assert!(reopened.search(&request).expect("a search").plan.semantic);
}

/// A model folder that cannot be read leaves search to BM25, as a missing one does.
#[test]
fn an_unreadable_model_leaves_search_to_bm25() {
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-code");
    let empty = tempfile::tempdir().expect("a temporary directory");
    let config = Config {
        embedder: Some(Arc::new(Embedder::open(empty.path()))),
        ..Config::new(vec![library])
    };
    let engine = Engine::open(&config).expect("the library opens");
    assert!(!engine.has_semantic());
    let found = engine
        .search(&Query {
            text: "terraform modules for our infrastructure".into(),
            filters: Filters::default(),
            limit: 5,
        })
        .expect("BM25 ranks");
    assert!(!found.plan.semantic && !found.results.is_empty());
}
