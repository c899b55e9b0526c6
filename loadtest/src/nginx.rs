//! The nginx side of a comparison: a configuration that answers the same
//! link set with one `map` and `return`, so "Ricochet vs nginx" needs no
//! hand-written config. One worker, optionally pinned, access log off;
//! over HTTPS when given a certificate.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::keys::{DEFAULT_STATUS, KeySet};

/// Where and how the generated nginx listens.
#[derive(Debug, Clone)]
pub struct NginxOptions {
    pub port: u16,
    /// CPU the worker is pinned to (`worker_cpu_affinity`).
    pub cpu: Option<usize>,
    /// Domain of keys without one, when keys span several domains.
    pub default_domain: String,
    pub dir: PathBuf,
    /// Serve HTTPS instead of HTTP on `port`.
    pub tls: Option<NginxTls>,
}

/// How the generated nginx serves HTTPS: TLS 1.2 and 1.3, X25519 and P-256.
#[derive(Debug, Clone)]
pub struct NginxTls {
    /// PEM files.
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// Keep a session cache and issue tickets; without, every handshake is
    /// a full one and nginx spends nothing on sessions.
    pub resumption: bool,
}

/// Writes `nginx.conf` and `links.map` into the options' directory; returns
/// the path of nginx.conf. Run it with
/// `nginx -p DIR -e DIR/error.log -c DIR/nginx.conf`.
pub fn write_config(keys: &KeySet, options: &NginxOptions) -> Result<PathBuf> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir.join("tmp"))
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))?;
    let domains: HashSet<&str> = (0..keys.len().min(1_000_000))
        .map(|i| keys.domain(i))
        .collect();
    let by_host = domains.len() > 1 || domains.iter().any(|d| !d.is_empty());
    let map_path = dir.join("links.map");
    let file = std::fs::File::create(&map_path)
        .map_err(|e| Error::io(format!("cannot create {}", map_path.display()), e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut statuses = std::collections::BTreeSet::new();
    let mut seen = HashSet::with_capacity(keys.len() as usize);
    let mut status_lines = String::new();
    let mut line = String::new();
    for index in 0..keys.len() {
        let record = keys.record(index);
        let Some(url) = &record.url else {
            return Err(Error::Invalid(format!(
                "key {} has no URL: nginx needs domain,code,url lines",
                record.code
            )));
        };
        if url
            .bytes()
            .any(|b| matches!(b, b'"' | b'$' | b'\\' | b';' | b'{' | b'}') || b <= b' ')
        {
            return Err(Error::Invalid(format!(
                "URL {url:?} of key {} has characters an nginx map value cannot hold",
                record.code
            )));
        }
        let key = if by_host {
            let domain = if record.domain.is_empty() {
                options.default_domain.as_str()
            } else {
                record.domain.as_str()
            };
            format!("{domain}/{}", record.code)
        } else {
            format!("/{}", record.code)
        };
        if !seen.insert(key.to_ascii_lowercase()) {
            return Err(Error::Invalid(format!(
                "two keys differ only by case ({key}): nginx's map is case-insensitive and refuses them"
            )));
        }
        let status = record.status.unwrap_or(DEFAULT_STATUS);
        statuses.insert(status);
        line.clear();
        let _ = writeln!(line, "{key} \"{url}\";");
        out.write_all(line.as_bytes())
            .map_err(|e| Error::io(format!("cannot write {}", map_path.display()), e))?;
        let _ = writeln!(status_lines, "{key} {status};");
    }
    out.flush()
        .map_err(|e| Error::io(format!("cannot write {}", map_path.display()), e))?;
    let single_status = (statuses.len() == 1).then(|| *statuses.iter().next().unwrap_or(&301));
    if single_status.is_none() {
        let path = dir.join("status.map");
        std::fs::write(&path, &status_lines)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    }
    let conf = render(&dir, keys.len(), by_host, single_status, &statuses, options);
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)
        .map_err(|e| Error::io(format!("cannot write {}", conf_path.display()), e))?;
    Ok(conf_path)
}

