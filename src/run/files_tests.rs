use super::*;
use crate::run::source::SourceReceiver;
use std::path::Path;

fn route(name: &str, host: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: web}}\n\
         spec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [{host}]\n  rules:\n  - backendRefs: [{{name: svc, port: 80}}]\n"
    )
}

/// A GatewayClass of ours (the default controller name) and its Gateway `gw`, where
/// [`route`]s attach: with it the source syncs.
fn gateway(class: &str, controller: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: {class}}}\n\
         spec: {{controllerName: {controller}}}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: web}}\n\
         spec:\n  gatewayClassName: {class}\n  listeners: [{{name: http, port: 80, protocol: HTTP}}]\n"
    )
}

fn ours() -> String {
    gateway("cf", routes_core::translate::DEFAULT_CONTROLLER_NAME)
}

/// Waits (up to BOUND) until the published state satisfies `check`.
fn wait_until(rx: &SourceReceiver, what: &str, check: impl Fn(&SourceState) -> bool) {
    let deadline = Instant::now() + BOUND;
    while !check(&rx.borrow()) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_synced(rx: &SourceReceiver, what: &str) {
    wait_until(rx, &format!("synced: {what}"), |s| s.synced);
}

fn route_names(files: &ManifestFiles) -> Vec<String> {
    let mut names: Vec<String> =
        files.loaded().snapshot.routes.iter().map(|r| r.meta.name.to_string()).collect();
    names.sort();
    names
}

#[test]
fn broken_file_keeps_its_last_good_content_and_the_others() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "a.example.com")).unwrap();
    fs::write(dir.path().join("b.yaml"), route("b", "b.example.com")).unwrap();
    let mut files = ManifestFiles::new(vec![dir.path().to_path_buf()]);
    assert!(files.rescan().unwrap());
    assert_eq!(route_names(&files), ["a", "b"]);
    assert!(!files.rescan().unwrap(), "nothing changed");

    fs::write(dir.path().join("b.yaml"), "kind: [unclosed\n").unwrap();
    assert!(files.rescan().unwrap());
    let loaded = files.loaded();
    assert_eq!(route_names(&files), ["a", "b"], "b's last good content is kept");
    assert!(
        loaded.warnings.iter().any(|w| w.contains("b.yaml") && w.contains("last good content is kept")),
        "{:?}",
        loaded.warnings
    );
    let host = |files: &ManifestFiles| {
        files.loaded().snapshot.routes.iter().find(|r| r.meta.name == "b").unwrap().hostnames.to_vec()
    };
    assert_eq!(host(&files), ["b.example.com"]);

    fs::write(dir.path().join("b.yaml"), route("b", "b2.example.com")).unwrap();
    assert!(files.rescan().unwrap());
    assert_eq!(host(&files), ["b2.example.com"]);
    assert!(files.loaded().warnings.is_empty());
}

#[test]
fn a_file_with_an_object_that_cannot_be_decoded_keeps_its_last_good_content() {
    // `port: "80"` parses as YAML, but the object cannot be read: dropped, a Gateway typo
    // would take every route off the tunnel. It is a broken file, like one that does not parse.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.yaml");
    fs::write(&path, route("a", "a.example.com")).unwrap();
    let mut files = ManifestFiles::new(vec![dir.path().to_path_buf()]);
    files.rescan().unwrap();
    fs::write(&path, route("a", "new.example.com").replace("port: 80", "port: \"80\"")).unwrap();
    assert!(files.rescan().unwrap());
    let loaded = files.loaded();
    assert_eq!(loaded.snapshot.routes[0].hostnames.as_slice(), ["a.example.com"], "the last good content");
    let want = format!(
        "{}:1: HTTPRoute web/a: spec.rules[0].backendRefs[0].port: invalid type: string \"80\", expected i32 \
         (its last good content is kept)",
        path.display()
    );
    assert_eq!(loaded.warnings, [want]);
}

