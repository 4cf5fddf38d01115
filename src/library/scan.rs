//! Walking library roots: which files are candidates, and their size and mtime so an unchanged
//! file is never read twice. Symlinks are followed only while they stay inside their root.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, Mode, OFlags};

use super::formats::MAX_FILE_BYTES;
use crate::diagnostic::Diagnostic;

/// A markdown file found under a root, not yet read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FoundFile {
    pub root: usize,
    pub path: PathBuf,
    pub relative: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
}

/// Names of markdown files that document a collection rather than define anything.
const NOT_DEFINITIONS: &[&str] = &[
    "readme.md",
    "changelog.md",
    "contributing.md",
    "license.md",
    "code_of_conduct.md",
];

/// Lists candidate files under every root (roots given canonical), in no particular order
/// (`sort` orders them). Directories are walked and files stat'ed on every core (ignore's
/// parallel walker): at 100k files the stat calls are most of a reopen's walk.
pub(crate) fn walk(roots: &[PathBuf]) -> (Vec<FoundFile>, Vec<Diagnostic>) {
    let diagnostics = Arc::new(Mutex::new(Vec::new()));
    let files = Mutex::new(Vec::new());
    for (index, root) in roots.iter().enumerate() {
        let inside = root.clone();
        let escaped = Arc::clone(&diagnostics);
        ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .hidden(true)
            .follow_links(true)
            .filter_entry(move |entry| {
                if !entry.path_is_symlink() {
                    return true;
                }
                let stays = std::fs::canonicalize(entry.path())
                    .is_ok_and(|target| target.starts_with(&inside));
                if !stays {
                    push(
                        &escaped,
                        Diagnostic::warning(
                            entry.path(),
                            1,
                            "symlink points outside the library root; not followed",
                        ),
                    );
                }
                stays
            })
            .build_parallel()
            .run(|| {
                Box::new(|entry| {
                    let found = match entry {
                        Ok(entry) => candidate(index, root, &entry, &diagnostics),
                        Err(error) => {
                            let path = error_path(&error).unwrap_or_else(|| root.clone());
                            let message =
                                format!("cannot walk: {}", strip_path(&error.to_string()));
                            push(&diagnostics, Diagnostic::warning(path, 1, message));
                            None
                        }
                    };
                    if let Some(found) = found {
                        files.lock().unwrap_or_else(|e| e.into_inner()).push(found);
                    }
                    ignore::WalkState::Continue
                })
            });
    }
    let mut files = files.into_inner().unwrap_or_else(|e| e.into_inner());
    drop_skill_support_files(&mut files);
    let diagnostics = std::mem::take(&mut *diagnostics.lock().unwrap_or_else(|e| e.into_inner()));
    (files, diagnostics)
}

/// A path's bytes with separators as 0: compared as bytes, this orders paths exactly as
/// comparing their components does, without parsing components on every comparison.
pub(crate) fn component_order(path: &Path) -> Vec<u8> {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|&b| {
            if std::path::is_separator(b as char) {
                0
            } else {
                b
            }
        })
        .collect()
}

/// The walked entry as a definition candidate, or `None` (with a diagnostic when it is a
/// definition file that cannot be used).
fn candidate(
    root_index: usize,
    root: &Path,
    entry: &ignore::DirEntry,
    diagnostics: &Mutex<Vec<Diagnostic>>,
) -> Option<FoundFile> {
    let path = entry.path();
    let is_md = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md"));
    if !is_md || !entry.file_type().is_some_and(|t| t.is_file()) {
        return None;
    }
    let file_name = path.file_name().unwrap_or_default().as_encoded_bytes();
    if NOT_DEFINITIONS
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(file_name))
    {
        return None;
    }
    let (size, mtime_ns) = match stat_in_directory(path) {
        Ok(stat) => stat,
        Err(error) => {
            push(
                diagnostics,
                Diagnostic::error(path, 1, format!("cannot read file metadata: {error}")),
            );
            return None;
        }
    };
    if size > MAX_FILE_BYTES {
        push(
            diagnostics,
            Diagnostic::error(
                path,
                1,
                format!(
                    "file is {size} bytes, over the {} MiB limit for a definition; skipped",
                    MAX_FILE_BYTES / (1024 * 1024)
                ),
            ),
        );
        return None;
    }
    Some(FoundFile {
        root: root_index,
        // Relative to the root's parent, so a root named `commands/` still marks its files as
        // workflows.
        relative: path
            .strip_prefix(root.parent().unwrap_or(root))
            .unwrap_or(path)
            .to_path_buf(),
        path: path.to_path_buf(),
        size,
        mtime_ns,
    })
}

