//! How the operator talks to an OIDC provider: a small trait, so reconciling does not
//! care which provider it is, and its first implementation, OAuth 2.0 Dynamic Client
//! Registration (RFC 7591) with its management protocol (RFC 7592), in [`dcr`].
//!
//! Lifetimes and PKCE have no standard registration metadata; Nauthera sends them as
//! these documented extensions, in seconds and as a boolean:
//! `nauthera_access_token_ttl`, `nauthera_refresh_token_ttl`, `nauthera_id_token_ttl`,
//! `nauthera_require_pkce`. A provider that does not know them ignores them (RFC 7591
//! §2) and applies its own defaults.

pub mod dcr;

use std::future::Future;

use nauthera_shared::policy::EffectiveSettings;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// What is registered for a client: the effective settings, in RFC 7591 terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    /// Space-separated, as RFC 7591 §2 has it.
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nauthera_access_token_ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nauthera_refresh_token_ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nauthera_id_token_ttl: Option<u64>,
    #[serde(default)]
    pub nauthera_require_pkce: bool,
}

impl ClientMetadata {
    /// The registration of a client with these effective settings.
    pub fn from_settings(client_name: &str, settings: &EffectiveSettings) -> Self {
        let grant_types: Vec<String> = settings
            .grant_types
            .iter()
            .map(|grant| grant.as_str().to_owned())
            .collect();
        let response_types = if grant_types.iter().any(|g| g == "authorization_code") {
            vec!["code".to_owned()]
        } else {
            Vec::new()
        };
        let seconds = |lifetime: Option<nauthera_shared::duration::Lifetime>| {
            lifetime.map(|l| l.as_secs().max(1))
        };
        Self {
            client_name: client_name.to_owned(),
            redirect_uris: settings.redirect_uris.clone(),
            post_logout_redirect_uris: settings.post_logout_redirect_uris.clone(),
            grant_types,
            response_types,
            token_endpoint_auth_method: settings.token_endpoint_auth_method.as_str().to_owned(),
            scope: settings.scopes.join(" "),
            jwks_uri: settings.jwks_uri.clone(),
            nauthera_access_token_ttl: seconds(settings.access_token_ttl),
            nauthera_refresh_token_ttl: seconds(settings.refresh_token_ttl),
            nauthera_id_token_ttl: seconds(settings.id_token_ttl),
            nauthera_require_pkce: settings.require_pkce,
        }
    }

    /// Whether `registered` (as the provider reports it) already says what this says.
    /// Only the fields Nauthera sets are compared: providers add their own defaults.
    pub fn agrees_with(&self, registered: &Self) -> bool {
        let mut ours = self.clone();
        let mut theirs = registered.clone();
        for metadata in [&mut ours, &mut theirs] {
            metadata.redirect_uris.sort();
            metadata.post_logout_redirect_uris.sort();
            metadata.grant_types.sort();
            metadata.response_types.sort();
            let mut scopes: Vec<&str> = metadata.scope.split_whitespace().collect();
            scopes.sort_unstable();
            metadata.scope = scopes.join(" ");
        }
        ours == theirs
    }
}

/// What the provider answered to a registration: the credentials, and how to manage it.
#[derive(Debug)]
pub struct Registration {
    pub client_id: String,
    /// Absent for public clients.
    pub client_secret: Option<SecretString>,
    pub management: Management,
    /// The metadata as the provider holds it.
    pub metadata: ClientMetadata,
}

/// How to read, update and delete a registration later (RFC 7592): kept where the
/// client's team cannot read it, since whoever holds it can rewrite the registration.
#[derive(Debug, Clone)]
pub struct Management {
    pub registration_client_uri: String,
    pub registration_access_token: SecretString,
}

/// A registration as the provider holds it now.
#[derive(Debug)]
pub struct Registered {
    pub metadata: ClientMetadata,
    /// The registration access token, when the provider answered with one: it may have
    /// rotated it, and only the newest one works from now on.
    pub rotated_token: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Could not be reached, or answered 5xx: retry later, keep everything as it is.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// A token was refused (initial access token, registration access token).
    #[error("the provider refused the {token}: {detail}")]
    Unauthorized { token: &'static str, detail: String },
    /// The registration does not exist (any more).
    #[error("the registration does not exist at the provider")]
    NotFound,
    /// The provider refused the metadata (RFC 7591 §3.2.2).
    #[error("the provider refused the client metadata: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        error: String,
        description: Option<String>,
    },
    /// The provider answered something that is not the protocol.
    #[error("the provider answered out of protocol: {0}")]
    Protocol(String),
}

impl ProviderError {
    /// Whether waiting and trying again can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A provider that registers clients. Each call is one round trip (or a few); none keeps
/// state between calls, so the operator can restart at any point.
pub trait ProviderDriver: Send + Sync {
    fn register(
        &self,
        metadata: &ClientMetadata,
    ) -> impl Future<Output = Result<Registration, ProviderError>> + Send;

    fn read(
        &self,
        management: &Management,
    ) -> impl Future<Output = Result<Registered, ProviderError>> + Send;

    /// Replaces the registration's metadata; the client keeps its id and secret.
    fn update(
        &self,
        management: &Management,
        metadata: &ClientMetadata,
    ) -> impl Future<Output = Result<Registered, ProviderError>> + Send;

    /// Deletes the registration; one already gone counts as deleted.
    fn delete(
        &self,
        management: &Management,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
}
