//! Bringing a library's index in line with its files: opening the persisted index (or
//! rebuilding it when it cannot be trusted), re-reading only the files whose size or mtime
//! changed, and deriving what serving reads (catalog, filter tables, text segments).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Config, EngineError, RefreshStats};
use crate::catalog::{Catalog, CatalogBuilder, CatalogFileError};
use crate::diagnostic::{Diagnostic, Severity};
use crate::library::formats::{Location, ParsedFile};
use crate::library::scan::{self, FoundFile};
use crate::library::{Definition, parse_file};
use crate::planner::Filters;
use crate::registry::{Batch, Contents, Manifest, Registry, RegistryError, SCHEMA_VERSION};
use crate::store::Store;
use crate::text::TextIndex;

/// What serving a library needs, as a refresh leaves it.
pub(super) struct Refreshed {
    /// The filter tables when there is an index directory (attached read-only), else the
    /// in-memory registry itself.
    pub registry: Registry,
    pub contents: Contents,
    pub text: TextIndex,
    pub store: Store,
    pub catalog: Catalog,
    /// Whether every definition has a vector and searches fuse semantic similarity.
    pub semantic: bool,
    pub stats: RefreshStats,
}

/// Reads every file in `found` into indexes held in memory only (no index directory).
pub(super) fn in_memory(found: &[FoundFile], config: &Config) -> Result<Refreshed, EngineError> {
    let registry = Registry::in_memory()?;
    let mut text = TextIndex::open(None)?;
    let (stats, owned, built) = update(
        &registry,
        &mut text,
        None,
        found,
        &Manifest::default(),
        config.progress,
    )?;
    let semantic = fill_vectors(&registry, config)?;
    let store = Store::in_memory(owned.into_iter().collect(), config.cache_bytes);
    let contents = registry.contents(semantic)?;
    let catalog = built.unwrap_or_else(|| Catalog::new(Vec::new()));
    Ok(Refreshed {
        registry,
        contents,
        text,
        store,
        catalog,
        semantic,
        stats,
    })
}

/// A persisted index, opened (or wiped and created afresh) under an exclusive lock on
/// `dir/lock`, held until `refresh` has brought it up to date: two processes over one root
/// take turns, and the second finds the work done and re-reads nothing.
pub(super) struct OpenIndex {
    lock: File,
    paths: IndexPaths,
    registry: Registry,
    text: TextIndex,
    manifest: Manifest,
    /// The catalog file as it was when the index was opened, read while the roots are
    /// walked: it is served unless the refresh changes the registry.
    catalog: Result<Catalog, CatalogFileError>,
    /// The filter file, attached then, likewise.
    filters: Result<Registry, RegistryError>,
    /// Why the index was thrown away, if it was.
    rebuilt: Option<String>,
}

impl OpenIndex {
    pub(super) fn open(dir: &Path, roots: &[PathBuf]) -> Result<OpenIndex, EngineError> {
        let io = |source| EngineError::IndexDir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = File::create(dir.join("lock")).map_err(io)?;
        lock.lock().map_err(io)?;
        let paths = IndexPaths::new(dir);
        let ((registry, text, manifest), rebuilt) = match open_persisted(&paths, roots) {
            Ok(persisted) => (persisted, None),
            Err(reason) => {
                tracing::warn!(index = %dir.display(), %reason, "rebuilding the persisted index");
                paths.wipe().map_err(io)?;
                let persisted =
                    open_persisted(&paths, roots).map_err(|e| EngineError::IndexDir {
                        path: dir.to_path_buf(),
                        source: std::io::Error::other(e),
                    })?;
                (persisted, Some(reason))
            }
        };
        let catalog = Catalog::read(&paths.catalog);
        let filters = Registry::serving(&paths.filters);
        Ok(OpenIndex {
            lock,
            paths,
            registry,
            text,
            manifest,
            catalog,
            filters,
            rebuilt,
        })
    }

