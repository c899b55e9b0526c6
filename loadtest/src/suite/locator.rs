//! Where a suite's mistakes are: the line and column of a TOML error, the
//! line of a key in a table (or of the table's header), for messages such
//! as `zipf-1m.toml:12:1: [traffic] bot_share: …`.

use std::time::Duration;

use crate::error::{Error, Result};

/// Finds lines in the source for validation messages.
pub(crate) struct Locator<'a> {
    pub(crate) path: String,
    pub(crate) source: &'a str,
}

impl Locator<'_> {
    pub(crate) fn error_at_offset(&self, offset: usize, message: String) -> Error {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        Error::Suite {
            path: self.path.clone(),
            line,
            column,
            message,
        }
    }

    /// Line of `key` in table `section` (the `index`-th `[[section]]` for
    /// arrays of tables; "" for the top level); the section's header, or
    /// line 1, when the key is absent.
    pub(crate) fn line_of(&self, section: &str, index: usize, key: &str) -> usize {
        let mut current = String::new();
        let mut seen = 0usize;
        let mut header_line = None;
        for (number, raw) in self.source.lines().enumerate() {
            let line = raw.trim();
            if line.starts_with('[') {
                let name = line
                    .trim_matches(|c| c == '[' || c == ']')
                    .trim()
                    .to_owned();
                let is_array = line.starts_with("[[");
                if name == section {
                    if is_array {
                        seen += 1;
                    }
                    if !is_array || seen == index + 1 {
                        header_line = Some(number + 1);
                        current = name;
                        continue;
                    }
                }
                current = format!("#other:{name}");
                continue;
            }
            let in_section = if section.is_empty() {
                current.is_empty()
            } else {
                current == section && header_line.is_some()
            };
            if in_section
                && let Some(rest) = line.strip_prefix(key)
                && rest.trim_start().starts_with('=')
            {
                return number + 1;
            }
        }
        header_line.unwrap_or(1)
    }

    pub(crate) fn invalid(
        &self,
        section: &str,
        index: usize,
        key: &str,
        message: impl Into<String>,
    ) -> Error {
        let line = self.line_of(section, index, key);
        let where_ = if section.is_empty() {
            key.to_owned()
        } else {
            format!("[{section}] {key}")
        };
        Error::Suite {
            path: self.path.clone(),
            line,
            column: 1,
            message: format!("{where_}: {}", message.into()),
        }
    }

    pub(crate) fn duration(
        &self,
        section: &str,
        index: usize,
        key: &str,
        text: Option<&String>,
    ) -> Result<Option<Duration>> {
        text.map(|t| {
            humantime::parse_duration(t).map_err(|e| {
                self.invalid(
                    section,
                    index,
                    key,
                    format!("{t:?} is not a duration ({e}); write e.g. \"30s\" or \"500ms\""),
                )
            })
        })
        .transpose()
    }
}
