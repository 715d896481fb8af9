//! Files as sources: the `--manifests` directories (Gateway API objects, published as a
//! [`SourceState`]) and the render inputs read from files, the credentials file and the base
//! config (published as [`RenderInputs`]). Both are watched with notify and keep the last good
//! content of a file that stops parsing.
//!
//! ```text
//! notify events (any under the directory) → drain the burst → rescan → changed? → publish
//! ```
//!
//! Directories are watched, not files: Kubernetes ConfigMap and Secret volumes update by
//! swapping a `..data` symlink, so the file names never see an event of their own, and editors
//! and `kubectl cp` replace files by rename. Any event under a watched directory triggers a full
//! rescan, which compares contents: a spurious event costs a read, never a render. A symlink on
//! a watched path (a git-sync checkout, `repo -> worktrees/<rev>`) is watched in its parent
//! too, and the watch follows it when it is swapped ([`watch_dirs`]). Our own temp
//! files and the config we write are ignored, so writing `config.yml` beside the manifests or
//! the base config does not loop.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use routes_core::render::{BaseConfig, Tunnel};
use routes_core::translate::Settings;

use super::metrics::Metrics;
use super::source::{SourceReceiver, SourceSender, SourceState};
use super::writer::is_temp_file_name;
use super::UnusableInput;
use crate::cli::RenderOptions;
use crate::manifests::{self, Loaded};

/// Paths whose events are not changes of our inputs: the config we write (and its temp files,
/// recognised by name).
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    pub paths: Vec<PathBuf>,
}

impl Ignore {
    fn ignores(&self, path: &Path) -> bool {
        let temp = path.file_name().is_some_and(|n| is_temp_file_name(&n.to_string_lossy()));
        temp || self.paths.iter().any(|p| p == path)
    }
}

