//! Servers under test: a URL to load, and optionally the process behind it.
//! The tool can run setup commands (e.g. an engine import), start the
//! server, wait until it is ready, measure its CPU and memory, restart it,
//! and stop it, and install the suite's certificate through a control
//! plane's API. Commands and URLs may use `{work}`, `{port}`, `{tls_port}`,
//! `{admin_port}`, `{api_port}`, `{links_csv}`, `{links_jsonl}`,
//! `{geoip_db}`, `{nginx_conf}`, `{tls_cert}`, `{tls_key}`, `{suite_dir}`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::certificate;
use crate::error::{Error, Result};
use crate::http::{HttpClient, Url};
use crate::keys::KeySet;
use crate::nginx::{NginxOptions, NginxTls, write_config};
use crate::seed::api_call;

/// A target as a suite file or the command line describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub name: String,
    /// Base URL of the redirect listener, e.g. "http://127.0.0.1:{port}"
    /// or "https://127.0.0.1:{tls_port}".
    pub url: String,
    /// Host header for keys on the default domain; the URL's host:port when unset.
    #[serde(default)]
    pub host: Option<String>,
    /// The server to start (argv); none: the target is already running.
    #[serde(default)]
    pub command: Vec<String>,
    /// Commands run once before the server starts (e.g. an import).
    #[serde(default)]
    pub setup: Vec<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// URL answering 200 once the server is ready (e.g. the engine's /readyz).
    #[serde(default)]
    pub ready_url: Option<String>,
    /// How long start-up may take.
    #[serde(default = "default_start_timeout", with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Control-plane API base, e.g. "http://127.0.0.1:{api_port}/api/v1".
    #[serde(default)]
    pub api: Option<String>,
    /// API key, literally (prefer api_key_env or api_key_file).
    #[serde(default)]
    pub api_key: Option<String>,
    /// Environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// File holding the API key (read after the server starts).
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// A process to measure (CPU, memory) when the tool does not start it.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Once the server is ready, the suite's certificate and key
    /// (`{tls_cert}`, `{tls_key}`) are sent to this path of `api` with
    /// `PUT {"certificate": …, "private_key": …}`, e.g.
    /// "/certificates/default" (the control plane's default certificate).
    #[serde(default)]
    pub certificate_upload: Option<String>,
}

fn default_start_timeout() -> Duration {
    Duration::from_secs(120)
}

/// Files a suite writes once for all its targets, each only when a target
/// uses its placeholder.
#[derive(Debug, Clone)]
pub struct SuiteFiles {
    /// `{links_csv}`: the links alone, as the engine's import CSV.
    pub links_csv: PathBuf,
    /// `{links_jsonl}`: the links with the suite's behaviour, as JSON Lines.
    pub links_jsonl: PathBuf,
    /// `{geoip_db}`: a GeoIP database placing the visitors' client networks.
    pub geoip_db: PathBuf,
    /// `{suite_dir}`: the suite file's directory.
    pub suite_dir: PathBuf,
    /// `{tls_cert}` and `{tls_key}`: a self-signed ECDSA P-256 certificate
    /// for the suite's host and its key, as PEM (also what an https nginx
    /// target serves and what `certificate_upload` sends).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Whether some phase resumes TLS sessions: an https nginx target keeps
    /// its session cache and tickets only then.
    pub tls_resumption: bool,
}

/// Values substituted into a target's strings.
#[derive(Debug, Clone)]
pub struct Vars {
    pub work: PathBuf,
    pub port: u16,
    /// A fourth free port, for an HTTPS listener beside a plain one.
    pub tls_port: u16,
    pub admin_port: u16,
    pub api_port: u16,
    pub files: SuiteFiles,
    pub nginx_conf: PathBuf,
}

impl Vars {
    pub fn expand(&self, text: &str) -> String {
        let files = &self.files;
        text.replace("{work}", &self.work.display().to_string())
            .replace("{port}", &self.port.to_string())
            .replace("{tls_port}", &self.tls_port.to_string())
            .replace("{admin_port}", &self.admin_port.to_string())
            .replace("{api_port}", &self.api_port.to_string())
            .replace("{links_csv}", &files.links_csv.display().to_string())
            .replace("{links_jsonl}", &files.links_jsonl.display().to_string())
            .replace("{geoip_db}", &files.geoip_db.display().to_string())
            .replace("{nginx_conf}", &self.nginx_conf.display().to_string())
            .replace("{suite_dir}", &files.suite_dir.display().to_string())
            .replace("{tls_cert}", &files.tls_cert.display().to_string())
            .replace("{tls_key}", &files.tls_key.display().to_string())
    }
}

/// A free TCP port on 127.0.0.1 (the kernel picks it).
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("cannot find a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("cannot find a free port", e))
}

