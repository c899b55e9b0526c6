//! Request and response bodies of the REST API, with their OpenAPI schemas.
//! Request bodies refuse unknown fields; times are RFC 3339 strings.

use ricochet_model::behaviour::{Card, Rule, Variant};
use ricochet_model::{LinkRecord, LinkState};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::error::ErrorDetail;
use super::{behaviour_schema, schema};
use crate::service::utm::{self, UtmChanges};
use crate::service::verification;
use crate::service::{
    AccessChanges, BehaviourChanges, CertificateInfo, CertificateStatus, DomainChanges, DomainInfo,
    DomainRemoval, LinkChanges, NewLink, PasswordInput,
};
use crate::store::{
    AcmeState, CertificateSource, DomainVerification, VerificationMethod, VerificationStatus,
};
use ricochet_model::domain::Hsts;

/// Milliseconds since the epoch → RFC 3339.
pub fn to_datetime(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(millis as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 → milliseconds since the epoch.
pub fn to_millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Body of `POST /links` and of each `POST /links/bulk` item.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    #[schema(schema_with = schema::destination)]
    pub url: String,
    /// Domain the link lives on (registered with `POST /domains`, else 422);
    /// the default domain when absent.
    #[schema(schema_with = schema::optional_hostname)]
    pub domain: Option<String>,
    #[schema(schema_with = schema::custom_code)]
    pub code: Option<String>,
    #[schema(schema_with = schema::optional_status)]
    pub status: Option<u16>,
    /// When the link stops redirecting (engines answer 410 after it).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(schema_with = schema::optional_date_time)]
    pub expires_at: Option<OffsetDateTime>,
    /// Append the incoming query string to the destination (default false).
    pub forward_query: Option<bool>,
    #[schema(schema_with = schema::title)]
    pub title: Option<String>,
    #[schema(schema_with = schema::optional_tags)]
    pub tags: Option<Vec<String>>,
    /// UTM parameters merged into the destination's query.
    pub utm: Option<UtmInput>,
    #[schema(schema_with = behaviour_schema::rules)]
    pub rules: Option<Value>,
    #[schema(schema_with = behaviour_schema::variants)]
    pub variants: Option<Value>,
    #[schema(schema_with = behaviour_schema::fallback_url)]
    pub fallback_url: Option<Value>,
    #[schema(schema_with = behaviour_schema::card)]
    pub card: Option<Value>,
    #[schema(schema_with = behaviour_schema::ios)]
    pub ios: Option<Value>,
    #[schema(schema_with = behaviour_schema::android)]
    pub android: Option<Value>,
    /// Never shown back, logged or exported; only its Argon2id hash is kept.
    #[schema(schema_with = schema::password)]
    pub password: Option<PasswordInput>,
    #[schema(schema_with = schema::max_clicks)]
    pub max_clicks: Option<Value>,
}

/// UTM parameters of a link, written into its destination's query as
/// `utm_source=…` and so on. A value replaces a parameter of the same name
/// already in the destination; the destination's other parameters stay as
/// they are; a forwarded visitor query comes after them. On `PATCH`, `null`
/// removes a parameter and an absent field leaves it as it is.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UtmInput {
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(schema_with = schema::utm_value)]
    pub source: Option<Option<String>>,
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(schema_with = schema::utm_value)]
    pub medium: Option<Option<String>>,
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(schema_with = schema::utm_value)]
    pub campaign: Option<Option<String>>,
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(schema_with = schema::utm_value)]
    pub term: Option<Option<String>>,
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(schema_with = schema::utm_value)]
    pub content: Option<Option<String>>,
}

impl From<Option<UtmInput>> for UtmChanges {
    fn from(input: Option<UtmInput>) -> Self {
        let Some(input) = input else {
            return Self::default();
        };
        let fields = [
            ("source", input.source),
            ("medium", input.medium),
            ("campaign", input.campaign),
            ("term", input.term),
            ("content", input.content),
        ];
        Self(
            fields
                .into_iter()
                .filter_map(|(field, value)| value.map(|value| (field, value)))
                .collect(),
        )
    }
}

/// The UTM parameters a link's destination carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UtmView {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

impl UtmView {
    fn of(destination: &str) -> Self {
        let [source, medium, campaign, term, content] =
            utm::read(destination).map(|(_, value)| value);
        Self {
            source,
            medium,
            campaign,
            term,
            content,
        }
    }
}

