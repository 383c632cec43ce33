//! Small value formatters shared by every view: peer ids, times, round-trip times, and
//! making text from other nodes safe to print.

use libp2p::{Multiaddr, PeerId};
use micro_overlay::Role;

/// Characters kept at the start of a shortened peer id.
const SHORT_HEAD: usize = 7;
/// Characters kept at the end of a shortened peer id.
const SHORT_TAIL: usize = 4;

/// A peer id cut down for tables and trees: the first 7 and last 4 characters of its
/// base58 form around an ellipsis, e.g. `12D3Koo…Xy9Z`. Ids too short to gain from it are
/// returned whole.
pub fn short_peer(p: &PeerId) -> String {
    let full = p.to_base58();
    let chars: Vec<char> = full.chars().collect();
    if chars.len() <= SHORT_HEAD + SHORT_TAIL + 1 {
        return full;
    }
    let head: String = chars[..SHORT_HEAD].iter().collect();
    let tail: String = chars[chars.len() - SHORT_TAIL..].iter().collect();
    format!("{head}…{tail}")
}

/// A span of milliseconds in the largest two units that matter, truncated: `850ms`, `12s`,
/// `3m12s`, `2h05m`, `3d04h`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{mins}m{:02}s", secs % 60)
    } else if secs < 86_400 {
        format!("{hours}h{:02}m", mins % 60)
    } else {
        format!("{days}d{:02}h", hours % 24)
    }
}

/// How long before `now_unix_ms` the moment `then_unix_ms` was, e.g. `12s ago`. Less than a
/// second, or a moment in the future (clock skew), reads `just now`.
pub fn ago(then_unix_ms: u64, now_unix_ms: u64) -> String {
    let elapsed = now_unix_ms.saturating_sub(then_unix_ms);
    if elapsed < 1000 {
        "just now".to_owned()
    } else {
        format!("{} ago", duration(elapsed))
    }
}

/// A round-trip time in milliseconds with two decimals (`0.42 ms`), or `-` when unmeasured
/// or not a sensible number.
pub(super) fn rtt(ms: Option<f64>) -> String {
    match ms {
        Some(v) if v.is_finite() && v >= 0.0 => format!("{v:.2} ms"),
        _ => "-".to_owned(),
    }
}

/// A role, or `unknown` when nobody said.
pub(super) fn role(role: Option<Role>) -> String {
    role.map_or_else(|| "unknown".to_owned(), |r| r.to_string())
}

/// `yes` or `no`.
pub(super) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The first address, followed by `+N` when there are N more; `-` when there are none.
pub(super) fn addrs(addrs: &[Multiaddr]) -> String {
    match addrs {
        [] => "-".to_owned(),
        [only] => only.to_string(),
        [first, rest @ ..] => format!("{first} +{}", rest.len()),
    }
}

/// Whether printing `c` as-is could move the cursor, restyle the terminal or reorder the
/// text around it: control characters and the Unicode bidirectional controls.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every control or bidi character written as an escape (`\u{1b}`), so that
/// strings other nodes sent (addresses, agents, errors) cannot drive the terminal or break
/// a line in two.
pub(super) fn sanitize(text: &str) -> String {
    if !text.chars().any(is_unsafe) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_picks_two_units() {
        assert_eq!(duration(0), "0ms");
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(999), "999ms");
        assert_eq!(duration(1000), "1s");
        assert_eq!(duration(12_345), "12s");
        assert_eq!(duration(59_999), "59s");
        assert_eq!(duration(60_000), "1m00s");
        assert_eq!(duration(192_000), "3m12s");
        assert_eq!(duration(3_599_999), "59m59s");
        assert_eq!(duration(3_600_000), "1h00m");
        assert_eq!(duration((2 * 3600 + 5 * 60 + 59) * 1000), "2h05m");
        assert_eq!(duration(86_400_000), "1d00h");
        assert_eq!(duration((3 * 86_400 + 4 * 3600 + 59) * 1000), "3d04h");
        assert!(duration(u64::MAX).ends_with('h'));
    }

    #[test]
    fn ago_counts_back_from_now() {
        let now = 1_700_000_000_000;
        assert_eq!(ago(now - 12_000, now), "12s ago");
        assert_eq!(ago(now - 192_500, now), "3m12s ago");
        assert_eq!(ago(now - 400, now), "just now");
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now + 5_000, now), "just now");
        assert_eq!(ago(0, 3 * 86_400_000), "3d00h ago");
    }

    #[test]
    fn short_peer_keeps_head_and_tail() {
        let p = PeerId::random();
        let full = p.to_base58();
        let short = short_peer(&p);
        let (head, tail) = short.split_once('…').expect("ellipsis");
        assert_eq!(head.chars().count(), 7);
        assert_eq!(tail.chars().count(), 4);
        assert!(full.starts_with(head));
        assert!(full.ends_with(tail));
        assert_eq!(short.chars().count(), 12);
    }

    #[test]
    fn rtt_has_two_decimals_or_dash() {
        assert_eq!(rtt(Some(0.4213)), "0.42 ms");
        assert_eq!(rtt(Some(120.0)), "120.00 ms");
        assert_eq!(rtt(None), "-");
        assert_eq!(rtt(Some(f64::NAN)), "-");
        assert_eq!(rtt(Some(-1.0)), "-");
    }

    #[test]
    fn addrs_show_first_and_count() {
        let a: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().expect("addr");
        let b: Multiaddr = "/ip4/10.0.0.2/udp/4001/quic-v1".parse().expect("addr");
        assert_eq!(addrs(&[]), "-");
        assert_eq!(addrs(std::slice::from_ref(&a)), "/ip4/10.0.0.1/tcp/4001");
        assert_eq!(
            addrs(&[a.clone(), b.clone(), b]),
            "/ip4/10.0.0.1/tcp/4001 +2"
        );
    }

    #[test]
    fn sanitize_escapes_terminal_controls() {
        assert_eq!(sanitize("plain text …"), "plain text …");
        assert_eq!(sanitize("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(sanitize("x\ny"), "x\\u{a}y");
        assert_eq!(sanitize("l\u{202E}r"), "l\\u{202e}r");
    }
}
