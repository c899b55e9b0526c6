//! `ricochet-loadtest`: load runs, suites, side-by-side comparisons, diffs
//! of two reports, the nginx comparison config, and the generator's own
//! ceiling. Exit status: 0, 1 on an error, `THRESHOLDS_FAILED` (99) when a
//! threshold failed, `REGRESSED` (98) for `--fail-on-regression`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ricochet_loadtest::behaviour::Behaviour;
use ricochet_loadtest::calibrate::{self, CalibrateOptions, DEFAULT_CEILING_FILE};
use ricochet_loadtest::compare::{ExecOptions, execute};
use ricochet_loadtest::diff::{Rounds, diff};
use ricochet_loadtest::keys::{DEFAULT_STATUS, DEFAULT_URL_PREFIX, GeneratedKeys};
use ricochet_loadtest::mix::Mix;
use ricochet_loadtest::networks::ClientNetworks;
use ricochet_loadtest::nginx::{NginxOptions, write_config};
use ricochet_loadtest::report::{Report, ceiling_line, progress_line, thousands};
use ricochet_loadtest::soak::{DriftTolerance, SoakSpec, row_line, soak};
use ricochet_loadtest::stats::Progress;
use ricochet_loadtest::suite::{KeysSource, Phase, SeedMethod, SeedSpec, Suite};
use ricochet_loadtest::target::TargetSpec;
use ricochet_loadtest::thresholds::Threshold;
use ricochet_loadtest::worker::{self, LISTENING, LocalWorkers};
use ricochet_loadtest::{LoadSpec, Method, Mode, Popularity, RunSpec, TrafficShape, Visitors};

/// Exit status when a threshold failed (as k6's).
const THRESHOLDS_FAILED: u8 = 99;
/// Exit status when a metric is worse than the baseline beyond the noise
/// and `--fail-on-regression` was given.
const REGRESSED: u8 = 98;

#[derive(Debug, Parser)]
#[command(
    name = "ricochet-loadtest",
    version,
    about = "HTTP/1.1 and HTTPS load generator for redirect servers: open-loop latency, Zipf traffic, suites, comparisons"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: boxing the larger arguments would spare nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// One run against one URL.
    Run(RunArgs),
    /// Run a suite file (config/loadtest/*.toml) against its targets.
    Suite(SuiteArgs),
    /// Run a suite against two or more targets in alternation; print medians and ratios.
    Compare(SuiteArgs),
    /// Write an nginx config (map + return) serving the same links.
    NginxConfig(NginxArgs),
    /// Measure the generator's own ceiling against a built-in fixed-response server.
    Calibrate(CalibrateArgs),
    /// Serve the fixed 301 the calibration uses (e.g. to try other generators on it).
    FixedServer(FixedServerArgs),
    /// Compare two report.json files per phase, target and metric, against
    /// the spread of their rounds.
    Diff(DiffArgs),
    /// Generate load for a coordinator (`run --workers`, a suite's `workers`).
    Worker(WorkerArgs),
    /// Hours at one rate: a row per interval (latency, server RSS and CPU)
    /// and a drift verdict at the end.
    Soak(SoakArgs),
    /// How much time this machine takes from each CPU (a thread per CPU
    /// reading the clock): the floor under any tail figure measured here.
    Stalls(StallsArgs),
}

#[derive(Debug, Args)]
struct StallsArgs {
    /// CPUs to probe, all at once (default: every CPU).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    #[arg(long, short, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Gaps between clock readings longer than this count as stalls.
    #[arg(long, default_value = "200us", value_parser = humantime::parse_duration)]
    threshold: Duration,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The earlier report.json (the baseline).
    base: PathBuf,
    /// The later report.json.
    new: PathBuf,
    /// Print the diff as JSON.
    #[arg(long)]
    json: bool,
    /// Exit with status 98 when a metric is worse beyond the noise.
    #[arg(long)]
    fail_on_regression: bool,
}

/// What a run must meet, and the baseline it is compared with.
#[derive(Debug, Args)]
struct GateArgs {
    /// A threshold for every phase and target, e.g. "p99 < 2 ms",
    /// "errors = 0", "throughput >= 100000" (repeatable); when one fails
    /// the command exits with status 99.
    #[arg(long = "threshold")]
    thresholds: Vec<String>,
    /// Compare the run with this report.json (per phase, target and
    /// metric, against the spread of the rounds).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Save the run's report.json here, as a baseline for later runs.
    #[arg(long)]
    save_baseline: Option<PathBuf>,
    /// With --baseline: exit with status 98 when a metric is worse beyond the noise.
    #[arg(long, requires = "baseline")]
    fail_on_regression: bool,
}

