//! The engine: one library snapshot (registry, text index, catalog, store) built from a set of
//! roots, refreshed incrementally against the persisted index (`refresh`), and the queries the
//! faces ask.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

pub use crate::catalog::Summary;
use crate::catalog::{Catalog, CatalogFileError, Group};
use crate::diagnostic::Diagnostic;
use crate::embed::{Embedder, Vectors};
use crate::library::scan;
use crate::library::{Definition, Kind};
use crate::planner::{self, Filters, PlanError, Query, SearchResult};
use crate::registry::{Declared, Registry, RegistryError};
use crate::roles::{self, Link, Resolution, RoleChain};
use crate::store::{Store, StoreError};
use crate::suggest::closest;
use crate::text::{TextError, TextIndex};

mod refresh;

use refresh::{OpenIndex, Refreshed};

/// Where the library is and where its index lives.
#[derive(Clone, Debug)]
pub struct Config {
    pub roots: Vec<PathBuf>,
    /// The persisted index; `None` keeps everything in memory (nothing is written).
    pub index_dir: Option<PathBuf>,
    /// Show a progress bar on stderr while parsing many files.
    pub progress: bool,
    /// The sentence-embedding model; `None` searches with BM25 alone.
    pub embedder: Option<Arc<Embedder>>,
    /// Most definitions without a vector that opening embeds before it serves. Past it, the
    /// opened library ranks by BM25 alone and a warning says how to embed them (`orchestr8
    /// index --embed-all`, which sets no limit): the model takes 30-40 ms a definition on two
    /// cores, so a first open of 100k definitions would wait an hour.
    pub embed_limit: usize,
    /// Bytes of definition text kept in the LRU in front of the mapped segments. Beyond it the
    /// least recently loaded texts are dropped and the next load reads its mapping again.
    pub cache_bytes: u64,
}

impl Config {
    /// Bytes of definition text cached by default: the whole shipped library several times
    /// over, or about 4,000 definitions of a large one, for a few tens of MB of memory.
    pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

    /// Definitions embedded on opening by default: a library of the usual few hundred agents
    /// is embedded on its first open (some 20 s at most here), and never again.
    pub const DEFAULT_EMBED_LIMIT: usize = 500;

    /// The library under `roots`, indexed in memory, BM25 only, default cache.
    pub fn new(roots: Vec<PathBuf>) -> Config {
        Config {
            roots,
            index_dir: None,
            progress: false,
            embedder: None,
            embed_limit: Config::DEFAULT_EMBED_LIMIT,
            cache_bytes: Config::DEFAULT_CACHE_BYTES,
        }
    }
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
    #[error("no definition declares the {filter} `{value}`{}", did_you_mean(.closest))]
    UnknownFilter {
        filter: &'static str,
        value: String,
        closest: Vec<String>,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogFileError),
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
}

/// Values of a filter few enough to list in full when none is close to a value given.
const FEW_VALUES: usize = 8;

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
    vectors: Vectors,
    embedder: Option<Arc<Embedder>>,
    diagnostics: Vec<Diagnostic>,
    stats: RefreshStats,
}

