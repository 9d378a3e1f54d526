//! Crash-safe writes: a reader sees the old file or the new one, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::DatasetError;

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync the directory.
///
/// Meant for small files (manifests, reports); the whole content is in memory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    // Temp files are private (0600) by default; what we publish is an ordinary file that the
    // user's other tools (a browser, a trainer under another account) can read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| DatasetError::io("create a temp file in", dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| DatasetError::io("write", tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| DatasetError::io("fsync", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| DatasetError::io("rename a temp file to", path, e.error))?;
    fsync_dir(dir)
}

/// The directory a path lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Flushes a directory's entries (new names, renames) to disk.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), DatasetError> {
    // On Unix a directory opened read-only can be fsynced; elsewhere this is best effort.
    match File::open(dir) {
        Ok(f) => match f.sync_all() {
            Ok(()) => Ok(()),
            Err(e) if cfg!(unix) => Err(DatasetError::io("fsync", dir, e)),
            Err(_) => Ok(()),
        },
        Err(e) if cfg!(unix) => Err(DatasetError::io("open", dir, e)),
        Err(_) => Ok(()),
    }
}
