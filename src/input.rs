//! Reading an input file named on the command line or found in a manifests directory: the
//! manifests, `--base-config`, `--credentials-file`, `validate`'s config.
//!
//! Only regular files are read (symlinks are followed: ConfigMap and Secret volumes are
//! symlinks to regular files), and at most [`MAX_INPUT_BYTES`] of them. A FIFO would block
//! the read until a writer comes (forever, for a mistyped path), and a device such as
//! `/dev/zero` would be read until memory runs out.

use std::fs::{Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest input file read: far above any real manifest set, base config or credentials
/// file (a `kubectl get -o yaml` of 10,000 routes is some 20 MiB).
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// The text of the regular file at `path` (after symlinks), refused when it is something else
/// or larger than [`MAX_INPUT_BYTES`]. Errors name no content, only what the file is.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    read_limited(path, MAX_INPUT_BYTES)
}

fn read_limited(path: &Path, limit: u64) -> io::Result<String> {
    // Non-blocking: opening a FIFO for reading otherwise waits for a writer. A regular file
    // reads the same either way.
    let file = OpenOptions::new().read(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits()).open(path)?;
    let metadata = file.metadata()?;
    regular(&metadata)?;
    // Checked before reading, and again while reading: the size can be wrong (`/proc` files
    // say 0) or grow meanwhile.
    if metadata.len() > limit {
        return Err(too_large(limit));
    }
    let mut text = String::new();
    Read::take(&file, limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(text)
}

/// An error unless `metadata` is a regular file's: `not a regular file (a FIFO)`.
pub fn regular(metadata: &Metadata) -> io::Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({})", describe(&metadata.file_type())),
    ))
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {} MiB, the limit of an input file", limit >> 20),
    )
}

fn describe(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    #[test]
    fn regular_files_and_symlinks_to_them_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "kind: x\n").unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_to_string(&file).unwrap(), "kind: x\n");
        assert_eq!(read_to_string(&link).unwrap(), "kind: x\n");
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let link = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (link.as_path(), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = read_to_string(path).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{}", path.display());
            assert_eq!(e.to_string(), format!("not a regular file ({what})"), "{}", path.display());
        }
    }

    #[test]
    fn size_is_bounded_before_and_while_reading() {
        let dir = tempfile::tempdir().unwrap();
        // Sparse: refused from its size, nothing read.
        let big = dir.path().join("big.yaml");
        File::create(&big).unwrap().set_len(MAX_INPUT_BYTES + 1).unwrap();
        let e = read_to_string(&big).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "larger than 64 MiB, the limit of an input file");
        // Its size says 0: the read itself stops at the limit.
        assert_eq!(std::fs::metadata("/proc/self/maps").unwrap().len(), 0);
        let e = read_limited(Path::new("/proc/self/maps"), 1024).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
    }
}
