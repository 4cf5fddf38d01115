//! The structured side: every definition's frontmatter in DuckDB, one row each (lists as
//! JSON columns), with the lowercased labels that filters match in their own table, aliases,
//! and the manifest of files already read.
//!
//! The persisted file is written only while the index is refreshed, under the index lock; a
//! refresh also writes the filter columns to a file of their own, which a running process
//! attaches read-only, so it never holds the registry's file lock and a second process over
//! the same root can refresh and read alongside it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use duckdb::arrow::array::{
    Array, BinaryArray, Int32Array, Int64Array, StringArray, StructArray, UInt32Array, UInt64Array,
};
use duckdb::types::Value;
use duckdb::{Connection, params, params_from_iter};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use rayon::prelude::*;

use crate::diagnostic::{Diagnostic, Severity};
use crate::embed::Vectors;
use crate::library::{Definition, KeySet, Kind};
use crate::planner::Filters;
use crate::store::TextLocation;

/// Bump when a table, the meaning of a column, how files are parsed, the text index's schema,
/// or the files derived from the registry change: an index written by another version is
/// rebuilt, so no stale parse is ever served (7: `catalog.bin` and `filters.duckdb`, which a
/// version that does not know them would leave stale beside a registry it changed; 8: the
/// text index holds words in their American spelling, `text/spelling.rs`).
pub(crate) const SCHEMA_VERSION: i64 = 8;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, root INTEGER, size UBIGINT, mtime_ns BIGINT, hash UBIGINT);
CREATE TABLE IF NOT EXISTS definitions (
    key UBIGINT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, category TEXT, role TEXT,
    model TEXT, description TEXT NOT NULL, path TEXT NOT NULL, root INTEGER NOT NULL,
    tokens UBIGINT NOT NULL, argument_hint TEXT, tools TEXT NOT NULL, use_when TEXT NOT NULL,
    capabilities TEXT NOT NULL, tags TEXT NOT NULL, fallbacks TEXT NOT NULL, extra TEXT NOT NULL,
    segment UINTEGER NOT NULL, text_offset UBIGINT NOT NULL, text_length UBIGINT NOT NULL,
    role_norm TEXT, category_norm TEXT, model_norm TEXT);
CREATE TABLE IF NOT EXISTS labels (key UBIGINT, label TEXT);
CREATE TABLE IF NOT EXISTS aliases (name TEXT, alias TEXT);
CREATE TABLE IF NOT EXISTS vectors (key UBIGINT, v BLOB);
CREATE TABLE IF NOT EXISTS diagnostics (path TEXT, line UBIGINT, severity TEXT, message TEXT);
";

/// Which definitions pass a filter: all of them when few, else their number.
#[derive(Clone, Debug)]
pub(crate) enum Matching {
    Few(Arc<KeySet>),
    Many(u64),
}

impl Matching {
    pub fn count(&self) -> u64 {
        match self {
            Matching::Few(keys) => keys.len() as u64,
            Matching::Many(n) => *n,
        }
    }
}

/// Distinct filter answers kept per registry.
const MATCHING_CACHE: usize = 256;
/// Keys held by all cached answers together (8 MB of keys, whatever filters clients send).
const MATCHING_CACHE_KEYS: u64 = 1 << 20;

/// Weighs a cached answer by the keys it holds, so a flood of distinct broad filters cannot
/// grow the cache past `MATCHING_CACHE_KEYS`.
#[derive(Clone)]
struct ByKeys;

impl Weighter<(Filters, u64), Matching> for ByKeys {
    fn weight(&self, _: &(Filters, u64), answer: &Matching) -> u64 {
        match answer {
            Matching::Few(keys) => keys.len().max(1) as u64,
            Matching::Many(_) => 1,
        }
    }
}

impl Weighter<(Filters, usize), Arc<Vec<u64>>> for ByKeys {
    fn weight(&self, _: &(Filters, usize), keys: &Arc<Vec<u64>>) -> u64 {
        keys.len().max(1) as u64
    }
}

