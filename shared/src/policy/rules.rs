//! Every rule a client is checked against, in one place. Each function is one rule of the
//! documentation and returns the violations it finds, naming the field, the rule and the
//! policy. Fixed rules (Nauthera's secure defaults) come first; then the rules policies set.

use std::collections::BTreeSet;
use std::net::IpAddr;

use url::Url;

use super::compiled::{CompiledPolicy, is_private_use_scheme};
use super::violation::{Violation, rule};
use crate::resources::{
    AuthClient, ClientAuthMethod, ClientType, DNS_SUBDOMAIN_PATTERN, GrantType,
};

/// What the fixed rules found in a client. Computed once per client: a policy edit
/// cannot change it, so previews reuse it for every keystroke.
#[derive(Clone, Debug, Default)]
pub(crate) struct FixedFindings {
    pub violations: Vec<Violation>,
    /// Redirect URIs that passed the fixed rules, with what the policy rules need of them.
    redirects: Vec<(ListItem, RedirectTarget)>,
}

/// Where a well-formed redirect URI points.
#[derive(Clone, Debug)]
enum RedirectTarget {
    Https {
        host: String,
    },
    LoopbackHttp,
    /// A native app's private-use URI scheme, such as `com.example.app` (RFC 8252, 7.1).
    PrivateUse {
        scheme: String,
    },
}

/// Nauthera's fixed rules, which no policy can relax.
pub(crate) fn check_fixed_rules(client: &AuthClient) -> FixedFindings {
    let mut findings = FixedFindings::default();
    let found = &mut findings.violations;
    grant_types_are_consistent(client, found);
    scopes_are_well_formed(client, found);
    secret_name_is_a_dns_name(client, found);
    secret_template_is_sound(client, found);
    jwks_uri_uses_https(client, found);
    requested_method_suits_the_client(client, found);
    for (item, uri) in redirect_uris(client) {
        if let Some(target) = redirect_uri_is_safe(&item, uri, client.spec.client_type, found) {
            findings.redirects.push((item, target));
        }
    }
    findings
}

/// The rules of the governing policies.
pub(crate) fn check_policy_rules(
    client: &AuthClient,
    fixed: &FixedFindings,
    governing: &[&CompiledPolicy],
) -> Vec<Violation> {
    let mut found = Vec::new();
    governing_policies_are_valid(governing, &mut found);
    for (item, target) in &fixed.redirects {
        redirect_target_is_allowed(client, item, target, governing, &mut found);
    }
    let method = authentication_method(client, governing);
    for policy in governing {
        scopes_are_allowed(client, policy, &mut found);
        scope_count_is_within_cap(client, policy, &mut found);
        grant_types_are_allowed(client, policy, &mut found);
        client_type_is_allowed(client, policy, &mut found);
        authentication_method_fits(client, policy, &method, &mut found);
    }
    policies_agree_on_authentication(governing, client, &mut found);
    found
}

/// The method a client authenticates with, and where it comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AuthenticationMethod<'p> {
    pub method: ClientAuthMethod,
    source: MethodSource<'p>,
}

#[derive(Clone, Copy, Debug)]
enum MethodSource<'p> {
    /// The client's `tokenEndpointAuthMethod`.
    Requested,
    /// A Public client that names none uses `none`.
    Public,
    /// The `clientAuthentication.method` of the first governing policy that sets one.
    PolicyDefault(&'p CompiledPolicy),
    /// Nobody said: `client_secret_basic`.
    BuiltIn,
}

/// What the client asks for; else `none` for a Public client; else the first governing
/// policy's default; else `client_secret_basic`. Policies that give different defaults are
/// reported by [`policies_agree_on_authentication`]: the first one's is only what an audited
/// client gets meanwhile.
pub(crate) fn authentication_method<'p>(
    client: &AuthClient,
    governing: &[&'p CompiledPolicy],
) -> AuthenticationMethod<'p> {
    let (method, source) = match (
        client.spec.token_endpoint_auth_method,
        client.spec.client_type,
    ) {
        (Some(method), _) => (method, MethodSource::Requested),
        (None, ClientType::Public) => (ClientAuthMethod::None, MethodSource::Public),
        (None, ClientType::Confidential) => governing
            .iter()
            .find_map(|policy| Some((policy.auth_method?, MethodSource::PolicyDefault(policy))))
            .unwrap_or((ClientAuthMethod::ClientSecretBasic, MethodSource::BuiltIn)),
    };
    AuthenticationMethod { method, source }
}

