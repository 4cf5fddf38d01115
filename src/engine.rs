//! The engine: one library snapshot (registry, text index, catalog, store) built from a set of
//! roots, refreshed incrementally against the persisted index, and the queries the faces ask.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::diagnostic::{Diagnostic, Severity};
use crate::library::formats::{Location, ParsedFile};
use crate::library::scan::{self, FoundFile};
use crate::library::{BodyText, Definition, Kind, parse_file};
use crate::planner::{self, PlanError, Query, SearchResult};
use crate::registry::{Changes, Registry, RegistryError, SCHEMA_VERSION};
use crate::roles::{self, Link, Resolution, RoleChain};
use crate::store::{Store, StoreError};
use crate::suggest::closest;
use crate::text::{TextError, TextIndex};

/// Where the library is and where its index lives.
#[derive(Clone, Debug)]
pub struct Config {
    pub roots: Vec<PathBuf>,
    /// The persisted index; `None` keeps everything in memory (nothing is written).
    pub index_dir: Option<PathBuf>,
    /// Show a progress bar on stderr while parsing many files.
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("library root {path} {problem}")]
    Root {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("index directory {path}: {source}")]
    IndexDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no definition named `{name}`{}", did_you_mean(.closest))]
    Unknown { name: String, closest: Vec<String> },
    #[error("{0}")]
    BadName(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn did_you_mean(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(", "))
    }
}

/// What a refresh did, for `index --json` and the logs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RefreshStats {
    /// Candidate markdown files under the roots.
    pub files: usize,
    /// Files read and parsed in this run (new or changed since the manifest).
    pub parsed: usize,
    /// Files in the manifest that are gone.
    pub removed: usize,
    /// Definitions served.
    pub definitions: usize,
    /// Why the persisted index was thrown away and rebuilt, if it was.
    pub rebuilt: Option<String>,
    pub elapsed_ms: u64,
}

/// A loaded definition: its frontmatter fields and the file's whole text.
#[derive(Clone, Debug, Serialize)]
pub struct Loaded {
    pub definition: Definition,
    pub aliases: Vec<String>,
    pub text: Arc<str>,
}

pub struct Engine {
    roots: Vec<PathBuf>,
    registry: Registry,
    text: TextIndex,
    catalog: Catalog,
    store: Store,
    diagnostics: Vec<Diagnostic>,
    stats: RefreshStats,
}

/// Bytes of definition text kept in memory.
const STORE_CAPACITY: u64 = 64 << 20;