/// Quiet time after a file event before the files are read again.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(50);
/// Longest wait for files to settle under a steady stream of events.
const MAX_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);
/// When a handler asks to be called again (it could not read the files), how long to wait for
/// an event before calling it anyway.
const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

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
            // The last call asked to be called again.
            let mut retry = false;
            loop {
                let mut events = if !carried.is_empty() {
                    std::mem::take(&mut carried)
                } else if retry {
                    match rx.recv_timeout(RETRY) {
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
                // No event: the retry is due.
                let mut relevant = events.is_empty();
                // One rescan for a whole burst (a `kubectl apply` of many files, a ConfigMap
                // swap), and only once the files settle: a plain write truncates the file
                // before writing it, and reading in between would take the empty (or half
                // written) file as its new content. So wait until no event came for SETTLE and
                // every file written to was closed again (at most MAX_SETTLE).
                let mut writing = BTreeSet::new();
                note_writes(&events, &mut writing);
                let started = std::time::Instant::now();
                loop {
                    std::thread::sleep(SETTLE);
                    let before = events.len();
                    events.extend(rx.try_iter());
                    note_writes(&events[before..], &mut writing);
                    let quiet = events.len() == before && writing.is_empty();
                    if quiet || started.elapsed() >= MAX_SETTLE {
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
                            tracing::warn!(error = %e, "file watch error; rescanning");
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
                        tracing::warn!(error = %e, "cannot watch a swapped directory; rescanning");
                        relevant = true;
                    }
                }
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
                    retry = on_change(paths.into_iter().collect(), &mut still);
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

/// Keeps `writing` to the files written to (truncated, or data written) and not closed since.
fn note_writes(events: &[notify::Result<notify::Event>], writing: &mut BTreeSet<PathBuf>) {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    for event in events.iter().flatten() {
        match event.kind {
            EventKind::Modify(ModifyKind::Data(_)) => writing.extend(event.paths.iter().cloned()),
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for path in &event.paths {
                    writing.remove(path);
                }
            }
            _ => {}
        }
    }
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
    /// Each watched path, its mode, and the directory it resolved to when it was added.
    added: BTreeMap<PathBuf, (RecursiveMode, Option<PathBuf>)>,
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
    /// symlink): true when one moved. At start, a directory asked for that cannot be watched
    /// is an error; later failures are logged and tried again at the next burst.
    fn refresh(&mut self) -> notify::Result<bool> {
        let mut wanted: BTreeMap<PathBuf, (RecursiveMode, bool)> =
            self.dirs.iter().map(|(dir, mode)| (dir.clone(), (*mode, true))).collect();
        for link in self.links() {
            wanted.entry(parent_dir(&link)).or_insert((RecursiveMode::NonRecursive, false));
        }
        let first = self.added.is_empty();
        let mut moved = false;
        for (path, (mode, required)) in wanted {
            let target = fs::canonicalize(&path).ok();
            if self.added.get(&path).is_some_and(|(m, t)| *m == mode && t.is_some() && *t == target) {
                continue;
            }
            if self.added.remove(&path).is_some() {
                tracing::info!(path = %path.display(), target = ?target, "a watched path moved; watching its new target");
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
                    tracing::warn!(path = %path.display(), error = %e, "cannot watch; trying again at the next event");
                    self.added.insert(path, (mode, None));
                }
            }
        }
        Ok(moved)
    }
}

/// One manifest file as last seen.
#[derive(Clone, Debug, Default)]
struct FileEntry {
    /// The last content that parsed, if any.
    good: Option<String>,
    /// Why the current content is not used (malformed YAML, an object that cannot be decoded,
    /// unreadable).
    error: Option<String>,
}

/// The manifests under some roots, with the last good content of every file.
#[derive(Debug)]
pub struct ManifestFiles {
    roots: Vec<PathBuf>,
    files: BTreeMap<PathBuf, FileEntry>,
    /// Problems of the walk itself (symlinked directories, dangling symlinks).
    walk_warnings: Vec<String>,
}

impl ManifestFiles {
    pub fn new(roots: Vec<PathBuf>) -> ManifestFiles {
        ManifestFiles { roots, files: BTreeMap::new(), walk_warnings: Vec::new() }
    }

    /// Reads every file again; true when anything changed (a file's content, a file appearing
    /// or going, a warning). A root or directory that cannot be read or listed is an error,
    /// and the files are kept as they were: only a file or directory that is not there any
    /// more (NotFound) counts as deleted.
    pub fn rescan(&mut self) -> Result<bool, manifests::LoadError> {
        let mut paths = Vec::new();
        let mut walk_warnings = Vec::new();
        for root in &self.roots {
            let metadata = fs::metadata(root)
                .map_err(|source| manifests::LoadError::Unreadable { path: root.clone(), source })?;
            if metadata.is_dir() {
                // Our own temp files are skipped, should `--config-out` be under a watched directory.
                let skip = &is_temp_file_name;
                manifests::walk(root, manifests::Unreadable::Warn, skip, &mut paths, &mut walk_warnings)?;
            } else {
                paths.push(root.clone());
            }
        }
        let mut changed = walk_warnings != self.walk_warnings;
        self.walk_warnings = walk_warnings;

        let mut files = BTreeMap::new();
        for path in paths {
            let mut entry = self.files.remove(&path).unwrap_or_default();
            let before = (entry.good.clone(), entry.error.clone());
            match fs::read_to_string(&path) {
                Ok(text) if entry.good.as_deref() == Some(text.as_str()) => entry.error = None,
                Ok(text) => {
                    // Read it alone: the snapshot is built from good contents only. A file with
                    // an object that cannot be decoded (`port: "80"`) is no better than one
                    // that does not parse: without the object, a Gateway's routes would go.
                    let mut alone = Loaded::default();
                    match manifests::load_str(&path.display().to_string(), &text, &mut alone) {
                        Ok(()) if alone.refused.is_empty() => (entry.good, entry.error) = (Some(text), None),
                        Ok(()) => entry.error = Some(alone.refused.join("; ")),
                        Err(e) => entry.error = Some(e.to_string()),
                    }
                }
                // Gone between the walk and the read: deleted, like one the walk no longer sees.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    changed |= before != (None, None);
                    continue;
                }
                Err(e) => entry.error = Some(format!("{}: {e}", path.display())),
            }
            changed |= before != (entry.good.clone(), entry.error.clone());
            files.insert(path, entry);
        }
        // Files left in `self.files` were deleted.
        changed |= !self.files.is_empty();
        self.files = files;
        Ok(changed)
    }

    /// The snapshot of every file's last good content, in walk order (later duplicates replace
    /// earlier ones, as `render` reads them), and every warning.
    pub fn loaded(&self) -> Loaded {
        let mut loaded = Loaded::default();
        loaded.warnings.extend(self.walk_warnings.iter().cloned());
        for (path, entry) in &self.files {
            if let Some(error) = &entry.error {
                let kept = if entry.good.is_some() {
                    "its last good content is kept"
                } else {
                    "its objects are left out until it reads cleanly"
                };
                loaded.warnings.push(format!("{error} ({kept})"));
            }
            if let Some(text) = &entry.good {
                // It parsed when it was stored, and parsing is deterministic.
                if let Err(e) = manifests::load_str(&path.display().to_string(), text, &mut loaded) {
                    loaded.warnings.push(e.to_string());
                }
                // Never any: it was stored because it had none.
                loaded.warnings.append(&mut loaded.refused);
            }
        }
        loaded
    }
}

