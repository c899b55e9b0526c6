//! The compact click event the request path hands to its shard's actor: the
//! link, the time, the client address and the raw request fields analytics
//! need, truncated and packed into one allocation.

use std::net::IpAddr;

use ricochet_model::behaviour::Chosen;
use ricochet_model::{LinkId, UnixMillis};

/// Longest user agent kept.
pub const MAX_USER_AGENT: usize = 512;
/// Longest referrer kept.
pub const MAX_REFERER: usize = 512;
/// Longest Accept-Language kept.
pub const MAX_ACCEPT_LANGUAGE: usize = 128;
/// Longest query string kept (for UTM parameters).
pub const MAX_QUERY: usize = 1024;

/// One click, as captured on the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickEvent {
    pub link_id: LinkId,
    pub at: UnixMillis,
    pub ip: Option<IpAddr>,
    /// Which of the link's destinations answered, packed
    /// ([`ricochet_model::behaviour::Chosen`]); `Chosen::NONE` for plain links.
    pub destination: u16,
    /// Lengths of user agent, referrer and Accept-Language; the query follows.
    lengths: [u16; 3],
    data: Box<[u8]>,
}

impl ClickEvent {
    /// Packs the fields, each truncated to its limit.
    pub fn new(
        link_id: LinkId,
        at: UnixMillis,
        ip: Option<IpAddr>,
        user_agent: &[u8],
        referer: &[u8],
        accept_language: &[u8],
        query: &[u8],
    ) -> Self {
        let parts = [
            &user_agent[..user_agent.len().min(MAX_USER_AGENT)],
            &referer[..referer.len().min(MAX_REFERER)],
            &accept_language[..accept_language.len().min(MAX_ACCEPT_LANGUAGE)],
            &query[..query.len().min(MAX_QUERY)],
        ];
        let mut data = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            data.extend_from_slice(part);
        }
        Self {
            link_id,
            at,
            ip,
            destination: Chosen::NONE,
            lengths: [
                parts[0].len() as u16,
                parts[1].len() as u16,
                parts[2].len() as u16,
            ],
            data: data.into_boxed_slice(),
        }
    }

    /// The same event, recording which destination answered.
    pub fn with_destination(mut self, packed: u16) -> Self {
        self.destination = packed;
        self
    }

    fn part(&self, index: usize) -> &[u8] {
        let start: usize = self.lengths[..index].iter().map(|&l| l as usize).sum();
        let end = if index < 3 {
            start + self.lengths[index] as usize
        } else {
            self.data.len()
        };
        &self.data[start..end]
    }

    pub fn user_agent(&self) -> &[u8] {
        self.part(0)
    }

    pub fn referer(&self) -> &[u8] {
        self.part(1)
    }

    pub fn accept_language(&self) -> &[u8] {
        self.part(2)
    }

    pub fn query(&self) -> &[u8] {
        self.part(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_packed_and_truncated() {
        let long = vec![b'a'; 2000];
        let event = ClickEvent::new(1, 2, None, b"UA", &long, b"de", b"utm_source=x");
        assert_eq!(event.user_agent(), b"UA");
        assert_eq!(event.referer().len(), MAX_REFERER);
        assert_eq!(event.accept_language(), b"de");
        assert_eq!(event.query(), b"utm_source=x");
        let empty = ClickEvent::new(1, 2, None, b"", b"", b"", b"");
        assert!(empty.user_agent().is_empty() && empty.query().is_empty());
    }
}
