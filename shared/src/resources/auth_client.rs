use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ClientAuthMethod, Condition, DNS_SUBDOMAIN_PATTERN, SCOPE_PATTERN};
use crate::policy::{EffectiveSettings, Violation};

/// What the application needs: its name, server, redirect URIs, scopes and grant types.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "auth.nauthera.io",
    doc = "One application's OAuth2/OIDC client, owned by its developers. The operator checks it against the policies that govern it, registers it with the server's provider and writes its credentials to a Secret in the client's namespace.",
    version = "v1alpha1",
    kind = "AuthClient",
    namespaced,
    status = "AuthClientStatus",
    shortname = "acli",
    category = "nauthera",
    printcolumn(
        name = "Server",
        type_ = "string",
        json_path = ".spec.authServerRef.name"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(
        name = "Secret",
        type_ = "string",
        priority = 1,
        json_path = ".status.clientSecretRef.name"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AuthClientSpec {
    /// The application's name as users see it on consent screens.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,

    /// The AuthServer to register with. Its `allowedNamespaces` must trust this namespace.
    pub auth_server_ref: AuthServerRef,

    /// Where the provider may send users back after login. https only (loopback http for
    /// native apps when a policy allows it), no fragment, no wildcard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 2048)))]
    pub redirect_uris: Vec<String>,

    /// Where the provider may send users after logout; same rules as `redirectUris`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 2048)))]
    pub post_logout_redirect_uris: Vec<String>,

    /// The scopes the application requests, e.g. `openid`, `profile`, `email`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(SCOPE_PATTERN)))]
    pub scopes: Vec<String>,

    /// The OAuth 2.0 grant types the application uses.
    /// Defaults to `authorization_code` and `refresh_token`.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,

    /// `Confidential` (default): a server-side app that can keep a secret.
    /// `Public`: a browser or native app that cannot; it always uses PKCE.
    #[serde(default)]
    pub client_type: ClientType,

    /// The Secret that receives the credentials. Defaults to `<client name>-client-secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: Option<String>,

    /// The client's JSON Web Key Set URL, required when a policy asks for
    /// `private_key_jwt` authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,

    /// How the client authenticates to the token endpoint: `client_secret_basic`,
    /// `client_secret_post`, `private_key_jwt` (needs `jwksUri`) or `none` (Public clients
    /// only). Every governing policy's `clientAuthentication` must allow it. Omitted: `none`
    /// for a Public client; for a Confidential one the policies' `clientAuthentication.method`,
    /// else `client_secret_basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::auth_policy::nullable_auth_method")]
    pub token_endpoint_auth_method: Option<ClientAuthMethod>,

    /// What happens to the registration at the provider when this AuthClient is deleted.
    /// `Delete` (default): it is deleted there, then its Secrets. `Orphan`: it is left at
    /// the provider, and the credentials Secret is kept (no longer owned by the client).
    #[serde(default, skip_serializing_if = "DeletionPolicy::is_delete")]
    pub deletion_policy: DeletionPolicy,

    /// The credentials Secret's shape: labels and annotations to add (for Argo CD,
    /// Reloader, …) and the names of its keys. Omitted: keys `client_id`,
    /// `client_secret`, `issuer_url`, `discovery_url` and `token_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<SecretTemplate>,

    /// Take over a registration made earlier (by RFC 7591) instead of registering a new
    /// one: a Secret in this namespace holding its `client_id`, `registration_client_uri`
    /// and `registration_access_token` (and `client_secret`, if the provider does not
    /// return it on a read). Nothing is registered while that Secret is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_registration: Option<ExistingRegistration>,
}

/// What deleting an AuthClient does to its registration.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// The registration is deleted at the provider, then the Secrets.
    #[default]
    Delete,
    /// The registration stays at the provider; the credentials Secret stays too.
    Orphan,
}

impl DeletionPolicy {
    #[allow(clippy::trivially_copy_pass_by_ref)] // the signature serde's skip_serializing_if requires
    pub fn is_delete(&self) -> bool {
        *self == Self::Delete
    }
}

/// The credentials Secret's labels, annotations and key names.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// Labels added to the Secret (Nauthera's own labels cannot be overridden).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the Secret, e.g. `reloader.stakater.com/match: "true"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The Secret's key names.
    #[serde(default, skip_serializing_if = "SecretKeys::is_default")]
    pub keys: SecretKeys,
}

