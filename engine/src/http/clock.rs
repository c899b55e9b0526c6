//! The per-thread clock: the current time in milliseconds and the formatted
//! `Date` header value, refreshed at most once a second per thread and read
//! once per batch of requests rather than per request.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// Time and `Date` value for one batch of requests.
#[derive(Debug, Clone, Copy)]
pub struct BatchClock {
    pub now_ms: i64,
    pub date: [u8; DATE_LEN],
}

/// Reads the thread's clock.
#[derive(Debug)]
pub struct Clock;

struct Cached {
    second: u64,
    date: [u8; DATE_LEN],
}

thread_local! {
    static CACHED: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, date: [b' '; DATE_LEN] }) };
}

impl Clock {
    /// The current time and `Date` header value.
    pub fn batch() -> BatchClock {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let second = since.as_secs();
        let date = CACHED.with(|cell| {
            let mut cached = cell.borrow_mut();
            if cached.second != second {
                let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
                if text.len() == DATE_LEN {
                    cached.date.copy_from_slice(text.as_bytes());
                }
                cached.second = second;
            }
            cached.date
        });
        BatchClock {
            now_ms: since.as_millis() as i64,
            date,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_an_http_date() {
        let clock = Clock::batch();
        let text = std::str::from_utf8(&clock.date).unwrap();
        assert!(text.ends_with(" GMT"), "{text}");
        let parsed = httpdate::parse_http_date(text).unwrap();
        let ms = parsed.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((clock.now_ms - ms).abs() < 2_000);
    }
}