impl From<CreateLink> for NewLink {
    fn from(input: CreateLink) -> Self {
        Self {
            url: input.url,
            domain: input.domain,
            code: input.code,
            status: input.status,
            expires_at: input.expires_at.map(to_millis),
            forward_query: input.forward_query.unwrap_or(false),
            title: input.title,
            tags: input.tags.unwrap_or_default(),
            utm: input.utm.into(),
            behaviour: BehaviourChanges {
                rules: input.rules,
                variants: input.variants,
                fallback_url: input.fallback_url,
                card: input.card,
                ios: input.ios,
                android: input.android,
            },
            access: AccessChanges {
                password: input.password,
                max_clicks: input.max_clicks,
            },
        }
    }
}

/// Body of `PATCH /links/{id}`: only the fields given change; `null` clears
/// `expires_at`, `title`, the behaviour fields (`rules`, `variants`,
/// `fallback_url`, `card`, `ios`, `android`), `password` and `max_clicks`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchLink {
    #[schema(schema_with = schema::optional_destination)]
    pub url: Option<String>,
    #[schema(schema_with = schema::optional_status)]
    pub status: Option<u16>,
    #[schema(schema_with = schema::optional_state)]
    pub state: Option<LinkState>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "optional_datetime")]
    #[schema(schema_with = schema::optional_date_time)]
    pub expires_at: Option<Option<OffsetDateTime>>,
    /// `null` removes the title.
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(schema_with = schema::title)]
    pub title: Option<Option<String>>,
    #[schema(schema_with = schema::optional_tags)]
    pub tags: Option<Vec<String>>,
    pub forward_query: Option<bool>,
    /// Applied after `url` when both are given.
    pub utm: Option<UtmInput>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = behaviour_schema::rules)]
    pub rules: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = behaviour_schema::variants)]
    pub variants: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = behaviour_schema::fallback_url)]
    pub fallback_url: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = behaviour_schema::card)]
    pub card: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = behaviour_schema::ios)]
    pub ios: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = behaviour_schema::android)]
    pub android: Option<Value>,
    /// `null` removes the protection.
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = schema::password)]
    pub password: Option<PasswordInput>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = schema::max_clicks)]
    pub max_clicks: Option<Value>,
}

impl From<PatchLink> for LinkChanges {
    fn from(patch: PatchLink) -> Self {
        Self {
            url: patch.url,
            status: patch.status,
            state: patch.state,
            expires_at: patch.expires_at.map(|at| at.map(to_millis)),
            title: patch.title,
            tags: patch.tags,
            forward_query: patch.forward_query,
            utm: patch.utm.into(),
            behaviour: BehaviourChanges {
                rules: patch.rules,
                variants: patch.variants,
                fallback_url: patch.fallback_url,
                card: patch.card,
                ios: patch.ios,
                android: patch.android,
            },
            access: AccessChanges {
                password: patch.password,
                max_clicks: patch.max_clicks,
            },
        }
    }
}

/// A field that is given, `null` included (`Some(Value::Null)`); an absent
/// one is `None` by `#[serde(default)]`.
fn given<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

pub(crate) fn optional_field<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn optional_datetime<'de, D>(deserializer: D) -> Result<Option<Option<OffsetDateTime>>, D::Error>
where
    D: Deserializer<'de>,
{
    time::serde::rfc3339::option::deserialize(deserializer).map(Some)
}

/// A link as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub id: u64,
    pub domain: String,
    #[schema(schema_with = schema::code)]
    pub code: String,
    #[schema(schema_with = schema::destination_view)]
    pub url: String,
    #[schema(schema_with = schema::status)]
    pub status: u16,
    /// `deleted` is a soft delete: `POST /links/{id}/restore` undoes it.
    #[schema(schema_with = schema::state)]
    pub state: LinkState,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(schema_with = schema::optional_date_time)]
    pub expires_at: Option<OffsetDateTime>,
    pub forward_query: bool,
    #[schema(schema_with = schema::title_view)]
    pub title: Option<String>,
    #[schema(schema_with = schema::tags_view)]
    pub tags: Vec<String>,
    /// The UTM parameters in `url`.
    pub utm: UtmView,
    #[schema(schema_with = behaviour_schema::rules_view)]
    pub rules: Vec<Rule>,
    #[schema(schema_with = behaviour_schema::variants_of_link_view)]
    pub variants: Vec<Variant>,
    /// Where the link sends visitors once it is gone; `null` when it answers 410.
    #[schema(schema_with = behaviour_schema::url_view)]
    pub fallback_url: Option<String>,
    /// What link-preview crawlers are shown; `null` when the link has no card.
    #[schema(schema_with = behaviour_schema::card_view)]
    pub card: Option<Card>,
    /// Destination for iOS visitors, or `null`.
    #[schema(schema_with = behaviour_schema::url_view)]
    pub ios: Option<String>,
    /// Destination for Android visitors, or `null`.
    #[schema(schema_with = behaviour_schema::url_view)]
    pub android: Option<String>,
    #[schema(schema_with = schema::password_protected)]
    pub password_protected: bool,
    #[schema(schema_with = schema::max_clicks_view)]
    pub max_clicks: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(schema_with = schema::date_time)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(schema_with = schema::date_time)]
    pub updated_at: OffsetDateTime,
    /// Version of the change that last wrote the link.
    pub version: u64,
    /// Set while a destination is on the installation's denylist or a
    /// threat list: the link answers a 451 page instead of redirecting.
    #[serde(default)]
    pub blocked: Option<super::denylist::BlockView>,
}