fn render(
    dir: &Path,
    count: u64,
    by_host: bool,
    single_status: Option<u16>,
    statuses: &std::collections::BTreeSet<u16>,
    options: &NginxOptions,
) -> String {
    let dir = dir.display();
    let source = if by_host { "$host$uri" } else { "$uri" };
    let affinity = options
        .cpu
        .map(|cpu| format!("worker_cpu_affinity {};\n", affinity_mask(cpu)))
        .unwrap_or_default();
    // One bucket per link keeps nginx from trying many table sizes at start.
    let max_size = count.max(1024);
    let (ssl, tls) = match &options.tls {
        None => ("", String::new()),
        Some(tls) => (" ssl", tls_lines(tls)),
    };
    let mut answers = String::new();
    match single_status {
        Some(status) => {
            let _ = writeln!(answers, "            return {status} $target;");
        }
        None => {
            for status in statuses {
                let _ = writeln!(
                    answers,
                    "            if ($redirect_status = {status}) {{\n                return {status} $target;\n            }}"
                );
            }
            let _ = writeln!(answers, "            return 301 $target;");
        }
    }
    let status_map = if single_status.is_none() {
        format!(
            "    map {source} $redirect_status {{\n        default 301;\n        include {dir}/status.map;\n    }}\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"# Generated by `ricochet-loadtest nginx-config`: {count} links answered with
# one `map` and `return`, the nginx side of a Ricochet comparison.
# Run: nginx -p {dir} -e {dir}/error.log -c {dir}/nginx.conf
worker_processes 1;
{affinity}daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 8192;
}}

http {{
    access_log off;
    server_tokens off;
    keepalive_requests 1000000000;
    keepalive_timeout 75s;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;

    map_hash_bucket_size 256;
    map_hash_max_size {max_size};
    map {source} $target {{
        default "";
        include {dir}/links.map;
    }}
{status_map}
    server {{
        listen 127.0.0.1:{port}{ssl} backlog=4096;
        server_name _;
{tls}        location / {{
            if ($target = "") {{
                return 404;
            }}
{answers}        }}
    }}
}}
"#,
        port = options.port,
    )
}

/// The server block's TLS directives.
fn tls_lines(tls: &NginxTls) -> String {
    let sessions = if tls.resumption {
        "        ssl_session_cache shared:SSL:10m;\n        ssl_session_tickets on;\n"
    } else {
        "        ssl_session_tickets off;\n        ssl_session_cache off;\n"
    };
    format!(
        "        ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_ecdh_curve X25519:prime256v1;\n{sessions}",
        tls.certificate.display(),
        tls.private_key.display()
    )
}

/// nginx's CPU mask: CPU 0 is the rightmost digit.
fn affinity_mask(cpu: usize) -> String {
    let mut mask = String::from("1");
    mask.push_str(&"0".repeat(cpu));
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::GeneratedKeys;

    #[test]
    fn writes_map_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::generated(GeneratedKeys {
            count: 10,
            ..GeneratedKeys::default()
        })
        .unwrap();
        let conf = write_config(
            &keys,
            &NginxOptions {
                port: 8099,
                cpu: Some(1),
                default_domain: "localhost".into(),
                dir: dir.path().join("nginx"),
                tls: None,
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(conf).unwrap();
        assert!(text.contains("listen 127.0.0.1:8099"));
        assert!(text.contains("worker_cpu_affinity 10;"));
        assert!(text.contains("return 301 $target;"));
        let map = std::fs::read_to_string(dir.path().join("nginx/links.map")).unwrap();
        assert_eq!(map.lines().count(), 10);
        assert!(map.starts_with('/'));
        assert!(!text.contains("ssl"), "{text}");
    }

    #[test]
    fn serves_https_with_the_given_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::parse(",abc,https://x/\n", "t").unwrap();
        for resumption in [false, true] {
            let conf = write_config(
                &keys,
                &NginxOptions {
                    port: 8443,
                    cpu: None,
                    default_domain: "localhost".into(),
                    dir: dir.path().join("nginx"),
                    tls: Some(NginxTls {
                        certificate: "/certs/cert.pem".into(),
                        private_key: "/certs/key.pem".into(),
                        resumption,
                    }),
                },
            )
            .unwrap();
            let text = std::fs::read_to_string(conf).unwrap();
            for line in [
                "listen 127.0.0.1:8443 ssl backlog=4096;",
                "ssl_certificate /certs/cert.pem;",
                "ssl_certificate_key /certs/key.pem;",
                "ssl_protocols TLSv1.2 TLSv1.3;",
                "ssl_ecdh_curve X25519:prime256v1;",
            ] {
                assert!(text.contains(line), "{line} in {text}");
            }
            assert_eq!(
                text.contains("ssl_session_tickets off;")
                    && text.contains("ssl_session_cache off;"),
                !resumption,
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_case_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::parse(",abc,https://x/\n,ABC,https://y/\n", "t").unwrap();
        let err = write_config(
            &keys,
            &NginxOptions {
                port: 1,
                cpu: None,
                default_domain: "localhost".into(),
                dir: dir.path().to_path_buf(),
                tls: None,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("case"), "{err}");
    }
}