impl GateArgs {
    fn thresholds(&self) -> anyhow::Result<Vec<Threshold>> {
        self.thresholds
            .iter()
            .map(|text| {
                Threshold::parse(text, None, None, "--threshold".into())
                    .map_err(|m| anyhow::anyhow!("--threshold {text:?}: {m}"))
            })
            .collect()
    }
}

#[derive(Debug, Args)]
struct WorkerArgs {
    /// Address to listen on for coordinators (port 0: any free port; the
    /// address is printed on stdout as "listening on ADDR").
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: std::net::SocketAddr,
    /// Pin the generator threads to these CPUs, e.g. 2 or 2,3.
    #[arg(long, value_delimiter = ',')]
    cpu: Vec<usize>,
}

#[derive(Debug, Args)]
struct SoakArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Length of each row (percentiles, server RSS and CPU).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Memory drift: the last quarter's median RSS over the first's above
    /// 1 + this (and by more than --rss-floor-mb).
    #[arg(long, default_value_t = DriftTolerance::default().rss_growth)]
    rss_growth: f64,
    #[arg(long, default_value_t = DriftTolerance::default().rss_floor_mb)]
    rss_floor_mb: f64,
    /// Latency drift: the last quarter's median p99 over the first's above
    /// 1 + this (and by more than --p99-floor-ms).
    #[arg(long, default_value_t = DriftTolerance::default().p99_growth)]
    p99_growth: f64,
    #[arg(long, default_value_t = DriftTolerance::default().p99_floor_ms)]
    p99_floor_ms: f64,
}

#[derive(Debug, Args)]
struct FixedServerArgs {
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: std::net::SocketAddr,
    /// Pin the server thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
}

#[derive(Debug, Args)]
struct KeyArgs {
    /// Key file: engine import CSV (domain,code,url[,status]) or one code a line.
    #[arg(long, conflicts_with = "generate")]
    keys: Option<PathBuf>,
    /// Generate N keys (8-character codes, URL = prefix + code).
    #[arg(long)]
    generate: Option<u64>,
    /// URL prefix of generated keys.
    #[arg(long, default_value = DEFAULT_URL_PREFIX)]
    url_prefix: String,
    /// Status of generated keys.
    #[arg(long, default_value_t = DEFAULT_STATUS)]
    status: u16,
    /// Domains generated keys are spread over (repeatable; "" = default domain).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Seed of generated codes.
    #[arg(long, default_value_t = 0)]
    key_seed: u64,
}

impl KeyArgs {
    fn source(&self) -> anyhow::Result<KeysSource> {
        match (&self.keys, self.generate) {
            (Some(path), _) => Ok(KeysSource::File(path.clone())),
            (None, Some(count)) => Ok(KeysSource::Generate(GeneratedKeys {
                count,
                domains: if self.domains.is_empty() {
                    vec![String::new()]
                } else {
                    self.domains
                        .iter()
                        .map(|d| d.to_ascii_lowercase())
                        .collect()
                },
                url_prefix: self.url_prefix.clone(),
                status: self.status,
                seed: self.key_seed,
            })),
            (None, None) => bail!("give --keys FILE or --generate N"),
        }
    }
}

#[derive(Debug, Args)]
struct VisitorArgs {
    /// plain (a few user agents) or varied (weighted user agents and
    /// languages, client addresses in X-Forwarded-For).
    #[arg(long, default_value = "plain")]
    visitors: String,
    /// A network varied visitors come from, e.g. 81.2.69.0/24 (repeatable;
    /// default: 50,000 IPv4 /24s and 10,000 IPv6 /48s, generated).
    #[arg(long = "client-network")]
    client_networks: Vec<String>,
}