/// A policy that cannot be read governs nothing correctly: its clients are held until it is fixed.
fn governing_policies_are_valid(governing: &[&CompiledPolicy], found: &mut Vec<Violation>) {
    for policy in governing {
        for error in &policy.errors {
            found.push(Violation::of_policy(
                error.field.clone(),
                rule::POLICY_VALID,
                &policy.reference,
                policy.enforcement,
                format!("policy {} is invalid: {error}", policy.reference),
            ));
        }
    }
}

/// Grant types must make sense together: the code flow needs somewhere to redirect,
/// refresh tokens come from the code flow, and only a confidential client can use its own
/// credentials.
fn grant_types_are_consistent(client: &AuthClient, found: &mut Vec<Violation>) {
    let spec = &client.spec;
    let uses = |grant: GrantType| spec.grant_types.contains(&grant);
    let mut broken = |message: &str| {
        found.push(Violation::fixed(
            "spec.grantTypes",
            rule::GRANT_TYPES_CONSISTENT,
            message.to_owned(),
        ));
    };
    if spec.grant_types.is_empty() {
        broken("at least one grant type is required");
    }
    if uses(GrantType::AuthorizationCode) && spec.redirect_uris.is_empty() {
        found.push(Violation::fixed(
            "spec.redirectUris",
            rule::GRANT_TYPES_CONSISTENT,
            "grant type authorization_code needs at least one redirect URI".to_owned(),
        ));
    }
    if uses(GrantType::RefreshToken) && !uses(GrantType::AuthorizationCode) {
        found.push(Violation::fixed(
            "spec.grantTypes",
            rule::GRANT_TYPES_CONSISTENT,
            "grant type refresh_token needs authorization_code".to_owned(),
        ));
    }
    if uses(GrantType::ClientCredentials) && spec.client_type == ClientType::Public {
        found.push(Violation::fixed(
            "spec.grantTypes",
            rule::GRANT_TYPES_CONSISTENT,
            "grant type client_credentials needs clientType Confidential (a public client cannot keep a secret)"
                .to_owned(),
        ));
    }
}

/// Scopes are RFC 6749 scope tokens: printable ASCII without spaces, quotes or backslashes.
fn scopes_are_well_formed(client: &AuthClient, found: &mut Vec<Violation>) {
    for (index, scope) in client.spec.scopes.iter().enumerate() {
        let well_formed = !scope.is_empty()
            && scope
                .bytes()
                .all(|byte| matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
        if !well_formed {
            found.push(Violation::fixed(
                format!("spec.scopes[{index}]"),
                rule::SCOPE_SYNTAX,
                format!("scope {scope:?} is not a scope token (printable ASCII without spaces, quotes or backslashes)"),
            ));
        }
    }
}

/// The credentials Secret must have a name Kubernetes accepts.
fn secret_name_is_a_dns_name(client: &AuthClient, found: &mut Vec<Violation>) {
    let Some(name) = &client.spec.secret_name else {
        return;
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        found.push(Violation::fixed(
            "spec.secretName",
            rule::SECRET_NAME,
            format!("{name:?} is not a valid Secret name (lower-case DNS subdomain, {DNS_SUBDOMAIN_PATTERN})"),
        ));
    }
}

/// The credentials Secret's keys are distinct and valid; Nauthera's own labels, which say
/// whose Secret it is, are not the template's to change.
fn secret_template_is_sound(client: &AuthClient, found: &mut Vec<Violation>) {
    let Some(template) = &client.spec.secret_template else {
        return;
    };
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (field, key) in template.keys.named() {
        let valid = !key.is_empty()
            && key.len() <= 253
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            found.push(Violation::fixed(
                format!("spec.secretTemplate.keys.{field}"),
                rule::SECRET_TEMPLATE_KEYS,
                format!("{key:?} is not a Secret key (letters, digits, '-', '_' and '.')"),
            ));
        } else if let Some((other, _)) = seen.iter().find(|(_, taken)| *taken == key) {
            found.push(Violation::fixed(
                format!("spec.secretTemplate.keys.{field}"),
                rule::SECRET_TEMPLATE_KEYS,
                format!(
                    "key {key:?} is already the key of {other}: each value needs a key of its own"
                ),
            ));
        }
        seen.push((field, key));
    }
    for label in template.labels.keys() {
        if RESERVED_LABELS.contains(&label.as_str()) {
            found.push(Violation::fixed(
                format!("spec.secretTemplate.labels[{label}]"),
                rule::SECRET_TEMPLATE_LABELS,
                format!("label {label:?} is Nauthera's own: it says whose Secret this is"),
            ));
        }
    }
    if template.annotations.contains_key(TEMPLATE_KEYS_ANNOTATION) {
        found.push(Violation::fixed(
            format!("spec.secretTemplate.annotations[{TEMPLATE_KEYS_ANNOTATION}]"),
            rule::SECRET_TEMPLATE_ANNOTATIONS,
            format!(
                "annotation {TEMPLATE_KEYS_ANNOTATION:?} is Nauthera's own: it remembers what the template set"
            ),
        ));
    }
}

