//! `deploy`, `status`, `logs` and `kill`: the wasm services of a running node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use micro_node::api::{DeployBody, KillReply};
use micro_node::services::LocalService;
use micro_wasm_runtime::{Deployed, LogLine, ServiceStatus};

use crate::client::Client;
use crate::query::{QUICK, print_json, print_text};
use crate::render;

/// Budget of a deploy: compiling a large component takes a while.
const DEPLOY_BUDGET: Duration = Duration::from_secs(300);
/// Folders above the component searched for its `micro.toml`.
const MANIFEST_SEARCH_DEPTH: usize = 6;

/// The `micro.toml` of the component at `path`: in its folder or one above it, directly or
/// in a subfolder named after the component (so `examples/target/…/greeter.wasm` finds
/// `examples/greeter/micro.toml`).
fn find_manifest(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let names = [stem.clone(), stem.replace('_', "-")];
    for dir in path.ancestors().skip(1).take(MANIFEST_SEARCH_DEPTH) {
        let here = dir.join("micro.toml");
        if here.is_file() {
            return Some(here);
        }
        for name in &names {
            let nested = dir.join(name).join("micro.toml");
            if nested.is_file() {
                return Some(nested);
            }
        }
    }
    None
}

/// `micro-node deploy PATH`.
pub async fn deploy(
    client: &Client,
    path: &Path,
    manifest: Option<&Path>,
    name: Option<String>,
    version: Option<String>,
    json: bool,
) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let manifest_path = match manifest {
        Some(m) => Some(m.to_path_buf()),
        None => find_manifest(path),
    };
    let manifest = match &manifest_path {
        Some(m) => Some(
            std::fs::read_to_string(m).with_context(|| format!("cannot read {}", m.display()))?,
        ),
        None if name.is_none() => bail!(
            "no micro.toml found next to {} or above it: pass --manifest FILE or --name NAME",
            path.display()
        ),
        None => None,
    };
    if let Some(m) = &manifest_path {
        eprintln!("deploying {} with {}", path.display(), m.display());
    }
    let body = DeployBody {
        manifest,
        name,
        version,
        component: base64::engine::general_purpose::STANDARD.encode(&bytes),
    };
    let deployed: Deployed = client.post("/deployments", &body, DEPLOY_BUDGET).await?;
    if json {
        return print_json(&deployed);
    }
    let replaced = render::replaced_note(&deployed);
    print_text(format!(
        "deployed {} {} (sha256 {}, ready in {} ms{replaced})\ncall it with: micro-node call {} <Endpoint> '{{}}'\n",
        deployed.name,
        deployed.version,
        &deployed.digest[..12],
        deployed.load_ms,
        deployed.name,
    ))
}

/// `micro-node status`.
pub async fn status(client: &Client, json: bool) -> Result<()> {
    let services: Vec<ServiceStatus> = client.get("/deployments", &[], QUICK).await?;
    if json {
        print_json(&services)
    } else {
        let served: Vec<LocalService> = client.get("/services", &[], QUICK).await?;
        print_text(render::wasm_status(&services, &served))
    }
}

/// `micro-node logs NAME [-f]`.
pub async fn logs(
    client: &Client,
    name: &str,
    follow: bool,
    lines: usize,
    json: bool,
) -> Result<()> {
    let query = [("lines", lines.to_string()), ("follow", follow.to_string())];
    client
        .stream_lines(
            &format!("/deployments/{name}/logs"),
            &query,
            || {},
            |line| {
                if json {
                    println!("{line}");
                } else {
                    let line: LogLine = serde_json::from_str(line)?;
                    println!("{}", render::log_line(&line));
                }
                std::io::Write::flush(&mut std::io::stdout())?;
                Ok(())
            },
        )
        .await
}

/// `micro-node kill NAME[@VERSION]`.
pub async fn kill(client: &Client, name: &str, json: bool) -> Result<()> {
    let reply: KillReply = client
        .delete_json(&format!("/deployments/{name}"), QUICK)
        .await?;
    if json {
        return print_json(&reply);
    }
    let service = name.split_once('@').map_or(name, |(service, _)| service);
    let versions: Vec<&str> = reply.stopped.iter().map(|s| s.version.as_str()).collect();
    match reply.running.first() {
        Some(current) => print_text(format!(
            "{service} {} stopped; {service} now answers with {}\n",
            versions.join(", "),
            current.version
        )),
        None => print_text(format!(
            "{service} stopped ({}) and withdrawn from the network\n",
            versions.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_manifest_of_a_workspace_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("greeter")).expect("mkdir");
        std::fs::write(root.join("greeter/micro.toml"), "name = \"greeter\"\n").expect("write");
        let wasm = root.join("target/wasm32-wasip2/release/greeter.wasm");
        assert_eq!(find_manifest(&wasm), Some(root.join("greeter/micro.toml")));
        let own = root.join("greeter/target/wasm32-wasip2/release/greeter.wasm");
        assert_eq!(find_manifest(&own), Some(root.join("greeter/micro.toml")));
        assert_eq!(find_manifest(&root.join("other/x.wasm")), None);
    }
}