    /// Re-reads the files in `found` that changed since the index was written, drops the ones
    /// that are gone, and returns what serving needs.
    pub(super) fn refresh(
        self,
        found: &[FoundFile],
        config: &Config,
    ) -> Result<Refreshed, EngineError> {
        let OpenIndex {
            lock,
            paths,
            registry,
            mut text,
            manifest,
            catalog,
            filters,
            rebuilt,
        } = self;
        let (stats, _, _) = update(
            &registry,
            &mut text,
            Some(&paths),
            found,
            &manifest,
            config.progress,
        )?;
        let semantic = fill_vectors(&registry, config)?;
        let segments = registry.segments()?;
        let contents = registry.contents(semantic)?;
        let changed = stats.parsed + stats.removed > 0;
        let catalog = match catalog {
            Ok(catalog) if !changed => Ok(catalog),
            _ => Catalog::read(&paths.catalog),
        };
        let catalog = catalog.or_else(|error| {
            tracing::warn!(%error, "rebuilding the catalog from the registry");
            build_catalog(&registry, Some(&paths.catalog))
        })?;
        let filters = match filters {
            Ok(filters) if !changed => Ok(filters),
            _ => Registry::serving(&paths.filters),
        };
        let filters = filters.or_else(|error| {
            tracing::warn!(%error, "rebuilding the filter tables from the registry");
            registry.write_filters(&paths.filters)?;
            Registry::serving(&paths.filters)
        })?;
        drop(registry);
        crate::store::collect_garbage(&paths.texts, &segments);
        let store = Store::open(&paths.texts, &segments, config.cache_bytes)?;
        drop(lock);
        Ok(Refreshed {
            registry: filters,
            contents,
            text,
            store,
            catalog,
            semantic,
            stats: RefreshStats { rebuilt, ..stats },
        })
    }
}

/// The parts of a persisted index.
struct IndexPaths {
    registry: PathBuf,
    text: PathBuf,
    texts: PathBuf,
    catalog: PathBuf,
    filters: PathBuf,
    dir: PathBuf,
}

impl IndexPaths {
    fn new(dir: &Path) -> IndexPaths {
        IndexPaths {
            registry: dir.join("registry.duckdb"),
            text: dir.join("text"),
            texts: dir.join("texts"),
            catalog: dir.join("catalog.bin"),
            filters: dir.join("filters.duckdb"),
            dir: dir.to_path_buf(),
        }
    }

    /// Removes the files derived from the registry (catalog, filter tables), before it changes.
    fn remove_derived(&self) -> Result<(), EngineError> {
        for path in [&self.catalog, &self.filters] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(EngineError::IndexDir {
                        path: path.clone(),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes every part (the lock file stays: it is held).
    fn wipe(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                ["registry.duckdb", "catalog.bin", "filters.duckdb"]
                    .iter()
                    .any(|prefix| n.starts_with(prefix))
            }) {
                std::fs::remove_file(&path)?;
            }
        }
        for dir in [&self.text, &self.texts] {
            if dir.exists() {
                std::fs::remove_dir_all(dir)?;
            }
        }
        Ok(())
    }
}

/// Opens both halves of a persisted index, or says why they cannot be trusted.
fn open_persisted(paths: &IndexPaths, roots: &[PathBuf]) -> Result<Persisted, String> {
    let registry =
        Registry::open_file(&paths.registry).map_err(|e| format!("unreadable registry ({e})"))?;
    let version = registry.schema_version().map_err(|e| e.to_string())?;
    let manifest = registry.manifest().map_err(|e| e.to_string())?;
    match version {
        Some(v) if v != SCHEMA_VERSION => {
            return Err(format!(
                "index schema {v}, this build uses {SCHEMA_VERSION}"
            ));
        }
        None if !manifest.is_empty() => return Err("index has no schema version".into()),
        None => registry.set_schema_version().map_err(|e| e.to_string())?,
        Some(_) => {}
    }
    if manifest
        .keys()
        .any(|p| !roots.iter().any(|r| is_under(p, r)))
    {
        return Err("index was built for other roots".into());
    }
    std::fs::create_dir_all(&paths.text).map_err(|e| e.to_string())?;
    let text =
        TextIndex::open(Some(&paths.text)).map_err(|e| format!("unreadable text index ({e})"))?;
    let definitions = registry
        .count(&Filters::default())
        .map_err(|e| e.to_string())?;
    if text.num_docs() != definitions {
        return Err(format!(
            "text index holds {} documents, registry {definitions}",
            text.num_docs()
        ));
    }
    let present = crate::store::segments_in(&paths.texts);
    let segments = registry.segments().map_err(|e| e.to_string())?;
    if let Some(missing) = segments.iter().find(|s| !present.contains(s)) {
        return Err(format!("text segment {missing} is missing"));
    }
    Ok((registry, text, manifest))
}

/// Both halves of a persisted index and its manifest.
type Persisted = (Registry, TextIndex, Manifest);

