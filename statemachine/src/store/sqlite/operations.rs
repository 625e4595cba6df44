//! Keeping a SQLite store healthy: the file under it, checkpoints, integrity checks and
//! backups.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{SqliteStore, io};
use crate::store::StoreError;

/// The database file a store opened, to notice when the path names another one.
#[derive(Debug)]
pub(super) struct OpenedFile {
    path: PathBuf,
    /// Device and inode (Unix); elsewhere only the file's existence is checked.
    #[cfg(unix)]
    identity: (u64, u64),
}

impl OpenedFile {
    /// The file behind `conn`, as SQLite resolved its path; `None` for a database in
    /// memory or a temporary one.
    pub(super) fn of(conn: &Connection) -> Result<Option<Self>, StoreError> {
        let Some(path) = conn.path().filter(|path| !path.is_empty()) else {
            return Ok(None);
        };
        let path = PathBuf::from(path);
        let meta = std::fs::metadata(&path).map_err(|error| file_error(&path, error))?;
        #[cfg(not(unix))]
        let _ = meta;
        Ok(Some(Self {
            #[cfg(unix)]
            identity: identity(&meta),
            path,
        }))
    }

    /// Fails with [`StoreError::FileReplaced`] unless the path still names the file
    /// that was opened.
    fn check(&self) -> Result<(), StoreError> {
        let replaced = |reason: String| StoreError::FileReplaced {
            path: self.path.clone(),
            reason,
        };
        match std::fs::metadata(&self.path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(replaced("it was deleted or moved away".into()))
            }
            Err(error) => Err(replaced(format!("it cannot be looked up: {error}"))),
            #[cfg(unix)]
            Ok(meta) if identity(&meta) != self.identity => {
                Err(replaced("another file is at its path now".into()))
            }
            Ok(_) => Ok(()),
        }
    }
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

fn file_error(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io {
        machine: None,
        id: None,
        source: Box::new(std::io::Error::new(
            error.kind(),
            format!("{}: {error}", path.display()),
        )),
    }
}

/// Whether SQLite would take `path` for something other than a file name.
fn is_special(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|path| path.is_empty() || path == ":memory:" || path.starts_with("file:"))
}

/// Creates the database file with `mode` (Unix) unless it exists, so that SQLite, which
/// gives the `-wal` and `-shm` files the database's mode, never creates any of them
/// readable by others.
pub(super) fn create_file(path: &Path, mode: u32) -> Result<(), StoreError> {
    if is_special(path) {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(file_error(path, error)),
    }
}

/// What [`SqliteStore::checkpoint`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// Whether every frame of the log was copied into the database and the log was
    /// emptied. `false` when a reader still needed the log past the busy timeout: try
    /// again once it is gone.
    pub complete: bool,
    /// Frames in the log when the checkpoint ran.
    pub log_frames: u64,
    /// Frames copied into the database.
    pub checkpointed_frames: u64,
}

impl SqliteStore {
    /// Fails with [`StoreError::FileReplaced`] unless the store's path still names the
    /// file it opened. Called by every write, inside its transaction.
    pub(super) fn check_file(&self) -> Result<(), StoreError> {
        self.file.as_ref().map_or(Ok(()), OpenedFile::check)
    }

    /// Copies the log into the database and truncates the log to zero bytes
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`). Waits up to the busy timeout for readers
    /// that still need the log, holding up this store's other callers meanwhile; SQLite
    /// also checkpoints on its own, so call this only to reclaim disk space now.
    ///
    /// # Errors
    ///
    /// When the database cannot be written.
    pub fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let (busy, log, done): (i64, i64, i64) = self
            .conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(io)?;
        Ok(Checkpoint {
            complete: busy == 0,
            log_frames: u64::try_from(log).unwrap_or(0),
            checkpointed_frames: u64::try_from(done).unwrap_or(0),
        })
    }

    /// Checks the whole file for damage with `PRAGMA quick_check` (every page and
    /// b-tree, not the cross-checks of indexes against tables). Reads the whole file;
    /// holds up this store's other callers while it runs, not other processes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Integrity`] with what the check found; [`StoreError::Io`] when the
    /// file cannot be read.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let conn = self.conn();
        let problems = conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            });
        match problems {
            Ok(problems) if problems.iter().all(|problem| problem == "ok") => Ok(()),
            Ok(problems) => Err(StoreError::Integrity { problems }),
            Err(error) if is_damage(&error) => Err(StoreError::Integrity {
                problems: vec![error.to_string()],
            }),
            Err(error) => Err(io(error)),
        }
    }

    /// Writes a consistent copy of the database, with everything committed so far
    /// (including what is still in the log), into a new file at `path`
    /// (`VACUUM INTO`). Writers of other processes go on meanwhile; this store's
    /// callers wait. The copy is created with [`SqliteOptions::file_mode`].
    ///
    /// [`SqliteOptions::file_mode`]: super::SqliteOptions::file_mode
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when `path` exists already (a backup never overwrites a
    /// file) or cannot be written.
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<(), StoreError> {
        let path = path.as_ref();
        let Some(target) = path.to_str().filter(|_| !is_special(path)) else {
            return Err(file_error(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a backup needs a plain UTF-8 file name",
                ),
            ));
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, self.file_mode);
        options
            .open(path)
            .map_err(|error| file_error(path, error))?;
        let written = self.conn().execute("VACUUM INTO ?1", [target]);
        written.map(drop).map_err(|error| {
            // Leave no half-written file that a later backup would refuse to replace.
            let _ = std::fs::remove_file(path);
            io(error)
        })
    }
}

/// Whether SQLite's error says the file is damaged or not a database.
fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}
