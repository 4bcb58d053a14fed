//! The three custom resources of `auth.nauthera.io/v1alpha1`, one module per kind.
//!
//! Every field carries a doc comment: it becomes the description `kubectl explain` shows.

// kube's derive takes one `printcolumn(name = …)` per column, which clippy mistakes for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
mod auth_client;
#[allow(clippy::duplicated_attributes)]
mod auth_policy;
#[allow(clippy::duplicated_attributes)]
mod auth_server;

pub use auth_client::{
    AuthClient, AuthClientSpec, AuthClientStatus, AuthServerRef, ClientType, DeletionPolicy,
    ExistingRegistration, GrantType, RetiringCredentials, RotationStatus, SECRET_KEY_PATTERN,
    SecretKeys, SecretNameRef, SecretTemplate,
};
pub use auth_policy::{
    AuthPolicy, AuthPolicySpec, AuthPolicyStatus, ClientAuthMethod, ClientAuthentication,
    Enforcement, RedirectUriRules, SecretRotation, TokenLifetimes, ViolationResponse,
};
pub use auth_server::{
    AllowedNamespaces, AuthServer, AuthServerSpec, AuthServerStatus, NamespacesFrom, ProviderSpec,
    ProviderType, SecretKeyRef,
};

use std::fmt;

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};

/// The API group of every Nauthera kind.
pub const GROUP: &str = "auth.nauthera.io";
/// The one served version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as it appears in manifests.
pub const API_VERSION: &str = "auth.nauthera.io/v1alpha1";

/// A namespaced object's identity, shown as `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The identity of a Kubernetes object; objects read without a namespace live in
    /// `default`, as `kubectl apply` would put them.
    pub fn of<K: kube::Resource>(object: &K) -> Self {
        let meta = object.meta();
        Self::new(
            meta.namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            meta.name.clone().unwrap_or_default(),
        )
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Where objects without a namespace go, as with `kubectl apply`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The labels of an object, empty when it has none.
pub fn labels_of<K: kube::Resource>(object: &K) -> &std::collections::BTreeMap<String, String> {
    static EMPTY: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    object.meta().labels.as_ref().unwrap_or(&EMPTY)
}

/// RFC 6749 `scope-token`: printable ASCII except space, `"` and `\`.
pub const SCOPE_PATTERN: &str = r"^[\x21\x23-\x5B\x5D-\x7E]+$";
/// A private-use URI scheme as RFC 8252 (section 7.1) asks for: a reverse domain name, such
/// as `com.example.app`.
pub const PRIVATE_USE_SCHEME_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)+$";
/// A DNS subdomain name, as Secret names must be.
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
