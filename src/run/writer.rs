//! Replacing `config.yml` atomically: a reader (cloudflared starting, a kill at any moment)
//! sees either the old complete file or the new complete file, never a mix or an empty one.
//!
//! ```text
//! temp file in the target's directory → write → chmod 0644 → fsync → rename over the target → fsync the directory
//! ```
//!
//! - The temp file must be in the same directory (the same filesystem) for `rename(2)` to be
//!   atomic; the config directory is usually an `emptyDir` shared with the cloudflared
//!   container.
//! - tempfile creates files with mode 0600; cloudflared runs as another uid (65532 in the
//!   official image) in the same pod, so the file is made world-readable (0644) before it
//!   takes the target's name. It holds no secret: only the credentials file's path.
//! - `persist` (rename) does not fsync the directory: without that, a power loss may forget
//!   the rename.
//! - On an error the temp file is removed (dropping a `NamedTempFile` deletes it). A process
//!   killed mid-write leaves its temp file behind, so [`ConfigWriter::new`] removes stale
//!   `.cloudflared-routes-*` files from the directory on start. Two processes must not share
//!   one config file.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Prefix of our temp files; a leading dot keeps them out of manifest walks and `ls`.
pub const TEMP_PREFIX: &str = ".cloudflared-routes-";

/// Mode of the written config: readable by cloudflared running as another uid.
pub const CONFIG_MODE: u32 = 0o644;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Never replace a config with an empty file: cloudflared would refuse to start with it.
    #[error("{}: refusing to write an empty config", path.display())]
    Empty { path: PathBuf },
    #[error("{}: {step}: {source}", path.display())]
    Io {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What [`ConfigWriter::write_if_changed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file already held these bytes: not touched (same inode, same mtime).
    Unchanged,
    /// The file was replaced; the number of bytes written.
    Written(usize),
}

#[derive(Clone, Debug)]
pub struct ConfigWriter {
    target: PathBuf,
    dir: PathBuf,
}

impl ConfigWriter {
    /// A writer for `target`: creates its directory if missing and removes stale temp files a
    /// killed predecessor left there.
    pub fn new(target: &Path) -> Result<ConfigWriter, WriteError> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io_error(&dir, "create the directory"))?;
        let writer = ConfigWriter { target: target.to_path_buf(), dir };
        let removed = writer.remove_stale_temp_files()?;
        if removed > 0 {
            tracing::info!(dir = %writer.dir.display(), removed, "removed temp files left by an interrupted write");
        }
        Ok(writer)
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The current content of the target, `None` when it does not exist.
    pub fn current(&self) -> Result<Option<Vec<u8>>, WriteError> {
        match fs::read(&self.target) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&self.target, "read")(e)),
        }
    }

    /// Replace the target with `bytes` unless it already holds exactly them.
    pub fn write_if_changed(&self, bytes: &[u8]) -> Result<WriteOutcome, WriteError> {
        if self.current()?.as_deref() == Some(bytes) {
            return Ok(WriteOutcome::Unchanged);
        }
        self.write(bytes)?;
        Ok(WriteOutcome::Written(bytes.len()))
    }

    /// Replace the target with `bytes`, atomically and durably.
    pub fn write(&self, bytes: &[u8]) -> Result<(), WriteError> {
        if bytes.is_empty() {
            return Err(WriteError::Empty { path: self.target.clone() });
        }
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.dir)
            .map_err(io_error(&self.dir, "create a temp file"))?;
        // From here on, an early return drops `temp`, which deletes the temp file.
        let temp_path = temp.path().to_path_buf();
        temp.write_all(bytes).map_err(io_error(&temp_path, "write"))?;
        temp.as_file()
            .set_permissions(Permissions::from_mode(CONFIG_MODE))
            .map_err(io_error(&temp_path, "set mode 0644"))?;
        temp.as_file().sync_all().map_err(io_error(&temp_path, "fsync"))?;
        temp.persist(&self.target).map_err(|e| WriteError::Io {
            path: self.target.clone(),
            step: "rename the temp file over it",
            source: e.error,
        })?;
        // The new file is in place: a failed fsync of the directory only leaves the rename's
        // durability across a power loss in doubt. Reported, not an error: cloudflared must be
        // reloaded on the file it will read.
        if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "config written, but fsync of its directory failed");
        }
        Ok(())
    }

    /// Removes every `.cloudflared-routes-*` regular file of the target's directory; the count.
    pub fn remove_stale_temp_files(&self) -> Result<usize, WriteError> {
        let entries = fs::read_dir(&self.dir).map_err(io_error(&self.dir, "list"))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let stale = is_temp_file_name(&entry.file_name().to_string_lossy())
                && entry.file_type().is_ok_and(|t| t.is_file());
            if stale {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&entry.path(), "remove a stale temp file")(e)),
                }
            }
        }
        Ok(removed)
    }
}

/// Whether a file name is one of our temp files (watchers filter their events with it).
pub fn is_temp_file_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

fn io_error(path: &Path, step: &'static str) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError::Io { path, step, source }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
