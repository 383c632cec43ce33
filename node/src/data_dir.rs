//! The node's data dir: identity, control credential and address, and the lock that keeps a
//! second process out.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use micro_overlay::Keypair;

use crate::api::ControlFile;
use crate::credential::Credential;
use crate::{NodeError, identity};

/// File names inside the data dir.
pub mod files {
    /// The ed25519 identity (libp2p protobuf encoding), mode 0600.
    pub const IDENTITY: &str = "identity.key";
    /// The control API bearer credential, mode 0600, rewritten at each start.
    pub const CREDENTIAL: &str = "control.token";
    /// Where the running node's control API listens (JSON), removed on clean stop.
    pub const CONTROL: &str = "control.json";
    /// Held locked (`flock`) by the running node; holds its pid.
    pub const LOCK: &str = "lock";
}

/// An opened, locked data dir. Dropping it releases the lock.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the dir (mode 0700) if needed and takes its lock.
    ///
    /// Fails with [`NodeError::DataDirInUse`] if another process holds it, and with
    /// [`NodeError::DataDirNotWritable`] if it cannot be created or written.
    pub fn open(path: &Path) -> Result<Self, NodeError> {
        let not_writable = |source| NodeError::DataDirNotWritable {
            path: path.to_owned(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(not_writable)?;
        let lock_path = path.join(files::LOCK);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(not_writable)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = lock.read_to_string(&mut pid);
                return Err(NodeError::DataDirInUse {
                    path: path.to_owned(),
                    pid: pid.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(not_writable(e)),
        }
        lock.set_len(0).map_err(not_writable)?;
        lock.rewind().map_err(not_writable)?;
        write!(lock, "{}", std::process::id()).map_err(not_writable)?;
        Ok(Self {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The dir itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node's identity, created on first use.
    pub fn identity(&self) -> Result<Keypair, NodeError> {
        Ok(identity::load_or_create(&self.path.join(files::IDENTITY))?)
    }

    /// Writes a fresh control credential (mode 0600), replacing the previous one.
    pub fn new_credential(&self) -> Result<Credential, NodeError> {
        let credential = Credential::generate();
        let path = self.path.join(files::CREDENTIAL);
        let _ = fs::remove_file(&path);
        identity::write_private(&path, credential.secret().as_bytes())
            .map_err(|source| NodeError::Write { path, source })?;
        Ok(credential)
    }

    /// Records where the control API listens, for the CLI.
    pub fn write_control_file(&self, control: &ControlFile) -> Result<(), NodeError> {
        let path = self.path.join(files::CONTROL);
        let json = serde_json::to_vec_pretty(control).map_err(|e| NodeError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, json)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|source| NodeError::Write { path, source })
    }

    /// Removes the control file on clean stop, so the CLI says "no node running".
    pub fn remove_control_file(&self) {
        let _ = fs::remove_file(self.path.join(files::CONTROL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_fails_fast_with_the_holders_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDir::open(dir.path()).expect("first open");
        match DataDir::open(dir.path()) {
            Err(NodeError::DataDirInUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected DataDirInUse, got {other:?}"),
        }
        drop(first);
        DataDir::open(dir.path()).expect("open after release");
    }

    #[test]
    fn credentials_are_private_and_fresh() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::open(dir.path()).expect("open");
        let a = data.new_credential().expect("credential");
        let b = data.new_credential().expect("credential");
        assert_ne!(a, b);
        let path = dir.path().join(files::CREDENTIAL);
        assert_eq!(fs::read_to_string(&path).expect("read"), b.secret());
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn an_unwritable_dir_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("plain-file");
        fs::write(&file, b"x").expect("write");
        let err = DataDir::open(&file.join("sub")).unwrap_err();
        assert!(matches!(err, NodeError::DataDirNotWritable { .. }), "{err}");
    }
}