impl From<&LinkRecord> for LinkView {
    fn from(link: &LinkRecord) -> Self {
        Self {
            id: link.id,
            domain: link.domain.clone(),
            code: link.code.clone(),
            url: link.url.clone(),
            status: link.status.code(),
            state: link.state,
            expires_at: link.expires_at.map(to_datetime),
            forward_query: link.forward_query,
            title: link.title.clone(),
            tags: link.tags.clone(),
            utm: UtmView::of(&link.url),
            rules: link.extensions.rules.clone(),
            variants: link.extensions.variants.clone(),
            fallback_url: link.extensions.fallback_url.clone(),
            card: link.extensions.card.clone(),
            ios: link.extensions.ios.clone(),
            android: link.extensions.android.clone(),
            password_protected: link.extensions.password_hash.is_some(),
            max_clicks: link.extensions.click_limit,
            created_at: to_datetime(link.created_at),
            updated_at: to_datetime(link.updated_at),
            version: link.version,
            blocked: link
                .extensions
                .blocked
                .as_ref()
                .map(super::denylist::BlockView::from),
        }
    }
}

/// A page of links. A filtered listing (`q`, `tag`, `state`, `domain`)
/// examines at most 20,000 links per page, so a page can hold fewer than
/// `limit` links, even none, while `next_cursor` is set: follow it until it
/// is absent to see every match.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkList {
    pub links: Vec<LinkView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One item's outcome in a bulk call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkItem {
    /// Position in the request array.
    pub index: usize,
    /// 201 when created, else the error's status.
    pub status: u16,
    pub link: Option<LinkView>,
    pub error: Option<ErrorDetail>,
}

/// Result of `POST /links/bulk`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkResult {
    pub created: usize,
    pub failed: usize,
    pub items: Vec<BulkItem>,
}

/// Body of `POST /domains`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    #[schema(schema_with = schema::hostname)]
    pub domain: String,
}

/// A domain links can live on, with its settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DomainView {
    pub domain: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Where `/` goes; `null`: the engine's 404 page.
    #[schema(schema_with = behaviour_schema::url_view)]
    pub root_url: Option<String>,
    /// Where unknown codes go; `null`: the engine's 404 page.
    #[schema(schema_with = behaviour_schema::url_view)]
    pub not_found_url: Option<String>,
    /// The status of links created on the domain without one.
    #[schema(schema_with = schema::status)]
    pub default_status: u16,
    /// The installation's shared default domain (every workspace may use it).
    pub is_default: bool,
    /// Whether this workspace may change the settings: it registered the
    /// domain (the default domain belongs to the default workspace).
    pub owned: bool,
    /// Plain HTTP requests are sent to HTTPS (308).
    pub https_redirect: bool,
    /// The HSTS policy of HTTPS answers; `null`: none.
    pub hsts: Option<HstsView>,
    /// Where the domain's certificate stands and the one engines serve;
    /// `null`: none served and none to be ordered.
    pub certificate: Option<CertificateView>,
    /// Its proof of ownership: links and certificates need `verified`.
    pub verification: VerificationView,
    /// The last failed order of its certificate from the ACME authority
    /// (retried with backoff); `null` when none failed since the last success.
    pub certificate_order: Option<CertificateOrderView>,
}

