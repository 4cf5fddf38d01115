//! Definition texts, served from the index rather than from the library's files: each refresh
//! appends the bytes of the files it read to a new *segment* file under `<index>/texts/`,
//! written once (temporary name, then rename) and never modified again. A running process maps
//! the segments it needs with memmap2 and keeps loaded texts in a size-weighted quick_cache LRU.
//!
//! Why not map the library's own files: someone editing an agent truncates the file, and a
//! read through a mapping past the new end raises SIGBUS, which would kill the server. Our
//! segments are only ever created and unlinked, and an unlinked file stays mapped, so no
//! mapping can shrink under a reader. It also makes a load consistent with the search that
//! found it: both come from the same refresh.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Where a definition's text sits: segment, byte offset and length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextLocation {
    pub segment: u32,
    pub offset: u64,
    pub length: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("text segment {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "text segment {0} is missing or shorter than the index says; run `orchestr8 index` to rebuild"
    )]
    Damaged(u32),
    #[error("definition text is not UTF-8")]
    NotText,
}

/// A segment held in memory: its id and bytes.
pub(crate) type OwnedSegment = (u32, Vec<u8>);

/// Appends texts to one new segment.
pub(crate) struct SegmentWriter {
    id: u32,
    offset: u64,
    target: Target,
}

enum Target {
    File {
        tmp: PathBuf,
        path: PathBuf,
        out: BufWriter<File>,
    },
    Memory(Vec<u8>),
}

impl SegmentWriter {
    /// A segment `id` under `dir`, or in memory when there is no index directory.
    pub fn create(dir: Option<&Path>, id: u32) -> Result<SegmentWriter, StoreError> {
        let target = match dir {
            None => Target::Memory(Vec::new()),
            Some(dir) => {
                let io = |source| StoreError::Io {
                    path: dir.to_path_buf(),
                    source,
                };
                std::fs::create_dir_all(dir).map_err(io)?;
                let path = segment_path(dir, id);
                let tmp = path.with_extension("tmp");
                let out = BufWriter::new(File::create(&tmp).map_err(io)?);
                Target::File { tmp, path, out }
            }
        };
        Ok(SegmentWriter {
            id,
            offset: 0,
            target,
        })
    }

    pub fn append(&mut self, bytes: &[u8]) -> Result<TextLocation, StoreError> {
        match &mut self.target {
            Target::Memory(buf) => buf.extend_from_slice(bytes),
            Target::File { tmp, out, .. } => {
                out.write_all(bytes).map_err(|source| StoreError::Io {
                    path: tmp.clone(),
                    source,
                })?
            }
        }
        let location = TextLocation {
            segment: self.id,
            offset: self.offset,
            length: bytes.len() as u64,
        };
        self.offset += bytes.len() as u64;
        Ok(location)
    }

    /// Finishes the segment: on disk, flushed, synced and renamed into place; in memory, its bytes.
    pub fn finish(self) -> Result<Option<OwnedSegment>, StoreError> {
        match self.target {
            Target::Memory(buf) => Ok(Some((self.id, buf))),
            Target::File { tmp, path, out } => {
                let io = |source| StoreError::Io {
                    path: tmp.clone(),
                    source,
                };
                let file = out.into_inner().map_err(|e| io(e.into_error()))?;
                file.sync_all().map_err(io)?;
                std::fs::rename(&tmp, &path).map_err(io)?;
                Ok(None)
            }
        }
    }
}

fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.seg"))
}

/// Segment ids present in `dir`.
pub(crate) fn segments_in(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .collect()
}

/// Deletes segments (and leftover temporary files) that no definition refers to any more.
/// Processes that mapped them keep their mappings: unlinking does not shrink a mapping.
pub(crate) fn collect_garbage(dir: &Path, referenced: &[u32]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let unreferenced = name
            .strip_suffix(".seg")
            .and_then(|id| id.parse::<u32>().ok())
            .is_some_and(|id| !referenced.contains(&id));
        if (unreferenced || name.ends_with(".tmp"))
            && let Err(error) = std::fs::remove_file(entry.path())
        {
            tracing::debug!(file = name, %error, "could not remove an old text segment");
        }
    }
}

enum Segment {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Mapped(map) => map,
            Segment::Owned(buf) => buf,
        }
    }
}

#[derive(Clone)]
struct ByLength;

impl Weighter<u64, Arc<str>> for ByLength {
    fn weight(&self, _key: &u64, value: &Arc<str>) -> u64 {
        value.len().max(1) as u64
    }
}