impl VisitorArgs {
    fn visitors(&self) -> anyhow::Result<Visitors> {
        match self.visitors.as_str() {
            "plain" if self.client_networks.is_empty() => Ok(Visitors::Plain),
            "plain" => bail!("--client-network is for --visitors varied"),
            "varied" if self.client_networks.is_empty() => {
                Ok(Visitors::varied(ClientNetworks::generated()))
            }
            "varied" => Ok(Visitors::varied(Arc::new(
                ClientNetworks::given(&self.client_networks)
                    .map_err(|m| anyhow::anyhow!("--client-network: {m}"))?,
            ))),
            other => bail!("--visitors {other:?}: expected plain or varied"),
        }
    }
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Print the report as JSON on stdout (the table goes nowhere).
    #[arg(long)]
    json: bool,
    /// Directory for report.json, report.txt, report.html, the SVG plots
    /// and the HdrHistogram interval logs (.hlog)
    /// (default: loadtest-results/NAME-TIME); "none" writes no files.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Saved generator ceiling to state in the report.
    #[arg(long, default_value = DEFAULT_CEILING_FILE)]
    ceiling: PathBuf,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Target base URL, e.g. http://127.0.0.1:8080 or https://127.0.0.1:8443
    /// (TLS 1.3/1.2, certificates not verified; the Host is the server name).
    url: String,
    #[command(flatten)]
    keys: KeyArgs,
    /// Open loop at this many requests per second (else closed loop).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, short, default_value_t = 64)]
    connections: usize,
    #[arg(long, short, default_value_t = 1)]
    threads: usize,
    /// Pipelining depth (requests in flight per connection).
    #[arg(long, default_value_t = 1)]
    depth: usize,
    #[arg(long, short, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Closed loop: stop after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Close each connection after this many requests and open a new one
    /// (1: a new TCP connection, and a TLS handshake over https, per
    /// request). Default: keep-alive.
    #[arg(long)]
    requests_per_connection: Option<u64>,
    /// https: reconnects resume TLS sessions (default: every handshake is a
    /// full one).
    #[arg(long)]
    tls_resumption: bool,
    /// Make connections from these local addresses, in turn, e.g. 127.0.0.2
    /// or 127.0.1.1,127.0.1.2 (on Linux all of 127.0.0.0/8 is loopback):
    /// other clients, as far as the server can tell.
    #[arg(long, value_delimiter = ',')]
    source: Vec<std::net::IpAddr>,
    /// uniform, zipf, hot or sequential.
    #[arg(long, default_value = "uniform")]
    popularity: String,
    /// Zipf exponent (implies --popularity zipf).
    #[arg(long)]
    zipf: Option<f64>,
    #[arg(long, default_value_t = 1)]
    hot_keys: u64,
    #[arg(long, default_value_t = 1.0)]
    hot_share: f64,
    /// Share of requests for unknown codes (answered 404).
    #[arg(long, default_value_t = 0.0)]
    unknown_share: f64,
    /// Share of requests with a crawler's user agent.
    #[arg(long, default_value_t = 0.0)]
    bot_share: f64,
    #[command(flatten)]
    visitors: VisitorArgs,
    /// JSON file of the rules and variants the links carry ({"rules": […],
    /// "variants": […]}): their destinations are correct answers too.
    #[arg(long)]
    behaviour: Option<PathBuf>,
    #[arg(long)]
    head: bool,
    /// A traffic mix file (e.g. config/loadtest/mixes/default.toml):
    /// weighted request shapes instead of --visitors, --head,
    /// --unknown-share and --bot-share.
    #[arg(long)]
    mix: Option<PathBuf>,
    /// A header every request carries, `Name: value` (repeatable), e.g.
    /// `If-None-Match: "…"` to measure revalidations of pages.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Host header for keys on the default domain (default: the URL's).
    #[arg(long)]
    host: Option<String>,
    /// Pin generator threads to these CPUs, e.g. 1 or 2,3.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// Server process to measure (CPU per request, memory), with its children.
    #[arg(long, visible_alias = "server-pid")]
    pid: Option<u32>,
    /// Run the phase on these workers (`ricochet-loadtest worker`), e.g.
    /// 10.0.0.5:7070,10.0.0.6:7070: the rate, connections and requests are
    /// split evenly and their histograms merged.
    #[arg(long, value_delimiter = ',', conflicts_with = "spawn_workers")]
    workers: Vec<String>,
    /// Start N local workers, each pinned to its own CPU (--worker-cpus,
    /// else the last N CPUs), and run the phase on them.
    #[arg(long)]
    spawn_workers: Option<usize>,
    /// CPUs of the --spawn-workers workers, one each.
    #[arg(long, value_delimiter = ',', requires = "spawn_workers")]
    worker_cpus: Vec<usize>,
    #[arg(long, default_value = "run")]
    name: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    gate: GateArgs,
}