/// The annotation on a credentials Secret that remembers which labels and annotations its
/// template set, so that one dropped from the template is taken off again.
pub const TEMPLATE_KEYS_ANNOTATION: &str = "auth.nauthera.io/template-keys";

/// The labels that mark a Secret as Nauthera's.
pub const RESERVED_LABELS: [&str; 2] = [
    "app.kubernetes.io/managed-by",
    "auth.nauthera.io/client-name",
];

/// A key set is fetched by the provider and must not be tampered with on the way.
fn jwks_uri_uses_https(client: &AuthClient, found: &mut Vec<Violation>) {
    let Some(uri) = &client.spec.jwks_uri else {
        return;
    };
    if !Url::parse(uri).is_ok_and(|url| url.scheme() == "https") {
        found.push(Violation::fixed(
            "spec.jwksUri",
            rule::JWKS_URI,
            format!("jwksUri {uri:?} must be an https URL"),
        ));
    }
}

/// A method the client asks for must suit it: a Public client has nothing to authenticate
/// with, a Confidential one must authenticate, and a key-based method needs the key set.
fn requested_method_suits_the_client(client: &AuthClient, found: &mut Vec<Violation>) {
    let spec = &client.spec;
    let Some(method) = spec.token_endpoint_auth_method else {
        return;
    };
    let mut broken = |field: &str, message: String| {
        found.push(Violation::fixed(
            field,
            rule::TOKEN_ENDPOINT_AUTH_METHOD,
            message,
        ));
    };
    match (spec.client_type, method) {
        (ClientType::Public, ClientAuthMethod::None) => {}
        (ClientType::Public, _) => broken(
            "spec.tokenEndpointAuthMethod",
            format!(
                "clientType Public cannot authenticate with {}: a Public client keeps no secret or key, so its method is none",
                method.as_str()
            ),
        ),
        (ClientType::Confidential, ClientAuthMethod::None) => broken(
            "spec.tokenEndpointAuthMethod",
            "clientType Confidential cannot use method none; only a Public client can".to_owned(),
        ),
        (ClientType::Confidential, ClientAuthMethod::PrivateKeyJwt) if spec.jwks_uri.is_none() => {
            broken(
                "spec.jwksUri",
                "spec.jwksUri is needed for tokenEndpointAuthMethod private_key_jwt".to_owned(),
            );
        }
        (ClientType::Confidential, _) => {}
    }
}

/// An item of a list field, e.g. `spec.redirectUris[0]`; its path is only written out
/// when a violation needs it, since most URIs break no rule.
#[derive(Clone, Copy, Debug)]
struct ListItem {
    list: &'static str,
    index: usize,
}

