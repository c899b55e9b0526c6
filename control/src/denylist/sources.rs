//! Reading the lists kept on disk: the hosts file (`denylist.file`) and the
//! threat list in URLhaus's CSV format (`denylist.threat_list`). A line that
//! cannot be read is skipped and counted, never fatal: one bad line must not
//! unblock the rest.

use std::path::Path;

use ricochet_model::block::{BlockSource, MAX_BLOCK_REASON};
use ricochet_model::validate;

use super::lists::{Listed, Lists, normalize_host};

/// How a threat list's URLs block destinations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatMatch {
    /// A destination equal to a listed URL (without fragments).
    #[default]
    Url,
    /// Any destination on a listed URL's host.
    Host,
}

/// What one read of a file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadReport {
    pub entries: usize,
    /// Lines that were neither entries, comments nor blank.
    pub skipped: usize,
    /// The first skipped line's number and why, for the log.
    pub first_skipped: Option<(usize, String)>,
}

impl ReadReport {
    fn skip(&mut self, line: usize, why: impl Into<String>) {
        self.skipped += 1;
        if self.first_skipped.is_none() {
            self.first_skipped = Some((line, why.into()));
        }
    }
}

/// Reads a hosts file into `lists`: one host or address per line, then
/// optionally a reason; `#` starts a comment (a comment after the host is
/// its reason). Lines in hosts-file form (`0.0.0.0 bad.example`) list the
/// name, so published blocklists in that form work as they are.
pub fn read_hosts(text: &str, lists: &mut Lists) -> ReadReport {
    let mut report = ReadReport::default();
    for (number, line) in text.lines().enumerate() {
        let (entry, comment) = line.split_once('#').unwrap_or((line, ""));
        let mut words = entry.split_whitespace();
        let Some(mut first) = words.next() else {
            continue;
        };
        let mut rest: Vec<&str> = words.collect();
        if matches!(first, "0.0.0.0" | "127.0.0.1" | "::" | "::1") && !rest.is_empty() {
            first = rest.remove(0);
        }
        let host = match normalize_host(first) {
            Ok(host) => host,
            Err(_) => {
                report.skip(
                    number + 1,
                    format!("{first:?} is not a host name or address"),
                );
                continue;
            }
        };
        let reason = if rest.is_empty() {
            comment.trim().to_owned()
        } else {
            rest.join(" ")
        };
        lists.add_host(
            host,
            Listed {
                source: BlockSource::File,
                reason: clean_reason(&reason),
            },
        );
        report.entries += 1;
    }
    report
}

/// Reads a threat list in URLhaus's CSV format into `lists`: `#` lines are
/// comments; the columns are `id, dateadded, url, url_status, last_online,
/// threat, tags, urlhaus_link, reporter`, of which `url` is listed and
/// `threat` (e.g. `malware_download`) becomes the reason.
pub fn read_threat_list(text: &[u8], matching: ThreatMatch, lists: &mut Lists) -> ReadReport {
    let mut report = ReadReport::default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text);
    for (index, row) in reader.byte_records().enumerate() {
        let line = |row: &csv::ByteRecord| row.position().map_or(index + 1, |p| p.line() as usize);
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                report.skip(index + 1, error.to_string());
                continue;
            }
        };
        let Some(url) = row.get(2).and_then(|raw| std::str::from_utf8(raw).ok()) else {
            report.skip(line(&row), "no url column (the third)");
            continue;
        };
        let url = match validate::validate_destination(url) {
            Ok(url) => url,
            Err(error) => {
                report.skip(line(&row), format!("{url:?}: {error}"));
                continue;
            }
        };
        let threat = row
            .get(5)
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .unwrap_or_default();
        let listed = Listed {
            source: BlockSource::ThreatList,
            reason: clean_reason(threat),
        };
        match matching {
            ThreatMatch::Url => lists.add_url(url, listed),
            ThreatMatch::Host => match validate::destination_host(&url) {
                Some(host) => lists.add_host(host, listed),
                None => {
                    report.skip(line(&row), "no host");
                    continue;
                }
            },
        }
        report.entries += 1;
    }
    report
}

