//! A library that follows its files: the current [`Engine`] snapshot behind an atomic pointer,
//! replaced whole when a watcher sees a root change. A query holds one snapshot from start to
//! end, so it sees the old state or the new one, never a mix.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};

use crate::engine::{Config, Engine, EngineError};

/// How long to wait for a burst of file events (an editor's save, a `git checkout`) to end
/// before refreshing once.
const SETTLE: Duration = Duration::from_millis(150);

pub struct Library {
    config: Config,
    current: ArcSwap<Engine>,
    changes: tokio::sync::watch::Sender<u64>,
}

/// Keeps the file watcher alive; dropping it stops watching.
pub struct Watching {
    _watcher: notify::RecommendedWatcher,
}

impl Library {
    pub fn open(config: Config) -> Result<Arc<Library>, EngineError> {
        let engine = Engine::open(&config)?;
        let (changes, _) = tokio::sync::watch::channel(0);
        Ok(Arc::new(Library {
            config,
            current: ArcSwap::from_pointee(engine),
            changes,
        }))
    }

    /// The current snapshot. Hold it for the whole of one request.
    pub fn snapshot(&self) -> Arc<Engine> {
        self.current.load_full()
    }

    /// A receiver that changes value after every refresh that changed something.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Re-reads the roots and, if any file was added, changed or removed, swaps in the new
    /// snapshot. Returns whether it did.
    pub fn refresh(&self) -> Result<bool, EngineError> {
        let engine = Engine::open(&self.config)?;
        let stats = engine.stats();
        if stats.parsed == 0 && stats.removed == 0 && stats.rebuilt.is_none() {
            return Ok(false);
        }
        tracing::info!(
            parsed = stats.parsed,
            removed = stats.removed,
            definitions = stats.definitions,
            "library changed"
        );
        self.current.store(Arc::new(engine));
        self.changes.send_modify(|generation| *generation += 1);
        Ok(true)
    }

    /// Watches every root and refreshes after each burst of changes, on a thread of its own.
    pub fn watch(self: &Arc<Self>) -> Result<Watching, notify::Error> {
        let (tx, rx) = channel();
        let mut watcher = notify::recommended_watcher(tx)?;
        for root in &self.config.roots {
            watcher.watch(root, RecursiveMode::Recursive)?;
        }
        let library = Arc::clone(self);
        let ignored = self.config.index_dir.clone();
        std::thread::Builder::new()
            .name("orchestr8-watch".into())
            .spawn(move || library.follow(&rx, ignored.as_deref()))
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(Watching { _watcher: watcher })
    }

    fn follow(&self, events: &Receiver<notify::Result<notify::Event>>, ignored: Option<&Path>) {
        while let Ok(first) = events.recv() {
            if !relevant(&first, ignored) {
                continue;
            }
            // Let the burst finish, then refresh once.
            loop {
                match events.recv_timeout(SETTLE) {
                    Ok(_) => continue,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            if let Err(error) = self.refresh() {
                tracing::warn!(%error, "could not refresh the library; still serving the previous state");
            }
        }
    }
}

/// Creations, changes, renames and removals anywhere under a root, except inside the index
/// directory (which may sit under a root) and accesses.
fn relevant(event: &notify::Result<notify::Event>, ignored: Option<&Path>) -> bool {
    let Ok(event) = event else { return true };
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    let outside_index = |p: &PathBuf| ignored.is_none_or(|dir| !p.starts_with(dir));
    event.paths.is_empty() || event.paths.iter().any(outside_index)
}