/// Whether any of the target's strings use `{name}`.
pub fn uses(spec: &TargetSpec, name: &str) -> bool {
    let needle = format!("{{{name}}}");
    spec.command.iter().any(|a| a.contains(&needle))
        || spec.setup.iter().flatten().any(|a| a.contains(&needle))
        || spec.env.values().any(|v| v.contains(&needle))
}

/// Whether the tool must write `{tls_cert}` and `{tls_key}` for the
/// target: it uses them, uploads them, or serves `{nginx_conf}` over https.
pub fn needs_certificate(spec: &TargetSpec) -> bool {
    uses(spec, "tls_cert")
        || uses(spec, "tls_key")
        || spec.certificate_upload.is_some()
        || (uses(spec, "nginx_conf") && spec.url.starts_with("https://"))
}

/// Whether a target's links carry the suite's behaviour, so that answers
/// from its rules and variants are correct: it imports `{links_jsonl}`, or
/// the tool does not load its links (a server given on the command line).
/// A target importing `{links_csv}` or serving `{nginx_conf}` has the
/// links alone, and only each link's own URL is correct.
pub fn links_carry_behaviour(spec: &TargetSpec) -> bool {
    uses(spec, "links_jsonl") || !(uses(spec, "links_csv") || uses(spec, "nginx_conf"))
}

/// A prepared target.
#[derive(Debug)]
pub struct Target {
    pub name: String,
    pub url: Url,
    pub addr: SocketAddr,
    pub host: String,
    pub api: Option<Url>,
    spec: TargetSpec,
    vars: Vars,
    child: Option<Child>,
    log: Option<PathBuf>,
}

impl Target {
    /// Resolves the spec: picks ports, writes an nginx config if the spec
    /// uses `{nginx_conf}`, runs setup commands and starts the server.
    pub fn prepare(
        spec: &TargetSpec,
        work_root: &Path,
        files: &SuiteFiles,
        keys: &KeySet,
    ) -> Result<Self> {
        let fail = |message: String| Error::Target {
            name: spec.name.clone(),
            message,
        };
        let work = work_root.join(&spec.name);
        std::fs::create_dir_all(&work)
            .map_err(|e| Error::io(format!("cannot create {}", work.display()), e))?;
        let vars = Vars {
            work: work.clone(),
            port: free_port()?,
            tls_port: free_port()?,
            admin_port: free_port()?,
            api_port: free_port()?,
            files: files.clone(),
            nginx_conf: work.join("nginx").join("nginx.conf"),
        };
        let url = Url::parse(&vars.expand(&spec.url))?;
        let addr = url.resolve()?;
        let host = spec.host.clone().unwrap_or_else(|| url.authority.clone());
        let api = spec
            .api
            .as_deref()
            .map(|a| Url::parse(&vars.expand(a)))
            .transpose()?;
        if uses(spec, "nginx_conf") {
            // nginx reads the certificate from its own directory: absolute paths.
            let absolute = |path: &Path| {
                path.canonicalize()
                    .map_err(|e| Error::io(format!("cannot find {}", path.display()), e))
            };
            let tls = match url.tls {
                false => None,
                true => Some(NginxTls {
                    certificate: absolute(&files.tls_cert)?,
                    private_key: absolute(&files.tls_key)?,
                    resumption: files.tls_resumption,
                }),
            };
            write_config(
                keys,
                &NginxOptions {
                    port: vars.port,
                    cpu: None,
                    default_domain: "localhost".into(),
                    dir: work.join("nginx"),
                    tls,
                },
            )?;
        }
        for (i, argv) in spec.setup.iter().enumerate() {
            let argv: Vec<String> = argv.iter().map(|a| vars.expand(a)).collect();
            let Some((program, args)) = argv.split_first() else {
                continue;
            };
            let log = work.join(format!("setup-{i}.log"));
            let log_file = std::fs::File::create(&log)
                .map_err(|e| Error::io(format!("cannot create {}", log.display()), e))?;
            let err_file = log_file
                .try_clone()
                .map_err(|e| Error::io("cannot open a log", e))?;
            eprintln!("[{}] setup: {}", spec.name, argv.join(" "));
            let status = Command::new(program)
                .args(args)
                .envs(spec.env.iter().map(|(k, v)| (k, vars.expand(v))))
                .stdin(Stdio::null())
                .stdout(log_file)
                .stderr(err_file)
                .status()
                .map_err(|e| fail(format!("cannot run setup {program:?}: {e}")))?;
            if !status.success() {
                let tail = tail_of(&log);
                return Err(fail(format!(
                    "setup {:?} failed ({status}); see {}:\n{tail}",
                    argv.join(" "),
                    log.display()
                )));
            }
        }
        let mut target = Self {
            name: spec.name.clone(),
            url,
            addr,
            host,
            api,
            spec: spec.clone(),
            vars,
            child: None,
            log: None,
        };
        if !spec.command.is_empty() {
            target.start()?;
            target.wait_ready(Instant::now(), spec.start_timeout)?;
        }
        if let Some(path) = &spec.certificate_upload {
            target.upload_certificate(path, files)?;
        }
        Ok(target)
    }

