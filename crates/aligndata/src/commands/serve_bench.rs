//! `aligndata serve bench`: a bounded load test of the feedback service, kill -9 included.
//!
//! This process orchestrates: it starts `aligndata serve` (this same binary) as a separate
//! process on loopback, starts `--clients` client processes (this binary again, as
//! `serve bench --worker FILE`), kills the server with SIGKILL part-way and restarts it on the
//! same database and port, then reads the database directly and compares it with what every
//! client was told. Why processes and not tasks: clients then have their own CPU time, sockets
//! and memory, as in production, and nothing the server's process holds can make a client
//! believe an event was stored.
//!
//! Each client runs `--concurrency` simulated agents; an agent asks the policy for an arm,
//! records the turn, then posts feedback on it (thumb, rating, comment or correction, pairwise),
//! every event with its own idempotency key. A request without an answer (server killed,
//! connection reset, 5xx, 429) is sent again with the same key and body until acknowledged, as a
//! real client would; the server answers a retry of a committed event with the stored row.
//! Each agent keeps one HTTP/1.1 keep-alive connection, spoken by a small hand-written client
//! (`worker::Conn`), so that the load generator, which shares the cores with the server, costs
//! as little as it can (it used reqwest until the SQLite store got fast enough for that to
//! matter).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use aligndata_server::{Location, Scopes, Store, StoreOptions};

use crate::cli::{BenchStore, ServeBenchArgs};
use crate::ui::{Outcome, Ui};

/// Arms the benchmark server offers (the policy's work grows with their number).
const ARMS: &str = "warm,direct,questions";
/// How long clients keep retrying unacknowledged events after the load ends.
const GIVE_UP_AFTER_S: f64 = 30.0;

