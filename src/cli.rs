//! The command line for people and scripts (`interfaces.md`): parsing, resolving the library
//! roots and index directory, and rendering each command's answer as text or JSON.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use orchestr8::{
    Config, Engine, EngineError, Filters, Kind, Query, Severity, eval, planner::PlanError,
};

#[derive(Parser, Debug)]
#[command(
    name = "orchestr8",
    version,
    about = "Find and load the right specialist agent, skill or workflow."
)]
pub struct Args {
    /// A library root to serve instead of the shipped library (repeatable).
    #[arg(
        long = "dir",
        global = true,
        value_name = "DIR",
        env = "ORCHESTR8_DIRS",
        value_delimiter = ':'
    )]
    dirs: Vec<PathBuf>,
    /// Also serve the shipped library, after the --dir roots (which win when both define a name).
    #[arg(long, global = true)]
    shipped: bool,
    /// Rank by BM25 alone, without the embedding model.
    #[arg(long, global = true)]
    no_semantic: bool,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Megabytes of definition text kept in memory for repeated loads (an LRU).
    #[arg(
        long,
        global = true,
        value_name = "MB",
        env = "ORCHESTR8_CACHE_MB",
        default_value_t = Config::DEFAULT_CACHE_BYTES >> 20
    )]
    cache_mb: u64,
    /// Format of the logs on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ranked definitions for a natural-language request.
    Search {
        /// What needs doing, in plain words; may be empty when a filter is given.
        #[arg(default_value = "")]
        query: String,
        /// Most definitions listed.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Only this kind: agent, skill or workflow.
        #[arg(long)]
        kind: Option<Kind>,
        /// Only definitions declaring this role (`orchestr8 roles` lists them).
        #[arg(long)]
        role: Option<String>,
        /// Only definitions with this capability or tag.
        #[arg(long)]
        capability: Option<String>,
        /// Only this category.
        #[arg(long)]
        category: Option<String>,
        /// Only definitions for this model (haiku, sonnet, opus, ...).
        #[arg(long)]
        model: Option<String>,
        /// Show how the query was planned.
        #[arg(long)]
        explain: bool,
    },
    /// The full definition of NAME.
    Show { name: String },
    /// Every role with its primary agent and fallback chain; with ROLE, the agents to try.
    Roles { role: Option<String> },
    /// Every problem in the library as `path:line: severity: message`.
    Validate,
    /// Build or refresh the persisted index.
    Index {
        /// Embed every definition that has no vector yet, however many: opening embeds at most
        /// 500 and otherwise ranks by BM25 alone (the model takes 30-40 ms a definition).
        #[arg(long)]
        embed_all: bool,
    },
    /// Serve MCP over stdio (JSON-RPC on stdin/stdout, logs on stderr), or over HTTP.
    Serve {
        /// Serve Streamable HTTP at http://ADDR/mcp instead, e.g. 127.0.0.1:8080 (port 0 picks
        /// a free one; the address is logged on stderr).
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
    },
    /// Search-quality metrics over a judged query file.
    Eval {
        #[arg(long, value_name = "FILE")]
        queries: PathBuf,
    },
    /// Write a synthetic library of COUNT agents, its words drawn from the library's own files.
    Synth {
        #[arg(long)]
        count: usize,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long, default_value_t = orchestr8::synth::DEFAULT_SEED)]
        seed: u64,
    },
    /// Build, reopen, query, load and MCP figures over synthetic libraries of each COUNT.
    Bench {
        #[arg(long, value_delimiter = ',', default_values_t = [1000, 10000])]
        count: Vec<usize>,
        #[arg(long, default_value_t = orchestr8::synth::DEFAULT_SEED)]
        seed: u64,
        /// Requests timed per query class.
        #[arg(long, default_value_t = 300)]
        queries: usize,
        /// Largest COUNT also measured with semantic fusion on (when the model is installed):
        /// embedding a library takes 30-40 ms a definition, about an hour at 100k.
        #[arg(long, default_value_t = orchestr8::bench::SEMANTIC_MAX)]
        semantic_max: usize,
    },
}

pub fn init_logging(args: &Args) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCHESTR8_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// 2 for bad usage (as clap does for bad flags), 1 for everything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<EngineError>() {
        Some(
            EngineError::Root { .. }
            | EngineError::Plan(PlanError::Empty | PlanError::TooLong { .. })
            | EngineError::BadName(_)
            | EngineError::UnknownFilter { .. },
        ) => 2,
        _ => 1,
    }
}