    /// `PUT`s the suite's certificate and key to `path` of the target's API.
    fn upload_certificate(&self, path: &str, files: &SuiteFiles) -> Result<()> {
        let fail = |message: String| Error::Target {
            name: self.name.clone(),
            message,
        };
        let Some(api) = &self.api else {
            return Err(fail(
                "certificate_upload needs `api` (and an API key) to send the certificate to".into(),
            ));
        };
        let pem = certificate::read(&files.tls_cert, &files.tls_key)?;
        let mut client = HttpClient::new(api, Duration::from_secs(30))?;
        let body = serde_json::json!({
            "certificate": pem.certificate,
            "private_key": pem.private_key,
        });
        let path = self.vars.expand(path);
        let response = api_call(&mut client, &self.api_key()?, "PUT", &path, &body)?;
        if response.status != 200 {
            let answer = String::from_utf8_lossy(&response.body);
            return Err(fail(format!(
                "certificate_upload: PUT {api}{path} answered {}: {}",
                response.status,
                answer.chars().take(300).collect::<String>()
            )));
        }
        eprintln!(
            "[{}] certificate installed through PUT {api}{path}",
            self.name
        );
        Ok(())
    }

    /// Whether the tool owns the server process (and can restart it).
    pub fn is_managed(&self) -> bool {
        !self.spec.command.is_empty()
    }

    /// The process to measure.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id).or(self.spec.pid)
    }

    /// The readiness URL, expanded.
    pub fn ready_url(&self) -> Option<String> {
        self.spec.ready_url.as_deref().map(|u| self.vars.expand(u))
    }

    /// The API key, from the spec, its environment variable or its file.
    pub fn api_key(&self) -> Result<String> {
        if let Some(key) = &self.spec.api_key {
            return Ok(key.clone());
        }
        if let Some(var) = &self.spec.api_key_env {
            return std::env::var(var).map_err(|_| Error::Target {
                name: self.name.clone(),
                message: format!("environment variable {var} (api_key_env) is not set"),
            });
        }
        if let Some(file) = &self.spec.api_key_file {
            let path = self.vars.expand(file);
            return std::fs::read_to_string(&path)
                .map(|k| k.trim().to_owned())
                .map_err(|e| {
                    Error::io(
                        format!("target {}: cannot read the API key from {path}", self.name),
                        e,
                    )
                });
        }
        Err(Error::Target {
            name: self.name.clone(),
            message: "no API key (set api_key_env, api_key_file or api_key)".into(),
        })
    }

    /// Starts the server process.
    pub fn start(&mut self) -> Result<()> {
        let argv: Vec<String> = self
            .spec
            .command
            .iter()
            .map(|a| self.vars.expand(a))
            .collect();
        let Some((program, args)) = argv.split_first() else {
            return Ok(());
        };
        let log = self.vars.work.join("server.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Error::io(format!("cannot open {}", log.display()), e))?;
        let err_file = log_file
            .try_clone()
            .map_err(|e| Error::io("cannot open a log", e))?;
        eprintln!("[{}] start: {}", self.name, argv.join(" "));
        let child = Command::new(program)
            .args(args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, self.vars.expand(v))))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| Error::Target {
                name: self.name.clone(),
                message: format!("cannot start {program:?}: {e}"),
            })?;
        self.child = Some(child);
        self.log = Some(log);
        Ok(())
    }

    /// Waits until the readiness URL answers 200 (or, without one, until the
    /// redirect listener answers anything). Returns the time since `since`.
    pub fn wait_ready(&mut self, since: Instant, timeout: Duration) -> Result<Duration> {
        let probe = match self.ready_url() {
            Some(url) => Url::parse(&url)?,
            None => self.url.clone(),
        };
        let need_200 = self.spec.ready_url.is_some();
        let mut client = HttpClient::new(&probe, Duration::from_secs(1))?;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let tail = self.log.as_deref().map(tail_of).unwrap_or_default();
                self.child = None;
                return Err(Error::Target {
                    name: self.name.clone(),
                    message: format!("the server exited during start-up ({status}):\n{tail}"),
                });
            }
            if let Ok(response) = client.request("GET", "", &[], b"")
                && (!need_200 || response.status == 200)
            {
                return Ok(since.elapsed());
            }
            if since.elapsed() > timeout {
                return Err(Error::Target {
                    name: self.name.clone(),
                    message: format!("not ready after {timeout:?} ({probe})"),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the server: SIGTERM (or SIGKILL when `kill`), then SIGKILL
    /// after 10 s. Returns how long it took to exit.
    pub fn stop(&mut self, kill: bool) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        if kill {
            let _ = child.kill();
        } else {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(started.elapsed())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.stop(false);
    }
}

/// The last lines of a log file, for error messages.
fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
