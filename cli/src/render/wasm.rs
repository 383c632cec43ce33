//! Views of the wasm services: `status` and `logs`.

use micro_node::services::LocalService;
use micro_wasm_runtime::{Deployed, LogLine, ServiceState, ServiceStatus};

use super::Table;
use super::format::sanitize;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Fuel as a short count: `1.2G`, `350M`, `12k`.
fn fuel(units: u64) -> String {
    let u = units as f64;
    match units {
        0..1_000 => units.to_string(),
        1_000..1_000_000 => format!("{:.0}k", u / 1e3),
        1_000_000..1_000_000_000 => format!("{:.0}M", u / 1e6),
        _ => format!("{:.1}G", u / 1e9),
    }
}

/// What a deploy did to the version it replaced, as a clause after the version: empty for a
/// first deploy, `, replacing 0.1.0` for a redeploy of the same version, else where the
/// previous version still answers.
pub fn replaced_note(deployed: &Deployed) -> String {
    match &deployed.replaced {
        None => String::new(),
        Some(old) if *old == deployed.version => format!(", replacing {old}"),
        Some(old) => format!(", {old} still answers {}@{old}", sanitize(&deployed.name)),
    }
}

/// NAME, VERSION, STATE, INSTANCES, CALLS, ERRORS, MEMORY (peak / limit), FUEL, STORE, and
/// from the service layer (`served`, by name) PRICE, PAID (calls) and EARNED (tokens). An
/// older version still running beside the current one is `older`: it answers only calls
/// that pin it.
pub fn wasm_status(services: &[ServiceStatus], served: &[LocalService]) -> String {
    if services.is_empty() {
        return "no wasm services on this node; deploy one with: micro-node deploy <file.wasm>\n"
            .to_owned();
    }
    let mut t = Table::new([
        "NAME",
        "VERSION",
        "STATE",
        "INSTANCES",
        "CALLS",
        "ERRORS",
        "MEMORY",
        "FUEL",
        "STORE",
        "PRICE",
        "PAID",
        "EARNED",
    ]);
    for s in services {
        let metered = served
            .iter()
            .find(|l| l.spec.name.as_str() == s.name && s.current);
        let column =
            |f: fn(&LocalService) -> u64| metered.map_or("-".to_owned(), |l| f(l).to_string());
        t.push([
            sanitize(&s.name),
            sanitize(&s.version),
            match (s.state, s.current) {
                (ServiceState::Paused, _) => "paused".to_owned(),
                (ServiceState::Running, true) => "running".to_owned(),
                (ServiceState::Running, false) => "older".to_owned(),
            },
            s.instances.to_string(),
            s.calls.to_string(),
            s.errors.to_string(),
            format!(
                "{} / {}",
                mib(s.memory_peak_bytes),
                mib(s.memory_limit_bytes)
            ),
            fuel(s.fuel_used),
            mib(s.store_bytes),
            column(|l| l.spec.price_per_call),
            column(|l| l.paid_calls),
            column(|l| l.earned),
        ]);
    }
    t.to_string()
}

/// `HH:MM:SS.mmm LEVEL [version] message`, in UTC.
pub fn log_line(line: &LogLine) -> String {
    let ms = line.at_ms % 1000;
    let secs = line.at_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{ms:03} {:<6} [{}] {}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        line.level,
        sanitize(&line.version),
        sanitize(&line.message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuel_and_log_lines_read_well() {
        assert_eq!(fuel(999), "999");
        assert_eq!(fuel(12_345), "12k");
        assert_eq!(fuel(2_500_000_000), "2.5G");
        let line = LogLine {
            at_ms: 3_723_004,
            level: "info".to_owned(),
            version: "0.1.0".to_owned(),
            message: "hello".to_owned(),
        };
        assert_eq!(log_line(&line), "01:02:03.004 info   [0.1.0] hello");
    }
}
