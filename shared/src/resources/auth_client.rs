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
}
