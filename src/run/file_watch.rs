//! Watching directories with notify for [`super::files`]: bursts of events → one call of a
//! handler, once the files settle, with the watches kept on what the watched paths resolve to
//! (a swapped symlink, a ConfigMap `..data` swap).
//!
//! ```text
//! notify events (any under the directory) → drain the burst → settle → refresh the watches → handler
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::writer::is_temp_file_name;
use crate::log_text::escaped;

/// Paths whose events are not changes of our inputs: the config we write (and its temp files,
/// recognised by name).
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    pub paths: Vec<PathBuf>,
}

impl Ignore {
    pub(super) fn ignores(&self, path: &Path) -> bool {
        let temp = path.file_name().is_some_and(|n| is_temp_file_name(&n.to_string_lossy()));
        temp || self.paths.iter().any(|p| p == path)
    }
}

/// Quiet time after a file event before the files are read again.
pub(super) const SETTLE: std::time::Duration = std::time::Duration::from_millis(50);
/// Longest wait for files to settle under a steady stream of events.
pub(super) const MAX_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest wait for a file written to to be closed: `kubectl get … > routes.yaml` truncates the
/// file, then writes nothing while kubectl authenticates. After it, the file is read anyway,
/// with a warning (a writer that never closes it must not stop every update).
pub(super) const MAX_WRITING: std::time::Duration = std::time::Duration::from_secs(30);
/// When a handler asks to be called again (it could not read the files), how long to wait for
/// an event before calling it anyway.
pub(super) const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Watches `dirs` and calls `on_change` with the relevant paths of each burst of events, on a
/// thread of its own. Dropping the returned [`DirWatch`] stops the thread. When `on_change`
/// returns true (it could not read the files, say for want of file descriptors), it is called
/// again after RETRY even if no event comes: the change it missed is not lost.
///
/// `on_change` reads the files, and before it publishes what it read it asks the second
/// argument, `still`, whether the files stayed still while it read them: a write can begin
/// after the burst settled and before the read (a plain write truncates the file first), and
/// its events come only after the read. `still` waits SETTLE for such events; when some came,
/// it answers false, and they start the next burst, whose read is the one to publish. After
/// MAX_SETTLE of such answers (a file written to without pause) it answers true.
///
/// inotify resolves a symlink once, when the watch is added, so a directory reached through a
/// symlink that is later swapped (git-sync's `ln -sfn new repo.tmp && mv -T repo.tmp repo`)
/// would stay watched in the old target, and the new one never seen. So the parent of every
/// symlink on a watched path is watched too, for the link itself, and after each burst every
/// watch whose path now resolves elsewhere is added again (then the files are rescanned).
/// The same holds for a watched directory that is removed and made again (`mv m m.old; mkdir
/// m`): inotify watches the inode, not the name, so the parent of each watched directory is
/// watched too, for the directory's own entry, and a watch is compared by inode.
pub fn watch_dirs(
    dirs: &[(PathBuf, RecursiveMode)],
    ignore: Ignore,
    mut on_change: impl FnMut(Vec<PathBuf>, Still<'_>) -> bool + Send + 'static,
) -> notify::Result<DirWatch> {
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let watcher = notify::recommended_watcher(move |event| {
        // The receiver is gone only when the thread ended: nothing left to tell.
        let _ = tx.send(event);
    })?;
    let mut watches = Watches::new(dirs, watcher);
    watches.refresh()?;
    let shared = Arc::new(Mutex::new(Some(watches)));
    let watches = shared.clone();
    std::thread::Builder::new()
        .name("file-watch".to_string())
        .spawn(move || {
            // Events that came while `on_change` read the files: the next burst's first.
            let mut carried: Vec<notify::Result<notify::Event>> = Vec::new();
            // Since when `still` has answered false without a pause.
            let mut unsettled_since: Option<std::time::Instant> = None;
            // When to call again a handler that asked for it, events or not (events of no
            // concern, in the parent of a watched directory, must not put it off).
            let mut retry_at: Option<std::time::Instant> = None;
            loop {
                let mut events = if !carried.is_empty() {
                    std::mem::take(&mut carried)
                } else if let Some(at) = retry_at {
                    match rx.recv_timeout(at.saturating_duration_since(std::time::Instant::now())) {
                        Ok(first) => vec![first],
                        Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                } else {
                    // recv fails once the watcher (and with it the sender) is dropped.
                    let Ok(first) = rx.recv() else { return };
                    vec![first]
                };
                let mut paths = BTreeSet::new();
                let mut relevant = false;
                // One rescan for a whole burst (a `kubectl apply` of many files, a ConfigMap
                // swap), and only once the files settle: a plain write truncates the file
                // before writing it, and reading in between would take the empty (or half
                // written) file as its new content. So wait until every file of ours written
                // to was closed again (at most MAX_WRITING, however slow the writer), and no
                // event of ours came for SETTLE (at most MAX_SETTLE under a steady stream).
                let Some(early) = lock(&watches).as_ref().map(Watches::relevance) else { return };
                let ours = |path: &Path| !ignore.ignores(path) && early.covers(path);
                let mut writing = BTreeSet::new();
                note_writes(&events, &ours, &mut writing);
                let started = std::time::Instant::now();
                loop {
                    std::thread::sleep(SETTLE);
                    let before = events.len();
                    events.extend(rx.try_iter());
                    note_writes(&events[before..], &ours, &mut writing);
                    let quiet = !events[before..].iter().any(|event| match event {
                        Ok(event) => changes(event, &ignore, &early).next().is_some(),
                        Err(_) => true,
                    });
                    if writing.is_empty() {
                        if quiet || started.elapsed() >= MAX_SETTLE {
                            break;
                        }
                    } else if started.elapsed() >= MAX_WRITING {
                        tracing::warn!(files = ?writing, "files still open for writing after {MAX_WRITING:?}; reading them anyway");
                        break;
                    }
                }
                let Some(relevance) = lock(&watches).as_ref().map(Watches::relevance) else { return };
                for event in &events {
                    match event {
                        Ok(event) => {
                            for path in changes(event, &ignore, &relevance) {
                                relevant = true;
                                paths.insert(path.clone());
                            }
                        }
                        // E.g. an inotify queue overflow: events were lost, rescan.
                        Err(e) => {
                            tracing::warn!(error = %escaped(&e.to_string()), "file watch error; rescanning");
                            relevant = true;
                        }
                    }
                }
                // A swapped symlink: watch its new target before rescanning, so that nothing
                // written there after the rescan goes unseen.
                match lock(&watches).as_mut().map(Watches::refresh) {
                    None => return,
                    Some(Ok(moved)) => relevant |= moved,
                    Some(Err(e)) => {
                        tracing::warn!(error = %escaped(&e.to_string()), "cannot watch a swapped directory; rescanning");
                        relevant = true;
                    }
                }
                relevant |= retry_at.is_some_and(|at| at <= std::time::Instant::now());
                if relevant {
                    let mut asked = false;
                    let mut still = || {
                        asked = true;
                        if unsettled_since.is_some_and(|since| since.elapsed() >= MAX_SETTLE) {
                            unsettled_since = None;
                            return true;
                        }
                        std::thread::sleep(SETTLE);
                        carried.extend(rx.try_iter());
                        let moved = carried.iter().any(|event| match event {
                            Ok(event) => changes(event, &ignore, &relevance).next().is_some(),
                            Err(_) => true,
                        });
                        if moved {
                            unsettled_since.get_or_insert_with(std::time::Instant::now);
                        } else {
                            // Reads only (our own among them): nothing to rescan for.
                            carried.clear();
                            unsettled_since = None;
                        }
                        !moved
                    };
                    let retry = on_change(paths.into_iter().collect(), &mut still);
                    retry_at = retry.then(|| std::time::Instant::now() + RETRY);
                    if !asked {
                        unsettled_since = None;
                    }
                }
            }
        })
        .map_err(notify::Error::io)?;
    Ok(DirWatch { watches: shared })
}

/// Keeps a [`watch_dirs`] watch alive; dropping it stops watching.
pub struct DirWatch {
    watches: Arc<Mutex<Option<Watches>>>,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        // Drops the watcher, whose event sender ends the thread's receive loop.
        lock(&self.watches).take();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Asked by a [`watch_dirs`] handler before it publishes what it read: did the files stay
/// still while it read them?
pub type Still<'a> = &'a mut dyn FnMut() -> bool;

/// The paths an event changes that concern the watch: not reads (the rescan reads every
/// file), not ignored files, not neighbours of a watched symlink.
fn changes<'e>(
    event: &'e notify::Event,
    ignore: &'e Ignore,
    relevance: &'e Relevance,
) -> impl Iterator<Item = &'e PathBuf> + 'e {
    let read = is_read(&event.kind);
    event.paths.iter().filter(move |p| !read && !ignore.ignores(p) && relevance.covers(p))
}

/// Keeps `writing` to the files of `ours` written to (truncated, or data written) and not
/// closed since. (A file created, not yet written to, is not held: a symlink or a hard link is
/// created too, and never closed.)
fn note_writes(
    events: &[notify::Result<notify::Event>],
    ours: &dyn Fn(&Path) -> bool,
    writing: &mut BTreeSet<PathBuf>,
) {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    for event in events.iter().flatten() {
        match event.kind {
            EventKind::Modify(ModifyKind::Data(_)) => {
                writing.extend(event.paths.iter().filter(|p| ours(p) && !hidden(p)).cloned())
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for path in &event.paths {
                    writing.remove(path);
                }
            }
            _ => {}
        }
    }
}

/// A dot file, or one in a `.git` directory: never read as an input, and some are held open
/// for writing as long as their writer runs (an editor's `.routes.yaml.swp`), which must not
/// hold every rescan for MAX_WRITING. (A ConfigMap's `..data` is swapped by rename, never
/// written in place.)
fn hidden(path: &Path) -> bool {
    let dot = path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
    dot || path.components().any(|c| c.as_os_str() == ".git")
}

/// An access that changes nothing: opening a file, closing it unwritten.
fn is_read(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    matches!(kind, EventKind::Access(access) if *access != AccessKind::Close(AccessMode::Write))
}

/// The directories to watch, the symlinks on their paths, and what each watch resolved to.
struct Watches {
    watcher: RecommendedWatcher,
    dirs: Vec<(PathBuf, RecursiveMode)>,
    /// Each watched path, its mode, and the directory it resolved to when it was added (None:
    /// it could not be watched, and is tried again at each burst).
    added: BTreeMap<PathBuf, (RecursiveMode, Option<Resolved>)>,
}

/// Which event paths concern the watched directories.
struct Relevance {
    dirs: Vec<PathBuf>,
    links: Vec<PathBuf>,
}

impl Relevance {
    /// Anything under a watched directory, and a symlink on a watched path (not its neighbours
    /// in the parent directory watched for it).
    fn covers(&self, path: &Path) -> bool {
        self.dirs.iter().any(|d| path.starts_with(d)) || self.links.iter().any(|l| l == path)
    }
}

impl Watches {
    fn new(dirs: &[(PathBuf, RecursiveMode)], watcher: RecommendedWatcher) -> Watches {
        Watches { watcher, dirs: dirs.to_vec(), added: BTreeMap::new() }
    }

    /// The symlinks on the watched paths now (a path itself or one of its ancestors).
    fn links(&self) -> Vec<PathBuf> {
        let mut links: Vec<PathBuf> = (self.dirs.iter())
            // Without a trailing `/` or `.`, with which the link itself would be followed.
            .flat_map(|(dir, _)| {
                dir.components().collect::<PathBuf>().ancestors().map(Path::to_path_buf).collect::<Vec<_>>()
            })
            .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
            .collect();
        links.sort();
        links.dedup();
        links
    }

    fn relevance(&self) -> Relevance {
        Relevance { dirs: self.dirs.iter().map(|(d, _)| d.clone()).collect(), links: self.links() }
    }

    /// Adds the watches that are missing or whose path resolves elsewhere now (a swapped
    /// symlink, a directory made again): true when one moved. At start, a directory asked for
    /// that cannot be watched is an error; later failures are logged and tried again at the
    /// next burst.
    fn refresh(&mut self) -> notify::Result<bool> {
        let mut wanted: BTreeMap<PathBuf, (RecursiveMode, bool)> =
            self.dirs.iter().map(|(dir, mode)| (dir.clone(), (*mode, true))).collect();
        let entries = self.dirs.iter().map(|(dir, _)| dir.components().collect::<PathBuf>());
        let parents = entries.filter(|dir| dir.parent().is_some()).map(|dir| parent_dir(&dir));
        for parent in parents.chain(self.links().iter().map(|link| parent_dir(link))) {
            wanted.entry(parent).or_insert((RecursiveMode::NonRecursive, false));
        }
        let first = self.added.is_empty();
        let mut moved = false;
        for (path, (mode, required)) in wanted {
            let target = Resolved::of(&path);
            let failing = self.added.get(&path).is_some_and(|(_, t)| t.is_none());
            if self.added.get(&path).is_some_and(|(m, t)| *m == mode && t.is_some() && *t == target) {
                continue;
            }
            if self.added.remove(&path).is_some() {
                if !failing {
                    tracing::info!(path = %escaped(&path.display().to_string()), target = ?target.as_ref().map(|t| &t.path), "a watched path moved; watching its new target");
                }
                moved = true;
                // Gone already when its old target was deleted.
                let _ = self.watcher.unwatch(&path);
            }
            match self.watcher.watch(&path, mode) {
                Ok(()) => {
                    self.added.insert(path, (mode, target));
                }
                // At start: an unusable input.
                Err(e) if required && first => return Err(e),
                Err(e) => {
                    // Logged once, not at every retry while it is missing.
                    if !failing {
                        let (shown, e) = (path.display().to_string(), e.to_string());
                        tracing::warn!(path = %escaped(&shown), error = %escaped(&e), "cannot watch; trying again at the next event");
                    }
                    self.added.insert(path, (mode, None));
                }
            }
        }
        Ok(moved)
    }
}

/// What a watched path resolved to: the directory, by path and by inode (a directory removed
/// and made again under the same name is another one, and its old watch sees nothing of it).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Resolved {
    path: PathBuf,
    inode: (u64, u64),
}

impl Resolved {
    fn of(path: &Path) -> Option<Resolved> {
        use std::os::unix::fs::MetadataExt;
        let resolved = fs::canonicalize(path).ok()?;
        let metadata = fs::metadata(&resolved).ok()?;
        Some(Resolved { path: resolved, inode: (metadata.dev(), metadata.ino()) })
    }
}

pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
