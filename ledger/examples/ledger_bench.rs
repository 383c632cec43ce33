//! Throughput of the ledger on one core: `cargo run --release -p micro-ledger --example
//! ledger_bench [transfers] [batch size]` (defaults 100000 and 1000).
//!
//! Builds a genesis of 1000 funded accounts and pre-signs round-robin transfers between them,
//! then applies them to a fresh on-disk sled database: one by one with `apply` (signature
//! verification included), with `apply_batch`, and — to separate the costs — verification
//! alone and `apply_verified` alone. Ends with a few `transfer` calls, which flush to disk.
//! Each line gives the wall-clock rate and the rate per CPU-second of the whole process.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use micro_ledger::{Account, Genesis, Ledger, SignedTransfer, Tokens, Transfer};

const ACCOUNTS: usize = 1000;

/// CPU time of this process, all threads (sled's background writers included), from
/// `/proc/self/stat`; `None` off Linux.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ).
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Measures `f`, which handles `n` transfers: wall-clock rate and rate per CPU-second (the
/// latter is what one core would sustain, whatever else the machine is running).
struct Meter {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Meter {
    fn start() -> Meter {
        Meter {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    fn report(self, what: &str, n: usize) {
        let wall = self.wall.elapsed();
        let cpu = cpu_time()
            .zip(self.cpu)
            .map(|(end, start)| end.saturating_sub(start));
        let per_cpu = match cpu {
            Some(cpu) if !cpu.is_zero() => format!("{:>7.0}/cpu-s", n as f64 / cpu.as_secs_f64()),
            _ => "      ?/cpu-s".to_owned(),
        };
        println!(
            "{what:<18} {:>7.0}/s  {per_cpu}  ({n} in {wall:.2?}, cpu {})",
            n as f64 / wall.as_secs_f64(),
            cpu.map_or("?".to_owned(), |c| format!("{c:.2?}")),
        );
    }
}

fn fresh(
    genesis: &Genesis,
) -> Result<(tempfile::TempDir, sled::Db, Ledger), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let ledger = Ledger::open(&db, genesis.clone())?;
    Ok((dir, db, ledger))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let batch: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);

    let keys: Vec<SigningKey> = (0..ACCOUNTS)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let accounts: Vec<Account> = keys.iter().map(Account::from).collect();
    let genesis = Genesis::local_dev(accounts.iter().map(|a| (*a, Tokens(1_000_000_000))));
    let network = genesis.network_id();

    let meter = Meter::start();
    let transfers: Vec<SignedTransfer> = (0..count)
        .map(|i| {
            let from = i % ACCOUNTS;
            Transfer {
                network,
                from: accounts[from],
                to: accounts[(from + 1 + i / ACCOUNTS) % ACCOUNTS],
                amount: Tokens(1 + (i % 7) as u64),
                fee: Tokens((i % 2) as u64),
                seq: (i / ACCOUNTS) as u64 + 1,
                memo: String::new(),
            }
            .sign(&keys[from])
        })
        .collect();
    meter.report("signing", count);

    let meter = Meter::start();
    let verified: Vec<_> = transfers
        .iter()
        .map(|t| t.clone().verify(&network))
        .collect::<Result<_, _>>()?;
    meter.report("verify only", count);

    {
        let (_dir, _db, mut ledger) = fresh(&genesis)?;
        let meter = Meter::start();
        for t in &transfers {
            ledger.apply(t.clone())?;
        }
        meter.report("apply one by one", count);
        assert_eq!(ledger.sum_of_balances()?, ledger.total_supply());
    }
    {
        let (_dir, _db, mut ledger) = fresh(&genesis)?;
        let meter = Meter::start();
        for t in verified {
            ledger.apply_verified(t)?;
        }
        meter.report("apply_verified", count);
    }
    let (_dir, _db, mut ledger) = fresh(&genesis)?;
    let meter = Meter::start();
    for chunk in transfers.chunks(batch) {
        for result in ledger.apply_batch(chunk.to_vec())? {
            result?;
        }
    }
    meter.report(&format!("apply_batch({batch})"), count);
    assert_eq!(ledger.sum_of_balances()?, ledger.total_supply());

    let local = 200;
    let meter = Meter::start();
    for i in 0..local {
        let (from, to) = (&keys[i % ACCOUNTS], accounts[(i + 7) % ACCOUNTS]);
        ledger.transfer(from, to, Tokens(1), Tokens(0), "")?;
    }
    meter.report("transfer + flush", local);
    Ok(())
}