impl ListItem {
    /// The item's text in `client`.
    fn value(self, client: &AuthClient) -> &str {
        let list = match self.list {
            REDIRECT_URIS => &client.spec.redirect_uris,
            _ => &client.spec.post_logout_redirect_uris,
        };
        list.get(self.index).map_or("", String::as_str)
    }
}

const REDIRECT_URIS: &str = "spec.redirectUris";
const POST_LOGOUT_REDIRECT_URIS: &str = "spec.postLogoutRedirectUris";

impl From<&ListItem> for String {
    fn from(item: &ListItem) -> Self {
        format!("{}[{}]", item.list, item.index)
    }
}

fn redirect_uris<'a>(client: &'a AuthClient) -> impl Iterator<Item = (ListItem, &'a str)> {
    let spec = &client.spec;
    let items = |list: &'static str, uris: &'a Vec<String>| {
        uris.iter()
            .enumerate()
            .map(move |(index, uri)| (ListItem { list, index }, uri.as_str()))
    };
    items(REDIRECT_URIS, &spec.redirect_uris).chain(items(
        POST_LOGOUT_REDIRECT_URIS,
        &spec.post_logout_redirect_uris,
    ))
}

/// A redirect URI is an absolute https URL without wildcard or fragment; plain http only
/// on loopback, and private-use schemes (`com.example.app:/callback`) only for Public
/// clients: both are for native apps (RFC 8252). Returns where it points, for the policies
/// to judge.
fn redirect_uri_is_safe(
    field: &ListItem,
    uri: &str,
    client_type: ClientType,
    found: &mut Vec<Violation>,
) -> Option<RedirectTarget> {
    if uri.contains('*') {
        found.push(Violation::fixed(
            field,
            rule::REDIRECT_URI_NO_WILDCARD,
            format!("redirect URI {uri:?} must not contain a wildcard (\"*\")"),
        ));
        return None;
    }
    let url = match Url::parse(uri) {
        Ok(url) => url,
        Err(error) => {
            let message = format!("redirect URI {uri:?} is not an absolute URL: {error}");
            found.push(Violation::fixed(
                field,
                rule::REDIRECT_URI_ABSOLUTE,
                message,
            ));
            return None;
        }
    };
    // The URL parser has already lower-cased the scheme. A private-use URI needs no host.
    let private_use = is_private_use_scheme(url.scheme());
    if !private_use && !url.has_host() {
        let message = format!("redirect URI {uri:?} has no host");
        found.push(Violation::fixed(
            field,
            rule::REDIRECT_URI_ABSOLUTE,
            message,
        ));
        return None;
    }
    if url.fragment().is_some() {
        found.push(Violation::fixed(
            field,
            rule::REDIRECT_URI_NO_FRAGMENT,
            format!("redirect URI {uri:?} must not have a fragment (\"#…\")"),
        ));
    }
    if private_use {
        if client_type != ClientType::Public {
            found.push(Violation::fixed(
                field,
                rule::REDIRECT_URI_PRIVATE_USE,
                format!("redirect URI {uri:?} uses a private-use scheme, which only a native app (clientType Public) may use"),
            ));
            return None;
        }
        return Some(RedirectTarget::PrivateUse {
            scheme: url.scheme().to_owned(),
        });
    }
    // The URL parser has already lower-cased the host of http and https URLs.
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => Some(RedirectTarget::Https {
            host: host.to_owned(),
        }),
        "http" if is_loopback(host) => Some(RedirectTarget::LoopbackHttp),
        _ => {
            found.push(Violation::fixed(
                field,
                rule::REDIRECT_URI_HTTPS,
                format!("redirect URI {uri:?} must use https (plain http only on a loopback address, for native apps)"),
            ));
            None
        }
    }
}

