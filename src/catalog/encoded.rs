//! How the catalog keeps definitions: each one encoded on its own (postcard) in one blob,
//! decoded only when a face asks for it. The blob and the catalog's entries are written to
//! `<index>/catalog.bin`; a reopen reads the entries back and leaves the blob on disk, so a
//! restart neither reads every row back from DuckDB nor holds 100k decoded definitions it will
//! mostly never show.
//!
//! A definition is read from the file with one positioned read of its bytes, not through a
//! mapping: the hits a request lists lie scattered over a 120 MB blob (at 100k definitions),
//! and the first touch of a mapped page is a page fault, which took a listed hit 7 us at p50
//! and now and then milliseconds, against 3 us for the read (benches/README.md, "Catalog").
//!
//! File layout: magic and format version, the blob, the header (postcard: interned strings,
//! names, entries and the lookup tables), then a trailer: the header's length and xxh3, and the
//! magic again. The blob comes first so that a build streams each definition to the file as it
//! is encoded and never holds the blob in memory. Each entry carries the xxh3 of its
//! definition's bytes, checked when it is decoded: a damaged file yields no definition, never a
//! wrong one.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::library::{Definition, Kind};
use crate::store::TextLocation;

const MAGIC: &[u8; 8] = b"o8catlg\0";
/// Bump when `Stored`, `Header`, `StoredEntry` or the layout change.
const VERSION: u32 = 5;
/// Where the blob starts: after the magic and the version.
const BLOB_START: usize = 8 + 4;
/// Header length, header hash, magic.
const TRAILER: usize = 8 + 8 + 8;

#[derive(Debug, thiserror::Error)]
pub enum CatalogFileError {
    #[error("catalog file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("catalog file {0} is damaged or from another version")]
    Damaged(PathBuf),
}

/// A definition as the blob holds it: `Definition` with its unknown fields as JSON text
/// (postcard is not self-describing, so it cannot hold a JSON value), its text location, and
/// the stems of its routing text (`text::routing_stems`). Borrowed from the definition when
/// encoding and from the bytes read when decoding.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    key: u64,
    name: Cow<'a, str>,
    kind: Kind,
    category: Option<Cow<'a, str>>,
    role: Option<Cow<'a, str>>,
    model: Option<Cow<'a, str>>,
    description: Cow<'a, str>,
    path: Cow<'a, Path>,
    root: u64,
    tokens: u64,
    capabilities: Cow<'a, [String]>,
    tags: Cow<'a, [String]>,
    fallbacks: Cow<'a, [String]>,
    use_when: Cow<'a, [String]>,
    tools: Cow<'a, [String]>,
    argument_hint: Option<Cow<'a, str>>,
    extra: Cow<'a, str>,
    text: (u32, u64, u64),
    routing_stems: &'a str,
}

fn borrowed(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(Cow::Borrowed)
}

/// Appends `d`, with the stems of its routing text, to `blob` and returns where it sits.
pub(super) fn encode(d: &Definition, routing_stems: &str, blob: &mut Vec<u8>) -> Span {
    let extra = match d.extra.is_empty() {
        true => Cow::Borrowed("{}"),
        false => Cow::Owned(serde_json::Value::Object(d.extra.clone()).to_string()),
    };
    let stored = Stored {
        key: d.key,
        name: Cow::Borrowed(&d.name),
        kind: d.kind,
        category: borrowed(&d.category),
        role: borrowed(&d.role),
        model: borrowed(&d.model),
        description: Cow::Borrowed(&d.description),
        path: Cow::Borrowed(&d.path),
        root: d.root as u64,
        tokens: d.tokens,
        capabilities: Cow::Borrowed(&d.capabilities),
        tags: Cow::Borrowed(&d.tags),
        fallbacks: Cow::Borrowed(&d.fallbacks),
        use_when: Cow::Borrowed(&d.use_when),
        tools: Cow::Borrowed(&d.tools),
        argument_hint: borrowed(&d.argument_hint),
        extra,
        text: (d.text.segment, d.text.offset, d.text.length),
        routing_stems,
    };
    let start = blob.len();
    // Writing into a Vec fails only if a value cannot be serialised, which ours always can;
    // an error leaves the span empty, which decodes to nothing rather than to a wrong
    // definition.
    if postcard::to_io(&stored, &mut *blob).is_err() {
        blob.truncate(start);
    }
    let bytes = &blob[start..];
    Span {
        offset: start as u64,
        length: bytes.len() as u32,
        hash: xxhash_rust::xxh3::xxh3_64(bytes),
    }
}