/// The `--manifests` source: keeps its watcher alive; dropping it stops watching.
pub struct ManifestSource {
    _watcher: DirWatch,
}

/// Reads `roots` once (an unreadable root is unusable input), publishes `synced`, then watches.
pub fn spawn_manifests(
    roots: Vec<PathBuf>,
    ignore: Ignore,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(SourceReceiver, ManifestSource)> {
    let _ = metrics.watch_events.get_or_create(&super::metrics::KindLabel::new("ManifestFile"));
    let mut files = ManifestFiles::new(roots.clone());
    files.rescan().map_err(|e| UnusableInput(format!("--manifests: {e}")))?;
    let (tx, rx) = tokio::sync::watch::channel(SourceState::default());
    let mut last_warnings = Vec::new();
    publish(&files, &tx, &mut last_warnings);

    let dirs: Vec<(PathBuf, RecursiveMode)> = roots
        .iter()
        .map(|root| {
            if root.is_dir() {
                (root.clone(), RecursiveMode::Recursive)
            } else {
                // A file named explicitly: its directory, for replacements by rename.
                (parent_dir(root), RecursiveMode::NonRecursive)
            }
        })
        .collect();
    // A change read but not published yet (the files moved while they were read): the next
    // rescan publishes, even when it finds nothing new since.
    let mut unpublished = false;
    // The last failure to read the files, logged once.
    let mut failure: Option<String> = None;
    let watcher = watch_dirs(&dirs, ignore, move |paths, still| {
        for _ in 0..paths.len().max(1) {
            metrics.watch_event("ManifestFile");
        }
        match files.rescan() {
            Ok(changed) => {
                if failure.take().is_some() {
                    tracing::info!("the manifests can be read again");
                }
                unpublished |= changed;
                if !unpublished {
                    tracing::debug!("manifest files unchanged");
                } else if still() {
                    publish(&files, &tx, &mut last_warnings);
                    unpublished = false;
                } else {
                    tracing::debug!("manifest files changed while read; reading them again");
                }
            }
            Err(e) => {
                let e = e.to_string();
                if failure.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "cannot read the manifests; keeping the last objects and trying again");
                }
                failure = Some(e);
                return true;
            }
        }
        false
    })
    .map_err(|e| UnusableInput(format!("--manifests: cannot watch: {e}")))?;
    Ok((rx, ManifestSource { _watcher: watcher }))
}