/// Every policy must allow where a redirect URI points: its host, if the policy lists
/// hosts; loopback http, only if the policy allows it; a private-use scheme, only if the
/// policy lists it.
fn redirect_target_is_allowed(
    client: &AuthClient,
    item: &ListItem,
    target: &RedirectTarget,
    governing: &[&CompiledPolicy],
    found: &mut Vec<Violation>,
) {
    match target {
        RedirectTarget::Https { host } => {
            for policy in governing.iter().filter(|policy| !policy.allows_host(host)) {
                let allowed = policy
                    .allowed_hosts
                    .as_deref()
                    .unwrap_or_default()
                    .join(", ");
                found.push(Violation::of_policy(
                    item,
                    rule::REDIRECT_URI_HOSTS,
                    &policy.reference,
                    policy.enforcement,
                    format!(
                        "redirect URI host {host:?} is not allowed by policy {} (redirectUris.allowedHosts: {allowed})",
                        policy.reference
                    ),
                ));
            }
        }
        RedirectTarget::LoopbackHttp => {
            let uri = item.value(client);
            for policy in governing
                .iter()
                .filter(|policy| !policy.allow_loopback_http)
            {
                found.push(Violation::of_policy(
                    item,
                    rule::REDIRECT_URI_LOOPBACK,
                    &policy.reference,
                    policy.enforcement,
                    format!(
                        "redirect URI {uri:?} uses loopback http, which policy {} does not allow (redirectUris.allowLoopbackHttp: false)",
                        policy.reference
                    ),
                ));
            }
        }
        RedirectTarget::PrivateUse { scheme } => {
            let uri = item.value(client);
            for policy in governing
                .iter()
                .filter(|policy| !policy.allows_scheme(scheme))
            {
                found.push(Violation::of_policy(
                    item,
                    rule::REDIRECT_URI_SCHEMES,
                    &policy.reference,
                    policy.enforcement,
                    format!(
                        "redirect URI {uri:?} uses the private-use scheme {scheme:?}, which policy {} does not allow (redirectUris.allowedSchemes: {})",
                        policy.reference,
                        listing(&policy.allowed_schemes)
                    ),
                ));
            }
        }
    }
}

/// Loopback as RFC 8252 means it: 127.0.0.0/8, ::1, and the name localhost.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Every requested scope must be on the policy's list.
fn scopes_are_allowed(client: &AuthClient, policy: &CompiledPolicy, found: &mut Vec<Violation>) {
    for (index, scope) in client.spec.scopes.iter().enumerate() {
        if !policy.allows_scope(scope) {
            found.push(Violation::of_policy(
                format!("spec.scopes[{index}]"),
                rule::ALLOWED_SCOPES,
                &policy.reference,
                policy.enforcement,
                format!(
                    "scope {scope:?} is not allowed by policy {} (allowedScopes: {})",
                    policy.reference,
                    listing(policy.allowed_scopes.as_deref().unwrap_or_default())
                ),
            ));
        }
    }
}

/// A client may request no more distinct scopes than the policy's cap.
fn scope_count_is_within_cap(
    client: &AuthClient,
    policy: &CompiledPolicy,
    found: &mut Vec<Violation>,
) {
    let Some(cap) = policy.max_scopes else {
        return;
    };
    let requested: BTreeSet<&str> = client.spec.scopes.iter().map(String::as_str).collect();
    if requested.len() > cap as usize {
        let count = requested.len();
        found.push(Violation::of_policy(
            "spec.scopes",
            rule::MAX_SCOPES,
            &policy.reference,
            policy.enforcement,
            format!(
                "{count} {} requested, but policy {} allows at most {cap} (maxScopes: {cap})",
                if count == 1 { "scope" } else { "scopes" },
                policy.reference
            ),
        ));
    }
}

/// Every grant type must be on the policy's list.
fn grant_types_are_allowed(
    client: &AuthClient,
    policy: &CompiledPolicy,
    found: &mut Vec<Violation>,
) {
    for (index, grant) in client.spec.grant_types.iter().enumerate() {
        if !policy.allows_grant_type(*grant) {
            let allowed: Vec<&str> = policy
                .allowed_grant_types
                .iter()
                .flatten()
                .map(|g| g.as_str())
                .collect();
            found.push(Violation::of_policy(
                format!("spec.grantTypes[{index}]"),
                rule::ALLOWED_GRANT_TYPES,
                &policy.reference,
                policy.enforcement,
                format!(
                    "grant type {:?} is not allowed by policy {} (allowedGrantTypes: {})",
                    grant.as_str(),
                    policy.reference,
                    listing(&allowed)
                ),
            ));
        }
    }
}