impl Engine {
    /// Opens the library: walks the roots, re-reads only files that changed since the persisted
    /// index was written (all of them the first time), and serves the result.
    pub fn open(config: &Config) -> Result<Engine, EngineError> {
        let started = Instant::now();
        let roots = canonical_roots(&config.roots)?;
        let (found, walk_diagnostics) = scan::walk(&roots);
        let (registry, text, stats) = match &config.index_dir {
            Some(dir) => refresh_persisted(dir, &roots, &found, config.progress)?,
            None => {
                let registry = Registry::in_memory()?;
                let mut text = TextIndex::open(None)?;
                let stats = update(
                    &registry,
                    &mut text,
                    &found,
                    &HashMap::new(),
                    config.progress,
                )?;
                (registry, text, stats)
            }
        };
        let (catalog, clash_diagnostics) = Catalog::new(registry.definitions()?);
        let mut diagnostics = walk_diagnostics;
        diagnostics.extend(registry.diagnostics()?);
        diagnostics.extend(clash_diagnostics);
        diagnostics.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        let stats = RefreshStats {
            files: found.len(),
            definitions: catalog.len(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..stats
        };
        tracing::debug!(
            files = stats.files,
            parsed = stats.parsed,
            removed = stats.removed,
            ms = stats.elapsed_ms,
            "library refreshed"
        );
        Ok(Engine {
            roots,
            registry,
            text,
            catalog,
            store: Store::new(STORE_CAPACITY),
            diagnostics,
            stats,
        })
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    pub fn stats(&self) -> &RefreshStats {
        &self.stats
    }

    /// Every problem found in the library, in path and line order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Served definitions, in precedence order.
    pub fn definitions(&self) -> impl Iterator<Item = &Definition> {
        self.catalog.served()
    }

    /// Ranked definitions for a request.
    pub fn search(&self, query: &Query) -> Result<SearchResult, EngineError> {
        Ok(planner::run(
            &self.text,
            &self.registry,
            &self.catalog,
            query,
        )?)
    }

    /// The definition served under `name`, or the closest names when there is none.
    pub fn get(&self, name: &str) -> Result<&Definition, EngineError> {
        if let Err(why) = crate::library::formats::check_name(name) {
            return Err(EngineError::BadName(format!(
                "name `{name}` {why}; names are plain words like `code-reviewer`"
            )));
        }
        self.catalog
            .by_name(name)
            .ok_or_else(|| EngineError::Unknown {
                name: name.to_string(),
                closest: closest(name, self.catalog.names(), 5),
            })
    }

    /// The full text of the definition `name`.
    pub fn load(&self, name: &str) -> Result<Loaded, EngineError> {
        let definition = self.get(name)?;
        let text = self.store.load(definition.key, &definition.path)?;
        let aliases = self
            .catalog
            .group(definition.key)
            .map(|(canonical, aliases)| {
                std::iter::once(canonical.name.clone())
                    .chain(aliases)
                    .filter(|n| n != name)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Loaded {
            definition: definition.clone(),
            aliases,
            text,
        })
    }

    /// Every role the library declares, with its primary agent and declared fallbacks.
    pub fn roles(&self) -> Vec<RoleChain> {
        let mut by_role: HashMap<String, Vec<&Definition>> = HashMap::new();
        for d in self.catalog.served().filter(|d| d.kind == Kind::Agent) {
            if let Some(role) = &d.role {
                by_role.entry(role.to_lowercase()).or_default().push(d);
            }
        }
        let mut chains: Vec<RoleChain> = by_role
            .into_iter()
            .map(|(role, mut agents)| {
                agents.sort_by(|a, b| (a.name != role, &a.name).cmp(&(b.name != role, &b.name)));
                let primary = agents[0];
                RoleChain {
                    role,
                    primary: primary.name.clone(),
                    also: agents[1..].iter().map(|d| d.name.clone()).collect(),
                    fallbacks: primary
                        .fallbacks
                        .iter()
                        .map(|f| Link {
                            name: f.clone(),
                            missing: self.catalog.by_name(f).is_none(),
                        })
                        .collect(),
                }
            })
            .collect();
        chains.sort_by(|a, b| a.role.cmp(&b.role));
        chains
    }

    /// The agents to try for `role`, in order: its primary, then the fallback chain (walked
    /// through the registry, past agents that are not installed). When no agent declares the
    /// role, the best agents for the role's words.
    pub fn resolve_role(&self, role: &str, limit: usize) -> Result<Resolution, EngineError> {
        let declared = self.registry.with_role(role)?;
        let mut candidates: Vec<&Definition> = declared
            .iter()
            .filter(|&&k| !self.catalog.is_shadowed(k))
            .filter_map(|&k| self.catalog.by_key(k))
            .collect();
        let wanted = role.to_lowercase();
        candidates.sort_by(|a, b| (a.name != wanted, &a.name).cmp(&(b.name != wanted, &b.name)));
        let Some(primary) = candidates.first() else {
            let query = Query {
                text: role.replace(['-', '_'], " "),
                filters: crate::planner::Filters {
                    kind: Some(Kind::Agent),
                    ..Default::default()
                },
                limit,
            };
            let agents = match self.search(&query) {
                Ok(found) => found.results.into_iter().map(|h| h.name).collect(),
                Err(EngineError::Plan(PlanError::Empty)) => Vec::new(),
                Err(e) => return Err(e),
            };
            return Ok(Resolution {
                role: role.to_string(),
                agents,
                skipped: Vec::new(),
                searched: true,
            });
        };
        let (mut agents, skipped) =
            roles::walk(&primary.name, |name| match self.catalog.by_name(name) {
                Some(d) => self.registry.fallbacks(d.key).map(Some),
                None => Ok(None),
            })?;
        for other in &candidates[1..] {
            if !agents.contains(&other.name) {
                agents.insert(1.min(agents.len()), other.name.clone());
            }
        }
        agents.truncate(limit.max(1));
        Ok(Resolution {
            role: role.to_string(),
            agents,
            skipped,
            searched: false,
        })
    }

    /// Every served name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.catalog.names()
    }

    /// Every capability (and tag) with how many served definitions declare it, by name.
    pub fn capabilities(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for d in self.catalog.served() {
            let mut own: Vec<String> = d
                .capabilities
                .iter()
                .chain(&d.tags)
                .map(|c| c.to_lowercase())
                .collect();
            own.sort_unstable();
            own.dedup();
            for c in own {
                *counts.entry(c).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// Served definitions with `capability` (or a tag of that name), copies collapsed, those
    /// that list it earlier first (a first capability is what the agent is for), then by name.
    pub fn with_capability(&self, capability: &str) -> Result<Vec<&Definition>, EngineError> {
        let filters = crate::planner::Filters {
            capability: Some(capability.to_string()),
            ..Default::default()
        };
        let wanted = capability.to_lowercase();
        let mut seen = HashSet::new();
        let mut found: Vec<(usize, &Definition)> = Vec::new();
        for key in self.registry.filter(&filters, None)? {
            let Some((canonical, _)) = self.catalog.group(key) else {
                continue;
            };
            if self.catalog.is_shadowed(key) || !seen.insert(canonical.key) {
                continue;
            }
            let position = canonical
                .capabilities
                .iter()
                .chain(&canonical.tags)
                .position(|c| c.to_lowercase() == wanted)
                .unwrap_or(usize::MAX);
            found.push((position, canonical));
        }
        found.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
        Ok(found.into_iter().map(|(_, d)| d).collect())
    }

    /// The files of a skill's folder other than SKILL.md (`references/`, `scripts/`, ...), as
    /// paths relative to that folder, sorted. Symlinks are not followed.
    pub fn skill_files(&self, skill: &Definition) -> Vec<String> {
        let Some(dir) = skill.path.parent().filter(|_| skill.kind == Kind::Skill) else {
            return Vec::new();
        };
        let mut files: Vec<String> = ignore::WalkBuilder::new(dir)
            .standard_filters(false)
            .hidden(true)
            .max_depth(Some(4))
            .build()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_some_and(|t| t.is_file()) && e.depth() > 1)
            .filter_map(|e| {
                e.path()
                    .strip_prefix(dir)
                    .ok()
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
            })
            .collect();
        files.sort();
        files
    }

    /// A file of the skill `name`'s folder, by relative path. The resolved file must lie inside
    /// that folder (no `..`, no symlink out) and be UTF-8 text under the size limit.
    pub fn read_skill_file(&self, name: &str, relative: &str) -> Result<String, EngineError> {
        let skill = self.get(name)?;
        let refused = |why: &str| {
            EngineError::BadName(format!("refused `{relative}` in skill `{name}`: {why}"))
        };
        if skill.kind != Kind::Skill {
            return Err(refused("not a skill"));
        }
        let relative_path = Path::new(relative);
        if relative_path.is_absolute()
            || relative_path
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(refused("the path must stay inside the skill's folder"));
        }
        let dir = skill
            .path
            .parent()
            .ok_or_else(|| refused("skill has no folder"))?;
        let not_found = || EngineError::Unknown {
            name: format!("{name}/{relative}"),
            closest: closest(
                relative,
                self.skill_files(skill).iter().map(String::as_str),
                5,
            ),
        };
        let (Ok(folder), Ok(file)) = (
            std::fs::canonicalize(dir),
            std::fs::canonicalize(dir.join(relative_path)),
        ) else {
            return Err(not_found());
        };
        if !file.starts_with(&folder) {
            return Err(refused("it resolves outside the skill's folder"));
        }
        if !file.is_file() {
            return Err(not_found());
        }
        let text = self.store.load(crate::library::key_of(&file), &file)?;
        Ok(text.to_string())
    }

    /// The name that stands for `name`'s copy group in result lists.
    pub fn canonical_name(&self, name: &str) -> Option<&str> {
        let d = self.catalog.by_name(name)?;
        self.catalog
            .group(d.key)
            .map(|(canonical, _)| canonical.name.as_str())
    }
}

fn canonical_roots(roots: &[PathBuf]) -> Result<Vec<PathBuf>, EngineError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for root in roots {
        let meta = std::fs::metadata(root).map_err(|_| EngineError::Root {
            path: root.clone(),
            problem: "does not exist or cannot be read",
        })?;
        if !meta.is_dir() {
            return Err(EngineError::Root {
                path: root.clone(),
                problem: "is a file, not a directory",
            });
        }
        let canonical = std::fs::canonicalize(root).map_err(|_| EngineError::Root {
            path: root.clone(),
            problem: "cannot be resolved",
        })?;
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

/// Refreshes the persisted index under `dir` and returns an in-memory registry copy with the
/// text index opened from disk. The whole refresh holds an exclusive lock on `dir/lock`, so two
/// processes over one root take turns: the second finds the work done and re-reads nothing.
fn refresh_persisted(
    dir: &Path,
    roots: &[PathBuf],
    found: &[FoundFile],
    progress: bool,
) -> Result<(Registry, TextIndex, RefreshStats), EngineError> {
    let io = |source| EngineError::IndexDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let lock = File::create(dir.join("lock")).map_err(io)?;
    lock.lock().map_err(io)?;
    let db_path = dir.join("registry.duckdb");
    let text_dir = dir.join("text");

    let (registry, mut text, rebuilt) = match open_persisted(&db_path, &text_dir, roots) {
        Ok(opened) => (opened.0, opened.1, None),
        Err(reason) => {
            tracing::warn!(index = %dir.display(), %reason, "rebuilding the persisted index");
            wipe(dir, &text_dir).map_err(io)?;
            let opened =
                open_persisted(&db_path, &text_dir, roots).map_err(|e| EngineError::IndexDir {
                    path: dir.to_path_buf(),
                    source: std::io::Error::other(e),
                })?;
            (opened.0, opened.1, Some(reason))
        }
    };
    let manifest = registry.manifest()?;
    let stats = update(&registry, &mut text, found, &manifest, progress)?;
    registry.set_schema_version()?;
    drop(registry);
    let copy = Registry::copy_of(&db_path)?;
    drop(lock);
    Ok((copy, text, RefreshStats { rebuilt, ..stats }))
}

/// Opens both halves of a persisted index, or says why they cannot be trusted.
fn open_persisted(
    db_path: &Path,
    text_dir: &Path,
    roots: &[PathBuf],
) -> Result<(Registry, TextIndex), String> {
    let registry =
        Registry::open_file(db_path).map_err(|e| format!("unreadable registry ({e})"))?;
    let version = registry.schema_version().map_err(|e| e.to_string())?;
    let manifest = registry.manifest().map_err(|e| e.to_string())?;
    match version {
        Some(v) if v != SCHEMA_VERSION => {
            return Err(format!(
                "index schema {v}, this build uses {SCHEMA_VERSION}"
            ));
        }
        None if !manifest.is_empty() => return Err("index has no schema version".into()),
        _ => {}
    }
    if manifest
        .keys()
        .any(|p| !roots.iter().any(|r| p.starts_with(r)))
    {
        return Err("index was built for other roots".into());
    }
    std::fs::create_dir_all(text_dir).map_err(|e| e.to_string())?;
    let text =
        TextIndex::open(Some(text_dir)).map_err(|e| format!("unreadable text index ({e})"))?;
    let definitions = registry.definitions().map_err(|e| e.to_string())?.len() as u64;
    if text.num_docs() != definitions {
        return Err(format!(
            "text index holds {} documents, registry {definitions}",
            text.num_docs()
        ));
    }
    Ok((registry, text))
}

fn wipe(dir: &Path, text_dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_db = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("registry.duckdb"));
        if is_db {
            std::fs::remove_file(&path)?;
        }
    }
    if text_dir.exists() {
        std::fs::remove_dir_all(text_dir)?;
    }
    Ok(())
}

/// Brings `registry` and `text` in line with the files on disk, reading only the files whose
/// size or mtime differ from the manifest.
fn update(
    registry: &Registry,
    text: &mut TextIndex,
    found: &[FoundFile],
    manifest: &HashMap<PathBuf, (u64, i64)>,
    progress: bool,
) -> Result<RefreshStats, EngineError> {
    let present: HashSet<&Path> = found.iter().map(|f| f.path.as_path()).collect();
    let changed: Vec<&FoundFile> = found
        .iter()
        .filter(|f| manifest.get(&f.path) != Some(&(f.size, f.mtime_ns)))
        .collect();
    let gone: Vec<PathBuf> = manifest
        .keys()
        .filter(|p| !present.contains(p.as_path()))
        .cloned()
        .collect();

    let bar = progress_bar(progress, changed.len());
    let parsed: Vec<(&FoundFile, u64, ParsedFile)> = changed
        .par_iter()
        .map(|f| {
            let (hash, parsed) = read_and_parse(f);
            bar.inc(1);
            (*f, hash, parsed)
        })
        .collect();
    bar.finish_and_clear();

    let mut changes = Changes {
        removed: gone.clone(),
        ..Default::default()
    };
    changes.removed.extend(
        changed
            .iter()
            .filter(|f| manifest.contains_key(&f.path))
            .map(|f| f.path.clone()),
    );
    let mut added: Vec<(Definition, BodyText)> = Vec::new();
    for (file, hash, parsed) in &parsed {
        changes.files.push((
            file.path.clone(),
            file.root,
            file.size,
            file.mtime_ns,
            *hash,
        ));
        changes.diagnostics.extend(parsed.diagnostics.iter());
    }
    for (_, _, parsed) in parsed.iter() {
        if let Some((d, body)) = &parsed.definition {
            added.push((
                d.clone(),
                BodyText {
                    headings: body.headings.clone(),
                    text: body.text.clone(),
                },
            ));
        }
    }
    changes.definitions = added.iter().map(|(d, _)| d).collect();
    let removed_keys: Vec<u64> = changes
        .removed
        .iter()
        .map(|p| crate::library::key_of(p))
        .collect();
    // The text index first: if the process dies in between, the manifest still lists the
    // files as unread and the next run redoes both.
    text.apply(&removed_keys, &added)?;
    registry.apply(&changes)?;
    let (catalog, _) = Catalog::new(registry.definitions()?);
    registry.set_aliases(&catalog.alias_pairs())?;
    Ok(RefreshStats {
        parsed: parsed.len(),
        removed: gone.len(),
        ..Default::default()
    })
}

fn read_and_parse(file: &FoundFile) -> (u64, ParsedFile) {
    match std::fs::read(&file.path) {
        Ok(bytes) => {
            let location = Location {
                root: file.root,
                path: &file.path,
                relative: &file.relative,
            };
            (
                xxhash_rust::xxh3::xxh3_64(&bytes),
                parse_file(&location, &bytes),
            )
        }
        Err(error) => (
            0,
            ParsedFile {
                definition: None,
                diagnostics: vec![Diagnostic {
                    path: file.path.clone(),
                    line: 1,
                    severity: Severity::Error,
                    message: format!("cannot read file: {error}"),
                }],
            },
        ),
    }
}

fn progress_bar(enabled: bool, len: usize) -> indicatif::ProgressBar {
    if !enabled || len < 500 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_message("parsing definitions");
    bar
}
