use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::resources::{Enforcement, ObjectRef};

/// A rule a client breaks: which field, which rule, which policy, and a sentence that
/// says all three.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// The field at fault, e.g. `spec.scopes[3]`.
    pub field: String,
    /// The rule broken, e.g. `allowedScopes`.
    pub rule: String,
    /// The policy whose rule it is, as `namespace/name`; absent for Nauthera's fixed
    /// rules (https redirect URIs, server trust, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `Audit` when the rule comes from a policy in audit mode: reported, not enforced.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// The whole story in one sentence.
    pub message: String,
}

impl Violation {
    /// A violation of one of Nauthera's fixed rules, which no policy can relax.
    pub(crate) fn fixed(field: impl Into<String>, rule: &str, message: String) -> Self {
        Self {
            field: field.into(),
            rule: rule.to_owned(),
            policy: None,
            enforcement: Enforcement::Enforce,
            message,
        }
    }

    /// A violation of a rule of `policy`, enforced as that policy says.
    pub(crate) fn of_policy(
        field: impl Into<String>,
        rule: &str,
        policy: &ObjectRef,
        enforcement: Enforcement,
        message: String,
    ) -> Self {
        Self {
            field: field.into(),
            rule: rule.to_owned(),
            policy: Some(policy.to_string()),
            enforcement,
            message,
        }
    }

    pub fn is_enforced(&self) -> bool {
        self.enforcement == Enforcement::Enforce
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)?;
        if !self.is_enforced() {
            write!(f, " (audit only)")?;
        }
        Ok(())
    }
}

/// The names of the rules, as they appear in `violations[].rule`.
pub mod rule {
    pub const SERVER_EXISTS: &str = "authServerRef";
    pub const SERVER_VALID: &str = "authServerValid";
    pub const ALLOWED_NAMESPACES: &str = "allowedNamespaces";
    pub const POLICY_SELECTOR: &str = "policySelector";
    pub const POLICY_VALID: &str = "policyValid";
    pub const ALLOWED_SCOPES: &str = "allowedScopes";
    pub const SCOPE_SYNTAX: &str = "scopeSyntax";
    pub const ALLOWED_GRANT_TYPES: &str = "allowedGrantTypes";
    pub const GRANT_TYPES_CONSISTENT: &str = "grantTypesConsistent";
    pub const REDIRECT_URI_ABSOLUTE: &str = "redirectUris.absolute";
    pub const REDIRECT_URI_HTTPS: &str = "redirectUris.https";
    pub const REDIRECT_URI_NO_FRAGMENT: &str = "redirectUris.noFragment";
    pub const REDIRECT_URI_NO_WILDCARD: &str = "redirectUris.noWildcard";
    pub const REDIRECT_URI_LOOPBACK: &str = "redirectUris.allowLoopbackHttp";
    pub const REDIRECT_URI_HOSTS: &str = "redirectUris.allowedHosts";
    pub const REDIRECT_URI_SCHEMES: &str = "redirectUris.allowedSchemes";
    pub const REDIRECT_URI_PRIVATE_USE: &str = "redirectUris.privateUseScheme";
    pub const MAX_SCOPES: &str = "maxScopes";
    pub const REQUIRE_CONFIDENTIAL: &str = "requireConfidentialClients";
    pub const AUTH_METHOD: &str = "clientAuthentication.method";
    pub const ALLOWED_AUTH_METHODS: &str = "clientAuthentication.allowedMethods";
    pub const TOKEN_ENDPOINT_AUTH_METHOD: &str = "tokenEndpointAuthMethod";
    pub const JWKS_URI: &str = "jwksUri";
    pub const SECRET_NAME: &str = "secretName";
    pub const SECRET_TEMPLATE_KEYS: &str = "secretTemplate.keys";
    pub const SECRET_TEMPLATE_LABELS: &str = "secretTemplate.labels";
    pub const SECRET_TEMPLATE_ANNOTATIONS: &str = "secretTemplate.annotations";
}