/// Whether the manifest's `path` lies under `root`, as `Path::starts_with` decides, compared
/// as text (the manifest holds 100k paths; a `Path` comparison parses components).
fn is_under(path: &str, root: &Path) -> bool {
    match root.to_str() {
        Some(root) => path
            .strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || root.ends_with('/')),
        None => Path::new(path).starts_with(root),
    }
}

/// The catalog of every definition in the registry, built as they stream out of it, and
/// written to `file` when given.
fn build_catalog(registry: &Registry, file: Option<&Path>) -> Result<Catalog, EngineError> {
    let mut builder = match file {
        Some(path) => CatalogBuilder::to_file(path)?,
        None => CatalogBuilder::in_memory(),
    };
    // After a failed write the rest of the rows are read and dropped, and the error returned.
    let mut written = Ok(());
    registry.definitions_in_chunks(|chunk| {
        if written.is_ok() {
            written = builder.add(chunk);
        }
    })?;
    written?;
    Ok(builder.finish()?)
}

/// Embeds the definitions that have no vector yet (new or changed files, or all of them when
/// the model was installed after the index was built), when there is a model and they are no
/// more than `config.embed_limit`. Returns whether every definition now has a vector.
fn fill_vectors(registry: &Registry, config: &Config) -> Result<bool, EngineError> {
    let Some(embedder) = &config.embedder else {
        return Ok(false);
    };
    let missing: HashSet<u64> = registry.missing_vectors()?.into_iter().collect();
    if missing.len() > config.embed_limit {
        tracing::warn!(
            missing = missing.len(),
            limit = config.embed_limit,
            "semantic search is off: {} definitions have no vector yet, more than opening embeds \
             ({}); `orchestr8 index --embed-all` embeds them (30-40 ms each on two cores), and \
             until then BM25 ranks alone",
            missing.len(),
            config.embed_limit
        );
        return Ok(false);
    }
    // Read here, not at start, so that a library served by BM25 alone never reads it.
    if let Err(error) = embedder.ready() {
        tracing::warn!(%error, "semantic search is off: the embedding model could not be loaded");
        return Ok(false);
    }
    if missing.is_empty() {
        return Ok(true);
    }
    // Streamed and filtered: after one edit of a large embedded library, one definition of
    // all the rows read is kept, not every definition at once.
    let mut definitions: Vec<Definition> = Vec::with_capacity(missing.len());
    registry.definitions_in_chunks(|chunk| {
        definitions.extend(chunk.into_iter().filter(|d| missing.contains(&d.key)));
    })?;
    let texts: Vec<String> = definitions.iter().map(crate::embed::routing_text).collect();
    // In chunks, so that a long run (`index --embed-all` on a large library) shows progress.
    let bar = progress_bar(config.progress, texts.len(), "embedding definitions");
    let mut vectors = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(EMBED_CHUNK) {
        vectors.extend(embedder.documents(chunk)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let rows: Vec<(u64, Vec<f32>)> = definitions.iter().map(|d| d.key).zip(vectors).collect();
    registry.put_vectors(&rows)?;
    tracing::debug!(embedded = rows.len(), "definition vectors computed");
    Ok(true)
}

/// Definitions embedded between two steps of the progress bar (each chunk is sorted by length
/// for the model's batches, so a chunk much smaller would pad more).
const EMBED_CHUNK: usize = 256;

/// Files parsed per batch: bounds the bytes and body texts held in memory at once. A 100k
/// build's peak RSS (`orchestr8 index`, twice each) was 374-376 MB with 2,048, 339-343 with 512
/// and 335-341 with 256, in the same time (17-19 s): a batch of 512 still keeps both cores busy.
const BATCH: usize = 512;

/// Brings `registry` and `text` in line with the files on disk, reading only the files whose
/// size or mtime differ from the manifest. Their bytes go to a new text segment (in `texts`, or
/// returned when there is no index directory).
fn update(
    registry: &Registry,
    text: &mut TextIndex,
    index: Option<&IndexPaths>,
    found: &[FoundFile],
    manifest: &Manifest,
    progress: bool,
) -> Result<
    (
        RefreshStats,
        Option<crate::store::OwnedSegment>,
        Option<Catalog>,
    ),
    EngineError,
> {
    let recorded = |f: &FoundFile| f.path.to_str().and_then(|p| manifest.get(p));
    let mut changed: Vec<&FoundFile> = found
        .par_iter()
        .filter(|f| recorded(f) != Some(&(f.size, f.mtime_ns)))
        .collect();
    scan::sort(&mut changed);
    // When every file found is in the manifest unchanged and the counts agree, nothing is
    // gone: the usual reopen skips hashing every path a second and third time.
    let gone: Vec<PathBuf> = if changed.is_empty() && found.len() == manifest.len() {
        Vec::new()
    } else {
        let present: HashSet<&str> = found.iter().filter_map(|f| f.path.to_str()).collect();
        manifest
            .keys()
            .filter(|p| !present.contains(p.as_str()))
            .map(PathBuf::from)
            .collect()
    };
    if changed.is_empty() && gone.is_empty() {
        return Ok((RefreshStats::default(), None, None));
    }
    // From here the registry changes, and the files derived from it (catalog, filter tables)
    // no longer describe it: they are removed first, so a run that dies before writing new ones
    // leaves none to trust.
    if let Some(index) = index {
        index.remove_derived()?;
    }
    let texts = index.map(|i| i.texts.as_path());

    let mut removed = gone.clone();
    removed.extend(
        changed
            .iter()
            .filter(|f| recorded(f).is_some())
            .map(|f| f.path.clone()),
    );
    let segment_id = texts.map_or(0, |dir| {
        crate::store::segments_in(dir)
            .into_iter()
            .max()
            .map_or(0, |m| m + 1)
    });
    let mut segment = crate::store::SegmentWriter::create(texts, segment_id)?;
    let mut writer = text.writer()?;
    for path in &removed {
        writer.delete(crate::library::key_of(path));
    }
    let mut rows = registry.writer(&removed)?;
    let bar = progress_bar(progress, changed.len(), "parsing definitions");
    for batch in changed.chunks(BATCH) {
        let parsed: Vec<(&FoundFile, Vec<u8>, ParsedFile)> = batch
            .par_iter()
            .map(|f| {
                let (bytes, parsed) = read_and_parse(f);
                bar.inc(1);
                (*f, bytes, parsed)
            })
            .collect();
        let mut files = Vec::with_capacity(parsed.len());
        let mut definitions = Vec::with_capacity(parsed.len());
        let mut diagnostics = Vec::new();
        for (file, bytes, parsed) in parsed {
            files.push((
                file.path.clone(),
                file.root,
                file.size,
                file.mtime_ns,
                xxhash_rust::xxh3::xxh3_64(&bytes),
            ));
            diagnostics.extend(parsed.diagnostics);
            if let Some((mut definition, body)) = parsed.definition {
                definition.text = segment.append(&bytes)?;
                writer.add(&definition, &body)?;
                definitions.push(definition);
            }
        }
        rows.append(&Batch {
            files,
            definitions: &definitions,
            diagnostics: &diagnostics,
        })?;
    }
    bar.finish_and_clear();
    let owned = segment.finish()?;
    // The text index first: if the process dies before the registry commits, the manifest
    // still lists the files as unread and the next run redoes both (deletes are by key).
    writer.commit()?;
    text.reload()?;
    rows.commit()?;
    let catalog = build_catalog(registry, index.map(|i| i.catalog.as_path()))?;
    registry.set_aliases(&catalog.alias_pairs())?;
    let built = match index {
        Some(index) => {
            registry.write_filters(&index.filters)?;
            None
        }
        None => Some(catalog),
    };
    Ok((
        RefreshStats {
            parsed: changed.len(),
            removed: gone.len(),
            ..Default::default()
        },
        owned,
        built,
    ))
}

/// Reads and parses one file; its bytes are kept for the text segment. A file that cannot be
/// read is a diagnostic.
fn read_and_parse(file: &FoundFile) -> (Vec<u8>, ParsedFile) {
    match std::fs::read(&file.path) {
        Ok(bytes) => {
            let location = Location {
                root: file.root,
                path: &file.path,
                relative: &file.relative,
            };
            let parsed = parse_file(&location, &bytes);
            (bytes, parsed)
        }
        Err(error) => (
            Vec::new(),
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

fn progress_bar(enabled: bool, len: usize, message: &'static str) -> indicatif::ProgressBar {
    if !enabled || len < 500 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style =
        indicatif::ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_path_is_under_a_root_by_whole_components() {
        for (path, root, under) in [
            ("/a/b/c.md", "/a/b", true),
            ("/a/bc/d.md", "/a/b", false),
            ("/a/b", "/a/b", true),
            ("/x.md", "/", true),
            ("/a.md", "/a", false),
        ] {
            assert_eq!(is_under(path, Path::new(root)), under, "{path} in {root}");
            assert_eq!(Path::new(path).starts_with(root), under, "{path} in {root}");
        }
    }
}