/// The WHERE clause for `filters` (only the filters given, so DuckDB sees plain equalities on
/// pre-lowercased columns it can scan without calling a function per row) and its parameters.
fn filter_where(filters: &Filters) -> (String, Vec<Value>) {
    let mut clauses = vec!["TRUE".to_string()];
    let mut values = Vec::new();
    let mut add = |clause: &str, value: String| {
        clauses.push(clause.to_string());
        values.push(Value::Text(value));
    };
    if let Some(kind) = filters.kind {
        add("d.kind = ?", kind.as_str().to_string());
    }
    if let Some(role) = &filters.role {
        add("d.role_norm = ?", role.to_lowercase());
    }
    if let Some(category) = &filters.category {
        add("d.category_norm = ?", category.to_lowercase());
    }
    if let Some(model) = &filters.model {
        add("d.model_norm = ?", model.to_lowercase());
    }
    if let Some(capability) = &filters.capability {
        add(
            "d.key IN (SELECT key FROM labels WHERE label = ?)",
            capability.to_lowercase(),
        );
    }
    (clauses.join(" AND "), values)
}

/// The query for the keys of the definitions passing `filters`, and its parameters. A
/// capability alone is answered from the labels table: every key there is a definition's (they
/// are written together), and not joining the definitions spares a scan of every one of them
/// per request (a 100k capability+text request spent two thirds of its time in this query).
fn keys_query(filters: &Filters) -> (String, Vec<Value>) {
    match filters {
        Filters {
            capability: Some(capability),
            kind: None,
            role: None,
            category: None,
            model: None,
        } => (
            "SELECT DISTINCT key FROM labels WHERE label = ?".to_string(),
            vec![Value::Text(capability.to_lowercase())],
        ),
        _ => {
            let (clause, values) = filter_where(filters);
            (
                format!("SELECT d.key FROM definitions d WHERE {clause}"),
                values,
            )
        }
    }
}

/// A filter that compares one value a definition declares: what `declared` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Declared {
    Role,
    Category,
    Model,
    /// Capabilities and tags: a capability filter matches either.
    Capability,
}

impl Declared {
    pub fn as_str(self) -> &'static str {
        match self {
            Declared::Role => "role",
            Declared::Category => "category",
            Declared::Model => "model",
            Declared::Capability => "capability",
        }
    }

    fn query(self) -> &'static str {
        match self {
            Declared::Role => {
                "SELECT DISTINCT role_norm FROM definitions WHERE role_norm IS NOT NULL"
            }
            Declared::Category => {
                "SELECT DISTINCT category_norm FROM definitions WHERE category_norm IS NOT NULL"
            }
            Declared::Model => {
                "SELECT DISTINCT model_norm FROM definitions WHERE model_norm IS NOT NULL"
            }
            Declared::Capability => "SELECT DISTINCT label FROM labels",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry: {0}")]
    Db(#[from] duckdb::Error),
    #[error("registry file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Every file read so far: its path (as written, UTF-8) -> (size, mtime in ns). Keyed by
/// the path's text, not a `PathBuf`: hashing a `Path` parses its components, and a reopen
/// looks up every file found. Hashed with FxHash: SipHash's resistance to chosen keys buys
/// nothing for paths the library's owner wrote, and cost a 100k reopen 2% of its CPU.
pub(crate) type Manifest = rustc_hash::FxHashMap<String, (u64, i64)>;

/// Rows from one batch of files read by a refresh.
#[derive(Debug, Default)]
pub(crate) struct Batch<'a> {
    /// Files read now: (path, root, size, mtime_ns, content hash).
    pub files: Vec<(PathBuf, usize, u64, i64, u64)>,
    pub definitions: &'a [Definition],
    pub diagnostics: &'a [Diagnostic],
}

/// One refresh's writes, in one transaction: rows are appended a batch of files at a time as
/// they are parsed (holding every parsed definition until the end was a third of a 100k
/// build's peak memory), and none is visible, the manifest least of all, until `commit`.
/// Dropped uncommitted, it rolls back.
pub(crate) struct RegistryWriter<'a> {
    conn: MutexGuard<'a, Connection>,
    committed: bool,
}

/// What an engine keeps of the registry beside the catalog: diagnostics and vectors.
pub(crate) struct Contents {
    pub diagnostics: Vec<Diagnostic>,
    pub vectors: Vectors,
}