pub fn run(args: ServeBenchArgs, ui: &Ui) -> Result<Outcome> {
    if let Some(config) = &args.worker {
        return worker::run(config);
    }
    if args.seconds.is_nan() || args.seconds <= 0.0 {
        bail!("--seconds must be positive, got {}", args.seconds);
    }
    if args.clients == 0 || args.concurrency == 0 {
        bail!("--clients and --concurrency must be at least 1");
    }
    if !(0.0..1.0).contains(&args.kill_at) {
        bail!(
            "--kill-at is a fraction of the run in [0, 1), got {}",
            args.kill_at
        );
    }
    let scratch;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            scratch = ScratchDir::new("aligndata-bench")?;
            scratch.path.clone()
        }
    };
    let exe = std::env::current_exe().context("finding the aligndata binary")?;
    let mut results = Vec::new();
    if matches!(args.store, BenchStore::Sqlite | BenchStore::Both) {
        let db = format!(
            "sqlite:{}",
            dir.join(format!("feedback-{}.db", unix_ms())).display()
        );
        results.push(bench_one(&args, ui, &exe, &dir, "sqlite", &db)?);
    }
    if matches!(args.store, BenchStore::Postgres | BenchStore::Both) {
        let (private, url) = match &args.pg_url {
            Some(url) => (None, url.clone()),
            None => {
                let pg = PrivatePostgres::start(ui)?;
                let url = pg.url.clone();
                (Some(pg), url)
            }
        };
        let result = bench_one(&args, ui, &exe, &dir, "postgres", &url);
        drop(private);
        results.push(result?);
    }

    let mut human = vec![format!(
        "{} client processes × {} agents, {} feedback events per turn, {:.0} s per store, kill -9 at {:.0}%",
        args.clients,
        args.concurrency,
        args.feedback_per_turn,
        args.seconds,
        args.kill_at * 100.0
    )];
    for r in &results {
        human.extend(r.human());
    }
    let failed: Vec<&StoreResult> = results.iter().filter(|r| !r.passed()).collect();
    if !failed.is_empty() {
        for line in &human {
            ui.note(line);
        }
        bail!(
            "acknowledged events were lost or duplicated on {} (see above)",
            failed
                .iter()
                .map(|r| r.store.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Outcome::new(
        human,
        json!({
            "clients": args.clients,
            "concurrency": args.concurrency,
            "feedback_per_turn": args.feedback_per_turn,
            "seconds": args.seconds,
            "results": results,
        }),
    ))
}

/// What one store's run measured and found.
#[derive(Debug, Serialize)]
struct StoreResult {
    store: String,
    seconds: f64,
    /// `/proc/loadavg`'s 1-minute figure at the end of the run.
    load_average: Option<f64>,
    feedback_acked: u64,
    turns_acked: u64,
    /// Acknowledged feedback events over the whole run, downtime included.
    feedback_per_s: f64,
    /// Median of the per-second acknowledged feedback events, outside the restart.
    feedback_per_s_steady: f64,
    latency_ms: Latency,
    turn_latency_ms: Latency,
    /// Kill -9 to listening again (0 when no kill).
    restart_ms: f64,
    kills: u32,
    /// Requests sent again after no acknowledgement.
    retries: u64,
    /// Acknowledgements that were replays (the event had been committed before its reply was lost).
    replayed: u64,
    /// Acknowledged events missing from the store (or stored under another id).
    lost: u64,
    /// Events stored more than once, and stored rows no client sent.
    duplicated: u64,
    phantom: u64,
    /// Events never acknowledged before the clients gave up (not an error by themselves).
    unacked: u64,
    /// Unexpected 4xx answers (the load's requests are valid; any is a bug).
    rejected: u64,
    rejected_examples: Vec<String>,
}

impl StoreResult {
    fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.phantom == 0 && self.rejected == 0
    }

    fn human(&self) -> Vec<String> {
        vec![
            format!(
                "{}: {:.0} feedback events/s ({:.0}/s steady), {} events and {} turns acknowledged in {:.1} s; load average {}",
                self.store,
                self.feedback_per_s,
                self.feedback_per_s_steady,
                self.feedback_acked,
                self.turns_acked,
                self.seconds,
                self.load_average
                    .map(|l| format!("{l:.2}"))
                    .unwrap_or_else(|| "unknown".into())
            ),
            format!(
                "  feedback latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms (turns: p50 {:.2}, p99 {:.2})",
                self.latency_ms.p50,
                self.latency_ms.p99,
                self.latency_ms.p999,
                self.latency_ms.max,
                self.turn_latency_ms.p50,
                self.turn_latency_ms.p99
            ),
            format!(
                "  kill -9 ×{}: back in {:.0} ms; {} requests retried, {} answered as replays of committed events",
                self.kills, self.restart_ms, self.retries, self.replayed
            ),
            format!(
                "  verified against the store: {} lost, {} duplicated, {} never sent, {} rejected, {} never acknowledged{}",
                self.lost,
                self.duplicated,
                self.phantom,
                self.rejected,
                self.unacked,
                if self.passed() {
                    " — pass"
                } else {
                    " — FAIL"
                }
            ),
        ]
    }
}