#[test]
fn file_broken_from_the_start_is_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "a.example.com")).unwrap();
    fs::write(dir.path().join("bad.yml"), "a: [\n").unwrap();
    let mut files = ManifestFiles::new(vec![dir.path().to_path_buf()]);
    files.rescan().unwrap();
    let loaded = files.loaded();
    assert_eq!(route_names(&files), ["a"]);
    assert!(
        loaded.warnings.iter().any(|w| w.contains("bad.yml") && w.contains("left out")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn deleted_file_drops_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "a.example.com")).unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/b.yaml"), route("b", "b.example.com")).unwrap();
    let mut files = ManifestFiles::new(vec![dir.path().to_path_buf()]);
    files.rescan().unwrap();
    assert_eq!(route_names(&files), ["a", "b"], "subdirectories are walked");
    fs::remove_file(dir.path().join("sub/b.yaml")).unwrap();
    assert!(files.rescan().unwrap());
    assert_eq!(route_names(&files), ["a"]);
}

#[test]
fn configmap_volume_layout_is_read_once_and_temp_files_are_ignored() {
    // A ConfigMap volume: real files under `..<timestamp>/`, `..data` → it, one symlink per key.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("..2024_01_01_00_00_00.1");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("routes.yaml"), route("a", "a.example.com")).unwrap();
    std::os::unix::fs::symlink("..2024_01_01_00_00_00.1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/routes.yaml", dir.path().join("routes.yaml")).unwrap();
    fs::write(dir.path().join(".cloudflared-routes-x.yaml"), route("temp", "t.example.com")).unwrap();
    let mut files = ManifestFiles::new(vec![dir.path().to_path_buf()]);
    files.rescan().unwrap();
    let loaded = files.loaded();
    assert_eq!(route_names(&files), ["a"]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    // The kubelet's update: a new timestamped directory, then `..data` swapped to it.
    let data2 = dir.path().join("..2024_01_01_00_00_01.2");
    fs::create_dir(&data2).unwrap();
    fs::write(data2.join("routes.yaml"), route("a", "new.example.com")).unwrap();
    std::os::unix::fs::symlink("..2024_01_01_00_00_01.2", dir.path().join("..data_tmp")).unwrap();
    fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    assert!(files.rescan().unwrap());
    assert_eq!(files.loaded().snapshot.routes[0].hostnames.as_slice(), ["new.example.com"]);
}

#[test]
fn missing_root_is_an_error_naming_it() {
    let mut files = ManifestFiles::new(vec![PathBuf::from("/nonexistent/manifests")]);
    let err = files.rescan().unwrap_err().to_string();
    assert!(err.contains("/nonexistent/manifests"), "{err}");
}

/// Set in the child process of [`a_directory_that_cannot_be_listed_is_not_taken_for_empty`].
const OUT_OF_FDS_CHILD: &str = "CLOUDFLARED_ROUTES_TEST_OUT_OF_FDS";

#[test]
fn a_directory_that_cannot_be_listed_is_not_taken_for_empty() {
    // Out of file descriptors (EMFILE; an admin port flooded with connections), `read_dir`
    // fails: that must not read as "every file was deleted", which would publish (and later
    // write) a config without any route. The descriptor limit is lowered in a child process,
    // so that the other tests of this process are not starved.
    let name = "run::files::tests::a_directory_that_cannot_be_listed_is_not_taken_for_empty";
    if std::env::var_os(OUT_OF_FDS_CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(OUT_OF_FDS_CHILD, "1")
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "a.example.com")).unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/b.yaml"), route("b", "b.example.com")).unwrap();
    let mut files = ManifestFiles::new(vec![dir.path().to_path_buf()]);
    files.rescan().unwrap();
    assert_eq!(route_names(&files), ["a", "b"]);

    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 256, hard).unwrap();
    let mut held = Vec::new();
    let exhausted = loop {
        match fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(e) => break e,
        }
    };
    assert_eq!(exhausted.raw_os_error(), Some(nix::libc::EMFILE), "{exhausted}");
    let err = files.rescan().expect_err("a directory that cannot be listed fails the rescan");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
    assert_eq!(route_names(&files), ["a", "b"], "the files are kept");

    drop(held);
    assert!(!files.rescan().unwrap(), "nothing changed");
    assert_eq!(route_names(&files), ["a", "b"]);
}

#[test]
fn ignore_matches_temp_files_and_the_config() {
    let ignore = Ignore { paths: vec![PathBuf::from("/cf/config.yml")] };
    assert!(ignore.ignores(Path::new("/cf/config.yml")));
    assert!(ignore.ignores(Path::new("/m/.cloudflared-routes-AbC123")));
    assert!(!ignore.ignores(Path::new("/m/routes.yaml")));
}

