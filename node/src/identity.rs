//! The node's ed25519 identity: created on first start, reused after, never overwritten.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use micro_overlay::Keypair;
use tracing::{info, warn};

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The key file exists but cannot be read.
    #[error("cannot read the identity key {path}: {source}")]
    Unreadable {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key file does not hold an ed25519 key.
    #[error(
        "the identity key {path} is corrupt ({reason}); refusing to start. Restore it from a backup, \
         or move it aside to create a new identity (the node's PeerId will change)"
    )]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A new key could not be written.
    #[error("cannot write a new identity key to {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Loads the key at `path`, or creates one (mode 0600) if there is no file.
///
/// An existing file is never overwritten, even if it is corrupt.
pub fn load_or_create(path: &Path) -> Result<Keypair, IdentityError> {
    match fs::read(path) {
        Ok(bytes) => {
            warn_if_readable_by_others(path);
            let key =
                Keypair::from_protobuf_encoding(&bytes).map_err(|e| IdentityError::Corrupt {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            if key.key_type() != libp2p::identity::KeyType::Ed25519 {
                return Err(IdentityError::Corrupt {
                    path: path.to_owned(),
                    reason: format!("expected an ed25519 key, found {:?}", key.key_type()),
                });
            }
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => create(path),
        Err(source) => Err(IdentityError::Unreadable {
            path: path.to_owned(),
            source,
        }),
    }
}

fn create(path: &Path) -> Result<Keypair, IdentityError> {
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| IdentityError::Corrupt {
            path: path.to_owned(),
            reason: format!("fresh key does not encode: {e}"),
        })?;
    let write_err = |source| IdentityError::Write {
        path: path.to_owned(),
        source,
    };
    write_private(path, &bytes).map_err(write_err)?;
    info!(path = %path.display(), peer = %key.public().to_peer_id(), "created a new identity");
    Ok(key)
}

/// Writes `bytes` to `path` with mode 0600, atomically: a crash leaves either no file or the
/// whole file. Fails if `path` already exists.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    // A hard link fails if the target exists, so a key is never replaced.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        warn!(path = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "identity key is readable by other users; chmod 600 it");
    }
}

/// The public key inside `peer`, if its id inlines one (ed25519 ids do): how a signature
/// claimed by a peer id is checked without any key exchange.
pub fn public_key_of(peer: &micro_overlay::PeerId) -> Option<libp2p::identity::PublicKey> {
    let hash = peer.as_ref();
    // Code 0 is the identity multihash: the digest is the protobuf-encoded key itself.
    if hash.code() != 0 {
        return None;
    }
    libp2p::identity::PublicKey::try_decode_protobuf(hash.digest()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_reused_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity.key");
        let first = load_or_create(&path).expect("create");
        let second = load_or_create(&path).expect("load");
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_corrupt_key_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity.key");
        fs::write(&path, b"not a key").expect("write");
        let err = load_or_create(&path).unwrap_err();
        assert!(matches!(err, IdentityError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("refusing to start"));
        assert_eq!(fs::read(&path).expect("read"), b"not a key");
    }

    #[test]
    fn an_empty_key_file_is_corrupt_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity.key");
        fs::write(&path, b"").expect("write");
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityError::Corrupt { .. })
        ));
        assert!(fs::read(&path).expect("read").is_empty());
    }

    #[test]
    fn an_unreadable_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity.key");
        // A directory where the key should be: reading fails with something other than
        // NotFound, whatever user the tests run as.
        fs::create_dir(&path).expect("mkdir");
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityError::Unreadable { .. })
        ));
    }
}
