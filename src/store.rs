//! Full definition texts, read on demand and kept in an LRU weighted by size, so an
//! orchestrator loading the same specialist again pays a hash lookup, not a file read.

use std::path::Path;
use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::library::formats::MAX_FILE_BYTES;

#[derive(Clone)]
struct ByLength;

impl Weighter<u64, Arc<str>> for ByLength {
    fn weight(&self, _key: &u64, value: &Arc<str>) -> u64 {
        value.len().max(1) as u64
    }
}

/// Texts keyed by definition key. One store belongs to one engine snapshot, which is built
/// after the files were read, so it never outlives the files it caches.
pub(crate) struct Store {
    cache: Cache<u64, Arc<str>, ByLength>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
    #[error("{path} is larger than the {limit} MiB limit for a definition")]
    TooLarge { path: String, limit: u64 },
}

impl Store {
    /// A store holding at most `capacity_bytes` of text.
    pub fn new(capacity_bytes: u64) -> Store {
        Store {
            cache: Cache::with_weighter(1024, capacity_bytes, ByLength),
        }
    }

    /// The text of the definition `key` stored at `path`.
    pub fn load(&self, key: u64, path: &Path) -> Result<Arc<str>, StoreError> {
        if let Some(text) = self.cache.get(&key) {
            return Ok(text);
        }
        let shown = || path.display().to_string();
        let io = |source| StoreError::Io {
            path: shown(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(StoreError::TooLarge {
                path: shown(),
                limit: MAX_FILE_BYTES >> 20,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let text: Arc<str> = String::from_utf8(bytes)
            .map_err(|_| StoreError::NotText { path: shown() })?
            .into();
        self.cache.insert(key, Arc::clone(&text));
        Ok(text)
    }
}
