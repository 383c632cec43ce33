//! What can go wrong in the event store.

use super::group::GroupNameError;
use crate::broker::TopicName;

/// Why an event store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O error, corruption sled itself detected, or a sled bug). The store is
    /// unchanged for the failed operation: every write is one transaction.
    #[error("event store: sled failed while {context}: {source}")]
    Sled {
        /// What the store was doing.
        context: &'static str,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// Bytes on disk do not decode (a damaged or foreign database). Never a panic; the message
    /// says what did not decode.
    #[error("event store: corrupt data on disk: {0}")]
    Corrupt(String),
    /// The store has no events, cursors or groups for this topic (nothing was ever appended).
    #[error("no events stored for topic `{0}`")]
    UnknownTopic(TopicName),
    /// A read or commit named an offset the topic has not reached yet.
    #[error("offset {offset} is beyond the topic's next offset {next}; offsets start at 0")]
    InvalidOffset {
        /// The offset asked for.
        offset: u64,
        /// The offset the next appended event will get.
        next: u64,
    },
    /// A consumer group tried to commit a position before the one it already committed.
    #[error(
        "consumer group already committed up to offset {committed}; cannot go back to \
         {requested} (commits only move forward)"
    )]
    CommitBackwards {
        /// The group's committed position (next offset to deliver).
        committed: u64,
        /// The position asked for.
        requested: u64,
    },
    /// A consumer group name did not parse.
    #[error(transparent)]
    InvalidGroup(#[from] GroupNameError),
    /// Appending would create a topic beyond [`StoreConfig::max_topics`](super::StoreConfig).
    #[error(
        "the event store already holds {limit} topics, its limit; raise max_topics or \
         stop storing some topics"
    )]
    TooManyTopics {
        /// The limit.
        limit: usize,
    },
}

/// Maps a sled error to [`StoreError::Sled`] saying what the store was doing.
pub(super) fn sled_err(context: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |source| StoreError::Sled { context, source }
}

/// Maps a sled transaction error to [`StoreError::Sled`]. Transactions here never abort (every
/// decision is made before they start), so only storage errors reach this.
pub(super) fn tx_err(
    context: &'static str,
) -> impl Fn(sled::transaction::TransactionError<std::convert::Infallible>) -> StoreError {
    move |e| match e {
        sled::transaction::TransactionError::Storage(source) => {
            StoreError::Sled { context, source }
        }
        sled::transaction::TransactionError::Abort(never) => match never {},
    }
}
