use super::*;

fn route(name: &str, host: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: web}}\n\
         spec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [{host}]\n  rules:\n  - backendRefs: [{{name: svc, port: 80}}]\n"
    )
}

fn route_names(files: &ManifestFiles) -> Vec<String> {
    let mut names: Vec<String> = files.loaded().snapshot.routes.iter().map(|r| r.meta.name.clone()).collect();
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

#[test]
fn ignore_matches_temp_files_and_the_config() {
    let ignore = Ignore { paths: vec![PathBuf::from("/cf/config.yml")] };
    assert!(ignore.ignores(Path::new("/cf/config.yml")));
    assert!(ignore.ignores(Path::new("/m/.cloudflared-routes-AbC123")));
    assert!(!ignore.ignores(Path::new("/m/routes.yaml")));
}
