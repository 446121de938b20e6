//! The data directory's lock: one daemon per data directory, and a clear message naming the
//! holder's pid when a second one tries.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::StoreError;

/// An exclusive advisory lock on `DATA_DIR/LOCK`, released when dropped (or when the process
/// dies, so a crash never leaves a stale lock behind).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("LOCK");
        let io_err = |what| {
            let path = path.clone();
            move |source| StoreError::Io { what, path, source }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("cannot open lock file"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder may be between taking the lock and writing its pid; then the pid
                // is reported as unknown rather than guessed.
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(StoreError::Locked {
                    dir: dir.to_owned(),
                    pid,
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(io_err("cannot lock")(source));
            }
        }
        file.set_len(0).map_err(io_err("cannot write lock file"))?;
        file.seek(SeekFrom::Start(0))
            .map_err(io_err("cannot write lock file"))?;
        writeln!(file, "{}", std::process::id()).map_err(io_err("cannot write lock file"))?;
        file.sync_all().map_err(io_err("cannot write lock file"))?;
        Ok(Self { _file: file })
    }
}