/// The shipped library's home: `ORCHESTR8_HOME`, else the source tree this binary was built from.
fn home() -> PathBuf {
    std::env::var_os("ORCHESTR8_HOME")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn config(args: &Args) -> Config {
    let shipped = args.dirs.is_empty();
    let home_dir = home();
    let library = ["agents", "skills", "commands"]
        .iter()
        .map(|d| home_dir.join(d))
        .filter(|p| p.is_dir());
    let roots: Vec<PathBuf> = if shipped {
        library.collect()
    } else if args.shipped {
        args.dirs.iter().cloned().chain(library).collect()
    } else {
        args.dirs.clone()
    };
    let index_dir = match std::env::var_os("ORCHESTR8_INDEX_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if shipped => Some(home().join("index")),
        None => cache_dir(&roots),
    };
    Config {
        roots,
        index_dir,
        progress: std::io::stderr().is_terminal(),
        // The bench takes the model's folder (`model_dir`) and loads it for each size it
        // measures semantic fusion at; synth ranks nothing. Neither needs an embedder here.
        embedder: match args.command {
            Command::Bench { .. } | Command::Synth { .. } => None,
            _ => embedder(args),
        },
        embed_limit: match args.command {
            Command::Index { embed_all: true } => usize::MAX,
            _ => Config::DEFAULT_EMBED_LIMIT,
        },
        cache_bytes: args.cache_mb.saturating_mul(1 << 20),
    }
}

/// The embedding model's folder: `ORCHESTR8_MODEL_DIR`, else where `scripts/setup` puts it.
/// `None` with `--no-semantic`, or when it is not installed (said once).
fn model_dir(args: &Args) -> Option<PathBuf> {
    if args.no_semantic {
        return None;
    }
    let dir = std::env::var_os("ORCHESTR8_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            cache_base().map(|base| {
                base.join("orchestr8")
                    .join("models")
                    .join("all-minilm-l6-v2")
            })
        })?;
    if !dir.join("model.safetensors").is_file() {
        tracing::warn!(
            model = %dir.display(),
            "semantic search is off: the embedding model is not installed; run scripts/setup to install it"
        );
        return None;
    }
    Some(dir)
}

/// The embedding model, read when a library first needs it (`Embedder::open`). Missing, search
/// runs on BM25 alone and says so.
fn embedder(args: &Args) -> Option<std::sync::Arc<orchestr8::embed::Embedder>> {
    let dir = model_dir(args)?;
    Some(std::sync::Arc::new(orchestr8::embed::Embedder::open(&dir)))
}

fn cache_base() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
}

