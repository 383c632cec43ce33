//! Views of API tokens: a newly issued one, and the table of the node's tokens.

use micro_node::tokens::{IssuedToken, TokenStatus, TokenView};

use super::Table;
use super::format::{ago, duration};

/// `in 23h59m` or `3m12s ago`.
fn expiry(expires_at_ms: u64, now_ms: u64) -> String {
    if expires_at_ms > now_ms {
        format!("in {}", duration(expires_at_ms - now_ms))
    } else {
        ago(expires_at_ms, now_ms)
    }
}

fn spend(view: &TokenView) -> String {
    match view.spend_limit {
        Some(limit) => format!("{}/{limit}", view.spent),
        None => format!("{}/unlimited", view.spent),
    }
}

fn scopes(view: &TokenView) -> String {
    view.scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn status(view: &TokenView) -> &'static str {
    match view.status {
        TokenStatus::Active => "active",
        TokenStatus::Expired => "expired",
        TokenStatus::Revoked => "revoked",
        TokenStatus::Refreshed => "refreshed",
    }
}

/// The token on its own first line (so `| head -1` gets it), then what it is and how to use it.
pub fn issued_token(issued: &IssuedToken, now_ms: u64) -> String {
    let v = &issued.view;
    let mut kv = Table::new(Vec::<&str>::new());
    kv.push(["id", &v.id.to_string()]);
    kv.push(["scopes", &scopes(v)]);
    kv.push(["expires", &expiry(v.expires_at_ms, now_ms)]);
    kv.push(["spent", &spend(v)]);
    format!(
        "{}\n{kv}use it: curl -H 'Authorization: Bearer <token>' -X POST http://<gateway>/<service>/<endpoint> -d '{{}}'\n",
        issued.token
    )
}

/// ID, STATUS, SCOPES, EXPIRES, SPENT (of the limit), REFRESHED FROM; newest first.
pub fn tokens(views: &[TokenView], now_ms: u64) -> String {
    if views.is_empty() {
        return "no tokens issued: micro-node token issue --services NAME\n".to_owned();
    }
    let mut t = Table::new([
        "ID",
        "STATUS",
        "SCOPES",
        "EXPIRES",
        "SPENT",
        "REFRESHED FROM",
    ]);
    for v in views {
        t.push([
            v.id.to_string(),
            status(v).to_owned(),
            scopes(v),
            expiry(v.expires_at_ms, now_ms),
            spend(v),
            v.refreshed_from
                .map(|id| id.to_string())
                .unwrap_or_default(),
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use micro_node::tokens::TokenId;

    fn view(status: TokenStatus) -> TokenView {
        TokenView {
            id: TokenId([0xab; 16]),
            issuer: libp2p::PeerId::random(),
            scopes: vec!["greeter/Say.*".parse().unwrap()],
            issued_at_ms: 1_000,
            expires_at_ms: 3_601_000,
            spend_limit: Some(500),
            spent: 20,
            refreshed_from: None,
            revoked_at_ms: None,
            replaced_by: None,
            status,
        }
    }

    #[test]
    fn the_table_shows_status_scopes_expiry_and_spend() {
        let out = tokens(&[view(TokenStatus::Active)], 1_000);
        assert!(out.starts_with("ID"), "{out}");
        for needle in ["abababab", "active", "greeter/Say.*", "in 1h00m", "20/500"] {
            assert!(out.contains(needle), "{needle} in {out}");
        }
        let out = tokens(&[view(TokenStatus::Expired)], 3_661_000);
        assert!(
            out.contains("expired") && out.contains("1m00s ago"),
            "{out}"
        );
        assert!(tokens(&[], 0).contains("token issue"));
    }

    #[test]
    fn an_issued_token_comes_first_on_its_own_line() {
        let issued = IssuedToken {
            token: "mt1_abc.def".to_owned(),
            view: view(TokenStatus::Active),
        };
        let out = issued_token(&issued, 1_000);
        assert_eq!(out.lines().next(), Some("mt1_abc.def"));
        assert!(out.contains("Authorization: Bearer"));
    }
}