#[derive(Debug, Args)]
struct SuiteArgs {
    /// Suite file, e.g. config/loadtest/zipf-1m.toml
    suite: PathBuf,
    /// Target NAME=URL (repeatable); replaces the suite's targets.
    #[arg(long = "target")]
    targets: Vec<String>,
    /// Control-plane API of command-line targets: [NAME=]URL.
    #[arg(long = "api")]
    apis: Vec<String>,
    /// Environment variable with the API key of command-line targets.
    #[arg(long, default_value = "RICOCHET_API_KEY")]
    api_key_env: String,
    /// Process to measure for a command-line target: [NAME=]PID.
    #[arg(long = "pid")]
    pids: Vec<String>,
    /// Override every phase's duration.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Override the number of rounds.
    #[arg(long)]
    repeat: Option<usize>,
    /// Override every phase's generator threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Pin generator threads to these CPUs.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// Scale every open-loop rate by this factor.
    #[arg(long)]
    rate_scale: Option<f64>,
    /// Use this key file instead of the suite's keys.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Directory for the targets' data and logs (default: OUT/work).
    #[arg(long)]
    work: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    gate: GateArgs,
}

#[derive(Debug, Args)]
struct NginxArgs {
    #[command(flatten)]
    keys: KeyArgs,
    /// Port nginx listens on (127.0.0.1).
    #[arg(long)]
    port: u16,
    /// Directory for nginx.conf and links.map.
    #[arg(long)]
    out: PathBuf,
    /// Pin the worker to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Domain of keys without one, when keys span several domains.
    #[arg(long, default_value = "localhost")]
    default_domain: String,
}

#[derive(Debug, Args)]
struct CalibrateArgs {
    #[arg(long, short, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[arg(long, short, default_value_t = 64)]
    connections: usize,
    /// Pipelining depth of the second measurement.
    #[arg(long, default_value_t = 16)]
    depth: usize,
    /// CPU of the generator thread (and wrk).
    #[arg(long)]
    generator_cpu: Option<usize>,
    /// CPU of the fixed-response server.
    #[arg(long)]
    server_cpu: Option<usize>,
    /// Also run wrk -t1 on the same CPU against the same server.
    #[arg(long)]
    wrk: bool,
    #[command(flatten)]
    visitors: VisitorArgs,
    /// Where to save the result for later reports.
    #[arg(long, default_value = DEFAULT_CEILING_FILE)]
    save: PathBuf,
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    // First Ctrl-C: stop the run and report; second: exit at once.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    match cli.command {
        Command::Run(args) => run_command(args, &stop, &command_line),
        Command::Suite(args) => suite_command(args, &stop, &command_line, false),
        Command::Compare(args) => suite_command(args, &stop, &command_line, true),
        Command::NginxConfig(args) => nginx_command(args).map(|()| ExitCode::SUCCESS),
        Command::Calibrate(args) => calibrate_command(args, &stop).map(|()| ExitCode::SUCCESS),
        Command::FixedServer(args) => fixed_server_command(args, &stop).map(|()| ExitCode::SUCCESS),
        Command::Diff(args) => diff_command(args),
        Command::Worker(args) => worker_command(args, &stop).map(|()| ExitCode::SUCCESS),
        Command::Soak(args) => soak_command(args, &stop, &command_line).map(|()| ExitCode::SUCCESS),
        Command::Stalls(args) => stalls_command(args, &stop).map(|()| ExitCode::SUCCESS),
    }
}

fn stalls_command(args: StallsArgs, stop: &AtomicBool) -> anyhow::Result<()> {
    use ricochet_loadtest::stalls;
    let cpus = match args.cpus.is_empty() {
        true => core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect(),
        false => args.cpus,
    };
    eprintln!(
        "spinning on CPU {} for {} s (leave the machine otherwise idle) ...",
        cpus.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        args.duration.as_secs_f64()
    );
    let measured = stalls::measure(&cpus, args.duration, args.threshold, stop)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&measured)?);
    } else {
        print!("{}", stalls::render(&measured, args.threshold));
    }
    Ok(())
}

/// Prints progress lines on stderr: in place on a terminal, every 5 s otherwise.
struct ProgressPrinter {
    quiet: bool,
    terminal: bool,
    last_label: String,
    last_line: Instant,
}

impl ProgressPrinter {
    fn new(quiet: bool) -> Self {
        Self {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            last_label: String::new(),
            last_line: Instant::now(),
        }
    }