/// Decodes the definition at `span` and the stems of its routing text, or None when its bytes
/// cannot be read or are not what was written.
pub(super) fn decode(blob: &Blob, span: Span) -> Option<(Definition, String)> {
    let bytes = blob.read(span)?;
    if xxhash_rust::xxh3::xxh3_64(&bytes) != span.hash {
        tracing::error!(
            offset = span.offset,
            "damaged definition in the catalog file"
        );
        return None;
    }
    let s: Stored = postcard::from_bytes(&bytes).ok()?;
    let owned = |s: Option<Cow<'_, str>>| s.map(Cow::into_owned);
    let definition = Definition {
        key: s.key,
        name: s.name.into_owned(),
        kind: s.kind,
        category: owned(s.category),
        role: owned(s.role),
        model: owned(s.model),
        description: s.description.into_owned(),
        path: s.path.into_owned(),
        root: usize::try_from(s.root).unwrap_or(usize::MAX),
        tokens: s.tokens,
        capabilities: s.capabilities.into_owned(),
        tags: s.tags.into_owned(),
        fallbacks: s.fallbacks.into_owned(),
        use_when: s.use_when.into_owned(),
        tools: s.tools.into_owned(),
        argument_hint: owned(s.argument_hint),
        extra: serde_json::from_str(&s.extra).unwrap_or_default(),
        text: TextLocation {
            segment: s.text.0,
            offset: s.text.1,
            length: s.text.2,
        },
    };
    Some((definition, s.routing_stems.to_string()))
}

/// Where one encoded definition sits in the blob.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(super) struct Span {
    offset: u64,
    length: u32,
    hash: u64,
}

impl Span {
    /// The same bytes, moved `by` bytes further into a blob.
    pub fn at(self, by: u64) -> Span {
        Span {
            offset: self.offset + by,
            ..self
        }
    }
}

/// What the catalog keeps of each definition, in precedence order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct StoredEntry {
    pub key: u64,
    /// Where this entry's name ends in `Header::names` (it starts where the previous one's
    /// ends): one string for all names, rather than 100k to allocate on every reopen.
    pub name_end: u32,
    pub kind: Kind,
    /// Index into `Header::strings`.
    pub category: Option<u32>,
    pub role: Option<u32>,
    pub group: u32,
    pub served: bool,
    pub span: Span,
}

/// The catalog's entries and every lookup table over them, as sorted arrays of entry
/// numbers: a reopen decodes them as they are instead of hashing 100k names and keys again.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Header {
    /// Categories and roles, each written once.
    pub strings: Vec<String>,
    pub names: String,
    pub entries: Vec<StoredEntry>,
    /// Served entries, by name.
    pub by_name: Vec<u32>,
    /// Every entry as (key, entry number), by key. The key sits beside the number so that a
    /// lookup's bisection reads one array: through entry numbers alone each step was two
    /// dependent cache misses (the number, then its entry), some 2 us a lookup at 100k,
    /// paid for every hit listed.
    pub by_key: Vec<(u64, u32)>,
    /// Group `g`'s served members (canonical first) are
    /// `group_members[group_starts[g]..group_starts[g + 1]]`.
    pub group_starts: Vec<u32>,
    pub group_members: Vec<u32>,
    /// Lowercased role -> the served agents declaring it, in precedence order; by role.
    pub roles: Vec<(String, Vec<u32>)>,
    /// Bytes of the blob, which a file holds before the header: a cut file is refused.
    pub blob_length: u64,
}

impl Header {
    /// Whether every number in the tables points where it should, so lookups can index
    /// without checking again.
    fn is_consistent(&self) -> bool {
        let len = self.entries.len();
        let within = |i: &u32| (*i as usize) < len;
        let mut start = 0;
        let names_fit = self.entries.iter().all(|e| {
            let end = e.name_end as usize;
            let fits = start <= end && self.names.get(start..end).is_some();
            start = end;
            fits
        });
        let strings = |s: Option<u32>| s.is_none_or(|s| (s as usize) < self.strings.len());
        names_fit
            && self.entries.iter().all(|e| {
                strings(e.category)
                    && strings(e.role)
                    && (e.group as usize) < self.group_starts.len().saturating_sub(1)
            })
            && self.by_name.iter().all(within)
            && self.by_key.len() == len
            && self.by_key.iter().all(|(_, i)| within(i))
            && self.group_members.iter().all(within)
            && self.group_starts.windows(2).all(|w| w[0] <= w[1])
            && self
                .group_starts
                .last()
                .is_none_or(|&end| end as usize == self.group_members.len())
            && self
                .roles
                .iter()
                .all(|(_, members)| members.iter().all(within))
    }
}

/// The encoded definitions: built in memory, or in a catalog file, read a definition at a
/// time.
pub(super) enum Blob {
    Memory(Vec<u8>),
    File {
        file: File,
        path: PathBuf,
        /// Bytes of blob in the file, from `BLOB_START`.
        length: u64,
    },
}

impl Blob {
    /// The bytes of `span`; None if they lie outside the blob or cannot be read.
    fn read(&self, span: Span) -> Option<Cow<'_, [u8]>> {
        let end = span.offset.checked_add(u64::from(span.length))?;
        match self {
            Blob::Memory(bytes) => {
                let range = usize::try_from(span.offset).ok()?..usize::try_from(end).ok()?;
                bytes.get(range).map(Cow::Borrowed)
            }
            Blob::File { file, path, length } => {
                if end > *length {
                    return None;
                }
                let mut bytes = vec![0; span.length as usize];
                match file.read_exact_at(&mut bytes, BLOB_START as u64 + span.offset) {
                    Ok(()) => Some(Cow::Owned(bytes)),
                    Err(error) => {
                        let path = path.display();
                        tracing::error!(%path, %error, "cannot read the catalog file");
                        None
                    }
                }
            }
        }
    }
}