#[derive(Debug, Default, Serialize)]
struct Latency {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Latency {
    fn of(mut micros: Vec<u32>) -> Latency {
        if micros.is_empty() {
            return Latency::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            micros[rank - 1] as f64 / 1000.0
        };
        Latency {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

fn bench_one(
    args: &ServeBenchArgs,
    ui: &Ui,
    exe: &Path,
    dir: &Path,
    store_name: &str,
    db: &str,
) -> Result<StoreResult> {
    let location: Location = db.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (key, before) = runtime.block_on(async {
        let store = Store::open(&location, &StoreOptions::default())
            .await
            .with_context(|| format!("opening the {store_name} database"))?;
        let (_, key) = store
            .create_key(
                &Scopes::parse("ingest,read").map_err(|e| anyhow!(e))?,
                "serve bench",
            )
            .await?;
        let counts = store.counts().await?;
        store.close().await;
        anyhow::Ok((key, counts))
    })?;

    let mut server = Server::start(exe, db, "127.0.0.1:0")?;
    let addr = server.addr.clone();
    let run_prefix = format!("bench{:x}{:x}-", std::process::id(), unix_ms());
    // A common start a moment ahead, so that every client's timeline lines up.
    let start_ms = unix_ms() + 500;
    let mut workers = Vec::new();
    for c in 0..args.clients {
        let config = worker::Config {
            addr: addr.clone(),
            key: key.clone(),
            prefix: format!("{run_prefix}c{c}-"),
            concurrency: args.concurrency,
            feedback_per_turn: args.feedback_per_turn,
            start_unix_ms: start_ms,
            seconds: args.seconds,
            give_up_after_s: GIVE_UP_AFTER_S,
            out: dir.join(format!("{store_name}-client{c}.json")),
        };
        let config_path = dir.join(format!("{store_name}-client{c}.config.json"));
        std::fs::write(&config_path, serde_json::to_vec(&config)?)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log = std::fs::File::create(dir.join(format!("{store_name}-client{c}.log")))?;
        let child = Command::new(exe)
            .args(["serve", "bench", "--worker"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting a client process")?;
        workers.push((child, config));
    }

    let bar = ui.bar(
        Some(args.seconds.ceil() as u64),
        &format!("{store_name}: load"),
    );
    let kill_at_ms =
        (args.kill_at > 0.0).then(|| start_ms + (args.seconds * args.kill_at * 1000.0) as i64);
    let end_ms = start_ms + (args.seconds * 1000.0) as i64;
    let (mut kills, mut restart_ms, mut restart_window) = (0u32, 0.0, None);
    loop {
        let now = unix_ms();
        bar.set_position(((now - start_ms).max(0) / 1000) as u64);
        if let Some(at) = kill_at_ms
            && kills == 0
            && now >= at
        {
            bar.set_message("kill -9 and restart");
            let killed_ms = unix_ms();
            let down = Instant::now();
            server.kill_9();
            server = Server::start(exe, db, &addr)
                .context("restarting the server after kill -9 on the same database and port")?;
            restart_ms = down.elapsed().as_secs_f64() * 1000.0;
            restart_window = Some((killed_ms, unix_ms()));
            kills += 1;
            bar.set_message("");
        }
        if now >= end_ms {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bar.finish_and_clear();
    ui.note(&format!(
        "{store_name}: load done; waiting for clients to finish retrying, then checking the store"
    ));
    let mut reports = Vec::new();
    for (mut child, config) in workers {
        let status = child.wait().context("waiting for a client process")?;
        if !status.success() {
            bail!(
                "a client process failed ({status}); its log is beside {}",
                config.out.display()
            );
        }
        let text = std::fs::read(&config.out)
            .with_context(|| format!("reading the client's report {}", config.out.display()))?;
        let report: worker::Report = serde_json::from_slice(&text)
            .with_context(|| format!("parsing {}", config.out.display()))?;
        reports.push(report);
    }
    drop(server);
    let load_average = load_average();

    let (turn_rows, feedback_rows, after) = runtime.block_on(async {
        let store = Store::open(&location, &StoreOptions::default()).await?;
        let (turns, feedback) = store.rows_by_key_prefix(&run_prefix).await?;
        let counts = store.counts().await?;
        store.close().await;
        anyhow::Ok((turns, feedback, counts))
    })?;

    // What clients were told against what is stored.
    let mut stored: HashMap<&str, Vec<(i64, Option<i64>)>> = HashMap::new();
    for row in turn_rows.iter().chain(&feedback_rows) {
        stored
            .entry(&row.idempotency_key)
            .or_default()
            .push((row.id, row.turn_id));
    }
    let mut sent: HashSet<&str> = HashSet::new();
    let (mut lost, mut turns_acked, mut feedback_acked) = (0u64, 0u64, 0u64);
    for report in &reports {
        for (key, id) in &report.turns {
            sent.insert(key);
            turns_acked += 1;
            match stored.get(key.as_str()).map(Vec::as_slice) {
                Some([(stored_id, _), ..]) if stored_id == id => {}
                _ => lost += 1,
            }
        }
        for (key, id, turn_id) in &report.feedback {
            sent.insert(key);
            feedback_acked += 1;
            match stored.get(key.as_str()).map(Vec::as_slice) {
                Some([(stored_id, stored_turn), ..])
                    if stored_id == id && *stored_turn == Some(*turn_id) => {}
                _ => lost += 1,
            }
        }
        sent.extend(report.unacked.iter().map(String::as_str));
    }
    let twice: u64 = stored.values().map(|rows| rows.len() as u64 - 1).sum();
    let phantom = stored.keys().filter(|k| !sent.contains(*k)).count() as u64;
    // Rows this run added without any of its keys: a write stored twice under no key.
    let new_rows = (after.turns - before.turns) + (after.feedback - before.feedback);
    let unkeyed = (new_rows - (turn_rows.len() + feedback_rows.len()) as i64).max(0) as u64;

    let mut per_second: Vec<u64> = Vec::new();
    for report in &reports {
        if per_second.len() < report.acks_per_second.len() {
            per_second.resize(report.acks_per_second.len(), 0);
        }
        for (s, n) in report.acks_per_second.iter().enumerate() {
            per_second[s] += u64::from(*n);
        }
    }
    // Steady rate: whole seconds of the load, without the first one and the restart.
    let run_seconds = args.seconds.floor() as usize;
    let mut steady: Vec<u64> = (1..run_seconds.min(per_second.len()))
        .filter(|&s| match restart_window {
            Some((down, up)) => {
                let (from, to) = (start_ms + s as i64 * 1000, start_ms + (s as i64 + 1) * 1000);
                to <= down || from >= up + 1000
            }
            None => true,
        })
        .map(|s| per_second[s])
        .collect();
    steady.sort_unstable();
    let feedback_per_s_steady = steady.get(steady.len() / 2).copied().unwrap_or(0) as f64;
    let load_seconds = ((end_ms - start_ms) as f64 / 1000.0).max(1e-3);
    let acked_in_load: u64 = per_second.iter().take(args.seconds.ceil() as usize).sum();

    let mut rejected_examples = Vec::new();
    for r in &reports {
        rejected_examples.extend(r.rejected_examples.iter().cloned());
    }
    rejected_examples.truncate(5);
    Ok(StoreResult {
        store: store_name.to_string(),
        seconds: args.seconds,
        load_average,
        feedback_acked,
        turns_acked,
        feedback_per_s: acked_in_load as f64 / load_seconds,
        feedback_per_s_steady,
        latency_ms: Latency::of(
            reports
                .iter()
                .flat_map(|r| r.feedback_latency_us.iter().copied())
                .collect(),
        ),
        turn_latency_ms: Latency::of(
            reports
                .iter()
                .flat_map(|r| r.turn_latency_us.iter().copied())
                .collect(),
        ),
        restart_ms,
        kills,
        retries: reports.iter().map(|r| r.retries).sum(),
        replayed: reports.iter().map(|r| r.replayed).sum(),
        lost,
        duplicated: twice + unkeyed,
        phantom,
        unacked: reports.iter().map(|r| r.unacked.len() as u64).sum(),
        rejected: reports.iter().map(|r| r.rejected).sum(),
        rejected_examples,
    })
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A running `aligndata serve`; SIGKILLed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts the server and waits until it listens. Restarting on a port the killed server
    /// held is retried for a while (the kernel may still be tearing its sockets down).
    fn start(exe: &Path, db: &str, listen: &str) -> Result<Server> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match Server::try_start(exe, db, listen)? {
                Ok(server) => return Ok(server),
                Err(said) if said.contains("cannot listen") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(said) => bail!("the server did not start; it said:\n{said}"),
            }
        }
    }

    fn try_start(exe: &Path, db: &str, listen: &str) -> Result<Result<Server, String>> {
        let mut child = Command::new(exe)
            .args(["serve", "--db", db, "--listen", listen, "--arms", ARMS])
            // Far above the load, so the limiter's bookkeeping is on the path but never refuses.
            .args(["--rate-limit", "1000000"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting aligndata serve")?;
        let stderr = child.stderr.take().context("the server's stderr")?;
        let (tx, rx) = mpsc::channel();
        // Keeps reading for the server's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let said = match line.split("listening on http://").nth(1) {
                    Some(rest) => Ok(rest.split_whitespace().next().unwrap_or("").to_string()),
                    None => Err(line),
                };
                let _ = tx.send(said);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ok(addr)) => {
                    // Later lines (errors under load) still reach the user.
                    std::thread::spawn(move || {
                        for line in rx.into_iter().flat_map(Result::err) {
                            eprintln!("server: {line}");
                        }
                    });
                    return Ok(Ok(Server { child, addr }));
                }
                Ok(Err(line)) => said.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(Err(said.join("\n")));
                }
            }
        }
    }

    fn kill_9(&mut self) {
        // std's kill is SIGKILL on Unix: no shutdown handler runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A directory removed when dropped.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn new(prefix: &str) -> Result<ScratchDir> {
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{:x}", std::process::id(), unix_ms()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A throwaway PostgreSQL cluster on loopback, as scripts/test.sh starts one: the Debian
/// package's binaries, trust auth for user `aligndata`, run as `postgres` when we are root
/// (PostgreSQL refuses root). Stopped and deleted when dropped.
struct PrivatePostgres {
    dir: ScratchDir,
    pg_ctl: PathBuf,
    run_as: Vec<String>,
    url: String,
}

impl PrivatePostgres {
    fn start(ui: &Ui) -> Result<PrivatePostgres> {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .max()
            .map(|(_, bin)| bin)
            .ok_or_else(|| {
                anyhow!(
                    "no PostgreSQL binaries under /usr/lib/postgresql/*/bin\n\
                     hint: install the `postgresql` Debian package, give --pg-url, or run --store sqlite"
                )
            })?;
        let dir = ScratchDir::new("aligndata-bench-pg")?;
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let run_as: Vec<String> = if root {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(&dir.path)
                .status()?;
            if !status.success() {
                bail!("cannot hand {} to the postgres user", dir.path.display());
            }
            ["runuser", "-u", "postgres", "--"]
                .map(String::from)
                .to_vec()
        } else {
            Vec::new()
        };
        let port = (54330..54400)
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .ok_or_else(|| anyhow!("no free port in 54330..54400 for PostgreSQL"))?;
        let command = |program: &str| {
            let mut cmd = match run_as.split_first() {
                Some((first, rest)) => {
                    let mut cmd = Command::new(first);
                    cmd.args(rest).arg(bindir.join(program));
                    cmd
                }
                None => Command::new(bindir.join(program)),
            };
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            cmd
        };
        let check = |what: &str, out: std::io::Result<std::process::Output>| -> Result<()> {
            let out = out.with_context(|| format!("running {what}"))?;
            if !out.status.success() {
                bail!(
                    "{what} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(())
        };
        let data = dir.path.join("data");
        check(
            "initdb",
            command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "aligndata", "--auth=trust", "-E", "UTF8"])
                .output(),
        )?;
        let pg = PrivatePostgres {
            pg_ctl: bindir.join("pg_ctl"),
            run_as: run_as.clone(),
            url: format!("postgres://aligndata@127.0.0.1:{port}/bench"),
            dir,
        };
        check(
            "pg_ctl start",
            command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.path.join("server.log"))
                .arg("-w")
                .arg("-o")
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1",
                    pg.dir.path.display()
                ))
                .arg("start")
                .output(),
        )?;
        check(
            "createdb",
            command("createdb")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "aligndata",
                    "bench",
                ])
                .output(),
        )?;
        ui.note(&format!(
            "postgres: a private server on 127.0.0.1:{port} (data in {}, removed afterwards)",
            pg.dir.path.display()
        ));
        Ok(pg)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path.join("data");
        let mut cmd = match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(&self.pg_ctl);
                cmd
            }
            None => Command::new(&self.pg_ctl),
        };
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One client process.
mod worker {
    use super::*;