pub(crate) struct Registry {
    conn: Mutex<Connection>,
    /// Answers of `matching`, dropped whenever rows change.
    matching: Cache<(Filters, u64), Matching, ByKeys>,
    /// Answers of `filter`, likewise.
    listed: Cache<(Filters, usize), Arc<Vec<u64>>, ByKeys>,
}

impl Registry {
    fn new(conn: Connection) -> Registry {
        Registry {
            conn: Mutex::new(conn),
            matching: Cache::with_weighter(MATCHING_CACHE, MATCHING_CACHE_KEYS, ByKeys),
            listed: Cache::with_weighter(MATCHING_CACHE, MATCHING_CACHE_KEYS, ByKeys),
        }
    }

    /// Opens (creating if needed) the persisted file for a refresh. DuckDB may by default fill
    /// most of the machine's memory with its buffer pool, and a refresh writes every row and
    /// reads them all back for the catalog: held to 64 MB, a 100k build's peak RSS
    /// fell from 410-426 to 354-366 MB, in the same time; DuckDB writes out or drops pages
    /// instead (a 230 MB transaction of blobs, as vectors are, still commits under the limit).
    pub fn open_file(path: &Path) -> Result<Registry, RegistryError> {
        let conn = Connection::open(path)?;
        conn.execute_batch("SET memory_limit = '64MB'")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Registry::new(conn))
    }

    /// An empty registry that lives in memory only.
    pub fn in_memory() -> Result<Registry, RegistryError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Registry::new(conn))
    }

    /// Writes the tables filters read (only the columns they test and sort by) to their own
    /// DuckDB file at `path`, through a temporary file renamed into place. Serving processes
    /// attach that file read-only and never write it: a refresh writes a new one, so no
    /// served process ever holds a lock the next refresh needs, and none copies the tables at
    /// startup.
    pub fn write_filters(&self, path: &Path) -> Result<(), RegistryError> {
        let tmp = path.with_extension("duckdb.tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RegistryError::Io { path, source }
        };
        for stale in [tmp.clone(), tmp.with_extension("tmp.wal")] {
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&stale)(e)),
                _ => {}
            }
        }
        let quoted = tmp.to_string_lossy().replace('\'', "''");
        self.conn().execute_batch(&format!(
            "ATTACH '{quoted}' AS filters;
             CREATE TABLE filters.definitions AS
                 SELECT key, name, kind, role_norm, category_norm, model_norm FROM definitions;
             CREATE TABLE filters.labels AS FROM labels;
             CHECKPOINT filters;
             DETACH filters;"
        ))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }

    /// The registry a served engine asks: the filter file written by `write_filters`,
    /// attached read-only.
    pub fn serving(filters: &Path) -> Result<Registry, RegistryError> {
        let conn = Connection::open_in_memory()?;
        let quoted = filters.to_string_lossy().replace('\'', "''");
        conn.execute_batch(&format!(
            "ATTACH '{quoted}' AS filters (READ_ONLY); USE filters;"
        ))?;
        Ok(Registry::new(conn))
    }

    /// Every diagnostic and (when asked) vector: what a served engine keeps beside the catalog.
    pub fn contents(&self, with_vectors: bool) -> Result<Contents, RegistryError> {
        Ok(Contents {
            diagnostics: self.diagnostics()?,
            vectors: match with_vectors {
                true => self.vectors()?,
                false => Vectors::default(),
            },
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn schema_version(&self) -> Result<Option<i64>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?;
        let mut rows = stmt.query([])?;
        Ok(match rows.next()? {
            Some(row) => row.get::<_, String>(0)?.parse().ok(),
            None => None,
        })
    }

    pub fn set_schema_version(&self) -> Result<(), RegistryError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
            params![SCHEMA_VERSION.to_string()],
        )?;
        Ok(())
    }

    /// The manifest: path -> (size, mtime in ns) of every file read so far. Read column-wise
    /// from a streaming query, like `definitions`.
    pub fn manifest(&self) -> Result<Manifest, RegistryError> {
        let conn = self.conn();
        // Sized once: growing it chunk by chunk rehashed 100k paths several times over.
        let files: u64 = conn.query_row("SELECT count(*) FROM files", [], |r| r.get(0))?;
        let mut manifest = Manifest::with_capacity_and_hasher(
            usize::try_from(files).unwrap_or(0),
            Default::default(),
        );
        stream(&conn, "SELECT path, size, mtime_ns FROM files", |chunk| {
            let path = column::<StringArray>(chunk, 0)?;
            let size = column::<UInt64Array>(chunk, 1)?;
            let mtime = column::<Int64Array>(chunk, 2)?;
            for row in 0..chunk.len() {
                manifest.insert(
                    path.value(row).to_owned(),
                    (size.value(row), mtime.value(row)),
                );
            }
            Ok(())
        })?;
        Ok(manifest)
    }

    /// Starts a refresh's transaction, first deleting the rows of `removed` files (gone, or
    /// changed and about to be read again).
    pub fn writer(&self, removed: &[PathBuf]) -> Result<RegistryWriter<'_>, RegistryError> {
        self.matching.clear();
        self.listed.clear();
        let conn = self.conn();
        conn.execute_batch("BEGIN TRANSACTION")?;
        let writer = RegistryWriter {
            conn,
            committed: false,
        };
        for path in removed {
            let key = crate::library::key_of(path);
            let text = path.to_string_lossy();
            for table in ["definitions", "labels", "vectors"] {
                writer
                    .conn
                    .execute(&format!("DELETE FROM {table} WHERE key = ?"), params![key])?;
            }
            writer
                .conn
                .execute("DELETE FROM diagnostics WHERE path = ?", params![text])?;
            writer
                .conn
                .execute("DELETE FROM files WHERE path = ?", params![text])?;
        }
        Ok(writer)
    }

    /// Replaces the alias table: each group's served name and the names of its copies.
    pub fn set_aliases(&self, pairs: &[(String, String)]) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM aliases", [])?;
        {
            let mut app = tx.appender("aliases")?;
            for (name, alias) in pairs {
                app.append_row(params![name, alias])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every definition, handed to `each` a chunk of rows at a time, so a caller that keeps
    /// less than the whole definition never holds them all. Read column-wise from a streamed
    /// result: at 100k definitions, DuckDB's materialised result was about 150 MB held beside
    /// the definitions built from it, and the row API's per-value lookups cost more than the
    /// scan.
    pub fn definitions_in_chunks(
        &self,
        mut each: impl FnMut(Vec<Definition>),
    ) -> Result<(), RegistryError> {
        let conn = self.conn();
        stream(
            &conn,
            "SELECT key, name, kind, category, role, model, description, path, root, tokens,
                    argument_hint, tools, use_when, capabilities, tags, fallbacks, extra, segment,
                    text_offset, text_length
             FROM definitions",
            |chunk| {
                let key = column::<UInt64Array>(chunk, 0)?;
                let strings = |i| column::<StringArray>(chunk, i);
                let (name, kind, category, role, model) = (
                    strings(1)?,
                    strings(2)?,
                    strings(3)?,
                    strings(4)?,
                    strings(5)?,
                );
                let (description, path, hint) = (strings(6)?, strings(7)?, strings(10)?);
                let root = column::<Int32Array>(chunk, 8)?;
                let tokens = column::<UInt64Array>(chunk, 9)?;
                let (tools, use_when, capabilities, tags, fallbacks, extra) = (
                    strings(11)?,
                    strings(12)?,
                    strings(13)?,
                    strings(14)?,
                    strings(15)?,
                    strings(16)?,
                );
                let segment = column::<UInt32Array>(chunk, 17)?;
                let (offset, length) = (
                    column::<UInt64Array>(chunk, 18)?,
                    column::<UInt64Array>(chunk, 19)?,
                );
                // Rows become definitions (their strings, and the JSON of lists and unknown
                // fields) on every core; DuckDB's scan behind the next chunk stays on this one.
                let built = (0..chunk.len()).into_par_iter().map(|row| {
                    let optional =
                        |a: &StringArray| (!a.is_null(row)).then(|| a.value(row).to_owned());
                    let list = |a: &StringArray| -> Vec<String> {
                        serde_json::from_str(a.value(row)).unwrap_or_default()
                    };
                    Definition {
                        key: key.value(row),
                        name: name.value(row).to_owned(),
                        kind: kind.value(row).parse().unwrap_or(Kind::Agent),
                        category: optional(category),
                        role: optional(role),
                        model: optional(model),
                        description: description.value(row).to_owned(),
                        path: PathBuf::from(path.value(row)),
                        root: usize::try_from(root.value(row)).unwrap_or(usize::MAX),
                        tokens: tokens.value(row),
                        argument_hint: optional(hint),
                        tools: list(tools),
                        use_when: list(use_when),
                        capabilities: list(capabilities),
                        tags: list(tags),
                        fallbacks: list(fallbacks),
                        extra: serde_json::from_str(extra.value(row)).unwrap_or_default(),
                        text: TextLocation {
                            segment: segment.value(row),
                            offset: offset.value(row),
                            length: length.value(row),
                        },
                    }
                });
                each(built.collect());
                Ok(())
            },
        )
    }

    /// Every stored diagnostic, in path and line order.
    pub fn diagnostics(&self) -> Result<Vec<Diagnostic>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT path, line, severity, message FROM diagnostics ORDER BY path, line")?;
        let rows = stmt.query_map([], |r| {
            Ok(Diagnostic {
                path: PathBuf::from(r.get::<_, String>(0)?),
                line: r.get::<_, u64>(1)? as usize,
                severity: Severity::parse(&r.get::<_, String>(2)?),
                message: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keys of definitions that have no vector yet.
    pub fn missing_vectors(&self) -> Result<Vec<u64>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key FROM definitions WHERE key NOT IN (SELECT key FROM vectors) ORDER BY key",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores definition vectors (little-endian f32).
    pub fn put_vectors(&self, rows: &[(u64, Vec<f32>)]) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut app = tx.appender("vectors")?;
            for (key, vector) in rows {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                app.append_row(params![key, bytes])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored definition vector, quantised as it is read: at 100k definitions the f32
    /// rows would be 154 MB held at once for a 38 MB result.
    pub fn vectors(&self) -> Result<Vectors, RegistryError> {
        let conn = self.conn();
        let mut vectors = Vectors::default();
        let mut vector = Vec::with_capacity(crate::embed::DIMENSIONS);
        stream(&conn, "SELECT key, v FROM vectors", |chunk| {
            let (key, v) = (
                column::<UInt64Array>(chunk, 0)?,
                column::<BinaryArray>(chunk, 1)?,
            );
            for row in 0..chunk.len() {
                vector.clear();
                vector.extend(
                    v.value(row)
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                vectors.push(key.value(row), &vector);
            }
            Ok(())
        })?;
        Ok(vectors)
    }

    /// The text segments some definition still refers to.
    pub fn segments(&self) -> Result<Vec<u32>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT DISTINCT segment FROM definitions ORDER BY segment")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every value definitions declare for `what`, lowercased as filters compare them, sorted.
    pub fn declared(&self, what: Declared) -> Result<Vec<String>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(what.query())?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        let mut values: Vec<String> = rows.collect::<Result<_, _>>()?;
        values.sort_unstable();
        Ok(values)
    }

    /// How many definitions pass `filters`: the planner's estimate of the structured side.
    pub fn count(&self, filters: &Filters) -> Result<u64, RegistryError> {
        let (keys, values) = keys_query(filters);
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("SELECT count(*) FROM ({keys})"))?;
        Ok(stmt.query_row(params_from_iter(values), |r| r.get(0))?)
    }

    /// The definitions passing `filters` when there are at most `at_most` of them, else only
    /// how many there are. Answers are cached: the registry does not change while it is
    /// served (a refresh builds a new one), and orchestrators ask for the same few roles and
    /// capabilities again and again.
    pub fn matching(&self, filters: &Filters, at_most: u64) -> Result<Matching, RegistryError> {
        if let Some(hit) = self.matching.get(&(filters.clone(), at_most)) {
            return Ok(hit);
        }
        let (query, mut values) = keys_query(filters);
        values.push(Value::BigInt(
            i64::try_from(at_most.saturating_add(1)).unwrap_or(i64::MAX),
        ));
        let keys: KeySet = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&format!("{query} LIMIT ?"))?;
            let rows = stmt.query_map(params_from_iter(values), |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let answer = if keys.len() as u64 <= at_most {
            Matching::Few(Arc::new(keys))
        } else {
            Matching::Many(self.count(filters)?)
        };
        self.matching
            .insert((filters.clone(), at_most), answer.clone());
        Ok(answer)
    }

    /// Keys of the definitions passing `filters`, by name; at most `limit` of them. Cached like
    /// `matching`.
    pub fn filter(&self, filters: &Filters, limit: usize) -> Result<Arc<Vec<u64>>, RegistryError> {
        if let Some(hit) = self.listed.get(&(filters.clone(), limit)) {
            return Ok(hit);
        }
        let (clause, mut values) = filter_where(filters);
        values.push(Value::BigInt(i64::try_from(limit).unwrap_or(i64::MAX)));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT d.key FROM definitions d WHERE {clause} ORDER BY d.name, d.key LIMIT ?"
        ))?;
        let rows = stmt.query_map(params_from_iter(values), |r| r.get(0))?;
        let keys = Arc::new(rows.collect::<Result<Vec<u64>, _>>()?);
        self.listed
            .insert((filters.clone(), limit), Arc::clone(&keys));
        Ok(keys)
    }
}

impl RegistryWriter<'_> {
    /// Appends one batch's rows.
    pub fn append(&mut self, batch: &Batch<'_>) -> Result<(), RegistryError> {
        let mut files = self.conn.appender("files")?;
        for (path, root, size, mtime, hash) in &batch.files {
            files.append_row(params![
                path.to_string_lossy(),
                *root as i64,
                size,
                mtime,
                hash
            ])?;
        }
        let mut defs = self.conn.appender("definitions")?;
        for d in batch.definitions {
            defs.append_row(params![
                d.key,
                d.name,
                d.kind.as_str(),
                d.category,
                d.role,
                d.model,
                d.description,
                d.path.to_string_lossy(),
                d.root as i64,
                d.tokens,
                d.argument_hint,
                json(&d.tools),
                json(&d.use_when),
                json(&d.capabilities),
                json(&d.tags),
                json(&d.fallbacks),
                serde_json::Value::Object(d.extra.clone()).to_string(),
                d.text.segment,
                d.text.offset,
                d.text.length,
                d.role.as_deref().map(str::to_lowercase),
                d.category.as_deref().map(str::to_lowercase),
                d.model.as_deref().map(str::to_lowercase),
            ])?;
        }
        let mut labels = self.conn.appender("labels")?;
        for d in batch.definitions {
            for label in d.labels() {
                labels.append_row(params![d.key, label])?;
            }
        }
        let mut diags = self.conn.appender("diagnostics")?;
        for g in batch.diagnostics {
            diags.append_row(params![
                g.path.to_string_lossy(),
                g.line as u64,
                g.severity.as_str(),
                g.message
            ])?;
        }
        Ok(())
    }

    /// Makes every appended row, and the deletions, visible at once.
    pub fn commit(mut self) -> Result<(), RegistryError> {
        self.conn.execute_batch("COMMIT")?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for RegistryWriter<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// Runs `sql` as a streaming query and hands each chunk of rows to `each`, so DuckDB never
/// holds the whole result at once.
fn stream(
    conn: &Connection,
    sql: &str,
    mut each: impl FnMut(&StructArray) -> Result<(), RegistryError>,
) -> Result<(), RegistryError> {
    let mut stmt = conn.prepare(sql)?;
    // Only sets up the streaming result; chunks are fetched with `step`, which reports a
    // failed fetch as an error where the returned iterator would panic.
    drop(stmt.stream_arrow([])?);
    while let Some(chunk) = stmt.step()? {
        each(&chunk)?;
    }
    Ok(())
}

/// Column `i` of a streamed chunk as the Arrow array type its SQL type maps to.
fn column<T: 'static>(chunk: &StructArray, i: usize) -> Result<&T, RegistryError> {
    let array = chunk.column(i);
    array.as_any().downcast_ref::<T>().ok_or_else(|| {
        RegistryError::Db(duckdb::Error::ArrowTypeToDuckdbType(
            format!("column {i}"),
            array.data_type().clone(),
        ))
    })
}
