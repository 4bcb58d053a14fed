//! The settings a compliant client is provisioned with, once every governing policy has
//! had its say: the most restrictive value wins.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compiled::CompiledPolicy;
use super::rules::authentication_method;
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
    /// How long old credentials keep working after a rotation; present with a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_rotation_overlap: Option<Lifetime>,
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

/// The settings the governing policies decide, as opposed to those the client asks for.
/// A policy edit can only change these, so previews compare just these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyDecided<'p> {
    access_token_ttl: Option<Lifetime>,
    refresh_token_ttl: Option<Lifetime>,
    id_token_ttl: Option<Lifetime>,
    require_pkce: bool,
    token_endpoint_auth_method: ClientAuthMethod,
    secret_rotation_schedule: Option<&'p str>,
    secret_rotation_overlap: Option<Lifetime>,
}

/// Merges the governing policies (all of which the client complies with, or audits only):
/// shortest lifetimes, PKCE if any policy wants it, the most frequent rotation, the
/// authentication method of [`authentication_method`].
pub(crate) fn decide<'p>(
    client: &AuthClient,
    governing: &[&'p CompiledPolicy],
) -> PolicyDecided<'p> {
    let spec = &client.spec;
    let shortest = |lifetime: fn(&CompiledPolicy) -> Option<Lifetime>| {
        governing.iter().filter_map(|p| lifetime(p)).min()
    };
    let uses_code_flow = spec.grant_types.contains(&GrantType::AuthorizationCode);
    let token_endpoint_auth_method = authentication_method(client, governing).method;
    // Only a client that authenticates with its secret has one to rotate: not a Public
    // client, nor one that signs with its own key.
    let uses_a_secret = spec.client_type == ClientType::Confidential
        && matches!(
            token_endpoint_auth_method,
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
        );
    let rotations = || {
        governing
            .iter()
            .filter_map(|policy| policy.secret_rotation.as_ref())
            .filter(|_| uses_a_secret)
    };
    let secret_rotation_schedule = rotations()
        .max_by_key(|rotation| rotation.fires_per_week)
        .map(|rotation| rotation.schedule.as_str());
    // The old credentials live on for the shortest overlap any rotating policy allows.
    let secret_rotation_overlap = rotations().map(|rotation| rotation.overlap).min();
    PolicyDecided {
        access_token_ttl: shortest(|p| p.access_token_ttl),
        refresh_token_ttl: shortest(|p| p.refresh_token_ttl),
        id_token_ttl: shortest(|p| p.id_token_ttl),
        require_pkce: uses_code_flow
            && (spec.client_type == ClientType::Public
                || governing.iter().any(|policy| policy.enforce_pkce)),
        token_endpoint_auth_method,
        secret_rotation_schedule,
        secret_rotation_overlap,
    }
}

impl PolicyDecided<'_> {
    /// Whether `settings` already hold what the policies decide.
    pub(crate) fn agrees_with(&self, settings: &EffectiveSettings) -> bool {
        self.access_token_ttl == settings.access_token_ttl
            && self.refresh_token_ttl == settings.refresh_token_ttl
            && self.id_token_ttl == settings.id_token_ttl
            && self.require_pkce == settings.require_pkce
            && self.token_endpoint_auth_method == settings.token_endpoint_auth_method
            && self.secret_rotation_schedule == settings.secret_rotation_schedule.as_deref()
            && self.secret_rotation_overlap == settings.secret_rotation_overlap
    }

    /// How what the policies decide differs from `before`, in the terms and order of
    /// [`setting_changes`]; the client's own settings are taken as unchanged.
    pub(crate) fn changes_from(&self, before: &EffectiveSettings) -> Vec<SettingChange> {
        let mut changes = Vec::new();
        let mut note =
            |field, differs: bool, old: &dyn Fn() -> String, new: &dyn Fn() -> String| {
                if differs {
                    changes.push(SettingChange {
                        field,
                        old: old(),
                        new: new(),
                    });
                }
            };
        note(
            "accessTokenTTL",
            self.access_token_ttl != before.access_token_ttl,
            &|| lifetime(before.access_token_ttl),
            &|| lifetime(self.access_token_ttl),
        );
        note(
            "refreshTokenTTL",
            self.refresh_token_ttl != before.refresh_token_ttl,
            &|| lifetime(before.refresh_token_ttl),
            &|| lifetime(self.refresh_token_ttl),
        );
        note(
            "idTokenTTL",
            self.id_token_ttl != before.id_token_ttl,
            &|| lifetime(before.id_token_ttl),
            &|| lifetime(self.id_token_ttl),
        );
        note(
            "requirePKCE",
            self.require_pkce != before.require_pkce,
            &|| before.require_pkce.to_string(),
            &|| self.require_pkce.to_string(),
        );
        note(
            "tokenEndpointAuthMethod",
            self.token_endpoint_auth_method != before.token_endpoint_auth_method,
            &|| before.token_endpoint_auth_method.as_str().to_owned(),
            &|| self.token_endpoint_auth_method.as_str().to_owned(),
        );
        note(
            "secretRotationSchedule",
            self.secret_rotation_schedule != before.secret_rotation_schedule.as_deref(),
            &|| or(before.secret_rotation_schedule.as_deref(), "(never)"),
            &|| or(self.secret_rotation_schedule, "(never)"),
        );
        note(
            "secretRotationOverlap",
            self.secret_rotation_overlap != before.secret_rotation_overlap,
            &|| lifetime(before.secret_rotation_overlap),
            &|| lifetime(self.secret_rotation_overlap),
        );
        changes
    }

    /// The client's request completed with what the policies decided.
    pub(crate) fn settings_for(&self, client: &AuthClient) -> EffectiveSettings {
        let spec = &client.spec;
        EffectiveSettings {
            scopes: spec.scopes.clone(),
            grant_types: spec.grant_types.clone(),
            redirect_uris: spec.redirect_uris.clone(),
            post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
            client_type: spec.client_type,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            require_pkce: self.require_pkce,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            id_token_ttl: self.id_token_ttl,
            secret_rotation_schedule: self.secret_rotation_schedule.map(str::to_owned),
            secret_rotation_overlap: self.secret_rotation_overlap,
            secret_name: spec.secret_name.clone().unwrap_or_else(|| {
                default_secret_name(client.metadata.name.as_deref().unwrap_or_default())
            }),
            jwks_uri: spec.jwks_uri.clone(),
        }
    }
}

