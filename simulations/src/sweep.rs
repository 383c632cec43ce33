//! One scenario at several sizes: a row per size, and an SVG of how each metric grows.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Report, Scenario};

/// Reads one metric from a report.
type Metric = fn(&Report) -> Option<f64>;

/// The metrics plotted against the number of nodes.
const SERIES: [(&str, Metric); 9] = [
    ("join p50 (ms)", |r| r.join_ms.p50),
    ("lookup p50 (ms)", |r| r.lookups.latency_ms.p50),
    ("lookup requests p50", |r| r.lookup_requests.p50),
    ("call p50 (ms)", |r| r.calls.latency_ms.p50),
    ("delivery p50 (ms)", |r| {
        r.topics.first().and_then(|t| t.delivery.latency_ms.p50)
    }),
    ("memory per node (MiB)", |r| Some(r.memory_per_node_mib)),
    ("connections per node p50", |r| r.connected_peers.p50),
    ("bytes sent per node (KB/s)", |r| {
        r.bytes_per_node_per_s.map(|b| b / 1000.0)
    }),
    ("messages received per node (/s)", |r| {
        r.messages_per_node_per_s
    }),
];

/// The reports of one sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sweep {
    /// The scenario.
    pub scenario: String,
    /// One report per size, in the order run.
    pub runs: Vec<Report>,
}

/// Runs `scenario` at each of `sizes`, each size in a process of its own (`exe run`, with
/// the scaled scenario written to a temporary file): in one process, a size would reuse the
/// memory earlier sizes freed, and its memory per node would mean nothing.
///
/// Every size is checked before the first starts. A size whose `[expect]` checks fail still
/// counts (its report says so); one that cannot run stops the sweep.
pub async fn sweep(scenario: &Scenario, sizes: &[usize], exe: &Path) -> Result<Sweep> {
    let mut scaled = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let s = scenario.scaled_to(n);
        if let Err((field, reason)) = s.validate() {
            anyhow::bail!("{} at {n} nodes: {field}: {reason}", scenario.name);
        }
        crate::budget::check(&s)?;
        scaled.push(s);
    }
    let dir = tempfile::tempdir().context("creating the sweep's scratch dir")?;
    let mut runs = Vec::with_capacity(scaled.len());
    for s in scaled {
        let n = s.network.nodes;
        let file = dir.path().join(format!("{}-{n}.toml", s.name));
        let text = toml::to_string(&s).context("writing the scaled scenario")?;
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        let json = dir.path().join(format!("{}-{n}.json", s.name));
        tracing::info!(nodes = n, "sweep step");
        let status = tokio::process::Command::new(exe)
            .arg("run")
            .arg(&file)
            .arg("--json")
            .arg(&json)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .with_context(|| format!("starting {}", exe.display()))?;
        // 0: every check passed; 1: a check failed, and the report stands.
        if !matches!(status.code(), Some(0 | 1)) {
            anyhow::bail!("the {n}-node run failed ({status}); its errors are above");
        }
        let bytes = std::fs::read(&json).with_context(|| format!("reading {}", json.display()))?;
        runs.push(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("reading the report {}", json.display()))?,
        );
    }
    Ok(Sweep {
        scenario: scenario.name.clone(),
        runs,
    })
}

impl Sweep {
    /// One line per size.
    pub fn table(&self) -> String {
        let mut out = format!("{:>6}", "nodes");
        for (name, _) in SERIES {
            out.push_str(&format!("  {name:>22}"));
        }
        out.push_str(&format!("  {:>10}  {:>10}\n", "lookup ok", "delivered"));
        for r in &self.runs {
            out.push_str(&format!("{:>6}", r.nodes));
            for (_, metric) in SERIES {
                let v = metric(r).map_or("-".into(), |v| format!("{v:.1}"));
                out.push_str(&format!("  {v:>22}"));
            }
            let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.2}%", v * 100.0));
            out.push_str(&format!(
                "  {:>10}  {:>10}\n",
                pct(r.lookups.success_ratio),
                pct(r.topics.first().and_then(|t| t.delivery.ratio))
            ));
        }
        out
    }

    /// Draws every metric against the number of nodes (log scale), one panel each.
    pub fn plot(&self, path: &Path) -> Result<()> {
        let root = SVGBackend::new(path, (1400, 1050)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!("{}: cost as the network grows", self.scenario),
            ("sans-serif", 22),
        )?;
        let panels = root.split_evenly((3, 3));
        let max_n = self.runs.iter().map(|r| r.nodes).max().unwrap_or(1).max(2) as f64;
        let min_n = self.runs.iter().map(|r| r.nodes).min().unwrap_or(1).max(1) as f64;
        for ((name, metric), panel) in SERIES.iter().zip(panels.iter()) {
            let points: Vec<(f64, f64)> = self
                .runs
                .iter()
                .filter_map(|r| metric(r).map(|v| (r.nodes as f64, v)))
                .collect();
            let top = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.15;
            let mut chart = ChartBuilder::on(panel)
                .caption(*name, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d((min_n * 0.9..max_n * 1.1).log_scale(), 0.0..top)
                .context("building a chart")?;
            chart
                .configure_mesh()
                .x_desc("nodes")
                .x_labels(6)
                .y_labels(6)
                .draw()?;
            chart.draw_series(LineSeries::new(points.clone(), &BLUE))?;
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, BLUE.filled())))?;
        }
        root.present().context("writing the plot")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcomes, Summary};

    fn report(nodes: usize, join: f64) -> Report {
        Report {
            nodes,
            join_ms: Summary::of(&[join]),
            lookups: Outcomes::of(10, &[1.0; 10]),
            memory_per_node_mib: 5.0,
            ..Report::default()
        }
    }

    #[test]
    fn a_sweep_tabulates_and_plots_every_size() {
        let sweep = Sweep {
            scenario: "lookup".into(),
            runs: vec![report(50, 400.0), report(100, 500.0), report(200, 650.0)],
        };
        let table = sweep.table();
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(
            table
                .lines()
                .nth(3)
                .unwrap()
                .trim_start()
                .starts_with("200")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.svg");
        sweep.plot(&path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for (name, _) in SERIES {
            assert!(svg.contains(name), "{name} plotted");
        }
    }
}
