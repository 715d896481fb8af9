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
//! rescan, which compares contents: a spurious event costs a read, never a render. The
//! watching itself is [`super::file_watch`]. A symlink on
//! a watched path (a git-sync checkout, `repo -> worktrees/<rev>`) is watched in its parent
//! too, and the watch follows it when it is swapped ([`watch_dirs`]). Our own temp
//! files and the config we write are ignored, so writing `config.yml` beside the manifests or
//! the base config does not loop.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use notify::RecursiveMode;
use routes_core::render::{BaseConfig, Tunnel};
use routes_core::translate::{self, Settings};

use super::file_watch::{parent_dir, watch_dirs};
pub use super::file_watch::{DirWatch, Ignore};
use super::metrics::Metrics;
use super::source::{SourceReceiver, SourceSender, SourceState};
use super::writer::is_temp_file_name;
use super::UnusableInput;
use crate::cli::RenderOptions;
use crate::log_text::escaped;
use crate::manifests::{self, Loaded};

/// One manifest file as last seen.
#[derive(Clone, Debug, Default)]
struct FileEntry {
    /// The last content that parsed, if any, and its objects as read then.
    good: Option<(String, manifests::FileRead)>,
    /// Why the current content is not used (malformed YAML, an object that cannot be decoded,
    /// unreadable).
    error: Option<String>,
}

/// The manifests under some roots, with the last good content of every file.
#[derive(Debug)]
pub struct ManifestFiles {
    roots: Vec<PathBuf>,
    files: BTreeMap<PathBuf, FileEntry>,
    /// The files in the order `render` reads them, with the index of their root: root by root
    /// as given, each walked in byte order of the names; a file under two roots is there
    /// twice, as `render` reads it twice. Which of two definitions of an object wins depends
    /// on it.
    order: Vec<(usize, PathBuf)>,
    /// Problems of the walk itself (symlinked directories, dangling symlinks), with the index
    /// of the root whose walk found them.
    walk_warnings: Vec<(usize, String)>,
}

impl ManifestFiles {
    pub fn new(roots: Vec<PathBuf>) -> ManifestFiles {
        ManifestFiles { roots, files: BTreeMap::new(), order: Vec::new(), walk_warnings: Vec::new() }
    }