    fn show(&mut self, label: &str, progress: &Progress) {
        if self.quiet {
            return;
        }
        let line = progress_line(label, progress);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            if label != self.last_label && !self.last_label.is_empty() {
                let _ = writeln!(err);
            }
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
        } else if label != self.last_label || self.last_line.elapsed() >= Duration::from_secs(5) {
            let _ = writeln!(err, "{line}");
            self.last_line = Instant::now();
        }
        self.last_label = label.to_owned();
    }

    fn finish(&mut self) {
        if self.terminal && !self.quiet && !self.last_label.is_empty() {
            eprintln!();
        }
    }
}

fn out_dir(output: &OutputArgs, name: &str) -> Option<PathBuf> {
    match &output.out {
        Some(path) if path.as_os_str() == "none" => None,
        Some(path) => Some(path.clone()),
        None => {
            let stamp = ricochet_loadtest::report::utc_now()
                .trim_end_matches(" UTC")
                .replace([':', '-'], "")
                .replace(' ', "-");
            Some(PathBuf::from("loadtest-results").join(format!("{name}-{stamp}")))
        }
    }
}

fn emit(report: &Report, output: &OutputArgs, dir: Option<&Path>) -> anyhow::Result<()> {
    if output.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if let Some(dir) = dir {
        let files = report.write_files(dir)?;
        eprintln!("wrote {} files to {}", files.len(), dir.display());
    }
    Ok(())
}

fn run_command(args: RunArgs, stop: &AtomicBool, command_line: &str) -> anyhow::Result<ExitCode> {
    let mut suite = run_suite(&args)?;
    suite.thresholds = args.gate.thresholds()?;
    suite.check_thresholds()?;
    // Kept until the run ends: dropping them stops the local workers.
    let local_workers = match args.spawn_workers {
        None | Some(0) => None,
        Some(count) => Some(LocalWorkers::spawn(
            &std::env::current_exe()?,
            count,
            &args.worker_cpus,
        )?),
    };
    if let Some(workers) = &local_workers {
        suite.adjust_loads(|load| load.workers = workers.addresses().to_vec());
    }
    let outcome = execute_and_emit(&suite, &args.output, &args.gate, None, stop, command_line);
    drop(local_workers);
    outcome
}

/// The one-phase suite `run` and `soak` describe.
fn run_suite(args: &RunArgs) -> anyhow::Result<Suite> {
    let popularity = match (args.zipf, args.popularity.as_str()) {
        (Some(_), _) | (None, "zipf") => Popularity::Zipf {
            exponent: args.zipf.unwrap_or(1.0),
        },
        (None, "uniform") => Popularity::Uniform,
        (None, "sequential") => Popularity::Sequential,
        (None, "hot") => Popularity::Hot {
            keys: args.hot_keys,
            share: args.hot_share,
        },
        (None, other) => bail!("--popularity {other:?}: expected uniform, zipf, hot or sequential"),
    };
    let load = LoadSpec {
        mode: match args.rate {
            Some(rate) => Mode::Open { rate },
            None => Mode::Closed,
        },
        connections: args.connections,
        threads: args.threads,
        depth: args.depth,
        duration: args.duration,
        timeout: args.timeout,
        grace: args.timeout,
        max_requests: args.requests,
        cpus: args.cpus.clone(),
        settle: Duration::ZERO,
        requests_per_connection: args.requests_per_connection,
        tls_resumption: args.tls_resumption,
        source: args.source.clone(),
        workers: args.workers.clone(),
    };
    load.validate()?;
    if args.tls_resumption && !args.url.starts_with("https://") {
        bail!("--tls-resumption is for https:// targets, not {}", args.url);
    }
    let suite = Suite {
        name: args.name.clone(),
        description: String::new(),
        path: None,
        repeat: 1,
        host: args.host.clone(),
        keys: args.keys.source()?,
        behaviour: args
            .behaviour
            .as_deref()
            .map(Behaviour::from_file)
            .transpose()?
            .map(Arc::new),
        traffic: TrafficShape {
            popularity,
            unknown_share: args.unknown_share,
            bot_share: args.bot_share,
            method: if args.head { Method::Head } else { Method::Get },
            visitors: args.visitors.visitors()?,
            extra_headers: checked_headers(&args.headers)?,
            mix: args
                .mix
                .as_deref()
                .map(Mix::from_file)
                .transpose()?
                .map(Arc::new),
            ..TrafficShape::default()
        },
        warmup: args.warmup,
        phases: vec![Phase {
            name: "main".into(),
            load,
        }],
        seed: SeedSpec {
            method: SeedMethod::None,
            batch: 1000,
            wait: Duration::from_secs(60),
        },
        edits: None,
        flood: None,
        restart: None,
        targets: vec![TargetSpec {
            name: "target".into(),
            url: args.url.clone(),
            pid: args.pid,
            start_timeout: Duration::from_secs(60),
            ..TargetSpec::default()
        }],
        thresholds: args.gate.thresholds()?,
    };
    suite.traffic.validate()?;
    Ok(suite)
}

