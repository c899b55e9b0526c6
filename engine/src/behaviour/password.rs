//! Password-protected links. The engine holds only the link's Argon2id hash
//! (a PHC string the control plane made). A visitor without a valid pass
//! gets a small HTML form; its POST is checked off the workers: on one
//! verifier thread at the lowest scheduling priority, behind a bounded
//! queue (a full queue answers 503) and a per-client, per-link limit of 10
//! attempts a minute (429), so a flood of wrong passwords cannot take the
//! cores redirects run on. A correct password answers 303 back to the short
//! link with a pass: a cookie scoped to the link's path, valid for an hour,
//! whose value is the expiry and a MAC of (link, hash, expiry), so it
//! cannot be forged and a password change revokes it.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crossbeam_channel::{Sender, TrySendError};
use governor::{DefaultKeyedRateLimiter, Quota};
use hmac::{Hmac, Mac};
use ricochet_model::LinkId;
use sha2::Sha256;
use tokio::sync::oneshot;

use super::key::CookieKey;

/// How long a pass is valid.
pub const PASS_SECS: i64 = 3600;
/// Attempts a client may make on one link per minute.
pub const ATTEMPTS_PER_MINUTE: u32 = 10;
/// Checks waiting for the verifier before new ones are refused.
const QUEUE: usize = 64;
/// Longest password read from a form, in bytes.
const MAX_PASSWORD: usize = 1024;
/// Bytes of MAC in a pass.
const MAC_BYTES: usize = 16;

/// A compiled password gate of one link.
#[derive(Debug)]
pub struct Gate {
    pub(super) hash: Arc<str>,
    key: CookieKey,
    link: LinkId,
    code: Box<str>,
}

impl Gate {
    pub fn new(hash: &str, key: &CookieKey, link: LinkId, code: &str) -> Self {
        Self {
            hash: Arc::from(hash),
            key: key.clone(),
            link,
            code: code.into(),
        }
    }

    /// Whether the Cookie header holds a valid pass at `now_ms`.
    pub fn admits(&self, cookie: &[u8], now_ms: i64) -> bool {
        let Some(value) = cookie
            .split(|&b| b == b';')
            .map(<[u8]>::trim_ascii)
            .find_map(|pair| pair.strip_prefix(b"rc_pw="))
        else {
            return false;
        };
        let Some(dot) = value.iter().position(|&b| b == b'.') else {
            return false;
        };
        let Some(expires) = std::str::from_utf8(&value[..dot])
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
        else {
            return false;
        };
        if now_ms / 1000 >= expires || expires > now_ms / 1000 + PASS_SECS {
            return false;
        }
        let Ok(mac) = URL_SAFE_NO_PAD.decode(&value[dot + 1..]) else {
            return false;
        };
        mac.len() == MAC_BYTES && self.mac(expires).verify_truncated_left(&mac).is_ok()
    }

    /// The `Set-Cookie` line of a pass issued at `now_ms`.
    pub fn pass_line(&self, now_ms: i64) -> Vec<u8> {
        let expires = now_ms / 1000 + PASS_SECS;
        let mac = self.mac(expires).finalize().into_bytes();
        format!(
            "Set-Cookie: rc_pw={expires}.{}; Path=/{}; Max-Age={PASS_SECS}; HttpOnly; SameSite=Lax\r\n",
            URL_SAFE_NO_PAD.encode(&mac[..MAC_BYTES]),
            self.code
        )
        .into_bytes()
    }

    fn mac(&self, expires: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.key.as_bytes()).expect("HMAC takes any key");
        mac.update(b"ricochet-pass-v1\0");
        mac.update(&self.link.to_le_bytes());
        mac.update(self.hash.as_bytes());
        mac.update(&expires.to_le_bytes());
        mac
    }
}

/// The password field of a submitted form.
pub fn form_password(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "password")
        .map(|(_, value)| value.into_owned())
        .filter(|password| !password.is_empty() && password.len() <= MAX_PASSWORD)
}

/// Why a check was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client used its attempts for this link this minute.
    TooMany,
    /// The verifier's queue is full.
    Busy,
}

struct Job {
    hash: Arc<str>,
    password: String,
    reply: oneshot::Sender<bool>,
}

/// The verifier thread, its queue and the attempt limits.
pub struct Verifier {
    jobs: Sender<Job>,
    limits: DefaultKeyedRateLimiter<(IpAddr, LinkId)>,
    submitted: AtomicU64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts the verifier thread (it ends when the verifier is dropped).
    pub fn start() -> std::io::Result<Arc<Self>> {
        let per_minute = NonZeroU32::new(ATTEMPTS_PER_MINUTE).expect("non-zero");
        Self::start_with(Quota::per_minute(per_minute))
    }