/// A certificate order that failed, and when it is tried again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificateOrderView {
    /// Failed orders since the last success.
    pub failures: u32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl From<AcmeState> for CertificateOrderView {
    fn from(state: AcmeState) -> Self {
        Self {
            failures: state.failures,
            last_error: state.last_error,
            last_attempt_at: state.last_attempt_at.map(to_datetime),
            next_attempt_at: state.next_attempt_at.map(to_datetime),
        }
    }
}

/// Where a domain's proof of ownership stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerificationView {
    /// `pending`, `verified` or `failed`.
    #[schema(value_type = String, pattern = "^(pending|verified|failed)$")]
    pub status: VerificationStatus,
    /// `dns`, `configuration` (the default domain, or verification off),
    /// `existing` (registered before verification) or `import`.
    #[schema(value_type = String, pattern = "^(dns|configuration|existing|import)$")]
    pub method: VerificationMethod,
    /// The TXT record to create; `null` when the domain was not verified by DNS.
    pub record: Option<TxtRecordView>,
    /// Checks made (at most 10 before the verification must be restarted).
    pub attempts: u32,
    /// When a pending verification stops being checked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_checked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_check_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub verified_at: Option<OffsetDateTime>,
    /// Why the last check failed.
    pub failure: Option<String>,
    /// A verified domain whose record a daily check no longer found, since
    /// when: the domain keeps working; restore the record.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub record_missing_since: Option<OffsetDateTime>,
}

/// A DNS record to create.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TxtRecordView {
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub value: String,
}

impl From<DomainVerification> for VerificationView {
    fn from(verification: DomainVerification) -> Self {
        let by_dns = verification.method == VerificationMethod::Dns;
        Self {
            record: None,
            expires_at: (by_dns && !verification.is_verified())
                .then(|| to_datetime(verification::expires_at(&verification))),
            status: verification.status,
            method: verification.method,
            attempts: verification.attempts,
            last_checked_at: verification.last_checked_at.map(to_datetime),
            next_check_at: verification.next_check_at.map(to_datetime),
            verified_at: verification.verified_at.map(to_datetime),
            failure: verification.failure,
            record_missing_since: verification.record_missing_since.map(to_datetime),
        }
    }
}

impl From<DomainInfo> for DomainView {
    fn from(info: DomainInfo) -> Self {
        Self {
            created_at: to_datetime(info.created_at),
            root_url: info.settings.root_url,
            not_found_url: info.settings.not_found_url,
            default_status: info.settings.default_status.code(),
            is_default: info.is_default,
            owned: info.owned,
            https_redirect: info.settings.https_redirect,
            hsts: info.settings.hsts.map(HstsView::from),
            certificate: info.certificate_status.map(|status| {
                CertificateView::new(status, info.certificate, info.certificate_order.as_ref())
            }),
            verification: {
                let by_dns = info.verification.method == VerificationMethod::Dns;
                let record = by_dns.then(|| TxtRecordView {
                    kind: "TXT".into(),
                    name: verification::record_name(&info.name),
                    value: verification::record_value(&info.verification.token),
                });
                VerificationView {
                    record,
                    ..VerificationView::from(info.verification)
                }
            },
            certificate_order: info.certificate_order.map(CertificateOrderView::from),
            domain: info.name,
        }
    }
}

/// Body of `PATCH /domains/{domain}`: absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchDomain {
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(schema_with = behaviour_schema::root_url)]
    pub root_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(schema_with = behaviour_schema::not_found_url)]
    pub not_found_url: Option<Option<String>>,
    #[schema(schema_with = schema::default_status)]
    pub default_status: Option<u16>,
    /// Send plain HTTP requests for the domain to HTTPS (308), except ACME
    /// HTTP-01 challenges.
    pub https_redirect: Option<bool>,
    /// The `Strict-Transport-Security` policy of HTTPS answers; `null`
    /// switches it off.
    #[serde(default, deserialize_with = "optional_field")]
    pub hsts: Option<Option<HstsView>>,
}

impl From<PatchDomain> for DomainChanges {
    fn from(patch: PatchDomain) -> Self {
        Self {
            root_url: patch.root_url,
            not_found_url: patch.not_found_url,
            default_status: patch.default_status,
            https_redirect: patch.https_redirect,
            hsts: patch.hsts.map(|hsts| hsts.map(Hsts::from)),
        }
    }
}