fn execute_and_emit(
    suite: &Suite,
    output: &OutputArgs,
    gate: &GateArgs,
    work: Option<PathBuf>,
    stop: &AtomicBool,
    command_line: &str,
) -> anyhow::Result<ExitCode> {
    let dir = out_dir(output, &suite.name);
    let work_dir = work
        .or_else(|| dir.as_ref().map(|d| d.join("work")))
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("ricochet-loadtest-{}", std::process::id()))
        });
    let ceiling = calibrate::load(&output.ceiling);
    if !output.quiet {
        eprintln!("{}", ceiling_line(ceiling.as_ref()));
    }
    let mut printer = ProgressPrinter::new(output.quiet);
    let options = ExecOptions {
        work_dir,
        ceiling,
        command: command_line.to_owned(),
        stop,
    };
    let report = execute(suite, &options, &mut |label, p| printer.show(label, p));
    printer.finish();
    let report = report?;
    emit(&report, output, dir.as_deref())?;
    if let Some(path) = &gate.save_baseline {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("cannot write the baseline {}", path.display()))?;
        eprintln!("saved the baseline to {}", path.display());
    }
    let mut regressed = false;
    if let Some(path) = &gate.baseline {
        let changes = diff(
            &Rounds::from_file(path)?,
            &Rounds::from_report(&report)?,
            &path.display().to_string(),
            "this run",
        );
        // With --json, stdout holds the report: the diff table goes to stderr.
        if output.json {
            eprint!("{}", changes.table());
        } else {
            print!("\n{}", changes.table());
        }
        if let Some(dir) = &dir {
            std::fs::write(dir.join("diff.json"), changes.to_json())?;
            std::fs::write(dir.join("diff.txt"), changes.table())?;
        }
        regressed = changes.regressions > 0;
    }
    Ok(exit_status(&report, regressed && gate.fail_on_regression))
}

/// 99 when a threshold failed, else 98 when `regressed` counts, else 0.
fn exit_status(report: &Report, regressed: bool) -> ExitCode {
    let failed: Vec<String> = report
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| format!("{} {}: {}", t.phase, t.target, t.expression))
        .collect();
    if !failed.is_empty() {
        eprintln!("thresholds failed: {}", failed.join("; "));
        return ExitCode::from(THRESHOLDS_FAILED);
    }
    if regressed {
        eprintln!("worse than the baseline beyond the noise (--fail-on-regression)");
        return ExitCode::from(REGRESSED);
    }
    ExitCode::SUCCESS
}

fn diff_command(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let changes = diff(
        &Rounds::from_file(&args.base)?,
        &Rounds::from_file(&args.new)?,
        &args.base.display().to_string(),
        &args.new.display().to_string(),
    );
    if args.json {
        println!("{}", changes.to_json());
    } else {
        print!("{}", changes.table());
    }
    Ok(match args.fail_on_regression && changes.regressions > 0 {
        true => ExitCode::from(REGRESSED),
        false => ExitCode::SUCCESS,
    })
}

/// `NAME=VALUE` or `VALUE` (for the first target).
fn split_named(text: &str) -> (Option<&str>, &str) {
    match text.split_once('=') {
        Some((name, value)) if !name.contains(':') && !name.contains('/') => (Some(name), value),
        _ => (None, text),
    }
}