    /// Starts the verifier with `quota` per client.
    fn start_with(quota: Quota) -> std::io::Result<Arc<Self>> {
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("ricochet-password".into())
            .spawn(move || {
                if let Err(error) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::warn!(?error, "password checks run at normal priority");
                }
                for job in queue {
                    let ok = PasswordHash::new(&job.hash).is_ok_and(|parsed| {
                        Argon2::default()
                            .verify_password(job.password.as_bytes(), &parsed)
                            .is_ok()
                    });
                    let _ = job.reply.send(ok);
                }
            })?;
        Ok(Arc::new(Self {
            jobs,
            limits: DefaultKeyedRateLimiter::keyed(quota),
            submitted: AtomicU64::new(0),
        }))
    }

    /// Queues a check of `password` against `gate`'s hash for `client`.
    pub fn submit(
        &self,
        gate: &Gate,
        client: Option<IpAddr>,
        password: String,
    ) -> Result<oneshot::Receiver<bool>, Refused> {
        let client = client.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if self.limits.check_key(&(client, gate.link)).is_err() {
            return Err(Refused::TooMany);
        }
        if self.submitted.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.limits.retain_recent();
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            hash: gate.hash.clone(),
            password,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Refused::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;
    use argon2::password_hash::SaltString;

    fn hash(password: &str) -> String {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn passes_are_signed_scoped_and_expire() {
        let key = CookieKey::from_secret("k");
        let gate = Gate::new(&hash("open sesame"), &key, 7, "secret");
        let now = 1_800_000_000_000;
        let line = String::from_utf8(gate.pass_line(now)).unwrap();
        assert!(
            line.ends_with("; Path=/secret; Max-Age=3600; HttpOnly; SameSite=Lax\r\n"),
            "{line}"
        );
        let pair = line["Set-Cookie: ".len()..].split(';').next().unwrap();
        let header = format!("a=b; {pair}");
        assert!(gate.admits(header.as_bytes(), now));
        assert!(gate.admits(header.as_bytes(), now + 3_599_000));
        assert!(!gate.admits(header.as_bytes(), now + 3_600_000), "expired");
        let other_link = Gate::new(&hash("open sesame"), &key, 8, "secret");
        assert!(!other_link.admits(header.as_bytes(), now));
        let new_password = Gate::new(&hash("changed"), &key, 7, "secret");
        assert!(
            !new_password.admits(header.as_bytes(), now),
            "a new password revokes passes"
        );
        let forged_expiry = pair.replacen(
            &format!("{}", now / 1000 + PASS_SECS),
            &format!("{}", now / 1000 + 60),
            1,
        );
        assert!(!gate.admits(forged_expiry.as_bytes(), now));
        for junk in [
            "rc_pw=",
            "rc_pw=1.",
            "rc_pw=x.y",
            "rc_pw=99999999999999999999.AAAA",
            "",
        ] {
            assert!(!gate.admits(junk.as_bytes(), now), "{junk}");
        }
    }

    #[test]
    fn form_fields() {
        assert_eq!(form_password(b"password=a%20b&x=1").as_deref(), Some("a b"));
        assert_eq!(form_password(b"x=1"), None);
        assert_eq!(form_password(b"password="), None);
        assert_eq!(
            form_password(&[b"password=".as_slice(), &[b'a'; 2000]].concat()),
            None
        );
    }

    #[test]
    fn the_verifier_checks_and_limits_attempts() {
        // The production burst (ATTEMPTS_PER_MINUTE) refilled over an hour
        // instead of a minute: slow hashing on a busy machine cannot
        // refill a token before the last attempt.
        let burst = NonZeroU32::new(ATTEMPTS_PER_MINUTE).unwrap();
        let verifier = Verifier::start_with(Quota::per_hour(burst)).unwrap();
        let gate = Gate::new(&hash("right"), &CookieKey::from_secret("k"), 1, "c");
        let client = Some(IpAddr::from([192, 0, 2, 1]));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let check = |password: &str| {
            let answer = verifier.submit(&gate, client, password.to_owned())?;
            Ok::<bool, Refused>(runtime.block_on(answer).unwrap())
        };
        assert_eq!(check("right"), Ok(true));
        assert_eq!(check("wrong"), Ok(false));
        for _ in 2..ATTEMPTS_PER_MINUTE {
            assert_eq!(check("wrong"), Ok(false));
        }
        assert_eq!(check("right"), Err(Refused::TooMany));
        let elsewhere = verifier
            .submit(&gate, Some(IpAddr::from([192, 0, 2, 2])), "right".into())
            .unwrap();
        assert!(
            runtime.block_on(elsewhere).unwrap(),
            "other clients are not limited"
        );
    }
}