/// Where a catalog being built puts its encoded definitions: memory, or the catalog file
/// itself (under a temporary name until the header follows).
pub(super) enum BlobWriter {
    Memory(Vec<u8>),
    File(FileWriter),
}

pub(super) struct FileWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    length: u64,
}

impl FileWriter {
    fn io(&self) -> impl Fn(std::io::Error) -> CatalogFileError + '_ {
        |source| CatalogFileError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends the header and the trailer, and renames the file into place: a reader maps
    /// either the old file or the new one, never a half-written one. Not synced: a file cut or
    /// emptied by a crash fails `read`'s checks and is rebuilt from the registry.
    pub fn finish(self, header: &Header) -> Result<(), CatalogFileError> {
        let FileWriter {
            path, tmp, mut out, ..
        } = self;
        let io = |source| CatalogFileError::Io {
            path: path.clone(),
            source,
        };
        let encoded = postcard::to_stdvec(header)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        for bytes in [
            &encoded[..],
            &(encoded.len() as u64).to_le_bytes(),
            &xxhash_rust::xxh3::xxh3_64(&encoded).to_le_bytes(),
            MAGIC,
        ] {
            out.write_all(bytes).map_err(io)?;
        }
        out.flush().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

impl BlobWriter {
    /// A blob streamed into a new catalog file for `path`.
    pub fn file(path: &Path) -> Result<BlobWriter, CatalogFileError> {
        let io = |source| CatalogFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("bin.tmp");
        // Readable too: `seal` maps it to group copies before the header is written.
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io)?;
        let mut out = BufWriter::new(file);
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&VERSION.to_le_bytes()).map_err(io)?;
        Ok(BlobWriter::File(FileWriter {
            path: path.to_path_buf(),
            tmp,
            out,
            length: 0,
        }))
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        match self {
            BlobWriter::Memory(bytes) => bytes.len() as u64,
            BlobWriter::File(file) => file.length,
        }
    }

    pub fn append(&mut self, bytes: &[u8]) -> Result<(), CatalogFileError> {
        match self {
            BlobWriter::Memory(blob) => blob.extend_from_slice(bytes),
            BlobWriter::File(file) => {
                file.out.write_all(bytes).map_err(file.io())?;
                file.length += bytes.len() as u64;
            }
        }
        Ok(())
    }

    /// The blob, readable (a file's is flushed), and the file still to finish.
    pub fn seal(self) -> Result<(Blob, Option<FileWriter>), CatalogFileError> {
        match self {
            BlobWriter::Memory(blob) => Ok((Blob::Memory(blob), None)),
            BlobWriter::File(mut file) => {
                file.out.flush().map_err(file.io())?;
                // The temporary file is renamed into place, and an open file follows a rename.
                let blob = Blob::File {
                    file: file.out.get_ref().try_clone().map_err(file.io())?,
                    path: file.path.clone(),
                    length: file.length,
                };
                Ok((blob, Some(file)))
            }
        }
    }
}

/// Reads the catalog file at `path` and decodes its header; the blob stays in the file.
pub(super) fn read(path: &Path) -> Result<(Header, Blob), CatalogFileError> {
    let io = |source| CatalogFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let damaged = || CatalogFileError::Damaged(path.to_path_buf());
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let trailer_start = size
        .checked_sub(TRAILER as u64)
        .filter(|&at| at >= BLOB_START as u64)
        .ok_or_else(damaged)?;
    let mut start = [0; BLOB_START];
    file.read_exact_at(&mut start, 0).map_err(io)?;
    let mut trailer = [0; TRAILER];
    file.read_exact_at(&mut trailer, trailer_start)
        .map_err(io)?;
    let word = |at: usize| u64::from_le_bytes(trailer[at..at + 8].try_into().unwrap_or_default());
    let version = u32::from_le_bytes(start[8..12].try_into().unwrap_or_default());
    if &start[..8] != MAGIC || version != VERSION || &trailer[16..] != MAGIC {
        return Err(damaged());
    }
    let header_start = trailer_start
        .checked_sub(word(0))
        .filter(|&at| at >= BLOB_START as u64)
        .ok_or_else(damaged)?;
    let mut encoded = vec![0; usize::try_from(word(0)).map_err(|_| damaged())?];
    file.read_exact_at(&mut encoded, header_start).map_err(io)?;
    if xxhash_rust::xxh3::xxh3_64(&encoded) != word(8) {
        return Err(damaged());
    }
    let header: Header = postcard::from_bytes(&encoded).map_err(|_| damaged())?;
    let length = header_start - BLOB_START as u64;
    if length != header.blob_length || !header.is_consistent() {
        return Err(damaged());
    }
    let blob = Blob::File {
        file,
        path: path.to_path_buf(),
        length,
    };
    Ok((header, blob))
}