// ---- the watcher itself, on symlink swaps ----

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

/// Generous: a loaded machine may take a while to deliver and settle events.
const BOUND: Duration = Duration::from_secs(30);

/// The hostnames of route `name` the source publishes, once they equal `want` (panics after
/// BOUND with what it saw).
fn wait_for_host(rx: &SourceReceiver, name: &str, want: &str, what: &str) {
    let deadline = Instant::now() + BOUND;
    loop {
        let hosts: Vec<String> = (rx.borrow().snapshot.routes.iter())
            .filter(|r| r.meta.name == name)
            .flat_map(|r| r.hostnames.iter().map(ToString::to_string))
            .collect();
        if hosts == [want] {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: route {name} has {hosts:?}, not [{want}]");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn watched(root: PathBuf) -> (SourceReceiver, ManifestSource, Arc<Metrics>) {
    watched_with(root, Settings::default())
}

fn watched_with(root: PathBuf, settings: Settings) -> (SourceReceiver, ManifestSource, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let (rx, source) =
        spawn_manifests(vec![root], settings, Ignore::default(), metrics.clone()).expect("watched");
    (rx, source, metrics)
}

/// git-sync: `repo -> worktrees/<rev>`, replaced with `ln -sfn new repo.tmp && mv -T repo.tmp
/// repo`, the old worktree deleted. `sub` is where the manifests are inside the checkout.
fn follows_git_sync_swaps(sub: &str) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let checkout = |rev: &str, host: &str| {
        let tree = base.join("worktrees").join(rev).join(sub);
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("routes.yaml"), route("a", host)).unwrap();
    };
    let swap = |rev: &str| {
        symlink(format!("worktrees/{rev}"), base.join("repo.tmp")).unwrap();
        fs::rename(base.join("repo.tmp"), base.join("repo")).unwrap();
    };
    checkout("r1", "one.example.com");
    symlink("worktrees/r1", base.join("repo")).unwrap();
    let root = base.join("repo").join(sub);
    let (rx, _source, _) = watched(root.clone());
    wait_for_host(&rx, "a", "one.example.com", "the first read");

    checkout("r2", "two.example.com");
    swap("r2");
    wait_for_host(&rx, "a", "two.example.com", "after the first swap");
    fs::remove_dir_all(base.join("worktrees/r1")).unwrap();
    // An edit in the new target (no swap): seen only if the new target is watched.
    fs::write(root.join("routes.yaml"), route("a", "edited.example.com")).unwrap();
    wait_for_host(&rx, "a", "edited.example.com", "an edit after the swap");

    checkout("r3", "three.example.com");
    swap("r3");
    fs::remove_dir_all(base.join("worktrees/r2")).unwrap();
    wait_for_host(&rx, "a", "three.example.com", "after the second swap");
    fs::write(root.join("routes.yaml"), route("a", "edited3.example.com")).unwrap();
    wait_for_host(&rx, "a", "edited3.example.com", "an edit after the second swap");
}

#[test]
fn a_symlinked_root_swapped_like_git_sync_is_followed() {
    // `--manifests /git/repo/`: the trailing `/` must not hide the link.
    follows_git_sync_swaps("");
}

#[test]
fn a_root_inside_a_swapped_checkout_is_followed() {
    follows_git_sync_swaps("deploy/routes");
}

