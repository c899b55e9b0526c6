//! User agents into device type, browser, OS and a bot flag: uap-core
//! regexes through `ua-parser`, `isbot` for tools, and a list of link-preview
//! fetchers (counted as bots).

use super::*;

/// Fetchers that unfurl links in chats and feeds: counted as bots.
const PREVIEW_FETCHERS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "twitterbot",
    "facebookexternalhit",
    "facebookcatalog",
    "whatsapp",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "skypeuripreview",
    "pinterestbot",
    "redditbot",
    "embedly",
    "applebot",
    "mastodon",
    "iframely",
    "vkshare",
    "google-pagerenderer",
];

/// A parsed user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub bot: bool,
    /// A link-preview fetcher or a search spider: shown a link's card.
    /// Tools (curl, HTTP libraries) are bots but not crawlers.
    pub crawler: bool,
    pub device: Arc<str>,
    pub browser: Arc<str>,
    pub os: Arc<str>,
}

/// The shared, compiled user-agent rules (built once: compiling takes a while).
struct AgentRules {
    extractor: ua_parser::Extractor<'static>,
    tools: isbot::Bots,
}

fn rules() -> &'static AgentRules {
    static RULES: OnceLock<AgentRules> = OnceLock::new();
    RULES.get_or_init(|| {
        static DATA: &str = include_str!("../../../data/uap-regexes.json");
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(DATA).expect("the embedded uap-core regexes parse");
        AgentRules {
            extractor: ua_parser::Extractor::try_from(regexes)
                .expect("the embedded uap-core regexes compile"),
            tools: isbot::Bots::default(),
        }
    })
}

/// Classifies a user agent (uncached).
pub fn classify(user_agent: &str) -> Agent {
    let rules = rules();
    let (browser, os, device) = rules.extractor.extract(user_agent);
    let lower = user_agent.to_ascii_lowercase();
    let device_family = device
        .as_ref()
        .map(|d| d.device.as_ref())
        .unwrap_or("Other");
    let crawler =
        device_family == "Spider" || PREVIEW_FETCHERS.iter().any(|name| lower.contains(name));
    let bot = crawler || user_agent.trim().is_empty() || rules.tools.is_bot(user_agent);
    let os_name = os.as_ref().map(|o| o.os.as_ref()).unwrap_or("Other");
    let device_type = if bot {
        "bot"
    } else if device_family.contains("iPad")
        || lower.contains("tablet")
        || (os_name == "Android" && !lower.contains("mobile"))
    {
        "tablet"
    } else if matches!(os_name, "iOS" | "Android" | "Windows Phone") || lower.contains("mobile") {
        "mobile"
    } else {
        "desktop"
    };
    Agent {
        bot,
        crawler,
        device: Arc::from(device_type),
        browser: Arc::from(
            browser
                .map(|b| b.family.into_owned())
                .unwrap_or_else(|| "Other".to_owned())
                .as_str(),
        ),
        os: Arc::from(os_name),
    }
}