thread_local! {
    /// The directory whose files this walker thread is stat-ing, and a descriptor of it. The
    /// walker's threads end with the walk, and the descriptor with them.
    static DIRECTORY: RefCell<Option<(PathBuf, OwnedFd)>> = const { RefCell::new(None) };
}

/// Size and mtime (ns since the epoch, 0 before it) of `path`, following a symlink, stat-ed
/// relative to a descriptor of its directory that the thread keeps while it walks that
/// directory's entries. ignore stats by the full path, and at 100k files resolving those paths
/// again was half of the walk's system time.
fn stat_in_directory(path: &Path) -> std::io::Result<(u64, i64)> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    DIRECTORY.with_borrow_mut(|directory| {
        let open = match directory.take() {
            Some(open) if open.0.as_os_str() == parent.as_os_str() => open,
            _ => {
                let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
                let fd = rustix::fs::open(parent, flags, Mode::empty())?;
                (parent.to_path_buf(), fd)
            }
        };
        let (_, fd) = directory.insert(open);
        let stat = rustix::fs::statat(fd, name, AtFlags::empty())?;
        let nanos = stat.st_mtime as i128 * 1_000_000_000 + stat.st_mtime_nsec as i128;
        let mtime_ns = i64::try_from(nanos.max(0)).unwrap_or(i64::MAX);
        Ok((stat.st_size as u64, mtime_ns))
    })
}

/// Markdown inside a skill's folder (`references/`, `assets/`, ...) belongs to that skill and is
/// read on demand, never as a definition of its own.
fn drop_skill_support_files(files: &mut Vec<FoundFile>) {
    // Directories as bytes, each file's directory judged once: hashing a `Path` parses its
    // components, and looking up every file's every ancestor cost a 100k reopen 12-16 ms.
    let skill_dirs: HashSet<&[u8]> = files
        .iter()
        .filter(|f| f.path.file_name().is_some_and(|n| n == "SKILL.md"))
        .filter_map(|f| f.path.parent())
        .map(|dir| dir.as_os_str().as_encoded_bytes())
        .collect();
    if skill_dirs.is_empty() {
        return;
    }
    let inside_a_skill = |dir: &[u8]| {
        skill_dirs.contains(dir)
            || dir
                .iter()
                .enumerate()
                .filter(|&(_, &b)| std::path::is_separator(b as char))
                .any(|(at, _)| skill_dirs.contains(&dir[..at]))
    };
    let mut judged: HashMap<&[u8], bool> = HashMap::new();
    let keep: Vec<bool> = files
        .iter()
        .map(|f| {
            let dir = f
                .path
                .parent()
                .map_or(&[][..], |d| d.as_os_str().as_encoded_bytes());
            f.path.file_name().is_some_and(|n| n == "SKILL.md")
                || !*judged.entry(dir).or_insert_with(|| inside_a_skill(dir))
        })
        .collect();
    let mut keep = keep.into_iter();
    files.retain(|_| keep.next().unwrap_or(true));
}

/// Puts walked files in precedence order: root, then path component by component. Only what
/// is read needs an order (a reopen that reads nothing sorts nothing).
pub(crate) fn sort<F: std::borrow::Borrow<FoundFile>>(files: &mut [F]) {
    files.sort_by_cached_key(|f| {
        let f = f.borrow();
        (f.root, component_order(&f.path))
    });
}

fn push(diagnostics: &Mutex<Vec<Diagnostic>>, diagnostic: Diagnostic) {
    diagnostics
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(diagnostic);
}

fn error_path(error: &ignore::Error) -> Option<PathBuf> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

/// ignore's messages repeat the path that the diagnostic already shows in front.
fn strip_path(message: &str) -> String {
    message
        .rsplit_once(": ")
        .map_or(message, |(_, m)| m)
        .to_string()
}
