use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, GrantType, LabelSelector, PRIVATE_USE_SCHEME_PATTERN, SCOPE_PATTERN};
use crate::duration::GO_DURATION_PATTERN;

/// The rules. A rule left out does not restrict; several policies combine, most restrictive first.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "auth.nauthera.io",
    doc = "The security team's rules for the clients of the AuthServers that select this policy. When several policies govern a client, all apply and the most restrictive value wins.",
    version = "v1alpha1",
    kind = "AuthPolicy",
    namespaced,
    status = "AuthPolicyStatus",
    shortname = "apol",
    category = "nauthera",
    printcolumn(
        name = "Enforcement",
        type_ = "string",
        json_path = ".spec.enforcement"
    ),
    printcolumn(
        name = "Governed",
        type_ = "integer",
        json_path = ".status.governedClients"
    ),
    printcolumn(
        name = "Compliant",
        type_ = "integer",
        json_path = ".status.compliantClients"
    ),
    printcolumn(
        name = "Violating",
        type_ = "integer",
        json_path = ".status.violatingClients"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicySpec {
    /// `Enforce` (default): a client that breaks a rule is not provisioned; one already
    /// provisioned keeps its registration as it was, without the forbidden change (see
    /// `violationResponse`). `Audit`: violations are reported but the client works.
    #[serde(default)]
    pub enforcement: Enforcement,

    /// What happens to the live registration of a client that breaks an enforced rule of
    /// this policy. `Keep` (default): it stays as it was last provisioned, and the client
    /// reports why its changes are withheld. `Revoke`: it is deleted at the provider and its
    /// credentials Secret removed. Nothing else (a deleted policy, a server gone, lost
    /// namespace trust) ever removes a registration.
    #[serde(default, skip_serializing_if = "ViolationResponse::is_keep")]
    pub violation_response: ViolationResponse,

    /// Narrows the governed clients to those whose labels match. Omitted: every client of
    /// a server that selects this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_selector: Option<LabelSelector>,

    /// Narrows the governed clients to those in namespaces whose labels match.
    /// Omitted: clients of every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Token lifetimes the provider issues to governed clients (Go durations such as
    /// `15m`, `24h`, `1h30m`). With several policies, the shortest wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenLifetimes>,

    /// The grant types a governed client may use. Omitted: any supported grant type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_grant_types: Option<Vec<GrantType>>,

    /// Whether authorization-code clients must use PKCE. Defaults to true; PKCE is off
    /// only when every governing policy sets false. Public clients always use PKCE.
    #[serde(
        default,
        rename = "enforcePKCE",
        skip_serializing_if = "Option::is_none"
    )]
    pub enforce_pkce: Option<bool>,

    /// The scopes a governed client may request. Omitted: any scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(pattern(SCOPE_PATTERN)))]
    pub allowed_scopes: Option<Vec<String>>,

    /// The most scopes one governed client may request (distinct scopes of
    /// `spec.scopes`). Omitted: no cap. With several policies, the smallest cap wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub max_scopes: Option<u32>,

    /// Refuse Public clients (browser and native apps, which cannot keep a secret): every
    /// governed client must be `Confidential`. Defaults to false; with several policies,
    /// any one that sets it applies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_confidential_clients: bool,

    /// How confidential clients authenticate to the token endpoint, and secret rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_authentication: Option<ClientAuthentication>,

    /// Rules for redirect URIs beyond the fixed ones (https, no fragment, no wildcard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<RedirectUriRules>,
}

/// What happens to a client that breaks a rule.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Enforcement {
    /// Non-compliant clients are not provisioned; provisioned ones keep their registration
    /// unchanged unless `violationResponse` is `Revoke`.
    #[default]
    Enforce,
    /// Violations are reported; clients keep working.
    Audit,
}

/// What an enforced violation does to a registration that already exists.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ViolationResponse {
    /// The registration stays as it was; only the forbidden change is withheld.
    #[default]
    Keep,
    /// The registration is deleted at the provider, and the credentials Secret with it.
    Revoke,
}

impl ViolationResponse {
    #[allow(clippy::trivially_copy_pass_by_ref)] // the signature serde's skip_serializing_if requires
    pub fn is_keep(&self) -> bool {
        *self == Self::Keep
    }
}