/// A policy that requires confidential clients refuses Public ones.
fn client_type_is_allowed(
    client: &AuthClient,
    policy: &CompiledPolicy,
    found: &mut Vec<Violation>,
) {
    if policy.require_confidential_clients && client.spec.client_type == ClientType::Public {
        found.push(Violation::of_policy(
            "spec.clientType",
            rule::REQUIRE_CONFIDENTIAL,
            &policy.reference,
            policy.enforcement,
            format!(
                "clientType Public is not allowed by policy {} (requireConfidentialClients: true); only a Confidential client, which can keep a secret, may register",
                policy.reference
            ),
        ));
    }
}

/// The client's authentication method must be one the policy allows, and the policy's
/// default must suit the client that gets it. A Public client refused by
/// `requireConfidentialClients` hears that alone.
fn authentication_method_fits(
    client: &AuthClient,
    policy: &CompiledPolicy,
    method: &AuthenticationMethod,
    found: &mut Vec<Violation>,
) {
    if client.spec.client_type == ClientType::Public && policy.require_confidential_clients {
        return;
    }
    let broken = |field: &str, rule: &str, message: String| {
        Violation::of_policy(field, rule, &policy.reference, policy.enforcement, message)
    };
    let used = method.method;
    let reference = &policy.reference;
    let violation = match (method.source, policy.auth_method) {
        // A Confidential client that names no method gets the policies' default: this
        // policy's own must suit it (another policy's different one is a conflict).
        (MethodSource::PolicyDefault(_) | MethodSource::BuiltIn, Some(default)) => {
            default_suits_the_client(client, policy, default)
        }
        _ if policy.allows_auth_method(used) => None,
        (MethodSource::Requested, Some(required)) if policy.requires_one_auth_method() => {
            Some(broken(
                "spec.tokenEndpointAuthMethod",
                rule::AUTH_METHOD,
                format!(
                    "authentication method {:?} is not allowed by policy {reference}, which requires {} (clientAuthentication.method: {})",
                    used.as_str(),
                    required.as_str(),
                    required.as_str()
                ),
            ))
        }
        (MethodSource::Requested, _) => Some(broken(
            "spec.tokenEndpointAuthMethod",
            rule::ALLOWED_AUTH_METHODS,
            format!(
                "authentication method {:?} is not allowed by policy {reference} (clientAuthentication.allowedMethods: {})",
                used.as_str(),
                allowed_methods(policy)
            ),
        )),
        (MethodSource::Public, Some(required)) if policy.requires_one_auth_method() => {
            Some(broken(
                "spec.clientType",
                rule::AUTH_METHOD,
                format!(
                    "clientType Public cannot authenticate with {}, which policy {reference} requires (clientAuthentication.method: {})",
                    required.as_str(),
                    required.as_str()
                ),
            ))
        }
        (MethodSource::Public, _) => Some(broken(
            "spec.clientType",
            rule::ALLOWED_AUTH_METHODS,
            format!(
                "clientType Public authenticates with none, which policy {reference} does not allow (clientAuthentication.allowedMethods: {})",
                allowed_methods(policy)
            ),
        )),
        (source, None) => {
            let whose = match source {
                MethodSource::PolicyDefault(other) => format!(
                    " (clientAuthentication.method of policy {})",
                    other.reference
                ),
                _ => String::new(),
            };
            Some(broken(
                "spec.tokenEndpointAuthMethod",
                rule::ALLOWED_AUTH_METHODS,
                format!(
                    "the default method {}{whose} is not allowed by policy {reference} (clientAuthentication.allowedMethods: {}); name one it allows in spec.tokenEndpointAuthMethod",
                    used.as_str(),
                    allowed_methods(policy)
                ),
            ))
        }
    };
    found.extend(violation);
}