    /// What the orchestrator tells a client process (a JSON file).
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Config {
        pub addr: String,
        pub key: String,
        /// Every idempotency key this client sends starts with it.
        pub prefix: String,
        pub concurrency: usize,
        pub feedback_per_turn: usize,
        pub start_unix_ms: i64,
        pub seconds: f64,
        pub give_up_after_s: f64,
        pub out: PathBuf,
    }

    /// What a client process saw (a JSON file the orchestrator reads).
    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Report {
        /// Acknowledged turns: idempotency key, the id the server answered.
        pub turns: Vec<(String, i64)>,
        /// Acknowledged feedback: idempotency key, id, the turn it is about.
        pub feedback: Vec<(String, i64, i64)>,
        /// Events sent but never acknowledged before giving up.
        pub unacked: Vec<String>,
        /// Latency of each acknowledged request, in microseconds.
        pub feedback_latency_us: Vec<u32>,
        pub turn_latency_us: Vec<u32>,
        /// Feedback acknowledgements per second since the common start.
        pub acks_per_second: Vec<u32>,
        pub retries: u64,
        pub replayed: u64,
        pub rejected: u64,
        pub rejected_examples: Vec<String>,
    }

    struct Shared {
        config: Config,
        start: Instant,
        end: Instant,
        give_up: Instant,
        report: Mutex<Report>,
    }