impl Engine {
    /// Opens the library: walks the roots, re-reads only files that changed since the persisted
    /// index was written (all of them the first time), and serves the result.
    pub fn open(config: &Config) -> Result<Engine, EngineError> {
        let started = Instant::now();
        let roots = canonical_roots(&config.roots)?;
        // Walking the roots and opening the persisted index are independent, and each takes
        // a few hundred milliseconds at 100k files: they run side by side.
        let ((found, walk_diagnostics), opened) = std::thread::scope(|scope| {
            let opening = config
                .index_dir
                .as_deref()
                .map(|dir| scope.spawn(|| OpenIndex::open(dir, &roots)));
            let walked = scan::walk(&roots);
            let opened = opening
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p))
                })
                .transpose()?;
            Ok::<_, EngineError>((walked, opened))
        })?;
        let Refreshed {
            registry,
            contents,
            text,
            store,
            catalog,
            semantic,
            stats,
        } = match opened {
            Some(opened) => opened.refresh(&found, config)?,
            None => refresh::in_memory(&found, config)?,
        };
        let mut diagnostics = walk_diagnostics;
        diagnostics.extend(contents.diagnostics);
        diagnostics.extend(catalog.clashes());
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
            store,
            vectors: contents.vectors,
            embedder: config.embedder.clone().filter(|_| semantic),
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

    /// Served definitions, in precedence order. Each is decoded as it is reached: where
    /// names and kinds are enough, `summaries` is cheaper.
    pub fn definitions(&self) -> impl Iterator<Item = Definition> + '_ {
        self.catalog.served()
    }

    /// Name, kind, category and role of every served definition, in precedence order.
    pub fn summaries(&self) -> impl Iterator<Item = Summary<'_>> {
        self.catalog.summaries()
    }

    /// Ranked definitions for a request: BM25 fused with semantic similarity when the
    /// embedding model is loaded.
    pub fn search(&self, query: &Query) -> Result<SearchResult, EngineError> {
        let semantic = self.embedder.as_deref().map(|e| (e, &self.vectors));
        let found = planner::run(semantic, &self.text, &self.registry, &self.catalog, query)?;
        self.check_filters(&found, &query.filters)?;
        Ok(found)
    }

    /// Whether searches fuse semantic similarity with BM25.
    pub fn has_semantic(&self) -> bool {
        self.embedder.is_some() && !self.vectors.is_empty()
    }

    /// Ranked definitions by BM25 alone, for comparison.
    pub fn search_bm25(&self, query: &Query) -> Result<SearchResult, EngineError> {
        let found = planner::run(None, &self.text, &self.registry, &self.catalog, query)?;
        self.check_filters(&found, &query.filters)?;
        Ok(found)
    }

    /// A filter whose value no definition declares is a mistake to name, not an empty answer:
    /// the caller (often a model that guessed a role) learns which filter and the closest
    /// values the library has. Looked for only once an answer is empty, as such a filter
    /// always leaves it.
    fn check_filters(&self, found: &SearchResult, filters: &Filters) -> Result<(), EngineError> {
        if !found.results.is_empty() {
            return Ok(());
        }
        let given = [
            (Declared::Role, &filters.role),
            (Declared::Category, &filters.category),
            (Declared::Model, &filters.model),
            (Declared::Capability, &filters.capability),
        ];
        for (what, value) in given {
            let Some(value) = value else {
                continue;
            };
            let declared = self.registry.declared(what)?;
            if declared.contains(&value.to_lowercase()) {
                continue;
            }
            let mut near = closest(value, declared.iter().map(String::as_str), 3);
            if near.is_empty() && declared.len() <= FEW_VALUES {
                // Nothing close, but so few that naming them all is the answer.
                near = declared;
            }
            return Err(EngineError::UnknownFilter {
                filter: what.as_str(),
                value: value.clone(),
                closest: near,
            });
        }
        Ok(())
    }

    /// The definition served under `name`, or the closest names when there is none.
    pub fn get(&self, name: &str) -> Result<Definition, EngineError> {
        if name.is_empty() {
            return Err(EngineError::BadName(
                "no name given; names are plain words like `code-reviewer`".to_string(),
            ));
        }
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
        let text = self.store.load(definition.key, definition.text)?;
        let aliases = self
            .catalog
            .group_names(definition.key)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| *n != name)
            .map(String::from)
            .collect();
        Ok(Loaded {
            definition,
            aliases,
            text,
        })
    }

    /// Every role the library declares, with its primary agent and declared fallbacks.
    pub fn roles(&self) -> Vec<RoleChain> {
        // The catalog lists roles sorted, each with its agents.
        self.catalog
            .roles()
            .filter_map(|(role, agents)| {
                let mut agents: Vec<&str> = agents.into_iter().map(|d| d.name).collect();
                agents.sort_by(|a, b| (*a != role, a).cmp(&(*b != role, b)));
                let primary = *agents.first()?;
                let fallbacks = self
                    .catalog
                    .by_name(primary)
                    .map(|primary| primary.fallbacks)
                    .unwrap_or_default();
                Some(RoleChain {
                    role: role.to_string(),
                    primary: primary.to_string(),
                    also: agents[1..].iter().map(|n| n.to_string()).collect(),
                    fallbacks: fallbacks
                        .into_iter()
                        .map(|f| Link {
                            missing: !self.catalog.contains(&f),
                            name: f,
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// The agents to try for `role`, in order: its primary, the other agents declaring it, then
    /// the primary's fallback chain (walked in the catalog, past agents that are not
    /// installed). When no agent declares the role, the best agents for the role's words.
    pub fn resolve_role(&self, role: &str, limit: usize) -> Result<Resolution, EngineError> {
        let limit = limit.max(1);
        let mut candidates: Vec<&str> = self
            .catalog
            .with_role(role)
            .into_iter()
            .map(|d| d.name)
            .collect();
        let wanted = role.to_lowercase();
        // Only the first `limit` by (named like the role, name) can be shown: a large registry
        // has thousands of agents per role, and sorting them all would cost more than the rest.
        let order = |a: &&str, b: &&str| (*a != wanted, a).cmp(&(*b != wanted, b));
        if candidates.len() > limit {
            candidates.select_nth_unstable_by(limit - 1, order);
            candidates.truncate(limit);
        }
        candidates.sort_by(order);
        let Some(primary) = candidates.first() else {
            let query = Query {
                text: role.replace(['-', '_'], " "),
                filters: Filters {
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
                closest_roles: closest(role, self.catalog.roles().map(|(r, _)| r), 3),
            });
        };
        // The primary, the other agents declaring the role (by name), then the primary's
        // fallback chain.
        let (chain, skipped) = roles::walk(primary, limit, |name| {
            self.catalog.by_name(name).map(|d| d.fallbacks)
        });
        let mut agents: Vec<String> = candidates.iter().map(|n| n.to_string()).collect();
        for name in chain {
            if !agents.contains(&name) {
                agents.push(name);
            }
        }
        agents.truncate(limit);
        Ok(Resolution {
            role: role.to_string(),
            agents,
            skipped,
            searched: false,
            closest_roles: Vec::new(),
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
            for c in d.labels() {
                *counts.entry(c).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// Served definitions with `capability` (or a tag of that name), copies collapsed, those
    /// that list it earlier first (a first capability is what the agent is for), then by name.
    pub fn with_capability(&self, capability: &str) -> Result<Vec<Definition>, EngineError> {
        let filters = Filters {
            capability: Some(capability.to_string()),
            ..Default::default()
        };
        let wanted = capability.to_lowercase();
        let mut seen = HashSet::new();
        let mut found: Vec<(usize, Definition)> = Vec::new();
        for &key in self.registry.filter(&filters, usize::MAX)?.iter() {
            let Some(group) = self.catalog.served_group(key) else {
                continue;
            };
            if !seen.insert(group) {
                continue;
            }
            let Some(Group { canonical, .. }) = self.catalog.group(group) else {
                continue;
            };
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
                self.skill_files(&skill).iter().map(String::as_str),
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
        // Supporting files are read on demand with read(), never mapped: the skill's author may
        // be editing them.
        let io = |source| {
            EngineError::Store(StoreError::Io {
                path: file.clone(),
                source,
            })
        };
        let size = std::fs::metadata(&file).map_err(io)?.len();
        if size > crate::library::formats::MAX_FILE_BYTES {
            return Err(refused("the file is larger than the 4 MiB limit"));
        }
        let bytes = std::fs::read(&file).map_err(io)?;
        String::from_utf8(bytes).map_err(|_| refused("not a text file"))
    }

    /// The name that stands for `name`'s copy group in result lists.
    pub fn canonical_name(&self, name: &str) -> Option<&str> {
        self.catalog
            .group_names(self.catalog.key(name)?)?
            .first()
            .copied()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::planner::Strategy;
    use crate::registry::Matching;

    /// Writes `<dir>/<name>.md`: an agent named `name` with the other frontmatter `fields`.
    fn write_agent(dir: &Path, name: &str, fields: &str) {
        let text = format!("---\nname: {name}\n{fields}\n---\nBody.\n");
        std::fs::write(dir.join(format!("{name}.md")), text).unwrap();
    }

    #[test]
    fn a_role_lists_its_primary_then_other_declarers_then_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let agent = |name: &str, role: &str, fallbacks: &str| {
            let fields =
                format!("description: Agent {name}\nrole: {role}\nfallbacks: [{fallbacks}]");
            write_agent(dir.path(), name, &fields);
        };
        agent("review", "review", "gone, helper");
        agent("charlie", "review", "");
        agent("alpha", "Review", "");
        agent("bravo", "review", "");
        agent("helper", "assist", "");
        let engine = Engine::open(&Config::new(vec![dir.path().to_path_buf()])).unwrap();
        let all = engine.resolve_role("REVIEW", 10).unwrap();
        assert_eq!(
            all.agents,
            ["review", "alpha", "bravo", "charlie", "helper"]
        );
        assert_eq!(all.skipped, ["gone"]);
        assert_eq!(
            engine.resolve_role("review", 3).unwrap().agents,
            ["review", "alpha", "bravo"]
        );
    }

    /// A filtered request asks the text side for only twice the page, and widens when copies
    /// collapse it: here the ten best matches are copies of one agent.
    #[test]
    fn a_filtered_list_of_copies_widens_until_it_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let agent = |name: &str, capability: &str, description: &str| {
            let fields = format!("description: {description}\ncapabilities: [{capability}]");
            write_agent(dir.path(), name, &fields);
        };
        for i in 0..12 {
            agent(
                &format!("tuner-{i:02}"),
                "database",
                "Tunes slow postgres queries and postgres indexes",
            );
        }
        for i in 0..6 {
            agent(
                &format!("helper-{i}"),
                "database",
                &format!("Writes migrations {i} that touch postgres"),
            );
        }
        agent("outsider", "frontend", "Tunes slow postgres queries");
        let engine = Engine::open(&Config::new(vec![dir.path().to_path_buf()])).unwrap();
        let found = engine
            .search(&Query {
                text: "slow postgres queries".into(),
                filters: Filters {
                    capability: Some("database".into()),
                    ..Default::default()
                },
                limit: 4,
            })
            .unwrap();
        assert_eq!(found.plan.strategy, Strategy::FilterFirst);
        let names: Vec<&str> = found.results.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[0], "tuner-00");
        assert_eq!(found.results[0].aliases.len(), 11);
        assert!(
            names[1..].iter().all(|n| n.starts_with("helper-")),
            "{names:?}"
        );
    }

    /// The registry's SQL decides filter-first and filter-only plans, `Filters::matches` the
    /// hits of text-first ones: over every value the shipped library uses, in two spellings,
    /// they must let the same definitions through.
    #[test]
    fn sql_filters_and_the_in_memory_predicate_agree() {
        let home = Path::new(env!("CARGO_MANIFEST_DIR"));
        let roots = ["agents", "skills", "commands"]
            .map(|d| home.join(d))
            .to_vec();
        let engine = Engine::open(&Config::new(roots)).unwrap();
        let all: Vec<Definition> = engine.definitions().collect();
        let mut filters = vec![Filters::default()];
        for d in &all {
            let values = [d.role.clone(), d.category.clone(), d.model.clone()];
            for (slot, value) in values.into_iter().enumerate() {
                let Some(value) = value else { continue };
                for spelled in [value.clone(), value.to_uppercase()] {
                    let mut f = Filters::default();
                    match slot {
                        0 => f.role = Some(spelled),
                        1 => f.category = Some(spelled),
                        _ => f.model = Some(spelled),
                    }
                    filters.push(f);
                }
            }
            for label in d.capabilities.iter().chain(&d.tags).take(2) {
                filters.push(Filters {
                    capability: Some(label.to_uppercase()),
                    kind: Some(d.kind),
                    ..Default::default()
                });
            }
        }
        filters.push(Filters {
            role: Some("no-such-role".into()),
            ..Default::default()
        });
        assert!(filters.len() > 100);
        for f in &filters {
            let sql: BTreeSet<u64> = engine
                .registry
                .filter(f, usize::MAX)
                .unwrap()
                .iter()
                .copied()
                .collect();
            let memory: BTreeSet<u64> =
                all.iter().filter(|d| f.matches(d)).map(|d| d.key).collect();
            assert_eq!(sql, memory, "{f:?}");
            assert_eq!(engine.registry.count(f).unwrap(), sql.len() as u64, "{f:?}");
            match engine.registry.matching(f, u64::MAX - 1).unwrap() {
                Matching::Few(keys) => {
                    assert_eq!(keys.iter().copied().collect::<BTreeSet<_>>(), sql)
                }
                Matching::Many(_) => panic!("every answer fits"),
            }
        }
    }
}