fn lifetime(value: Option<Lifetime>) -> String {
    value.map_or_else(
        || "(provider default)".to_owned(),
        |lifetime| lifetime.to_string(),
    )
}

fn or(text: Option<&str>, absent: &str) -> String {
    text.unwrap_or(absent).to_owned()
}

/// The settings that differ, each as `field old → new`; unchanged ones are left out.
/// Values are compared first and shown only when they differ: previews call this for
/// thousands of clients per keystroke.
pub fn setting_changes(old: &EffectiveSettings, new: &EffectiveSettings) -> Vec<SettingChange> {
    fn list<T: AsRef<str>>(items: &[T]) -> String {
        if items.is_empty() {
            return "(none)".to_owned();
        }
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
    let mut changes = Vec::new();
    let mut compare =
        |field: &'static str, differs: bool, show: &dyn Fn(&EffectiveSettings) -> String| {
            if differs {
                changes.push(SettingChange {
                    field,
                    old: show(old),
                    new: show(new),
                });
            }
        };
    compare(
        "accessTokenTTL",
        old.access_token_ttl != new.access_token_ttl,
        &|s| lifetime(s.access_token_ttl),
    );
    compare(
        "refreshTokenTTL",
        old.refresh_token_ttl != new.refresh_token_ttl,
        &|s| lifetime(s.refresh_token_ttl),
    );
    compare("idTokenTTL", old.id_token_ttl != new.id_token_ttl, &|s| {
        lifetime(s.id_token_ttl)
    });
    compare("requirePKCE", old.require_pkce != new.require_pkce, &|s| {
        s.require_pkce.to_string()
    });
    compare(
        "tokenEndpointAuthMethod",
        old.token_endpoint_auth_method != new.token_endpoint_auth_method,
        &|s| s.token_endpoint_auth_method.as_str().to_owned(),
    );
    compare(
        "secretRotationSchedule",
        old.secret_rotation_schedule != new.secret_rotation_schedule,
        &|s| or(s.secret_rotation_schedule.as_deref(), "(never)"),
    );
    compare(
        "secretRotationOverlap",
        old.secret_rotation_overlap != new.secret_rotation_overlap,
        &|s| lifetime(s.secret_rotation_overlap),
    );
    compare("scopes", old.scopes != new.scopes, &|s| list(&s.scopes));
    compare("grantTypes", old.grant_types != new.grant_types, &|s| {
        list(&s.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>())
    });
    compare(
        "redirectUris",
        old.redirect_uris != new.redirect_uris,
        &|s| list(&s.redirect_uris),
    );
    compare(
        "postLogoutRedirectUris",
        old.post_logout_redirect_uris != new.post_logout_redirect_uris,
        &|s| list(&s.post_logout_redirect_uris),
    );
    compare("clientType", old.client_type != new.client_type, &|s| {
        format!("{:?}", s.client_type)
    });
    compare("secretName", old.secret_name != new.secret_name, &|s| {
        s.secret_name.clone()
    });
    compare("jwksUri", old.jwks_uri != new.jwks_uri, &|s| {
        or(s.jwks_uri.as_deref(), "(none)")
    });
    changes
}