fn suite_command(
    args: SuiteArgs,
    stop: &AtomicBool,
    command_line: &str,
    compare: bool,
) -> anyhow::Result<ExitCode> {
    let mut suite = Suite::from_file(&args.suite)?;
    if !args.targets.is_empty() {
        suite.targets = args
            .targets
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let (name, url) = split_named(text);
                TargetSpec {
                    name: name.map_or_else(|| format!("target{}", i + 1), str::to_owned),
                    url: url.to_owned(),
                    start_timeout: Duration::from_secs(60),
                    api_key_env: Some(args.api_key_env.clone()),
                    ..TargetSpec::default()
                }
            })
            .collect();
        for api in &args.apis {
            let (name, url) = split_named(api);
            let target = match name {
                Some(name) => suite.targets.iter_mut().find(|t| t.name == name),
                None => suite.targets.first_mut(),
            }
            .with_context(|| format!("--api {api}: no such target"))?;
            target.api = Some(url.to_owned());
        }
        for pid in &args.pids {
            let (name, value) = split_named(pid);
            let target = match name {
                Some(name) => suite.targets.iter_mut().find(|t| t.name == name),
                None => suite.targets.first_mut(),
            }
            .with_context(|| format!("--pid {pid}: no such target"))?;
            target.pid = Some(
                value
                    .parse()
                    .with_context(|| format!("--pid {pid}: not a process id"))?,
            );
        }
    }
    if compare && suite.targets.len() < 2 {
        bail!(
            "compare needs at least two targets (the suite has {}): add --target NAME=URL for each",
            suite.targets.len()
        );
    }
    if let Some(path) = &args.keys {
        suite.keys = KeysSource::File(path.clone());
    }
    if let Some(repeat) = args.repeat {
        suite.repeat = repeat.max(1);
    }
    suite.adjust_loads(|load| {
        if let Some(d) = args.duration {
            load.duration = d;
        }
        if let Some(t) = args.threads {
            load.threads = t;
            load.connections = load.connections.max(t);
        }
        if !args.cpus.is_empty() {
            load.cpus = args.cpus.clone();
        }
        if let (Some(scale), Mode::Open { rate }) = (args.rate_scale, load.mode) {
            load.mode = Mode::Open { rate: rate * scale };
        }
    });
    for phase in &suite.phases {
        phase.load.validate()?;
    }
    suite.thresholds.extend(args.gate.thresholds()?);
    suite.check_thresholds()?;
    execute_and_emit(
        &suite,
        &args.output,
        &args.gate,
        args.work.clone(),
        stop,
        command_line,
    )
}

fn nginx_command(args: NginxArgs) -> anyhow::Result<()> {
    let keys = args.keys.source()?.load()?;
    let conf = write_config(
        &keys,
        &NginxOptions {
            port: args.port,
            cpu: args.cpu,
            default_domain: args.default_domain,
            dir: args.out.clone(),
            tls: None,
        },
    )?;
    let dir = conf.parent().unwrap_or(Path::new("."));
    println!("{}", conf.display());
    eprintln!(
        "{} links. Start nginx with:\n  nginx -p {dir} -e {dir}/error.log -c {conf}",
        thousands(keys.len() as f64),
        dir = dir.display(),
        conf = conf.display()
    );
    Ok(())
}

fn calibrate_command(args: CalibrateArgs, stop: &AtomicBool) -> anyhow::Result<()> {
    let options = CalibrateOptions {
        duration: args.duration,
        connections: args.connections,
        pipeline_depth: args.depth,
        generator_cpu: args.generator_cpu,
        server_cpu: args.server_cpu,
        wrk: args.wrk,
        visitors: args.visitors.visitors()?,
    };
    let mut printer = ProgressPrinter::new(args.json);
    let ceiling = calibrate::calibrate(&options, stop, &mut |label, p| printer.show(label, p));
    printer.finish();
    let ceiling = ceiling?;
    calibrate::save(&args.save, &ceiling)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ceiling)?);
    } else {
        println!("{}", ceiling_line(Some(&ceiling)));
        println!(
            "generator thread busy {:.0}%, fixed server busy {:.0}%{}",
            ceiling.generator_busy * 100.0,
            ceiling.server_busy * 100.0,
            if ceiling.server_busy > 0.9 {
                " (the server was the limit: the generator's ceiling is higher)"
            } else {
                ""
            }
        );
        if let Some(wrk) = ceiling.wrk_rate {
            println!("ricochet-loadtest / wrk = {:.2}", ceiling.rate / wrk);
        }
        eprintln!("saved to {}", args.save.display());
    }
    Ok(())
}