/// The name of each key of the credentials Secret (Secret keys: letters, digits, `-`,
/// `_` and `.`); all distinct.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeys {
    /// The client ID. Default `client_id`.
    #[serde(default = "keys::client_id")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub client_id: String,
    /// The client secret (confidential clients). Default `client_secret`.
    #[serde(default = "keys::client_secret")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub client_secret: String,
    /// The issuer URL. Default `issuer_url`.
    #[serde(default = "keys::issuer_url")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub issuer_url: String,
    /// The OpenID Connect discovery URL. Default `discovery_url`.
    #[serde(default = "keys::discovery_url")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub discovery_url: String,
    /// The token endpoint, from the provider's discovery document. Default
    /// `token_endpoint`.
    #[serde(default = "keys::token_endpoint")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub token_endpoint: String,
}

/// A Secret key, as Kubernetes accepts it.
pub const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";

mod keys {
    pub fn client_id() -> String {
        "client_id".to_owned()
    }
    pub fn client_secret() -> String {
        "client_secret".to_owned()
    }
    pub fn issuer_url() -> String {
        "issuer_url".to_owned()
    }
    pub fn discovery_url() -> String {
        "discovery_url".to_owned()
    }
    pub fn token_endpoint() -> String {
        "token_endpoint".to_owned()
    }
}

impl Default for SecretKeys {
    fn default() -> Self {
        Self {
            client_id: keys::client_id(),
            client_secret: keys::client_secret(),
            issuer_url: keys::issuer_url(),
            discovery_url: keys::discovery_url(),
            token_endpoint: keys::token_endpoint(),
        }
    }
}

impl SecretKeys {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Each key with the field that names it.
    pub fn named(&self) -> [(&'static str, &str); 5] {
        [
            ("clientId", &self.client_id),
            ("clientSecret", &self.client_secret),
            ("issuerUrl", &self.issuer_url),
            ("discoveryUrl", &self.discovery_url),
            ("tokenEndpoint", &self.token_endpoint),
        ]
    }
}

/// A registration made earlier, to be taken over.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExistingRegistration {
    /// The Secret, in the client's namespace, holding `client_id`,
    /// `registration_client_uri` and `registration_access_token`.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: String,
}

/// The grant types applications use by default.
pub fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

/// A reference to an AuthServer.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct AuthServerRef {
    /// The AuthServer's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The AuthServer's namespace. Defaults to the client's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// OAuth 2.0 grant types Nauthera provisions. The implicit and password grants are
/// deliberately absent (OAuth 2.0 Security Best Current Practice).
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum GrantType {
    /// Authorization code flow, for apps that sign users in.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// Refresh tokens, alongside the authorization code flow.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// Client credentials, for services acting on their own behalf.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
}

impl GrantType {
    /// The name used in manifests and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
}

/// Whether the application can keep a secret (RFC 6749, section 2.1).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ClientType {
    /// Can keep a secret: gets a client secret.
    #[default]
    Confidential,
    /// Cannot keep a secret: no client secret, PKCE always.
    Public,
}

/// A Secret in the client's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretNameRef {
    /// The Secret's name.
    pub name: String,
}

/// What the operator did with the client, and why.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthClientStatus {
    /// `Ready`, `PolicyCompliant` and `Provisioned`, in the Kubernetes style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The client ID the provider assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The Secret holding the credentials (never the values themselves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretNameRef>,
    /// The policies that govern this client, as `namespace/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_policies: Vec<String>,
    /// The settings the provider was given, after every policy applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<EffectiveSettings>,
    /// Every rule the client breaks: the field, the rule and the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// The credentials' rotation, when a policy rotates them or one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationStatus>,
}

/// When the credentials were and will be rotated, and the ones on their way out.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// When the credentials were last rotated (or first registered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation: Option<Time>,
    /// When they are next rotated on the governing policies' schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<Time>,
    /// The `auth.nauthera.io/rotate` annotation's value last acted on: setting it to a
    /// new value rotates the credentials now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// The credentials replaced by the last rotation, still working until `until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring: Option<RetiringCredentials>,
}

/// Credentials that still work for an overlap window after a rotation.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetiringCredentials {
    /// Their client ID.
    pub client_id: String,
    /// When they stop working.
    pub until: Time,
}
