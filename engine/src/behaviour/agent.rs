//! User agents into what rules and cards ask about: device class, OS
//! family, browser family and whether the client is a crawler. Parsing goes
//! through the same classifier click enrichment uses (uap-core regexes,
//! about 15 µs a parse); answers are cached per worker thread, and user
//! agents repeat, so a worker parses each one once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use foldhash::fast::RandomState;
use ricochet_model::behaviour::{Device, Os};

use crate::clicks::enrich::classify;

/// User agents cached per worker thread before the cache starts over.
const CACHE: usize = 20_000;
/// Longest user agent looked at (longer ones are cut, as clicks cut them).
const MAX_USER_AGENT: usize = 512;

/// What rules and cards know about a client from its user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UaClass {
    /// `None` for bots.
    pub device: Option<Device>,
    pub os: Option<Os>,
    /// The browser family, lowercase (`chrome mobile`, `firefox`).
    pub browser: Box<str>,
    /// A link-preview fetcher or a search spider.
    pub crawler: bool,
}

impl UaClass {
    /// Whether the browser family is `wanted` (lowercase) or has it as a
    /// word: `chrome` matches `chrome mobile` and `chrome mobile ios`,
    /// `safari` matches `mobile safari`.
    pub fn browser_is(&self, wanted: &str) -> bool {
        *self.browser == *wanted
            || (self.browser.len() > wanted.len() && self.browser.split(' ').any(|w| w == wanted))
    }
}

thread_local! {
    static CLASSES: RefCell<HashMap<Box<[u8]>, Rc<UaClass>, RandomState>> =
        RefCell::new(HashMap::default());
}

/// Compiles the user-agent rules on a thread of their own, so the first
/// request that needs them (after a start) does not wait for it.
pub fn warm_up() {
    let _ = std::thread::Builder::new()
        .name("ricochet-ua-rules".into())
        .spawn(|| classify("Mozilla/5.0"));
}

/// The class of `user_agent`, from this thread's cache when seen before.
pub fn class_of(user_agent: &[u8]) -> Rc<UaClass> {
    let user_agent = &user_agent[..user_agent.len().min(MAX_USER_AGENT)];
    CLASSES.with(|cache| {
        if let Some(class) = cache.borrow().get(user_agent) {
            return class.clone();
        }
        let class = Rc::new(classify_uncached(user_agent));
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(Box::from(user_agent), class.clone());
        class
    })
}

fn classify_uncached(user_agent: &[u8]) -> UaClass {
    let agent = classify(&String::from_utf8_lossy(user_agent));
    let device = match &*agent.device {
        "mobile" => Some(Device::Mobile),
        "tablet" => Some(Device::Tablet),
        "desktop" => Some(Device::Desktop),
        _ => None,
    };
    UaClass {
        device,
        os: os_family(&agent.os),
        browser: agent.browser.to_lowercase().into_boxed_str(),
        crawler: agent.crawler,
    }
}

/// uap-core's OS names into the families rules name.
fn os_family(name: &str) -> Option<Os> {
    const LINUXES: &[&str] = &[
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "SUSE",
        "openSUSE",
        "Gentoo",
        "Mint",
        "Linux Mint",
        "Arch Linux",
        "Kubuntu",
        "Xubuntu",
        "Mageia",
        "CentOS",
        "Slackware",
        "Mandriva",
        "PCLinuxOS",
        "Chrome OS",
        "ChromeOS",
    ];
    match name {
        "iOS" | "iPadOS" => Some(Os::Ios),
        "Android" => Some(Os::Android),
        "Mac OS X" | "Mac OS" | "macOS" => Some(Os::Macos),
        _ if name.starts_with("Windows") && name != "Windows Phone" => Some(Os::Windows),
        _ if LINUXES.contains(&name) => Some(Os::Linux),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPHONE: &[u8] = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const ANDROID_CHROME: &[u8] = b"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
    const WINDOWS_FIREFOX: &[u8] =
        b"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0";
    const MAC_SAFARI: &[u8] = b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
    const LINUX_CHROME: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    const IPAD: &[u8] = b"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

    #[test]
    fn devices_systems_and_browsers() {
        type Case<'a> = (&'a [u8], Option<Device>, Option<Os>, &'a str);
        let cases: [Case<'_>; 6] = [
            (IPHONE, Some(Device::Mobile), Some(Os::Ios), "safari"),
            (
                ANDROID_CHROME,
                Some(Device::Mobile),
                Some(Os::Android),
                "chrome",
            ),
            (
                WINDOWS_FIREFOX,
                Some(Device::Desktop),
                Some(Os::Windows),
                "firefox",
            ),
            (MAC_SAFARI, Some(Device::Desktop), Some(Os::Macos), "safari"),
            (
                LINUX_CHROME,
                Some(Device::Desktop),
                Some(Os::Linux),
                "chrome",
            ),
            (IPAD, Some(Device::Tablet), Some(Os::Ios), "safari"),
        ];
        for (ua, device, os, browser) in cases {
            let class = class_of(ua);
            let name = String::from_utf8_lossy(ua);
            assert_eq!(class.device, device, "{name}");
            assert_eq!(class.os, os, "{name}");
            assert!(class.browser_is(browser), "{name}: {}", class.browser);
            assert!(!class.crawler, "{name}");
        }
        assert!(!class_of(WINDOWS_FIREFOX).browser_is("chrome"));
    }

    #[test]
    fn crawlers_are_told_from_tools() {
        for crawler in [
            &b"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"[..],
            b"Twitterbot/1.0",
            b"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            b"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            b"WhatsApp/2.23.20.0",
            b"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            b"TelegramBot (like TwitterBot)",
            b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ] {
            let class = class_of(crawler);
            assert!(class.crawler, "{}", String::from_utf8_lossy(crawler));
            assert_eq!(class.device, None);
        }
        for tool in [&b"curl/8.5.0"[..], b"python-requests/2.31", b""] {
            assert!(!class_of(tool).crawler, "{}", String::from_utf8_lossy(tool));
        }
    }

    #[test]
    fn the_cache_answers_the_same() {
        let first = class_of(IPHONE);
        let second = class_of(IPHONE);
        assert!(Rc::ptr_eq(&first, &second));
    }
}
