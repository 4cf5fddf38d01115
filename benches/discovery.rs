//! Criterion benches of discovery over a 1,000-definition synthetic library (`orchestr8 synth`,
//! words from the shipped library): scan and index, reopen, every query class of
//! `orchestr8 bench`, definition loads cold and cached, and the MCP round trip over stdio.
//!
//! The `vectors` group times the semantic side's scan alone at 1k, 10k and 100k.
//!
//! `orchestr8 bench` gives the same figures at 10k and 100k in one run; these benches are for
//! comparing one change with the last (criterion keeps the previous run and reports the
//! difference), so they stay at a size that takes a few minutes.
//!
//! Run: `. scripts/env.sh && cargo bench --bench discovery` (a filter narrows it, e.g.
//! `cargo bench --bench discovery -- query/`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use orchestr8::bench::{Class, McpClient, probes};
use orchestr8::embed::{DIMENSIONS, Vectors};
use orchestr8::synth::{self, Vocabulary};
use orchestr8::{Config, Engine};

const COUNT: usize = 1_000;
const SEED: u64 = synth::DEFAULT_SEED;

/// A synthetic library with a built index, removed at the end of the run.
struct Fixture {
    dir: tempfile::TempDir,
    library: PathBuf,
    index: PathBuf,
    vocabulary: Vocabulary,
}

impl Fixture {
    fn new() -> Fixture {
        let home = Path::new(env!("CARGO_MANIFEST_DIR"));
        let sources: Vec<PathBuf> = ["agents", "skills", "commands"]
            .iter()
            .map(|d| home.join(d))
            .filter(|p| p.is_dir())
            .collect();
        let vocabulary =
            Vocabulary::from_roots(&sources).expect("the shipped library gives the vocabulary");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let library = dir.path().join("library");
        synth::generate(&vocabulary, COUNT, &library, SEED).expect("synth");
        let index = dir.path().join("index");
        Engine::open(&config(&library, &index)).expect("the first build");
        Fixture {
            dir,
            library,
            index,
            vocabulary,
        }
    }
}

fn config(library: &Path, index: &Path) -> Config {
    Config {
        index_dir: Some(index.to_path_buf()),
        ..Config::new(vec![library.to_path_buf()])
    }
}

fn discovery(c: &mut Criterion) {
    let f = Fixture::new();
    let reopen = config(&f.library, &f.index);
    let sentence = probes(&f.vocabulary, Class::Sentence, 1, SEED)
        .pop()
        .expect("one probe");

    let mut group = c.benchmark_group("index-1k");
    group.sample_size(10);
    group.bench_function("scan+index", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(f.dir.path()).expect("an index directory"),
            |dir| {
                let engine = Engine::open(&config(&f.library, dir.path())).expect("build");
                (engine, dir)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("reopen+first-answer", |b| {
        b.iter_with_large_drop(|| {
            let engine = Engine::open(&reopen).expect("reopen");
            sentence.run(&engine).expect("query");
            engine
        })
    });
    group.finish();

    let engine = Engine::open(&reopen).expect("reopen");
    let mut group = c.benchmark_group("query-1k");
    group.measurement_time(Duration::from_secs(3));
    for class in Class::ALL {
        let set = probes(&f.vocabulary, class, 200, SEED);
        let mut next = 0;
        group.bench_function(class.name(), |b| {
            b.iter(|| {
                let probe = &set[next % set.len()];
                next += 1;
                probe.run(&engine).expect("query")
            })
        });
    }
    group.finish();

    let names: Vec<String> = engine.names().into_iter().map(String::from).collect();
    let mut group = c.benchmark_group("load-1k");
    group.measurement_time(Duration::from_secs(3));
    // Cold: the first load of each name after an open; a fresh engine when the names run out.
    group.bench_function("cold", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let fresh = Engine::open(&reopen).expect("reopen");
                for name in names.iter().take((iters - done) as usize) {
                    let started = Instant::now();
                    std::hint::black_box(fresh.load(name).expect("load"));
                    total += started.elapsed();
                    done += 1;
                }
            }
            total
        })
    });
    for name in &names {
        engine.load(name).expect("load");
    }
    let mut next = 0;
    group.bench_function("cached", |b| {
        b.iter(|| {
            let name = &names[next % names.len()];
            next += 1;
            engine.load(name).expect("load")
        })
    });
    group.finish();

    let mut group = c.benchmark_group("mcp-1k");
    group.measurement_time(Duration::from_secs(3));
    let binary = Path::new(env!("CARGO_BIN_EXE_orchestr8"));
    let mut client = McpClient::spawn(binary, &f.library, &f.index).expect("serve");
    let texts: Vec<String> = probes(&f.vocabulary, Class::Sentence, 200, SEED)
        .iter()
        .map(|p| p.text().to_string())
        .collect();
    let mut next = 0;
    group.bench_function("discover_agents", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    next += 1;
                    client
                        .discover(&texts[next % texts.len()])
                        .expect("round trip")
                })
                .sum()
        })
    });
    group.finish();
}

/// The semantic side's scan over definition vectors at 1k, 10k and 100k (random unit vectors:
/// the cost does not depend on the values, and embedding 100k definitions takes an hour here).
fn vector_scan(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut unit = || {
        let v: Vec<f32> = (0..DIMENSIONS).map(|_| rng.f32() - 0.5).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let query = unit();
    let mut group = c.benchmark_group("vectors");
    group.measurement_time(Duration::from_secs(3));
    for count in [1_000u64, 10_000, 100_000] {
        let vectors = Vectors::new((0..count).map(|key| (key, unit())).collect());
        group.bench_function(format!("nearest-{}k", count / 1000), |b| {
            b.iter(|| vectors.nearest(&query, None, 50))
        });
    }
    group.finish();
}

criterion_group!(benches, discovery, vector_scan);
criterion_main!(benches);
