//! Each service's log: a bounded ring of recent lines plus a broadcast for followers.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Longest line kept, in bytes; longer lines are cut.
pub const MAX_LINE_BYTES: usize = 4096;
/// Lines a follower may fall behind before it loses the oldest.
const FOLLOW_BUFFER: usize = 256;

/// One line of a service's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When, Unix ms.
    pub at_ms: u64,
    /// `trace`, `debug`, `info`, `warn` or `error`; `stdout`/`stderr` for the guest's own
    /// output; `node` for what the runtime says about the service.
    pub level: String,
    /// The service's version that wrote it.
    pub version: String,
    /// The text.
    pub message: String,
}

/// A service's log. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct LogBook {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    follow: broadcast::Sender<LogLine>,
}

impl LogBook {
    /// A log keeping the last `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            follow: broadcast::channel(FOLLOW_BUFFER).0,
        }
    }

    /// Appends a line, dropping the oldest when full.
    pub fn push(&self, level: &str, version: &str, message: &str) {
        let mut message = message.trim_end().to_owned();
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let line = LogLine {
            at_ms: now_ms(),
            level: level.to_owned(),
            version: version.to_owned(),
            message,
        };
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line.clone());
        // Sent under the lock, so `tail_and_follow` sees each line exactly once. No follower
        // is fine.
        let _ = self.follow.send(line);
    }

    /// Writes each line of `text` (a guest's stdout or stderr).
    pub fn push_output(&self, stream: &str, version: &str, text: &[u8]) {
        for line in String::from_utf8_lossy(text).lines() {
            if !line.trim().is_empty() {
                self.push(stream, version, line);
            }
        }
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Every line written from now on.
    pub fn follow(&self) -> broadcast::Receiver<LogLine> {
        self.follow.subscribe()
    }

    /// The last `n` lines and every line written after them, with none missed or repeated.
    pub fn tail_and_follow(&self, n: usize) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let follow = self.follow.subscribe();
        let tail = lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect();
        (tail, follow)
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_and_cuts_long_ones() {
        let book = LogBook::new(3);
        for i in 0..5 {
            book.push("info", "1", &format!("line {i}"));
        }
        let tail = book.tail(10);
        assert_eq!(
            tail.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
            ["line 2", "line 3", "line 4"]
        );
        book.push("info", "1", &"é".repeat(MAX_LINE_BYTES));
        assert!(book.tail(1)[0].message.len() <= MAX_LINE_BYTES + '…'.len_utf8());
    }

    #[tokio::test]
    async fn followers_see_new_lines() {
        let book = LogBook::new(3);
        let mut follow = book.follow();
        book.push_output("stderr", "1", b"first\n\nsecond\n");
        assert_eq!(follow.recv().await.expect("line").message, "first");
        assert_eq!(follow.recv().await.expect("line").message, "second");
    }
}