    /// Reads every file again; true when anything changed (a file's content, a file appearing
    /// or going, a warning). A root or directory that cannot be read or listed is an error,
    /// and the files are kept as they were: only a file or directory that is not there any
    /// more (NotFound) counts as deleted.
    pub fn rescan(&mut self) -> Result<bool, manifests::LoadError> {
        let (mut paths, mut walk_warnings) = (Vec::new(), Vec::new());
        for (i, root) in self.roots.iter().enumerate() {
            let (mut root_paths, mut root_warnings) = (Vec::new(), Vec::new());
            let metadata = fs::metadata(root)
                .map_err(|source| manifests::LoadError::Unreadable { path: root.clone(), source })?;
            if metadata.is_dir() {
                // Our own temp files are skipped, should `--config-out` be under a watched directory.
                let skip = &is_temp_file_name;
                manifests::walk(
                    root,
                    manifests::Unreadable::Warn,
                    skip,
                    &mut root_paths,
                    &mut root_warnings,
                )?;
            } else {
                // A FIFO or a device named as a root: unusable, as `render` finds it.
                crate::input::regular(&metadata)
                    .map_err(|source| manifests::LoadError::Unreadable { path: root.clone(), source })?;
                root_paths.push(root.clone());
            }
            paths.extend(root_paths.into_iter().map(|path| (i, path)));
            walk_warnings.extend(root_warnings.into_iter().map(|warning| (i, warning)));
        }
        let mut changed = walk_warnings != self.walk_warnings;
        self.walk_warnings = walk_warnings;

        let mut files = BTreeMap::new();
        let mut order = Vec::with_capacity(paths.len());
        for (root, path) in paths {
            if files.contains_key(&path) {
                order.push((root, path)); // under two roots: read once, merged twice
                continue;
            }
            let mut entry = self.files.remove(&path).unwrap_or_default();
            let error_before = entry.error.take();
            match crate::input::read_to_string(&path) {
                Ok(text) if entry.good.as_ref().is_some_and(|(good, _)| *good == text) => {}
                Ok(text) => {
                    // Read it alone: the snapshot is built from good contents only. A file with
                    // an object that cannot be decoded (`port: "80"`) is no better than one
                    // that does not parse: without the object, a Gateway's routes would go.
                    match manifests::read_str(&path.display().to_string(), &text) {
                        Ok(read) if read.refused.is_empty() => {
                            entry.good = Some((text, read));
                            changed = true;
                        }
                        Ok(read) => entry.error = Some(read.refused.join("; ")),
                        Err(e) => entry.error = Some(e.to_string()),
                    }
                }
                // Gone between the walk and the read: deleted, like one the walk no longer sees.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    changed |= entry.good.is_some() || error_before.is_some();
                    continue;
                }
                Err(e) => entry.error = Some(format!("{}: {e}", path.display())),
            }
            changed |= entry.error != error_before;
            files.insert(path.clone(), entry);
            order.push((root, path));
        }
        // Files left in `self.files` were deleted. (The order changes only with the files:
        // the roots are fixed.)
        changed |= !self.files.is_empty();
        self.files = files;
        self.order = order;
        Ok(changed)
    }

    /// The files that have not read cleanly once (malformed from the start, say): their objects
    /// are missing from the snapshot, and no earlier content stands in for them.
    pub fn never_read(&self) -> Vec<&std::path::Path> {
        self.files.iter().filter(|(_, entry)| entry.good.is_none()).map(|(path, _)| path.as_path()).collect()
    }

    /// The snapshot of every file's last good content, in the order `render` reads the files
    /// (later duplicates replace earlier ones), and every warning.
    pub fn loaded(&self) -> Loaded {
        let mut loaded = Loaded::default();
        let mut warned = std::collections::HashSet::new();
        // Root by root, its walk's warnings and then its files, as `render` reads them.
        for root in 0..self.roots.len() {
            let walked = self.walk_warnings.iter().filter(|(r, _)| *r == root);
            loaded.warnings.extend(walked.map(|(_, warning)| warning.clone()));
            self.load_files_of(root, &mut loaded, &mut warned);
        }
        loaded
    }

    fn load_files_of<'a>(
        &'a self,
        root: usize,
        loaded: &mut Loaded,
        warned: &mut std::collections::HashSet<&'a PathBuf>,
    ) {
        for (_, path) in self.order.iter().filter(|(r, _)| *r == root) {
            let entry = &self.files[path];
            if let Some(error) = entry.error.as_ref().filter(|_| warned.insert(path)) {
                let kept = if entry.good.is_some() {
                    "its last good content is kept"
                } else {
                    "its objects are left out until it reads cleanly"
                };
                loaded.warnings.push(format!("{error} ({kept})"));
            }
            if let Some((_, read)) = &entry.good {
                loaded.add(read.clone());
            }
        }
    }
}

/// The `--manifests` source: keeps its watcher alive; dropping it stops watching.
pub struct ManifestSource {
    _watcher: DirWatch,
}

