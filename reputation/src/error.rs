//! The crate's error for operations that touch the disk.

/// A failure of the reputation store (sled).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sled operation failed; `action` says which.
    #[error("reputation store: {action}: {source}")]
    Store {
        /// What was being done ("open tree", "write observations", ...).
        action: &'static str,
        /// The sled error.
        source: sled::Error,
    },
}

impl Error {
    /// Wraps a sled error with what was being done.
    pub(crate) fn store(action: &'static str) -> impl FnOnce(sled::Error) -> Error {
        move |source| Error::Store { action, source }
    }
}
