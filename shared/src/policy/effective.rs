//! The settings a compliant client is provisioned with, once every governing policy has
//! had its say: the most restrictive value wins.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compiled::CompiledPolicy;
use crate::duration::Lifetime;
use crate::resources::{AuthClient, ClientAuthMethod, ClientType, GrantType};

/// What the provider is told about a client.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveSettings {
    /// The scopes the client may request.
    pub scopes: Vec<String>,
    /// The grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Registered redirect URIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Confidential or Public.
    pub client_type: ClientType,
    /// How the client authenticates to the token endpoint.
    pub token_endpoint_auth_method: ClientAuthMethod,
    /// Whether the authorization code flow requires PKCE.
    #[serde(rename = "requirePKCE")]
    pub require_pkce: bool,
    /// Access token lifetime; absent: the provider's default.
    #[serde(
        default,
        rename = "accessTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_token_ttl: Option<Lifetime>,
    /// Refresh token lifetime; absent: the provider's default.
    #[serde(
        default,
        rename = "refreshTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token_ttl: Option<Lifetime>,
    /// ID token lifetime; absent: the provider's default.
    #[serde(
        default,
        rename = "idTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_token_ttl: Option<Lifetime>,
    /// When the client secret is rotated (cron); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_rotation_schedule: Option<String>,
    /// The Secret that receives the credentials.
    pub secret_name: String,
    /// The client's key set, for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

/// One setting that differs between two versions of a client's effective settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    /// The setting's name, as in `status.effective`.
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

impl std::fmt::Display for SettingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} → {}", self.field, self.old, self.new)
    }
}

/// The Secret name a client gets when it names none.
pub fn default_secret_name(client_name: &str) -> String {
    format!("{client_name}-client-secret")
}

/// Merges the client's request with its governing policies (all of which it complies with,
/// or audits only): shortest lifetimes, PKCE if any policy wants it, the most frequent
/// rotation.
pub(crate) fn effective_settings(
    client: &AuthClient,
    governing: &[&CompiledPolicy],
) -> EffectiveSettings {
    let spec = &client.spec;
    let shortest = |lifetime: fn(&CompiledPolicy) -> Option<Lifetime>| {
        governing.iter().filter_map(|p| lifetime(p)).min()
    };
    let uses_code_flow = spec.grant_types.contains(&GrantType::AuthorizationCode);
    let token_endpoint_auth_method = match spec.client_type {
        ClientType::Public => ClientAuthMethod::None,
        ClientType::Confidential => governing
            .iter()
            .find_map(|policy| policy.auth_method)
            .unwrap_or(ClientAuthMethod::ClientSecretBasic),
    };
    let secret_rotation_schedule = governing
        .iter()
        .filter_map(|policy| policy.secret_rotation.as_ref())
        .max_by_key(|rotation| rotation.fires_per_week)
        .filter(|_| spec.client_type == ClientType::Confidential)
        .map(|rotation| rotation.schedule.clone());
    EffectiveSettings {
        scopes: spec.scopes.clone(),
        grant_types: spec.grant_types.clone(),
        redirect_uris: spec.redirect_uris.clone(),
        post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
        client_type: spec.client_type,
        token_endpoint_auth_method,
        require_pkce: uses_code_flow
            && (spec.client_type == ClientType::Public
                || governing.iter().any(|policy| policy.enforce_pkce)),
        access_token_ttl: shortest(|p| p.access_token_ttl),
        refresh_token_ttl: shortest(|p| p.refresh_token_ttl),
        id_token_ttl: shortest(|p| p.id_token_ttl),
        secret_rotation_schedule,
        secret_name: spec.secret_name.clone().unwrap_or_else(|| {
            default_secret_name(&client.metadata.name.clone().unwrap_or_default())
        }),
        jwks_uri: spec.jwks_uri.clone(),
    }
}

/// The settings that differ, each as `field old → new`; unchanged ones are left out.
pub fn setting_changes(old: &EffectiveSettings, new: &EffectiveSettings) -> Vec<SettingChange> {
    fn list<T: AsRef<str>>(items: &[T]) -> String {
        if items.is_empty() {
            "(none)".to_owned()
        } else {
            items
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
    fn lifetime(value: Option<Lifetime>) -> String {
        value.map_or_else(
            || "(provider default)".to_owned(),
            |lifetime| lifetime.to_string(),
        )
    }
    let grants =
        |s: &EffectiveSettings| list(&s.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>());
    let client_type = |s: &EffectiveSettings| format!("{:?}", s.client_type);
    let rotation = |s: &EffectiveSettings| {
        s.secret_rotation_schedule
            .clone()
            .unwrap_or_else(|| "(never)".to_owned())
    };
    let jwks = |s: &EffectiveSettings| s.jwks_uri.clone().unwrap_or_else(|| "(none)".to_owned());
    let rows: [(&'static str, String, String); 13] = [
        (
            "accessTokenTTL",
            lifetime(old.access_token_ttl),
            lifetime(new.access_token_ttl),
        ),
        (
            "refreshTokenTTL",
            lifetime(old.refresh_token_ttl),
            lifetime(new.refresh_token_ttl),
        ),
        (
            "idTokenTTL",
            lifetime(old.id_token_ttl),
            lifetime(new.id_token_ttl),
        ),
        (
            "requirePKCE",
            old.require_pkce.to_string(),
            new.require_pkce.to_string(),
        ),
        (
            "tokenEndpointAuthMethod",
            old.token_endpoint_auth_method.as_str().into(),
            new.token_endpoint_auth_method.as_str().into(),
        ),
        ("secretRotationSchedule", rotation(old), rotation(new)),
        ("scopes", list(&old.scopes), list(&new.scopes)),
        ("grantTypes", grants(old), grants(new)),
        (
            "redirectUris",
            list(&old.redirect_uris),
            list(&new.redirect_uris),
        ),
        (
            "postLogoutRedirectUris",
            list(&old.post_logout_redirect_uris),
            list(&new.post_logout_redirect_uris),
        ),
        ("clientType", client_type(old), client_type(new)),
        (
            "secretName",
            old.secret_name.clone(),
            new.secret_name.clone(),
        ),
        ("jwksUri", jwks(old), jwks(new)),
    ];
    rows.into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| SettingChange { field, old, new })
        .collect()
}