fn fixed_server_command(args: FixedServerArgs, stop: &AtomicBool) -> anyhow::Result<()> {
    let server = ricochet_loadtest::fixed_server::FixedServer::start_on(args.listen, args.cpu)?;
    eprintln!(
        "fixed-response server on http://{} (Ctrl-C stops it)",
        server.addr()
    );
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = server.stop();
    eprintln!("answered {} requests", thousands(stats.requests as f64));
    Ok(())
}

fn worker_command(args: WorkerArgs, stop: &AtomicBool) -> anyhow::Result<()> {
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if let Some(cpu) = args.cpu.iter().find(|cpu| !cores.contains(cpu)) {
        bail!("--cpu {cpu}: no such CPU on this machine");
    }
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // The only line on stdout: whoever started the worker reads it.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{LISTENING}{addr}")?;
    out.flush()?;
    drop(out);
    let pinned = match args.cpu.is_empty() {
        true => "not pinned".to_owned(),
        false => format!("generator threads on CPUs {:?}", args.cpu),
    };
    eprintln!("worker on {addr}, {pinned} (Ctrl-C stops it)");
    worker::serve(&listener, &args.cpu, stop, &mut |line| {
        eprintln!("worker {addr}: {line}")
    })?;
    Ok(())
}

fn soak_command(args: SoakArgs, stop: &AtomicBool, command_line: &str) -> anyhow::Result<()> {
    let run = &args.run;
    if run.rate.is_none() {
        bail!("a soak needs --rate (it holds one open-loop rate)");
    }
    if !run.workers.is_empty() || run.spawn_workers.is_some() {
        bail!("a soak runs on this generator: --workers and --spawn-workers are for `run`");
    }
    let gate = &run.gate;
    if !gate.thresholds.is_empty() || gate.baseline.is_some() || gate.save_baseline.is_some() {
        bail!(
            "a soak judges drift, not thresholds: --threshold and --baseline are for `run` and suites"
        );
    }
    let suite = run_suite(run)?;
    let url = ricochet_loadtest::http::Url::parse(&run.url)?;
    let keys = Arc::new(suite.keys.load()?.with_behaviour(suite.behaviour.clone()));
    let mut load = suite.phases[0].load.clone();
    load.duration = args.interval;
    let spec = SoakSpec {
        run: RunSpec {
            target: run.url.clone(),
            phase: "soak".into(),
            round: 1,
            addr: url.resolve()?,
            host: run.host.clone().unwrap_or_else(|| url.authority.clone()),
            tls: url.tls,
            load,
            shape: suite.traffic.clone(),
            keys,
            server_pid: run.pid,
        },
        duration: run.duration,
        tolerance: DriftTolerance {
            rss_growth: args.rss_growth,
            rss_floor_mb: args.rss_floor_mb,
            p99_growth: args.p99_growth,
            p99_floor_ms: args.p99_floor_ms,
        },
    };
    if !run.warmup.is_zero() {
        let mut warmup = spec.run.clone();
        warmup.phase = "warm-up".into();
        warmup.load.duration = run.warmup;
        warmup.server_pid = None;
        ricochet_loadtest::run(&warmup, stop, &mut |_| {})?;
    }
    let intervals = (run.duration.as_nanos() / args.interval.as_nanos().max(1)) as usize;
    let quiet = run.output.quiet;
    let report = soak(
        &spec,
        command_line,
        stop,
        &mut |row| {
            if !quiet {
                eprintln!("{}", row_line(row, intervals));
            }
        },
        &mut |_| {},
    )?;
    if run.output.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if let Some(dir) = out_dir(&run.output, "soak") {
        report.write_files(&dir)?;
        eprintln!("wrote soak.json and soak.txt to {}", dir.display());
    }
    Ok(())
}

/// `--header` values: `Name: value` with a token name and no line break.
fn checked_headers(headers: &[String]) -> anyhow::Result<Vec<String>> {
    headers
        .iter()
        .map(|header| {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--header {header:?}: expected Name: value"))?;
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                bail!("--header {header:?}: {name:?} is not a header name");
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                bail!("--header {header:?}: the value has a line break or NUL");
            }
            Ok(format!("{name}: {}", value.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::checked_headers;

    #[test]
    fn headers_are_name_value_lines_without_breaks() {
        assert_eq!(
            checked_headers(&["If-None-Match:  \"x\" ".into()]).unwrap(),
            ["If-None-Match: \"x\""]
        );
        for bad in ["NoColon", ": value", "Bad Name: x", "X-Evil: a\r\nHost: b"] {
            assert!(checked_headers(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
