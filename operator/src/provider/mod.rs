//! How the operator talks to an OIDC provider: OAuth 2.0 Dynamic Client Registration
//! (RFC 7591) with its management protocol (RFC 7592), in [`dcr`]; the metadata both ways
//! in [`metadata`]; discovery documents cached per issuer in [`discovery`].
//!
//! Lifetimes and PKCE have no standard registration metadata; Nauthera sends them as
//! these documented extensions, in seconds and as a boolean:
//! `nauthera_access_token_ttl`, `nauthera_refresh_token_ttl`, `nauthera_id_token_ttl`,
//! `nauthera_require_pkce`. A provider that does not know them ignores them (RFC 7591
//! §2) and applies its own defaults; the operator then reports them as settings that
//! provider does not hold.

pub mod dcr;
pub mod discovery;
pub mod metadata;

pub use metadata::{ClientMetadata, Comparison, HeldMetadata};

use secrecy::SecretString;

/// What the provider answered to a registration: the credentials, and how to manage it.
#[derive(Debug)]
pub struct Registration {
    pub client_id: String,
    /// Absent for public clients.
    pub client_secret: Option<SecretString>,
    pub management: Management,
}

/// How to read, update and delete a registration later (RFC 7592): kept where the
/// client's team cannot read it, since whoever holds it can rewrite the registration.
#[derive(Debug, Clone)]
pub struct Management {
    pub registration_client_uri: String,
    pub registration_access_token: SecretString,
}

/// A registration as the provider answered a read or an update of it.
#[derive(Debug)]
pub struct Answer {
    /// The metadata the provider says it holds.
    pub held: HeldMetadata,
    /// The client secret, when the answer carries one: some providers issue a new one on
    /// every update, and the old one stops working at once.
    pub client_secret: Option<SecretString>,
    /// The registration access token, when the answer carries one: RFC 7592 §3 lets a
    /// provider rotate it on any read or update. Absent: the stored one stays valid.
    pub registration_access_token: Option<SecretString>,
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Removed,
    /// The provider no longer knew the registration.
    AlreadyGone,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Could not be reached, or answered 5xx or 429: retry later, keep everything.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The request was sent but its answer was lost (a timeout, a dropped connection):
    /// the provider may have acted on it.
    #[error("the provider's answer was lost; it may have acted on the request: {0}")]
    AnswerLost(String),
    /// The provider says the registration does not exist: 404, or 401 on a management
    /// call, which RFC 7592 §2.1 prescribes for a client it no longer knows.
    #[error("the provider no longer knows this registration (HTTP {status})")]
    Gone { status: u16 },
    /// 403 on a management call: the registration may well exist; the provider will not
    /// let Nauthera touch it.
    #[error("the provider refused to let the registration be managed (HTTP 403): {detail}")]
    Forbidden { detail: String },
    /// The initial access token was refused at registration.
    #[error("the provider refused the initial access token: {detail}")]
    Unauthorized { detail: String },
    /// The provider refused the metadata (RFC 7591 §3.2.2).
    #[error("the provider refused the client metadata: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        error: String,
        description: Option<String>,
    },
    /// The provider answered something the driver cannot use.
    #[error("the provider answered out of protocol: {0}")]
    Protocol(String),
    /// The provider said a registration succeeded (2xx) but its answer cannot be used: a
    /// client may exist there that Nauthera cannot manage. Never retried blindly.
    #[error("the provider registered a client but its answer cannot be used: {0}")]
    RegisteredUnusable(String),
}

impl ProviderError {
    /// Whether the provider may have made a registration despite the error: its intent
    /// stays recorded, so the next attempt reports it.
    pub fn may_have_registered(&self) -> bool {
        matches!(self, Self::AnswerLost(_) | Self::RegisteredUnusable(_))
    }

    /// Whether waiting and trying again can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::AnswerLost(_))
    }

    /// The condition reason this error is reported under.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Unavailable(_) | Self::AnswerLost(_) => "ProviderUnavailable",
            Self::Gone { .. } => "ProviderLostRegistration",
            Self::Forbidden { .. } => "ProviderForbidden",
            Self::Unauthorized { .. } => "InitialAccessTokenRefused",
            Self::Rejected { .. } => "ProviderRejected",
            Self::Protocol(_) | Self::RegisteredUnusable(_) => "ProviderProtocolError",
        }
    }
}
