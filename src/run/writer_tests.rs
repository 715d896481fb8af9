use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| is_temp_file_name(n))
        .collect()
}

#[test]
fn writes_a_new_file_with_mode_0644_and_no_temp_left() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out/config.yml");
    let writer = ConfigWriter::new(&target).unwrap();
    assert_eq!(writer.write_if_changed(b"ingress: []\n").unwrap(), WriteOutcome::Written(12));
    assert_eq!(fs::read(&target).unwrap(), b"ingress: []\n");
    let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "cloudflared runs as another uid and must read the file");
    assert!(temp_files(target.parent().unwrap()).is_empty());
}

#[test]
fn same_bytes_are_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("config.yml");
    let writer = ConfigWriter::new(&target).unwrap();
    writer.write(b"a: 1\n").unwrap();
    let before = fs::metadata(&target).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(writer.write_if_changed(b"a: 1\n").unwrap(), WriteOutcome::Unchanged);
    let after = fs::metadata(&target).unwrap();
    assert_eq!((before.ino(), before.mtime_nsec()), (after.ino(), after.mtime_nsec()));

    assert_eq!(writer.write_if_changed(b"a: 2\n").unwrap(), WriteOutcome::Written(5));
    assert_ne!(fs::metadata(&target).unwrap().ino(), before.ino(), "replaced by rename");
}

#[test]
fn empty_config_is_refused_and_the_old_file_stays() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("config.yml");
    let writer = ConfigWriter::new(&target).unwrap();
    writer.write(b"old\n").unwrap();
    let err = writer.write_if_changed(b"").unwrap_err();
    assert!(matches!(err, WriteError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("config.yml"), "names the file: {err}");
    assert_eq!(fs::read(&target).unwrap(), b"old\n");
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn failed_rename_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    // The target is a non-empty directory: rename(2) over it fails.
    let target = dir.path().join("config.yml");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), "x").unwrap();
    let writer = ConfigWriter::new(&target).unwrap();
    let err = writer.write(b"a: 1\n").unwrap_err();
    assert!(err.to_string().contains("rename"), "{err}");
    assert!(temp_files(dir.path()).is_empty(), "{:?}", temp_files(dir.path()));
}

#[test]
fn stale_temp_files_are_removed_on_start_and_others_kept() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".cloudflared-routes-abc123"), "half a config").unwrap();
    fs::write(dir.path().join("other.yml"), "keep me").unwrap();
    let target = dir.path().join("config.yml");
    let writer = ConfigWriter::new(&target).unwrap();
    assert!(temp_files(dir.path()).is_empty());
    assert!(dir.path().join("other.yml").exists());
    assert_eq!(writer.remove_stale_temp_files().unwrap(), 0);
}