fn publish(files: &ManifestFiles, tx: &SourceSender, last_warnings: &mut Vec<String>) {
    let loaded = files.loaded();
    for warning in loaded.warnings.iter().filter(|w| !last_warnings.contains(w)) {
        tracing::warn!("{warning}");
    }
    last_warnings.clone_from(&loaded.warnings);
    tx.send_modify(|state| {
        state.snapshot = Arc::new(loaded.snapshot);
        state.warnings = loaded.warnings;
        state.synced = true;
        state.revision += 1;
        tracing::info!(revision = state.revision, "manifests changed");
    });
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What a render needs besides the objects: flags, and what the credentials file and the base
/// config say now.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderInputs {
    pub settings: Settings,
    pub base: BaseConfig,
    pub tunnel: Tunnel,
}

pub type InputsReceiver = tokio::sync::watch::Receiver<Arc<RenderInputs>>;

/// The tunnel part of the inputs (credentials file and `--tunnel-id`), read the way `render`
/// reads it. Its errors never quote the credentials file's content.
fn read_tunnel(options: &RenderOptions) -> Result<Tunnel, String> {
    let only_tunnel = RenderOptions { base_config: None, ..options.clone() };
    only_tunnel.prepare(&[]).map(|p| p.tunnel).map_err(|f| f.message)
}

fn read_base(options: &RenderOptions) -> Result<(Settings, BaseConfig), String> {
    let only_base = RenderOptions { credentials_file: None, tunnel_id: None, ..options.clone() };
    only_base.prepare(&[]).map(|p| (p.settings, p.base)).map_err(|f| f.message)
}

/// Reads the render inputs once (an error is unusable input), then watches the directories of
/// the credentials file and the base config. A part that stops reading keeps its last good
/// value, with a warning.
pub fn spawn_inputs(
    options: &RenderOptions,
    ignore: Ignore,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(InputsReceiver, Option<DirWatch>)> {
    let tunnel = read_tunnel(options).map_err(UnusableInput)?;
    let (settings, base) = read_base(options).map_err(UnusableInput)?;
    let settings = Settings { tunnel_id: tunnel.id.clone(), ..settings };
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(RenderInputs { settings, base, tunnel }));

    let files: Vec<PathBuf> =
        [&options.credentials_file, &options.base_config].into_iter().flatten().cloned().collect();
    if files.is_empty() {
        return Ok((rx, None));
    }
    let mut dirs: Vec<(PathBuf, RecursiveMode)> =
        files.iter().map(|f| (parent_dir(f), RecursiveMode::NonRecursive)).collect();
    dirs.sort();
    dirs.dedup();
    let options = options.clone();
    let watcher = watch_dirs(&dirs, ignore, move |paths, still| {
        for path in &paths {
            let kind = if Some(path) == options.credentials_file.as_ref() {
                "CredentialsFile"
            } else if Some(path) == options.base_config.as_ref() {
                "BaseConfig"
            } else {
                // A `..data` swap of a mounted Secret or ConfigMap, or a neighbour.
                "SettingsDirectory"
            };
            metrics.watch_event(kind);
        }
        let current = tx.borrow().clone();
        let mut next = (*current).clone();
        match read_tunnel(&options) {
            Ok(tunnel) => {
                next.settings.tunnel_id = tunnel.id.clone();
                next.tunnel = tunnel;
            }
            Err(e) => tracing::warn!("{e} (keeping the last good tunnel credentials)"),
        }
        match read_base(&options) {
            Ok((_, base)) => next.base = base,
            Err(e) => tracing::warn!("{e} (keeping the last good base config)"),
        }
        // Compared with what was published, so a read left unpublished (the files moved while
        // they were read) is published by the next one.
        if next != *current && still() {
            tracing::info!(tunnel = ?next.tunnel.id, "credentials file or base config changed");
            tx.send_replace(Arc::new(next));
        }
        false
    })
    .map_err(|e| UnusableInput(format!("cannot watch the credentials file or base config: {e}")))?;
    Ok((rx, Some(watcher)))
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
