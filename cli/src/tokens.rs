//! `micro-node token issue | refresh | list | revoke`.

use std::time::Duration;

use anyhow::Result;
use micro_node::api::{IssueTokenBody, RefreshTokenBody};
use micro_node::tokens::{IssuedToken, TokenView};

use crate::args::TokenCommand;
use crate::client::Client;
use crate::query::{QUICK, print_json, print_text};
use crate::render;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs one token command against the node.
pub async fn run(client: &Client, command: TokenCommand, json: bool) -> Result<()> {
    let now = crate::query::now_ms();
    match command {
        TokenCommand::Issue {
            services,
            endpoints,
            ttl,
            spend_limit,
        } => {
            let body = IssueTokenBody {
                services,
                endpoints,
                ttl_ms: ttl.map(millis),
                spend_limit,
            };
            let issued: IssuedToken = client.post("/tokens", &body, QUICK).await?;
            if json {
                print_json(&issued)
            } else {
                print_text(render::issued_token(&issued, now))
            }
        }
        TokenCommand::Refresh { token, ttl } => {
            let body = RefreshTokenBody {
                token,
                ttl_ms: ttl.map(millis),
            };
            let issued: IssuedToken = client.post("/tokens/refresh", &body, QUICK).await?;
            if json {
                print_json(&issued)
            } else {
                let old = issued
                    .view
                    .refreshed_from
                    .map(|id| format!("token {id} is revoked; its replacement:\n"))
                    .unwrap_or_default();
                print_text(old + &render::issued_token(&issued, now))
            }
        }
        TokenCommand::List => {
            let views: Vec<TokenView> = client.get("/tokens", &[], QUICK).await?;
            if json {
                print_json(&views)
            } else {
                print_text(render::tokens(&views, now))
            }
        }
        TokenCommand::Revoke { id } => {
            let view: TokenView = client.delete_json(&format!("/tokens/{id}"), QUICK).await?;
            if json {
                print_json(&view)
            } else {
                print_text(format!(
                    "token {} revoked: this node's gateway refuses it now, nodes trusting this one once the revocation reaches them\n",
                    view.id
                ))
            }
        }
    }
}