/// Reads `roots` once (an unreadable root is unusable input), publishes what it read, then
/// watches. The state is `synced` once every file has read cleanly once and the files hold a
/// Gateway that `settings` selects (of a class with our controller name, named by
/// `--gateway` if given); from then on it stays synced. Before, rendering would replace the
/// config.yml on disk (an earlier run's, good) with one that lacks routes the files are about
/// to hold:
/// - a file that is broken at start has no last good content; `render` exits 2 on the same
///   files;
/// - a directory still empty at start (a git-sync sidecar that has not cloned yet) or without
///   our Gateway yet would render the catch-all alone.
///
/// Once synced, the files say what is wanted: deleting every Gateway renders the catch-all.
pub fn spawn_manifests(
    roots: Vec<PathBuf>,
    settings: Settings,
    ignore: Ignore,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(SourceReceiver, ManifestSource)> {
    metrics.watching(["ManifestFile"]);
    let mut files = ManifestFiles::new(roots.clone());
    files.rescan().map_err(|e| UnusableInput(format!("--manifests: {e}")))?;
    let (tx, rx) = tokio::sync::watch::channel(SourceState::default());
    let mut last_warnings = Vec::new();
    publish(&files, &settings, &tx, &mut last_warnings);

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
                    publish(&files, &settings, &tx, &mut last_warnings);
                    unpublished = false;
                } else {
                    tracing::debug!("manifest files changed while read; reading them again");
                }
            }
            Err(e) => {
                let e = escaped(&e.to_string()).into_owned();
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

fn publish(files: &ManifestFiles, settings: &Settings, tx: &SourceSender, last_warnings: &mut Vec<String>) {
    let loaded = files.loaded();
    for warning in loaded.warnings.iter().filter(|w| !last_warnings.contains(w)) {
        tracing::warn!("{}", escaped(warning));
    }
    last_warnings.clone_from(&loaded.warnings);
    let never_read = files.never_read();
    tx.send_modify(|state| {
        let waiting = || -> Option<String> {
            if !never_read.is_empty() {
                let files: Vec<String> = never_read.iter().map(|p| escaped(&p.display().to_string()).into_owned()).collect();
                return Some(format!("every manifest file has read cleanly once (not yet: {})", files.join(", ")));
            }
            if !translate::renders_a_gateway(&loaded.snapshot, settings) {
                let selected = if settings.gateways.is_empty() { "" } else { " and named by --gateway" };
                return Some(format!(
                    "the manifests hold a Gateway of a GatewayClass with controllerName {:?}{selected}",
                    settings.controller_name
                ));
            }
            None
        };
        if !state.synced {
            match waiting() {
                Some(until) => tracing::warn!(
                    "nothing is rendered until {until}: the config.yml there stays as it is, and /readyz answers 503"
                ),
                None => state.synced = true,
            }
        }
        state.snapshot = Arc::new(loaded.snapshot);
        state.warnings = loaded.warnings;
        state.revision += 1;
        tracing::info!(revision = state.revision, "manifests changed");
    });
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
    let watched = [(&options.credentials_file, "CredentialsFile"), (&options.base_config, "BaseConfig")];
    metrics.watching(watched.into_iter().filter(|(file, _)| file.is_some()).map(|(_, kind)| kind));
    metrics.watching(["SettingsDirectory"]);
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
            Err(e) => tracing::warn!("{} (keeping the last good tunnel credentials)", escaped(&e)),
        }
        match read_base(&options) {
            Ok((_, base)) => next.base = base,
            Err(e) => tracing::warn!("{} (keeping the last good base config)", escaped(&e)),
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

/// Which of two definitions of one object wins: `run --manifests` must pick the one `render`
/// picks from the same paths, or a config reviewed with `render` is not the one deployed.
#[cfg(test)]
mod render_order_tests {
    use super::ManifestFiles;
    use std::path::{Path, PathBuf};

    fn hosts(loaded: &crate::manifests::Loaded) -> Vec<String> {
        loaded.snapshot.routes.iter().flat_map(|r| r.hostnames.iter().map(ToString::to_string)).collect()
    }

    fn route(dir: &Path, host: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
                     metadata: {name: web, namespace: web}\nspec: {hostnames: [HOST]}\n";
        std::fs::write(dir.join("route.yaml"), route.replace("HOST", host)).unwrap();
    }

    #[test]
    fn a_duplicate_resolves_as_render_resolves_it_roots_in_the_order_given() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        route(&a, "a.example.com");
        route(&b, "b.example.com");
        // Warnings of the walk (a symlinked directory in `b`) and of the files (`a`'s route
        // defined twice in `a`): each root's come before the next root's.
        std::fs::copy(a.join("route.yaml"), a.join("route2.yaml")).unwrap();
        std::os::unix::fs::symlink(&a, b.join("link")).unwrap();
        // Roots out of path order, and roots holding one another (a file read twice).
        let cases: [(Vec<PathBuf>, &str); 4] = [
            (vec![b.clone(), a.clone()], "a.example.com"),
            (vec![a.clone(), b.clone()], "b.example.com"),
            (vec![dir.path().into(), a.clone()], "a.example.com"),
            (vec![b.clone(), dir.path().into()], "b.example.com"),
        ];
        for (roots, want) in cases {
            let render = crate::manifests::load_paths(&roots).unwrap();
            let mut files = ManifestFiles::new(roots.clone());
            files.rescan().unwrap();
            let run = files.loaded();
            assert_eq!(hosts(&render), [want], "render {roots:?}");
            assert_eq!(hosts(&run), hosts(&render), "run --manifests {roots:?}");
            assert_eq!(run.warnings, render.warnings, "{roots:?}");
        }
    }
}