/// The texts of one snapshot of the library.
pub(crate) struct Store {
    segments: HashMap<u32, Segment>,
    cache: Cache<u64, Arc<str>, ByLength>,
}

impl Store {
    /// Maps every segment in `ids` from `dir` now, so that a later refresh by another process
    /// deleting them cannot take them away from this snapshot.
    pub fn open(dir: &Path, ids: &[u32], capacity_bytes: u64) -> Result<Store, StoreError> {
        let mut segments = HashMap::new();
        for &id in ids {
            let path = segment_path(dir, id);
            let file = File::open(&path).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
            // SAFETY: segment files are written once under the index lock, renamed into place,
            // and afterwards only ever unlinked, never truncated or rewritten (module docs), so
            // the mapping stays valid for as long as it lives.
            let map =
                unsafe { Mmap::map(&file) }.map_err(|source| StoreError::Io { path, source })?;
            segments.insert(id, Segment::Mapped(map));
        }
        Ok(Store {
            segments,
            cache: Cache::with_weighter(1024, capacity_bytes, ByLength),
        })
    }

    /// A store over segments held in memory.
    pub fn in_memory(owned: Vec<OwnedSegment>, capacity_bytes: u64) -> Store {
        let segments = owned
            .into_iter()
            .map(|(id, buf)| (id, Segment::Owned(buf)))
            .collect();
        Store {
            segments,
            cache: Cache::with_weighter(1024, capacity_bytes, ByLength),
        }
    }

    /// The text of definition `key`, stored at `at`.
    pub fn load(&self, key: u64, at: TextLocation) -> Result<Arc<str>, StoreError> {
        if let Some(text) = self.cache.get(&key) {
            return Ok(text);
        }
        let segment = self
            .segments
            .get(&at.segment)
            .ok_or(StoreError::Damaged(at.segment))?;
        let start = usize::try_from(at.offset).map_err(|_| StoreError::Damaged(at.segment))?;
        let end = start
            .checked_add(at.length as usize)
            .ok_or(StoreError::Damaged(at.segment))?;
        let bytes = segment
            .bytes()
            .get(start..end)
            .ok_or(StoreError::Damaged(at.segment))?;
        let text: Arc<str> = std::str::from_utf8(bytes)
            .map_err(|_| StoreError::NotText)?
            .into();
        self.cache.insert(key, Arc::clone(&text));
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_segments_map_back_and_unreferenced_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(Some(dir.path()), 3).unwrap();
        let a = w.append(b"alpha").unwrap();
        let b = w.append("bêta".as_bytes()).unwrap();
        assert!(w.finish().unwrap().is_none());
        let store = Store::open(dir.path(), &[3], 1 << 20).unwrap();
        assert_eq!(&*store.load(1, a).unwrap(), "alpha");
        assert_eq!(&*store.load(2, b).unwrap(), "bêta");
        let beyond = TextLocation {
            segment: 3,
            offset: 4,
            length: 100,
        };
        assert!(matches!(store.load(9, beyond), Err(StoreError::Damaged(3))));

        std::fs::write(dir.path().join("00000007.seg"), b"old").unwrap();
        collect_garbage(dir.path(), &[3]);
        assert_eq!(segments_in(dir.path()), [3]);
        // The mapping outlives the file.
        collect_garbage(dir.path(), &[]);
        assert_eq!(&*store.load(1, a).unwrap(), "alpha");
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_loads_never_depend_on_it() {
        let texts = ["a".repeat(600), "b".repeat(600), "c".repeat(600)];
        let mut w = SegmentWriter::create(None, 0).unwrap();
        let at: Vec<TextLocation> = texts
            .iter()
            .map(|t| w.append(t.as_bytes()).unwrap())
            .collect();
        let owned = w.finish().unwrap().unwrap();
        for capacity in [0, 1_000, 1 << 20] {
            let store = Store::in_memory(vec![owned.clone()], capacity);
            for _ in 0..2 {
                for (key, (text, &at)) in texts.iter().zip(&at).enumerate() {
                    assert_eq!(&*store.load(key as u64, at).unwrap(), text.as_str());
                }
            }
            assert!(store.cache.weight() <= capacity, "capacity {capacity}");
        }
        let roomy = Store::in_memory(vec![owned], 1 << 20);
        for (key, &at) in at.iter().enumerate() {
            roomy.load(key as u64, at).unwrap();
        }
        assert_eq!(roomy.cache.len(), 3);
    }
}