/// A policy's default method must suit a Confidential client that names none: it must
/// authenticate, and a key-based method needs the client's key set.
fn default_suits_the_client(
    client: &AuthClient,
    policy: &CompiledPolicy,
    default: ClientAuthMethod,
) -> Option<Violation> {
    let reference = &policy.reference;
    let said = if policy.requires_one_auth_method() {
        format!(
            "which policy {reference} requires (clientAuthentication.method: {})",
            default.as_str()
        )
    } else {
        format!(
            "which policy {reference} gives by default (clientAuthentication.method: {})",
            default.as_str()
        )
    };
    let (field, message) = match default {
        ClientAuthMethod::None => {
            let others: Vec<&str> = policy
                .allowed_auth_methods
                .iter()
                .flatten()
                .filter(|m| **m != ClientAuthMethod::None)
                .map(|m| m.as_str())
                .collect();
            let remedy = if others.is_empty() {
                "only a Public client can".to_owned()
            } else {
                format!(
                    "only a Public client can, or name one of {} in spec.tokenEndpointAuthMethod",
                    others.join(", ")
                )
            };
            (
                "spec.clientType",
                format!("clientType Confidential cannot use method none, {said}; {remedy}"),
            )
        }
        ClientAuthMethod::PrivateKeyJwt if client.spec.jwks_uri.is_none() => (
            "spec.jwksUri",
            format!("spec.jwksUri is needed for private_key_jwt, {said}"),
        ),
        _ => return None,
    };
    Some(Violation::of_policy(
        field,
        rule::AUTH_METHOD,
        reference,
        policy.enforcement,
        message,
    ))
}

fn allowed_methods(policy: &CompiledPolicy) -> String {
    let names: Vec<&str> = policy
        .allowed_auth_methods
        .iter()
        .flatten()
        .map(|m| m.as_str())
        .collect();
    listing(&names)
}

/// Policies that give a Confidential client different default methods leave it unsure
/// which it gets: it must name one both allow, if there is one. Two policies that each
/// require a different method cannot both be met.
fn policies_agree_on_authentication(
    governing: &[&CompiledPolicy],
    client: &AuthClient,
    found: &mut Vec<Violation>,
) {
    if client.spec.client_type == ClientType::Public {
        return; // public clients always use `none`; the per-policy rule covers them
    }
    if client.spec.token_endpoint_auth_method.is_some() {
        return; // no default applies; every policy judges the method asked for
    }
    let mut demanding = governing
        .iter()
        .filter_map(|policy| Some((policy, policy.auth_method?)));
    let Some((first, first_method)) = demanding.next() else {
        return;
    };
    for (policy, method) in demanding.filter(|(_, method)| *method != first_method) {
        let (field, message) = if first.requires_one_auth_method()
            && policy.requires_one_auth_method()
        {
            (
                "spec.clientType",
                format!(
                    "policy {} requires clientAuthentication.method {} but policy {} requires {}; no client can satisfy both",
                    policy.reference,
                    method.as_str(),
                    first.reference,
                    first_method.as_str()
                ),
            )
        } else {
            let both: Vec<&str> = ClientAuthMethod::ALL
                .into_iter()
                .filter(|m| *m != ClientAuthMethod::None)
                .filter(|m| first.allows_auth_method(*m) && policy.allows_auth_method(*m))
                .map(ClientAuthMethod::as_str)
                .collect();
            let remedy = if both.is_empty() {
                "no method is allowed by both, so no client can satisfy both".to_owned()
            } else {
                format!(
                    "name one both allow in spec.tokenEndpointAuthMethod ({})",
                    both.join(", ")
                )
            };
            (
                "spec.tokenEndpointAuthMethod",
                format!(
                    "policy {} gives clientAuthentication.method {} by default but policy {} gives {}; {remedy}",
                    policy.reference,
                    method.as_str(),
                    first.reference,
                    first_method.as_str()
                ),
            )
        };
        found.push(Violation::of_policy(
            field,
            rule::AUTH_METHOD,
            &policy.reference,
            policy.enforcement,
            message,
        ));
    }
}

fn listing<T: AsRef<str>>(items: &[T]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