/// A reason as shown: control characters out, at most [`MAX_BLOCK_REASON`]
/// bytes (cut on a character boundary), `None` when empty.
pub fn clean_reason(raw: &str) -> Option<String> {
    let mut reason: String = raw.trim().chars().filter(|c| !c.is_control()).collect();
    if reason.len() > MAX_BLOCK_REASON {
        let mut end = MAX_BLOCK_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    (!reason.is_empty()).then_some(reason)
}

/// Reads a whole file, with its path in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_files_take_names_addresses_reasons_and_hosts_file_lines() {
        let mut lists = Lists::default();
        let text = "# operators' blocklist\n\
                    bad.example\n\
                    \n\
                    phish.example   credential phishing, ticket 42\n\
                    spam.example # reported spam\n\
                    0.0.0.0 ads.example\n\
                    10.1.2.3\n\
                    bad/host.example\n\
                    https://x.example/\n";
        let report = read_hosts(text, &mut lists);
        assert_eq!(report.entries, 5, "{report:?}");
        assert_eq!(report.skipped, 2);
        assert_eq!(report.first_skipped.as_ref().unwrap().0, 8);
        let phish = lists.check("https://www.phish.example/login").unwrap();
        assert_eq!(
            phish.reason.as_deref(),
            Some("credential phishing, ticket 42")
        );
        assert_eq!(phish.source, BlockSource::File);
        let spam = lists.check("https://spam.example/").unwrap();
        assert_eq!(spam.reason.as_deref(), Some("reported spam"));
        assert!(lists.check("https://ads.example/").is_some());
        assert!(lists.check("http://10.1.2.3/").is_some());
        assert_eq!(lists.check("https://bad.example/").unwrap().reason, None);
        assert!(lists.check("https://good.example/").is_none());
    }

    const URLHAUS: &str = "################################################################\n\
# abuse.ch URLhaus Database Dump (CSV)                         #\n\
################################################################\n\
#\n\
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
\"3301\",\"2026-11-30 10:01:02\",\"http://198.51.100.7:4455/i\",\"online\",\"2026-11-30 10:01:02\",\"malware_download\",\"elf,mirai\",\"https://urlhaus.abuse.ch/url/3301/\",\"geenensp\"\n\
\"3300\",\"2026-11-30 09:00:00\",\"https://files.example/payload.exe\",\"offline\",\"\",\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/3300/\",\"someone\"\n\
\"3299\",\"2026-11-30 08:00:00\",\"ftp://old.example/x\",\"offline\",\"\",\"malware_download\",\"\",\"\",\"\"\n\
\"3298\",\"broken\n";

    #[test]
    fn urlhaus_csv_lists_urls_or_hosts() {
        let mut lists = Lists::default();
        let report = read_threat_list(URLHAUS.as_bytes(), ThreatMatch::Url, &mut lists);
        assert_eq!(report.entries, 2, "{report:?}");
        assert_eq!(report.skipped, 2, "{report:?}");
        let blocked = lists.check("http://198.51.100.7:4455/i").unwrap();
        assert_eq!(blocked.source, BlockSource::ThreatList);
        assert_eq!(blocked.reason.as_deref(), Some("malware_download"));
        assert!(lists.check("https://files.example/payload.exe").is_some());
        assert!(lists.check("https://files.example/other").is_none());

        let mut by_host = Lists::default();
        read_threat_list(URLHAUS.as_bytes(), ThreatMatch::Host, &mut by_host);
        assert!(by_host.check("https://files.example/other").is_some());
        assert!(by_host.check("http://198.51.100.7/").is_some());
    }

    #[test]
    fn reasons_are_cleaned_and_bounded() {
        assert_eq!(clean_reason("  a\u{7}b  ").as_deref(), Some("ab"));
        assert_eq!(clean_reason(" "), None);
        let long = clean_reason(&"é".repeat(150)).unwrap();
        assert!(long.len() <= MAX_BLOCK_REASON && long.chars().all(|c| c == 'é'));
    }
}