    pub fn run(config_path: &Path) -> Result<Outcome> {
        let text = std::fs::read(config_path)
            .with_context(|| format!("reading {}", config_path.display()))?;
        let config: Config = serde_json::from_slice(&text)
            .with_context(|| format!("parsing {}", config_path.display()))?;
        // One thread: a client process is a small agent process, not a second server.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let out = config.out.clone();
        let report = runtime.block_on(async move {
            let wait_ms = (config.start_unix_ms - unix_ms()).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            let start = Instant::now();
            let end = start + Duration::from_secs_f64(config.seconds);
            let give_up = end + Duration::from_secs_f64(config.give_up_after_s);
            let shared = Arc::new(Shared {
                config,
                start,
                end,
                give_up,
                report: Mutex::new(Report::default()),
            });
            let agents: Vec<_> = (0..shared.config.concurrency)
                .map(|a| tokio::spawn(agent(shared.clone(), a)))
                .collect();
            for agent in agents {
                agent.await.context("a simulated agent panicked")?;
            }
            let report =
                std::mem::take(&mut *shared.report.lock().unwrap_or_else(|p| p.into_inner()));
            anyhow::Ok(report)
        })?;
        let tmp = out.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&report)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &out).with_context(|| format!("writing {}", out.display()))?;
        Ok(Outcome::new(vec![], json!({})))
    }

    /// Messages a support agent might see; some carry personal data for the scrubber.
    const MESSAGES: &[&str] = &[
        "I've been feeling overwhelmed at work and I can't sleep before Mondays.",
        "My sister stopped talking to me after our argument. Should I reach out first?",
        "Can you remind me how to breathe slowly when I panic? My number is 415-555-0134 if that matters.",
        "I failed my driving test again and I feel like giving up on it.",
        "My manager emailed me at jordan.lee@example.com to say my review is next week and I'm anxious.",
        "How do I tell my partner I need more time alone without hurting them?",
        "I moved to a new city and I don't know anyone here yet.",
        "Everything feels pointless lately, even things I used to enjoy.",
    ];
    const RESPONSES: &[&str] = &[
        "That sounds exhausting. What part of the week feels heaviest for you?",
        "It makes sense to miss her. Would a short, low-pressure message feel possible?",
        "Let's try it together: breathe in for four counts, hold for four, and out for six.",
        "Failing twice hurts, and it says nothing about whether you can learn this.",
    ];
    const COMMENTS: &[&str] = &[
        "That actually helped, thank you.",
        "A bit generic, but kind.",
        "You understood what I meant.",
    ];
    const CORRECTIONS: &[&str] = &[
        "Ask me how I'm feeling before giving advice.",
        "Shorter, please, and without the list.",
    ];

    async fn agent(shared: Arc<Shared>, agent_no: usize) {
        let prefix = format!("{}a{agent_no}-", shared.config.prefix);
        let mut conn = Conn::new(&shared.config.addr, &shared.config.key);
        let mut turn_no = 0usize;
        while Instant::now() < shared.end {
            let pick = agent_no * 7 + turn_no;
            let message = MESSAGES[pick % MESSAGES.len()];
            // The policy's choice is not an event: an unacknowledged one is asked again.
            let Some(choice) = send(
                &shared,
                &mut conn,
                "/v1/policy/choose",
                &json!({ "user_message": message }),
                None,
            )
            .await
            else {
                break;
            };
            let decision_id = choice.body["decision_id"].as_i64();
            let turn_key = format!("{prefix}t{turn_no}");
            let turn = json!({
                "conversation_id": format!("{prefix}conv{}", turn_no / 3),
                "user_message": message,
                "agent_response": RESPONSES[pick % RESPONSES.len()],
                "decision_id": decision_id,
                "candidates": [RESPONSES[pick % RESPONSES.len()], RESPONSES[(pick + 1) % RESPONSES.len()]],
                "client_ts": format!("{}", unix_ms()),
                "idempotency_key": turn_key,
            });
            let Some(ack) = send(&shared, &mut conn, "/v1/turns", &turn, Some(&turn_key)).await
            else {
                turn_no += 1;
                continue;
            };
            let Some(turn_id) = ack.body["id"].as_i64() else {
                record_rejected(&shared, format!("turn reply without id: {}", ack.body));
                break;
            };
            record_ack(&shared, &turn_key, turn_id, None, ack.micros, ack.replayed);
            for f in 0..shared.config.feedback_per_turn {
                let key = format!("{prefix}t{turn_no}-f{f}");
                let mut event = match f % 4 {
                    0 => {
                        json!({ "kind": "thumb", "thumb": if pick.is_multiple_of(3) { "down" } else { "up" } })
                    }
                    1 => json!({ "kind": "rating", "rating": 1 + (pick + f) % 5 }),
                    2 if pick.is_multiple_of(2) => {
                        json!({ "kind": "comment", "text": COMMENTS[pick % COMMENTS.len()] })
                    }
                    2 => {
                        json!({ "kind": "correction", "text": CORRECTIONS[pick % CORRECTIONS.len()] })
                    }
                    _ => {
                        json!({ "kind": "pairwise", "chosen": pick % 2, "rejected": 1 - pick % 2 })
                    }
                };
                event["turn_id"] = json!(turn_id);
                event["idempotency_key"] = json!(key);
                if let Some(ack) =
                    send(&shared, &mut conn, "/v1/feedback", &event, Some(&key)).await
                {
                    match ack.body["id"].as_i64() {
                        Some(id) => {
                            record_ack(&shared, &key, id, Some(turn_id), ack.micros, ack.replayed)
                        }
                        None => record_rejected(
                            &shared,
                            format!("feedback reply without id: {}", ack.body),
                        ),
                    }
                }
            }
            turn_no += 1;
        }
    }

    struct Ack {
        body: Value,
        micros: u32,
        replayed: bool,
    }

    /// Posts until acknowledged (2xx), retrying what got no answer with the same body; `None`
    /// after giving up (recorded as unacknowledged when `key` is given) or on a 4xx (recorded
    /// as rejected: the load sends only valid requests).
    async fn send(
        shared: &Shared,
        conn: &mut Conn,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Option<Ack> {
        let body = body.to_string();
        let mut backoff = Duration::from_millis(5);
        for attempt in 0u32.. {
            if attempt > 0 {
                if Instant::now() >= shared.give_up {
                    if let Some(key) = key {
                        lock(shared).unacked.push(key.to_string());
                    }
                    return None;
                }
                lock(shared).retries += 1;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
            let sent = Instant::now();
            let Ok(Reply {
                status,
                replayed,
                body: bytes,
            }) = conn
                .post(path, body.as_bytes(), Duration::from_secs(10))
                .await
            else {
                continue;
            };
            if (200..300).contains(&status) {
                let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                return Some(Ack {
                    body,
                    micros,
                    replayed,
                });
            }
            if status == 429 || status >= 500 {
                continue;
            }
            record_rejected(
                shared,
                format!("{path}: {status} {}", String::from_utf8_lossy(&bytes)),
            );
            return None;
        }
        None
    }

    /// One agent's keep-alive HTTP/1.1 connection to the server, written by hand.
    ///
    /// Why not reqwest: the client processes share the machine's cores with the server, so
    /// what a client spends per request is taken from the server being measured; reqwest and
    /// hyper's client (a dispatch task and channel per connection, header maps, pooled
    /// connection checkout) cost several times what the exchange itself does. Here a request
    /// is one `write` of a prebuilt head and body and a read of the reply, on the agent's own
    /// connection; the server sees the same HTTP/1.1 keep-alive traffic as before. Any failure
    /// (refused, reset by the kill -9, timeout, a reply it cannot read) drops the connection;
    /// the caller retries on a fresh one.
    struct Conn {
        addr: String,
        auth: String,
        stream: Option<tokio::net::TcpStream>,
        request: Vec<u8>,
        buf: Vec<u8>,
    }

    /// A reply: its status, whether it was an idempotent replay, its body.
    struct Reply {
        status: u16,
        replayed: bool,
        body: Vec<u8>,
    }

    /// Largest reply head and body accepted (the server's replies are a few hundred bytes).
    const MAX_REPLY: usize = 1 << 20;

    impl Conn {
        fn new(addr: &str, key: &str) -> Conn {
            Conn {
                addr: addr.to_string(),
                auth: format!("Bearer {key}"),
                stream: None,
                request: Vec::with_capacity(1024),
                buf: Vec::with_capacity(1024),
            }
        }

        /// POSTs a JSON body to `path` and reads the whole reply, within `timeout`.
        async fn post(
            &mut self,
            path: &str,
            body: &[u8],
            timeout: Duration,
        ) -> std::io::Result<Reply> {
            match tokio::time::timeout(timeout, self.exchange(path, body)).await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(err)) => {
                    self.stream = None;
                    Err(err)
                }
                Err(_) => {
                    self.stream = None;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "timed out",
                    ))
                }
            }
        }

        async fn exchange(&mut self, path: &str, body: &[u8]) -> std::io::Result<Reply> {
            use std::io::Write as _;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if self.stream.is_none() {
                let stream = tokio::net::TcpStream::connect(&self.addr).await?;
                stream.set_nodelay(true)?;
                self.stream = Some(stream);
            }
            let Some(stream) = self.stream.as_mut() else {
                unreachable!("connected above")
            };
            self.request.clear();
            write!(
                self.request,
                "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                self.addr,
                self.auth,
                body.len()
            )?;
            self.request.extend_from_slice(body);
            stream.write_all(&self.request).await?;
            self.buf.clear();
            let bad =
                |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
            loop {
                if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = std::str::from_utf8(&self.buf[..end])
                        .map_err(|_| bad("reply head is not UTF-8"))?;
                    let mut lines = head.split("\r\n");
                    let status: u16 = lines
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad("no status line"))?;
                    let (mut length, mut replayed, mut close) = (None, false, false);
                    for line in lines {
                        let Some((name, value)) = line.split_once(':') else {
                            continue;
                        };
                        let value = value.trim();
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.parse::<usize>().ok();
                        } else if name.eq_ignore_ascii_case("idempotent-replayed") {
                            replayed = true;
                        } else if name.eq_ignore_ascii_case("connection") {
                            close = value.eq_ignore_ascii_case("close");
                        } else if name.eq_ignore_ascii_case("transfer-encoding") {
                            return Err(bad("chunked replies are not expected from the server"));
                        }
                    }
                    let length = length.ok_or_else(|| bad("reply without content-length"))?;
                    let start = end + 4;
                    if length > MAX_REPLY {
                        return Err(bad("reply too large"));
                    }
                    while self.buf.len() < start + length {
                        if stream.read_buf(&mut self.buf).await? == 0 {
                            return Err(bad("connection closed mid-reply"));
                        }
                    }
                    let body = self.buf[start..start + length].to_vec();
                    if close {
                        self.stream = None;
                    }
                    return Ok(Reply {
                        status,
                        replayed,
                        body,
                    });
                }
                if self.buf.len() > MAX_REPLY {
                    return Err(bad("reply head too large"));
                }
                if stream.read_buf(&mut self.buf).await? == 0 {
                    return Err(bad("connection closed before a reply"));
                }
            }
        }
    }

    fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Report> {
        shared.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_rejected(shared: &Shared, what: String) {
        let mut report = lock(shared);
        report.rejected += 1;
        if report.rejected_examples.len() < 5 {
            report.rejected_examples.push(what);
        }
    }

    fn record_ack(
        shared: &Shared,
        key: &str,
        id: i64,
        turn_id: Option<i64>,
        micros: u32,
        replayed: bool,
    ) {
        let second = shared.start.elapsed().as_secs() as usize;
        let mut report = lock(shared);
        report.replayed += u64::from(replayed);
        match turn_id {
            None => {
                report.turns.push((key.to_string(), id));
                report.turn_latency_us.push(micros);
            }
            Some(turn_id) => {
                report.feedback.push((key.to_string(), id, turn_id));
                report.feedback_latency_us.push(micros);
                if report.acks_per_second.len() <= second {
                    report.acks_per_second.resize(second + 1, 0);
                }
                report.acks_per_second[second] += 1;
            }
        }
    }
}