/// Token lifetimes as Go durations.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct TokenLifetimes {
    /// Access token lifetime, e.g. `15m`.
    #[serde(
        default,
        rename = "accessTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(pattern(GO_DURATION_PATTERN))]
    pub access_token_ttl: Option<String>,
    /// Refresh token lifetime, e.g. `24h`.
    #[serde(
        default,
        rename = "refreshTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(pattern(GO_DURATION_PATTERN))]
    pub refresh_token_ttl: Option<String>,
    /// ID token lifetime, e.g. `5m`.
    #[serde(
        default,
        rename = "idTokenTTL",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(pattern(GO_DURATION_PATTERN))]
    pub id_token_ttl: Option<String>,
}

/// Client authentication at the token endpoint.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAuthentication {
    /// The method a governed Confidential client gets when it leaves its
    /// `tokenEndpointAuthMethod` out (Public clients use `none`). Without `allowedMethods` it
    /// is also the only method allowed. Omitted: `client_secret_basic`. When policies give
    /// different defaults, their clients must choose a method themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "nullable_auth_method")]
    pub method: Option<ClientAuthMethod>,
    /// The methods a governed client may use, whether its `tokenEndpointAuthMethod` names
    /// one or it gets `method`, which must be among them; `none` here admits Public
    /// clients. Omitted: only `method` when it is set, else any. With several policies, a
    /// client's method must be allowed by every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_methods: Option<Vec<ClientAuthMethod>>,
    /// Periodic rotation of client secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_rotation: Option<SecretRotation>,
}

/// Token endpoint authentication methods (OpenID Connect Core, section 9).
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum ClientAuthMethod {
    /// Client secret in the HTTP Basic authorization header.
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    /// Client secret in the request body.
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
    /// A JWT signed with the client's private key (needs `jwksUri` on the client).
    #[serde(rename = "private_key_jwt")]
    PrivateKeyJwt,
    /// No client authentication: public clients only.
    #[serde(rename = "none")]
    None,
}

impl ClientAuthMethod {
    /// Every method, in the order listings show them.
    pub const ALL: [Self; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::None,
    ];

    /// The name used in manifests and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
}

/// Rotation of the client secret on a schedule.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct SecretRotation {
    /// Whether secrets are rotated.
    #[serde(default)]
    pub enabled: bool,
    /// When to rotate, as a five-field cron expression (`0 0 * * *`: daily at midnight UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How long the old credentials keep working after a rotation, so applications can
    /// pick the new ones up (a Go duration such as `1h`). Defaults to `1h`. With several
    /// policies, the shortest wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(GO_DURATION_PATTERN))]
    pub overlap: Option<String>,
}

/// Redirect URI rules a policy adds.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedirectUriRules {
    /// Hosts redirect URIs may point at: exact names, or `*.example.com` for any
    /// subdomain of example.com. Omitted: any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Allow `http://127.0.0.1`, `http://[::1]` and `http://localhost` redirect URIs, as
    /// native apps need (RFC 8252). Defaults to false.
    #[serde(default)]
    pub allow_loopback_http: bool,
    /// Private-use URI schemes native apps may redirect to (RFC 8252, section 7.1): reverse
    /// domain names such as `com.example.app`, for `com.example.app:/callback`. Only Public
    /// clients may use such a URI, so PKCE always protects it. Omitted: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(PRIVATE_USE_SCHEME_PATTERN)))]
    pub allowed_schemes: Vec<String>,
}

/// The schema of an optional method: the field's own description, not the enum's, for
/// `kubectl explain` (kube would otherwise hoist the enum's over it).
pub(crate) fn nullable_auth_method(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<ClientAuthMethod>();
    if let Some(object) = schema.as_object_mut() {
        object.remove("description");
        object.insert("nullable".to_owned(), true.into());
    }
    schema
}

/// What the operator observed of the policy.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicyStatus {
    /// `Ready`: the policy is valid and in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How many clients this policy governs.
    #[serde(default)]
    pub governed_clients: i32,
    /// How many governed clients comply with every policy that governs them.
    #[serde(default)]
    pub compliant_clients: i32,
    /// How many governed clients break a rule of this policy.
    #[serde(default)]
    pub violating_clients: i32,
}