/// An HSTS policy (RFC 6797).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HstsView {
    /// Seconds browsers keep to HTTPS only: 0 to 63,072,000 (two years).
    #[schema(minimum = 0, maximum = 63_072_000)]
    pub max_age: u32,
    #[serde(default)]
    pub include_subdomains: bool,
    /// Needs `include_subdomains` and a `max_age` of at least 31,536,000.
    #[serde(default)]
    pub preload: bool,
}

impl From<HstsView> for Hsts {
    fn from(view: HstsView) -> Self {
        Self {
            max_age: view.max_age,
            include_subdomains: view.include_subdomains,
            preload: view.preload,
        }
    }
}

impl From<Hsts> for HstsView {
    fn from(hsts: Hsts) -> Self {
        Self {
            max_age: hsts.max_age,
            include_subdomains: hsts.include_subdomains,
            preload: hsts.preload,
        }
    }
}

/// Where a domain's certificate stands, and the certificate engines serve
/// (its key is never shown).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificateView {
    /// `valid` (served, not expired), `expired` (served, past `not_after`),
    /// `pending` (to be issued by the ACME authority) or `failed` (none
    /// served, the last order failed: see `last_error`).
    #[schema(pattern = "^(valid|expired|pending|failed)$")]
    pub status: String,
    /// `uploaded` or `acme`; `null` while none is served.
    #[schema(value_type = Option<String>, pattern = "^(uploaded|acme)$")]
    pub source: Option<CertificateSource>,
    /// The DNS names the certificate is valid for.
    pub names: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_after: Option<OffsetDateTime>,
    /// The issuer's distinguished name.
    pub issuer: Option<String>,
    /// The serial number (hexadecimal); empty for certificates stored before
    /// it was kept.
    pub serial: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<OffsetDateTime>,
    /// Why the last order (or renewal) from the ACME authority failed;
    /// `null` when none failed since the last success.
    pub last_error: Option<String>,
    /// When a failed order is tried again.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl CertificateView {
    fn new(
        status: CertificateStatus,
        served: Option<CertificateInfo>,
        order: Option<&AcmeState>,
    ) -> Self {
        let (source, names, not_before, not_after, issuer, serial, updated_at) = match served {
            Some(info) => (
                Some(info.source),
                info.names,
                Some(to_datetime(info.not_before)),
                Some(to_datetime(info.not_after)),
                Some(info.issuer),
                Some(info.serial),
                Some(to_datetime(info.updated_at)),
            ),
            None => (None, Vec::new(), None, None, None, None, None),
        };
        Self {
            status: status.as_str().to_owned(),
            source,
            names,
            not_before,
            not_after,
            issuer,
            serial,
            updated_at,
            last_error: order.and_then(|order| order.last_error.clone()),
            next_attempt_at: order.and_then(|order| order.next_attempt_at.map(to_datetime)),
        }
    }

    /// A served certificate's view (the default certificate's).
    fn served(info: CertificateInfo) -> Self {
        let status = CertificateStatus::of_served(info.not_after, ricochet_model::now_millis());
        Self::new(status, Some(info), None)
    }
}

/// What `DELETE /domains/{domain}` did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DomainRemoved {
    pub domain: String,
    /// Links removed with the domain (with `purge_links=true`).
    pub links_purged: u64,
    /// Whether the certificate the ACME authority issued for the domain is
    /// being revoked (in the background, retried until the authority has
    /// it or it expires).
    pub certificate_revocation_queued: bool,
}

impl From<DomainRemoval> for DomainRemoved {
    fn from(removal: DomainRemoval) -> Self {
        Self {
            domain: removal.name,
            links_purged: removal.links_purged,
            certificate_revocation_queued: removal.revocation_queued,
        }
    }
}

/// The default certificate (`GET|PUT /certificates/default`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DefaultCertificate {
    /// `null` when none is set.
    pub certificate: Option<CertificateView>,
}

impl From<Option<CertificateInfo>> for DefaultCertificate {
    fn from(info: Option<CertificateInfo>) -> Self {
        Self {
            certificate: info.map(CertificateView::served),
        }
    }
}

/// Body of `PUT /domains/{domain}/certificate` and
/// `PUT /certificates/default`: PEM text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadCertificate {
    /// The chain, leaf first, as PEM `CERTIFICATE` blocks (at most 64 KiB).
    #[schema(max_length = 65536)]
    pub certificate: String,
    /// The leaf's private key as PEM (PKCS#8, SEC1 or PKCS#1; at most 64 KiB).
    #[schema(max_length = 65536)]
    pub private_key: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DomainList {
    pub domains: Vec<DomainView>,
}
