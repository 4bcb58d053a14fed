use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, LabelSelector};

/// How to reach the provider, which policies apply and which namespaces are trusted.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "auth.nauthera.io",
    doc = "An OIDC provider that clients register with, owned by the platform team: how the operator reaches it, which AuthPolicies govern its clients, and which namespaces may register clients on it.",
    version = "v1alpha1",
    kind = "AuthServer",
    namespaced,
    status = "AuthServerStatus",
    shortname = "asrv",
    category = "nauthera",
    printcolumn(name = "Issuer", type_ = "string", json_path = ".spec.issuerUrl"),
    printcolumn(
        name = "Reachable",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"ProviderReachable\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"ProviderReachable\")].reason"
    ),
    printcolumn(name = "Clients", type_ = "integer", json_path = ".status.clients"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AuthServerSpec {
    /// The provider's OIDC issuer URL, exactly as it appears in its discovery document.
    /// Must be https, except on a loopback address (local development).
    #[schemars(pattern(r"^https?://[^\s#?]+$"))]
    pub issuer_url: String,

    /// How the operator reaches the provider to register and manage clients.
    pub provider: ProviderSpec,

    /// Selects the AuthPolicies, in this server's namespace, that govern its clients.
    /// An empty selector (`{}`) selects every policy in the namespace; without a selector
    /// no policy applies and no client is provisioned (secure by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_selector: Option<LabelSelector>,

    /// Which namespaces may register clients on this server. Defaults to this server's
    /// own namespace only.
    #[serde(default)]
    pub allowed_namespaces: AllowedNamespaces,
}

/// How the operator talks to the provider.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    /// The provider protocol. `DynamicClientRegistration`: OAuth 2.0 Dynamic Client
    /// Registration (RFC 7591) with its management protocol (RFC 7592).
    #[serde(rename = "type")]
    pub provider_type: ProviderType,

    /// The registration endpoint. Defaults to `registration_endpoint` from the issuer's
    /// discovery document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^https?://[^\s#]+$"))]
    pub registration_endpoint: Option<String>,

    /// A Secret in this server's namespace holding the initial access token that
    /// authorises registrations, if the provider requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_access_token_secret_ref: Option<SecretKeyRef>,
}

/// The provider protocols the operator speaks.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ProviderType {
    /// OAuth 2.0 Dynamic Client Registration (RFC 7591) and management (RFC 7592).
    DynamicClientRegistration,
}

/// A key of a Secret in the referring object's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Which namespaces may register clients, in the manner of Gateway API's `allowedRoutes`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllowedNamespaces {
    /// `Same` (default): only this server's namespace. `All`: every namespace.
    /// `Selector`: namespaces whose labels match `selector`.
    #[serde(default)]
    pub from: NamespacesFrom,

    /// With `from: Selector`, the labels a namespace must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// The origin of trusted namespaces.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum NamespacesFrom {
    /// Only the server's own namespace.
    #[default]
    Same,
    /// Every namespace.
    All,
    /// Namespaces matching `allowedNamespaces.selector`.
    Selector,
}

/// What the operator observed of the server.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthServerStatus {
    /// `ProviderReachable` (discovery document fetched and its issuer matches) and `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The registration endpoint in use (from the spec or from discovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// The policies this server selects, as `namespace/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// How many clients reference this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<i32>,
    /// How long the provider took to answer its discovery request, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_latency_ms: Option<u64>,
    /// Client settings this provider does not keep (it drops them from what it holds),
    /// e.g. `nauthera_access_token_ttl`: its own defaults apply to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported_settings: Vec<String>,
}