#[test]
fn a_root_removed_and_made_again_is_watched_again() {
    // `mv m m.old; mkdir m; cp m.old/* m/`: inotify watched the old directory's inode, and
    // nothing under the new one was seen until a restart.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("a.yaml"), route("a", "one.example.com")).unwrap();
    let (rx, _source, _) = watched(root.clone());
    wait_for_host(&rx, "a", "one.example.com", "the first read");

    // At once: the new directory is there before the burst is read.
    fs::rename(&root, dir.path().join("m.old")).unwrap();
    fs::create_dir(&root).unwrap();
    fs::write(root.join("a.yaml"), route("a", "two.example.com")).unwrap();
    wait_for_host(&rx, "a", "two.example.com", "the directory made again at once");
    fs::write(root.join("a.yaml"), route("a", "three.example.com")).unwrap();
    wait_for_host(&rx, "a", "three.example.com", "an edit in it");

    // With a pause: the directory is missing for a while (the rescans fail, the objects stay),
    // and seen as soon as it is back, well before a retry of the failed rescan.
    fs::rename(&root, dir.path().join("m.older")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(rx.borrow().snapshot.routes.iter().any(|r| r.meta.name == "a"), "kept while missing");
    fs::create_dir(&root).unwrap();
    let back = Instant::now();
    fs::write(root.join("a.yaml"), route("a", "four.example.com")).unwrap();
    wait_for_host(&rx, "a", "four.example.com", "the directory made again later");
    assert!(back.elapsed() < crate::run::file_watch::RETRY / 2, "seen only by a retry");
    fs::write(root.join("a.yaml"), route("a", "five.example.com")).unwrap();
    wait_for_host(&rx, "a", "five.example.com", "an edit in it");
}

#[test]
fn configmap_volume_updates_are_seen_by_the_watcher() {
    // The kubelet's atomic writer: `..<timestamp>/` directories, `..data` → the current one,
    // `<key> → ..data/<key>`; an update writes a new directory, points `..data_tmp` at it,
    // renames that over `..data`, and removes the old directory.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let update = |stamp: &str, host: &str, old: Option<&str>| {
        fs::create_dir(root.join(stamp)).unwrap();
        fs::write(root.join(stamp).join("routes.yaml"), route("a", host)).unwrap();
        symlink(stamp, root.join("..data_tmp")).unwrap();
        fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        if let Some(old) = old {
            fs::remove_dir_all(root.join(old)).unwrap();
        }
    };
    update("..2026_11_27_00_00_00.1", "one.example.com", None);
    symlink("..data/routes.yaml", root.join("routes.yaml")).unwrap();
    let (rx, _source, _) = watched(root.clone());
    wait_for_host(&rx, "a", "one.example.com", "the first read");
    update("..2026_11_27_00_01_00.2", "two.example.com", Some("..2026_11_27_00_00_00.1"));
    wait_for_host(&rx, "a", "two.example.com", "the first update");
    update("..2026_11_27_00_02_00.3", "three.example.com", Some("..2026_11_27_00_01_00.2"));
    wait_for_host(&rx, "a", "three.example.com", "the second update");
}

#[test]
fn reading_the_files_is_not_a_change() {
    // Every rescan opens every file: if those opens counted as events, the watcher would
    // rescan for ever.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "one.example.com")).unwrap();
    let (rx, _source, metrics) = watched(dir.path().to_path_buf());
    fs::write(dir.path().join("a.yaml"), route("a", "two.example.com")).unwrap();
    wait_for_host(&rx, "a", "two.example.com", "the edit");
    let events =
        || metrics.watch_events.get_or_create(&crate::run::metrics::KindLabel::new("ManifestFile")).get();
    // Well past the settle time (50 ms) of any burst the rescan itself could cause.
    std::thread::sleep(Duration::from_millis(1500));
    let settled = events();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(events(), settled, "no rescan without a change");
}

#[test]
fn a_file_being_written_is_read_once_it_is_closed() {
    // A plain write truncates the file first: read between the truncation and the data, it
    // would hold no route at all, and the routes would vanish from the config for a moment.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.yaml");
    fs::write(&path, route("a", "one.example.com")).unwrap();
    let (rx, _source, _) = watched(dir.path().to_path_buf());
    wait_for_host(&rx, "a", "one.example.com", "the first read");

    // Well past the 50 ms settle time.
    truncate_then_write_after(&rx, &path, Duration::from_millis(250));
}

#[test]
fn a_slow_writer_is_waited_for_while_its_file_is_open() {
    // `(sleep 3; cat route) > a.yaml`, `kubectl get … > a.yaml` while kubectl authenticates:
    // the file is truncated, then nothing is written for seconds, past MAX_SETTLE. Read then,
    // it would hold no route, and the config would be written without it, then with it again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.yaml");
    fs::write(&path, route("a", "one.example.com")).unwrap();
    let (rx, _source, _) = watched(dir.path().to_path_buf());
    wait_for_host(&rx, "a", "one.example.com", "the first read");

    truncate_then_write_after(&rx, &path, crate::run::file_watch::MAX_SETTLE * 2);
}