/// A per-root-set index under the user's cache directory, named by a hash of the roots.
fn cache_dir(roots: &[PathBuf]) -> Option<PathBuf> {
    let base = cache_base()?;
    let joined: Vec<String> = roots
        .iter()
        .map(|r| {
            std::fs::canonicalize(r)
                .unwrap_or_else(|_| r.clone())
                .display()
                .to_string()
        })
        .collect();
    let hash = xxhash_rust::xxh3::xxh3_64(joined.join("\n").as_bytes());
    Some(
        base.join("orchestr8")
            .join("indexes")
            .join(format!("{hash:016x}")),
    )
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = config(&args);
    if config.roots.is_empty() {
        anyhow::bail!(
            "no library found under {}; pass --dir DIR",
            home().display()
        );
    }
    // synth and bench write and index libraries of their own; the configured roots only lend
    // them words, so the engine is not opened on those roots.
    match &args.command {
        Command::Synth { count, out, seed } => {
            let vocabulary = orchestr8::synth::Vocabulary::from_roots(&config.roots)?;
            let report = orchestr8::synth::generate(&vocabulary, *count, out, *seed)?;
            match args.json {
                true => println!("{}", serde_json::to_string_pretty(&report)?),
                false => println!("{report}"),
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Bench {
            count,
            seed,
            queries,
            semantic_max,
        } => {
            let options = orchestr8::bench::Options {
                counts: count.clone(),
                seed: *seed,
                queries: *queries,
                sources: config.roots.clone(),
                binary: Some(std::env::current_exe().context("cannot find this binary")?),
                model: model_dir(&args),
                semantic_max: *semantic_max,
            };
            let report = orchestr8::bench::run(&options, &mut |m| eprintln!("bench: {m}"))?;
            match args.json {
                true => println!("{}", serde_json::to_string_pretty(&report)?),
                false => print!("{}", orchestr8::bench::render(&report)),
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Command::Serve { http } = args.command {
        let library = orchestr8::live::Library::open(config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        match http {
            None => runtime.block_on(orchestr8::mcp::serve_stdio(library))?,
            Some(addr) => runtime.block_on(orchestr8::mcp::serve_http(library, addr))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let engine = Engine::open(&config)?;
    let json = args.json;
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Search {
            query,
            limit,
            kind,
            role,
            capability,
            category,
            model,
            explain,
        } => {
            let filters = Filters {
                kind,
                role,
                capability,
                category,
                model,
            };
            let result = engine.search(&Query {
                text: query,
                filters,
                limit,
            })?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&result)?)?;
            } else {
                if result.results.is_empty() {
                    writeln!(out, "no results")?;
                }
                if !result.plan.unknown.is_empty() {
                    writeln!(
                        out,
                        "no definition mentions: {}",
                        result.plan.unknown.join(", ")
                    )?;
                }
                for (i, hit) in result.results.iter().enumerate() {
                    let place = hit
                        .category
                        .as_deref()
                        .map_or(String::new(), |c| format!(", {c}"));
                    writeln!(
                        out,
                        "{:>2}. {}  ({}{place})  {:.2}",
                        i + 1,
                        hit.name,
                        hit.kind,
                        hit.score
                    )?;
                    writeln!(out, "    {}", hit.description)?;
                    if !hit.aliases.is_empty() {
                        writeln!(out, "    also as: {}", hit.aliases.join(", "))?;
                    }
                    if explain {
                        let rank =
                            |r: Option<usize>| r.map_or("-".to_string(), |r| format!("#{r}"));
                        writeln!(
                            out,
                            "    ranks: bm25 {}, semantic {}; matched: {}",
                            rank(hit.ranks.bm25),
                            rank(hit.ranks.semantic),
                            hit.matched.join(" ")
                        )?;
                    }
                }
                if explain {
                    writeln!(
                        out,
                        "\nsemantic: {}",
                        if result.plan.semantic {
                            "on (fused with BM25 by normalised score)"
                        } else {
                            "off"
                        }
                    )?;
                    let p = &result.plan;
                    writeln!(
                        out,
                        "\nplan: {}",
                        serde_json::to_value(p.strategy)?
                            .as_str()
                            .unwrap_or_default()
                    )?;
                    if let Some(n) = p.filter_matches {
                        writeln!(out, "  filters match {n} definitions")?;
                    }
                    if let Some(n) = p.text_matches_at_least {
                        writeln!(out, "  text matches at least {n} definitions")?;
                    }
                    writeln!(out, "  terms: {}", p.terms.join(" "))?;
                    for c in &p.corrections {
                        writeln!(
                            out,
                            "  corrected: {} -> {}",
                            c.word,
                            c.replaced_by.join(", ")
                        )?;
                    }
                    writeln!(out, "  candidates: {}, {} us", p.candidates, p.elapsed_us)?;
                }
            }
        }
        Command::Show { name } => {
            let loaded = engine.load(&name)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&loaded)?)?;
            } else {
                out.write_all(loaded.text.as_bytes())?;
            }
        }
        Command::Roles { role: Some(role) } => {
            let resolution = engine.resolve_role(&role, 10)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&resolution)?)?;
            } else {
                if resolution.searched {
                    let near = match resolution.closest_roles.as_slice() {
                        [] => String::new(),
                        near => format!(" (closest roles: {})", near.join(", ")),
                    };
                    writeln!(
                        out,
                        "no agent declares the role `{role}`{near}; best matches for its words:"
                    )?;
                }
                for (i, name) in resolution.agents.iter().enumerate() {
                    writeln!(out, "{:>2}. {name}", i + 1)?;
                }
                for name in &resolution.skipped {
                    writeln!(out, "    skipped {name} (not installed)")?;
                }
            }
        }
        Command::Roles { role: None } => {
            let roles = engine.roles();
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&json!({ "roles": roles }))?
                )?;
            } else {
                let width = roles.iter().map(|r| r.role.len()).max().unwrap_or(0);
                for r in &roles {
                    let chain: Vec<String> = r
                        .fallbacks
                        .iter()
                        .map(|l| {
                            if l.missing {
                                format!("{} (missing)", l.name)
                            } else {
                                l.name.clone()
                            }
                        })
                        .collect();
                    let mut line = format!("{:width$}  {}", r.role, r.primary);
                    if !chain.is_empty() {
                        line.push_str(&format!(" -> {}", chain.join(" -> ")));
                    }
                    if !r.also.is_empty() {
                        line.push_str(&format!("  (also: {})", r.also.join(", ")));
                    }
                    writeln!(out, "{line}")?;
                }
            }
        }
        Command::Validate => {
            let diagnostics = engine.diagnostics();
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let warnings = diagnostics.len() - errors;
            if json {
                let report = json!({ "diagnostics": diagnostics, "errors": errors, "warnings": warnings,
                                     "definitions": engine.stats().definitions, "roots": engine.roots() });
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                for d in diagnostics {
                    writeln!(out, "{d}")?;
                }
                let roots: Vec<String> = engine
                    .roots()
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect();
                eprintln!(
                    "{} definitions in {}: {errors} errors, {warnings} warnings",
                    engine.stats().definitions,
                    roots.join(", ")
                );
            }
            if errors > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Index { .. } => {
            let stats = engine.stats();
            let dir = config.index_dir.as_ref().map(|d| d.display().to_string());
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&json!({ "stats": stats, "index_dir": dir }))?
                )?;
            } else {
                writeln!(
                    out,
                    "{} definitions from {} files: parsed {}, removed {}, {} ms{}",
                    stats.definitions,
                    stats.files,
                    stats.parsed,
                    stats.removed,
                    stats.elapsed_ms,
                    dir.map_or(String::new(), |d| format!(" ({d})"))
                )?;
            }
        }
        Command::Serve { .. } => unreachable!("served above"),
        Command::Synth { .. } | Command::Bench { .. } => unreachable!("run above"),
        Command::Eval { queries } => {
            let text = std::fs::read_to_string(&queries)
                .with_context(|| format!("cannot read {}", queries.display()))?;
            let judged = match eval::parse(&text) {
                Ok(judged) => judged,
                Err(errors) => return invalid(&queries, &errors),
            };
            let unknown = eval::unknown_names(&engine, &judged);
            if !unknown.is_empty() {
                return invalid(&queries, &unknown);
            }
            let report = eval::run(&engine, &judged, eval::Ranking::Default)?;
            // With the model loaded, BM25 alone is scored in the same run, for comparison.
            let bm25 = match engine.has_semantic() {
                true => Some(eval::run(&engine, &judged, eval::Ranking::Bm25)?),
                false => None,
            };
            if json {
                let mut value = serde_json::to_value(&report)?;
                value["semantic"] = json!(engine.has_semantic());
                if let Some(bm25) = &bm25 {
                    value["bm25_only"] = json!({ "overall": bm25.overall, "by_tag": bm25.by_tag });
                }
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                writeln!(
                    out,
                    "ranking: {}",
                    if engine.has_semantic() {
                        "BM25 fused with semantic"
                    } else {
                        "BM25 alone"
                    }
                )?;
                render_eval(&mut out, &report)?;
                if let Some(bm25) = &bm25 {
                    writeln!(out, "\nranking: BM25 alone (for comparison)")?;
                    render_eval(&mut out, bm25)?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn invalid(file: &Path, errors: &[String]) -> Result<ExitCode> {
    for e in errors {
        eprintln!("{}: {e}", file.display());
    }
    Ok(ExitCode::from(1))
}

fn render_eval(out: &mut impl Write, report: &eval::Report) -> Result<()> {
    writeln!(
        out,
        "{:<14} {:>4} {:>6} {:>6} {:>7} {:>7} {:>8}",
        "slice", "n", "R@1", "R@5", "MRR@10", "nDCG@5", "Ideal@1"
    )?;
    let row = |out: &mut dyn Write, name: &str, m: &eval::Metrics| {
        let n = m.queries;
        writeln!(
            out,
            "{name:<14} {n:>4} {:>6.3} {:>6.3} {:>7.3} {:>7.3} {:>8.3}",
            m.r1, m.r5, m.mrr10, m.ndcg5, m.ideal1
        )
    };
    row(out, "overall", &report.overall)?;
    for (tag, m) in &report.by_tag {
        row(out, tag, m)?;
    }
    writeln!(
        out,
        "no result: {}; latency ms p50 {:.2}, p95 {:.2}, max {:.2}",
        report.overall.no_result,
        report.latency_ms.p50,
        report.latency_ms.p95,
        report.latency_ms.max
    )?;
    Ok(())
}