/// Truncates `path`, writes route `a` of `two.example.com` into it `pause` later, then closes
/// it; route `a` must be published all along, then with the new hostname.
fn truncate_then_write_after(rx: &SourceReceiver, path: &Path, pause: Duration) {
    use std::io::Write;
    let writer = std::thread::spawn({
        let path = path.to_path_buf();
        move || {
            let mut file = fs::File::create(&path).unwrap(); // truncated now
            std::thread::sleep(pause);
            file.write_all(route("a", "two.example.com").as_bytes()).unwrap();
        } // closed here
    });
    let deadline = Instant::now() + pause;
    while Instant::now() < deadline {
        let present = rx.borrow().snapshot.routes.iter().any(|r| r.meta.name == "a");
        assert!(present, "route a vanished while its file was being written");
        std::thread::sleep(Duration::from_millis(5));
    }
    writer.join().unwrap();
    wait_for_host(rx, "a", "two.example.com", "after the write");
}

#[test]
fn a_write_that_begins_while_the_files_are_read_is_not_taken_as_still() {
    // The burst settled, the handler reads, and a plain write truncates a file in between (here
    // the handler itself truncates it, as a writer would at that moment): its events come after
    // the read, so `still` must wait for them and say no, and the next burst is the one read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.yaml");
    fs::write(&path, route("a", "one.example.com")).unwrap();
    let (answers, answered) = std::sync::mpsc::channel();
    let mut calls = 0;
    let _watch = watch_dirs(&[(dir.path().to_path_buf(), RecursiveMode::Recursive)], Ignore::default(), {
        let path = path.clone();
        move |_, still| {
            calls += 1;
            if calls == 1 {
                let _truncated = fs::File::create(&path).unwrap();
            }
            answers.send(still()).unwrap();
            false
        }
    })
    .unwrap();
    fs::write(dir.path().join("b.yaml"), route("b", "two.example.com")).unwrap();
    let next = || answered.recv_timeout(BOUND).expect("a burst");
    assert!(!next(), "a file truncated during the read was taken as still");
    assert!(next(), "the burst after it, with nothing written since, is still");
}

#[test]
fn a_change_read_while_other_files_move_is_published_once_they_stop() {
    // `still` says no while a neighbour keeps being written; the change read then must still be
    // published by a later rescan, although that rescan finds nothing new since.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "one.example.com")).unwrap();
    let (rx, _source, _) = watched(dir.path().to_path_buf());
    wait_for_host(&rx, "a", "one.example.com", "the first read");
    let noise = std::thread::spawn({
        let notes = dir.path().join("notes.txt");
        move || {
            // Past MAX_SETTLE, which ends the first burst, then past the second's read.
            let end = Instant::now() + Duration::from_millis(1600);
            while Instant::now() < end {
                fs::write(&notes, "not a manifest").unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    fs::write(dir.path().join("a.yaml"), route("a", "two.example.com")).unwrap();
    noise.join().unwrap();
    wait_for_host(&rx, "a", "two.example.com", "after the neighbour stopped moving");
}

#[test]
fn a_handler_that_could_not_read_is_called_again_without_an_event() {
    // The rescan failed (out of file descriptors): the change that woke it must not wait for
    // another event to be read, nor be put off by events of no concern (here, neighbours in
    // the watched directory's parent, which is watched too).
    let parent = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir_in(parent.path()).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noise = std::thread::spawn({
        let (stop, neighbour) = (stop.clone(), parent.path().join("neighbour.txt"));
        move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fs::write(&neighbour, "not ours").unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let (calls, called) = std::sync::mpsc::channel();
    let mut count = 0;
    let _watch = watch_dirs(&[(dir.path().to_path_buf(), RecursiveMode::Recursive)], Ignore::default(), {
        move |paths, _| {
            count += 1;
            calls.send(paths).unwrap();
            count == 1
        }
    })
    .unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "one.example.com")).unwrap();
    let first = called.recv_timeout(BOUND).expect("the event");
    assert_eq!(first, [dir.path().join("a.yaml")]);
    let second = called.recv_timeout(BOUND).expect("called again without an event");
    assert!(second.is_empty(), "{second:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.join().unwrap();
}

#[test]
fn nothing_is_synced_until_every_file_has_read_cleanly_once() {
    // Broken at start, a file has no last good content: rendered without it, the config.yml
    // on disk (an earlier run's) would lose its objects, and the tunnel its routes.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("gateway.yaml"), ours()).unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "a.example.com")).unwrap();
    let broken = route("b", "b.example.com").replace("port: 80", "port: \"80\"");
    fs::write(dir.path().join("b.yaml"), &broken).unwrap();
    let (rx, _source, _) = watched(dir.path().to_path_buf());
    assert!(!rx.borrow().synced, "synced with b.yaml never read");
    fs::write(dir.path().join("c.yaml"), "kind: [unclosed\n").unwrap();
    fs::write(dir.path().join("b.yaml"), route("b", "b.example.com")).unwrap();
    wait_for_host(&rx, "b", "b.example.com", "b.yaml fixed");
    assert!(!rx.borrow().synced, "synced with c.yaml never read");
    fs::remove_file(dir.path().join("c.yaml")).unwrap();
    wait_synced(&rx, "c.yaml removed");
    // Once synced, a file that breaks keeps its last good content, and stays synced.
    fs::write(dir.path().join("b.yaml"), &broken).unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "a2.example.com")).unwrap();
    wait_for_host(&rx, "a", "a2.example.com", "a.yaml changed");
    assert!(rx.borrow().synced);
    wait_for_host(&rx, "b", "b.example.com", "b.yaml broken again");
}

#[test]
fn a_dot_file_held_open_does_not_hold_the_rescan() {
    // An editor keeps its swap file (`.a.yaml.swp`) open while it runs: waiting for it to be
    // closed would hold every change for MAX_WRITING.
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), route("a", "one.example.com")).unwrap();
    let (rx, _source, _) = watched(dir.path().to_path_buf());
    wait_for_host(&rx, "a", "one.example.com", "the first read");
    let mut swap = fs::File::create(dir.path().join(".a.yaml.swp")).unwrap();
    swap.write_all(b"swap").unwrap();
    let started = Instant::now();
    fs::write(dir.path().join("a.yaml"), route("a", "two.example.com")).unwrap();
    wait_for_host(&rx, "a", "two.example.com", "the edit");
    assert!(started.elapsed() < crate::run::file_watch::MAX_WRITING / 2, "{:?}", started.elapsed());
    drop(swap);
}

#[test]
fn nothing_is_synced_until_the_files_hold_a_gateway_of_ours() {
    // A git-sync sidecar that has not cloned yet leaves the directory empty at start: rendered
    // then, the config.yml on disk (an earlier run's) would be replaced by the catch-all alone.
    let dir = tempfile::tempdir().unwrap();
    let (rx, _source, _) = watched(dir.path().to_path_buf());
    assert!(!rx.borrow().synced, "synced on an empty directory");
    fs::write(dir.path().join("a.yaml"), route("a", "a.example.com")).unwrap();
    wait_for_host(&rx, "a", "a.example.com", "a route without its Gateway");
    assert!(!rx.borrow().synced, "synced without a Gateway");
    fs::write(dir.path().join("other.yaml"), gateway("istio", "istio.io/gateway-controller")).unwrap();
    wait_until(&rx, "the other Gateway is read", |s| !s.snapshot.gateways.is_empty());
    assert!(!rx.borrow().synced, "synced on another controller's Gateway");
    fs::remove_file(dir.path().join("other.yaml")).unwrap();
    fs::write(dir.path().join("gateway.yaml"), ours()).unwrap();
    wait_synced(&rx, "our Gateway written");
    // Once synced, the files say what is wanted: without any Gateway, still synced.
    fs::remove_file(dir.path().join("gateway.yaml")).unwrap();
    fs::remove_file(dir.path().join("a.yaml")).unwrap();
    wait_until(&rx, "the deletions are read", |s| s.snapshot.routes.is_empty());
    assert!(rx.borrow().synced);
}

#[test]
fn a_gateway_not_named_by_the_gateway_flag_does_not_sync() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("gateway.yaml"), ours()).unwrap();
    let other = routes_core::model::ObjectRef { namespace: "web".into(), name: "other".into() };
    let settings = Settings { gateways: vec![other], ..Settings::default() };
    let (rx, _source, _) = watched_with(dir.path().to_path_buf(), settings);
    assert!(!rx.borrow().synced, "synced on a Gateway --gateway does not name");
    let named = ours().replace("name: gw,", "name: other,");
    fs::write(dir.path().join("other.yaml"), named.split("---\n").nth(1).unwrap()).unwrap();
    wait_synced(&rx, "the named Gateway written");
}
