//! A policy made ready for evaluation: durations parsed, selectors compiled, schedules
//! checked. Whatever cannot be read is kept as a [`FieldError`] naming the field, so an
//! invalid policy is reported, never silently ignored.

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt};

use crate::duration::Lifetime;
use crate::resources::{
    AuthPolicy, ClientAuthMethod, ClientAuthentication, Enforcement, GrantType, LabelSelector,
    ObjectRef, ViolationResponse, labels_of,
};

/// A problem in an object's own spec, with the field it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, e.g. `spec.token.accessTokenTTL`.
    pub field: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A label selector ready to match. An unreadable selector is reported and matches every
/// object, so that a typo in a policy makes clients fail loudly rather than slip out of it.
#[derive(Clone, Debug)]
pub(crate) enum CompiledSelector {
    Everything,
    Matching(Selector),
}

impl CompiledSelector {
    /// Compiles `selector` (`None` selects everything), recording errors against `field`.
    pub(crate) fn compile(
        selector: Option<&LabelSelector>,
        field: &str,
        errors: &mut Vec<FieldError>,
    ) -> Self {
        let Some(selector) = selector else {
            return Self::Everything;
        };
        match Selector::try_from(selector.clone()) {
            Ok(compiled) if compiled.selects_all() => Self::Everything,
            Ok(compiled) => Self::Matching(compiled),
            Err(error) => {
                errors.push(FieldError {
                    field: field.to_owned(),
                    message: format!("invalid label selector: {error}"),
                });
                Self::Everything
            }
        }
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Everything => true,
            Self::Matching(selector) => selector.matches(labels),
        }
    }
}

/// A policy's rules, parsed.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    pub reference: ObjectRef,
    pub labels: BTreeMap<String, String>,
    pub enforcement: Enforcement,
    pub violation_response: ViolationResponse,
    pub(crate) client_selector: CompiledSelector,
    pub(crate) namespace_selector: CompiledSelector,
    pub access_token_ttl: Option<Lifetime>,
    pub refresh_token_ttl: Option<Lifetime>,
    pub id_token_ttl: Option<Lifetime>,
    pub allowed_grant_types: Option<Vec<GrantType>>,
    pub enforce_pkce: bool,
    /// In the policy's own order. Lists are short, so a scan beats hashing here.
    pub allowed_scopes: Option<Vec<String>>,
    pub max_scopes: Option<u32>,
    pub require_confidential_clients: bool,
    /// `clientAuthentication.method`: the default a Confidential client gets.
    pub auth_method: Option<ClientAuthMethod>,
    /// `clientAuthentication.allowedMethods`. Without it, `auth_method` (when set) is the
    /// only method allowed: see [`Self::allows_auth_method`].
    pub allowed_auth_methods: Option<Vec<ClientAuthMethod>>,
    pub secret_rotation: Option<RotationSchedule>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allow_loopback_http: bool,
    /// Private-use URI schemes, lower case.
    pub allowed_schemes: Vec<String>,
    /// What is wrong with the policy itself.
    pub errors: Vec<FieldError>,
}

/// A secret rotation schedule and how often it fires, to find the most frequent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationSchedule {
    pub schedule: String,
    pub(crate) fires_per_week: usize,
    /// How long old credentials keep working after a rotation.
    pub overlap: Lifetime,
}

/// How long old credentials keep working after a rotation when the policy does not say.
pub const DEFAULT_ROTATION_OVERLAP: Lifetime = Lifetime::from_secs(3600);

impl CompiledPolicy {
    pub fn compile(policy: &AuthPolicy) -> Self {
        let spec = &policy.spec;
        let mut errors = Vec::new();
        let client_selector = CompiledSelector::compile(
            spec.client_selector.as_ref(),
            "spec.clientSelector",
            &mut errors,
        );
        let namespace_selector = CompiledSelector::compile(
            spec.namespace_selector.as_ref(),
            "spec.namespaceSelector",
            &mut errors,
        );
        let token = spec.token.clone().unwrap_or_default();
        let access_token_ttl = lifetime(
            token.access_token_ttl.as_deref(),
            "spec.token.accessTokenTTL",
            &mut errors,
        );
        let refresh_token_ttl = lifetime(
            token.refresh_token_ttl.as_deref(),
            "spec.token.refreshTokenTTL",
            &mut errors,
        );
        let id_token_ttl = lifetime(
            token.id_token_ttl.as_deref(),
            "spec.token.idTokenTTL",
            &mut errors,
        );
        let authentication = spec.client_authentication.clone().unwrap_or_default();
        let secret_rotation = authentication
            .secret_rotation
            .as_ref()
            .and_then(|rotation| {
                let overlap = lifetime(
                    rotation.overlap.as_deref(),
                    "spec.clientAuthentication.secretRotation.overlap",
                    &mut errors,
                )
                .unwrap_or(DEFAULT_ROTATION_OVERLAP);
                rotation
                    .enabled
                    .then(|| rotation_schedule(rotation.schedule.as_deref(), overlap, &mut errors))
                    .flatten()
            });
        let redirect_rules = spec.redirect_uris.clone().unwrap_or_default();
        if let Some(hosts) = &redirect_rules.allowed_hosts {
            for (index, pattern) in hosts.iter().enumerate() {
                if let Err(message) = check_host_pattern(pattern) {
                    errors.push(FieldError {
                        field: format!("spec.redirectUris.allowedHosts[{index}]"),
                        message,
                    });
                }
            }
        }
        for (index, scheme) in redirect_rules.allowed_schemes.iter().enumerate() {
            if !is_private_use_scheme(&scheme.to_ascii_lowercase()) {
                errors.push(FieldError {
                    field: format!("spec.redirectUris.allowedSchemes[{index}]"),
                    message: format!(
                        "{scheme:?} is not a private-use URI scheme: use a reverse domain name such as \"com.example.app\" (RFC 8252, section 7.1)"
                    ),
                });
            }
        }
        check_authentication(
            &authentication,
            spec.require_confidential_clients,
            &mut errors,
        );
        Self {
            reference: ObjectRef::of(policy),
            labels: labels_of(policy).clone(),
            enforcement: spec.enforcement,
            violation_response: spec.violation_response,
            client_selector,
            namespace_selector,
            access_token_ttl,
            refresh_token_ttl,
            id_token_ttl,
            allowed_grant_types: spec.allowed_grant_types.clone(),
            enforce_pkce: spec.enforce_pkce.unwrap_or(true),
            allowed_scopes: spec.allowed_scopes.clone(),
            max_scopes: spec.max_scopes,
            require_confidential_clients: spec.require_confidential_clients,
            auth_method: authentication.method,
            allowed_auth_methods: authentication.allowed_methods,
            secret_rotation,
            allowed_hosts: redirect_rules
                .allowed_hosts
                .map(|hosts| hosts.iter().map(|h| h.to_ascii_lowercase()).collect()),
            allow_loopback_http: redirect_rules.allow_loopback_http,
            allowed_schemes: redirect_rules
                .allowed_schemes
                .iter()
                .map(|scheme| scheme.to_ascii_lowercase())
                .collect(),
            errors,
        }
    }

    /// Whether this policy governs a client with these labels in a namespace with these labels.
    pub(crate) fn governs(
        &self,
        client_labels: &BTreeMap<String, String>,
        namespace_labels: &BTreeMap<String, String>,
    ) -> bool {
        self.client_selector.matches(client_labels)
            && self.namespace_selector.matches(namespace_labels)
    }

    pub(crate) fn allows_scope(&self, scope: &str) -> bool {
        self.allowed_scopes
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|a| a == scope))
    }

    pub(crate) fn allows_grant_type(&self, grant_type: GrantType) -> bool {
        self.allowed_grant_types
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&grant_type))
    }

    /// Whether a client may authenticate with `method`: it is in `allowedMethods`, or, without
    /// that list, it is `method` (when set).
    pub(crate) fn allows_auth_method(&self, method: ClientAuthMethod) -> bool {
        match &self.allowed_auth_methods {
            Some(allowed) => allowed.contains(&method),
            None => self.auth_method.is_none_or(|required| required == method),
        }
    }

    /// Whether the policy names one method only (`method` without `allowedMethods`), which
    /// it then requires rather than gives by default.
    pub(crate) fn requires_one_auth_method(&self) -> bool {
        self.auth_method.is_some() && self.allowed_auth_methods.is_none()
    }

    /// Whether redirect URIs may use the private-use `scheme` (lower case).
    pub(crate) fn allows_scheme(&self, scheme: &str) -> bool {
        self.allowed_schemes.iter().any(|allowed| allowed == scheme)
    }

    /// Whether `host` (lower case) is one the policy lets redirect URIs point at.
    pub(crate) fn allows_host(&self, host: &str) -> bool {
        self.allowed_hosts
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|pattern| host_matches(pattern, host)))
    }
}

fn lifetime(text: Option<&str>, field: &str, errors: &mut Vec<FieldError>) -> Option<Lifetime> {
    match text?.parse::<Lifetime>() {
        Ok(lifetime) => Some(lifetime),
        Err(error) => {
            errors.push(FieldError {
                field: field.to_owned(),
                message: error.to_string(),
            });
            None
        }
    }
}

/// Reads a five-field cron schedule; an unreadable one is an error, not a silent default.
fn rotation_schedule(
    schedule: Option<&str>,
    overlap: Lifetime,
    errors: &mut Vec<FieldError>,
) -> Option<RotationSchedule> {
    const FIELD: &str = "spec.clientAuthentication.secretRotation.schedule";
    let Some(schedule) = schedule else {
        errors.push(FieldError {
            field: FIELD.to_owned(),
            message:
                "is required when rotation is enabled, e.g. \"0 0 * * *\" (daily at midnight UTC)"
                    .to_owned(),
        });
        return None;
    };
    let fields = schedule.split_whitespace().count();
    if fields != 5 {
        errors.push(FieldError {
            field: FIELD.to_owned(),
            message: format!("{schedule:?} has {fields} fields; a schedule has five: minute hour day-of-month month day-of-week"),
        });
        return None;
    }
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .build();
    match parser.parse(schedule).map_err(|error| error.to_string()) {
        Ok(cron) => Some(RotationSchedule {
            schedule: schedule.to_owned(),
            fires_per_week: fires_per_week(&cron),
            overlap,
        }),
        Err(error) => {
            errors.push(FieldError {
                field: FIELD.to_owned(),
                message: format!("{schedule:?} is not a cron schedule: {error}"),
            });
            None
        }
    }
}

/// How often a schedule fires in a fixed reference week (capped: past a rotation every
/// five minutes, more often is not more restrictive in any way that matters).
fn fires_per_week(cron: &croner::Cron) -> usize {
    const CAP: usize = 7 * 24 * 12;
    let week_start = chrono::DateTime::from_timestamp(1_767_571_200, 0).expect("valid timestamp"); // Mon 2026-01-05 UTC
    let week_end = week_start + chrono::Duration::days(7);
    cron.iter_from(week_start, croner::Direction::Forward)
        .take(CAP)
        .take_while(|time| *time < week_end)
        .count()
}

/// The default method must be one clients may use, and a policy that refuses Public clients
/// must leave Confidential ones a method: either mistake would refuse every client.
fn check_authentication(
    authentication: &ClientAuthentication,
    require_confidential_clients: bool,
    errors: &mut Vec<FieldError>,
) {
    if let (Some(method), Some(allowed)) = (authentication.method, &authentication.allowed_methods)
        && !allowed.contains(&method)
    {
        let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        errors.push(FieldError {
            field: "spec.clientAuthentication.method".to_owned(),
            message: format!(
                "{} is not one of clientAuthentication.allowedMethods ({}): the default must be a method clients may use",
                method.as_str(),
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ),
        });
    }
    let only_none = match (&authentication.allowed_methods, authentication.method) {
        (Some(allowed), _) => allowed.iter().all(|m| *m == ClientAuthMethod::None),
        (None, Some(method)) => method == ClientAuthMethod::None,
        (None, None) => false,
    };
    if require_confidential_clients && only_none {
        errors.push(FieldError {
            field: "spec.requireConfidentialClients".to_owned(),
            message: "refuses Public clients, but clientAuthentication leaves Confidential clients no method (none is for Public clients only): no client could comply".to_owned(),
        });
    }
}

/// A private-use URI scheme in RFC 8252's sense (section 7.1): a reverse domain name such as
/// `com.example.app`, given in lower case. Schemes without a dot (`myapp`, `https`) are not.
pub(crate) fn is_private_use_scheme(scheme: &str) -> bool {
    let mut labels = scheme.split('.');
    let first_is_letter = scheme.starts_with(|c: char| c.is_ascii_lowercase());
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    first_is_letter && scheme.contains('.') && labels.all(label_ok)
}

/// Allowed host patterns are DNS names, optionally starting with `*.` for any subdomain.
fn check_host_pattern(pattern: &str) -> Result<(), String> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.split('.').all(valid_label) {
        Ok(())
    } else {
        Err(format!(
            "{pattern:?} is not a host name or a \"*.\"-prefixed domain such as \"*.example.com\""
        ))
    }
}

/// `*.example.com` matches any subdomain of example.com (not example.com itself);
/// any other pattern matches exactly.
pub(crate) fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern == host,
    }
}

/// When a rotation on `schedule` (five-field cron, UTC) is next due after `after` (both
/// in seconds since the Unix epoch); `None` for a schedule that cannot be read (the
/// policy reports it) or never fires again.
pub fn next_rotation(schedule: &str, after: i64) -> Option<i64> {
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .build();
    let after = chrono::DateTime::from_timestamp(after, 0)?;
    let next = parser
        .parse(schedule)
        .ok()?
        .find_next_occurrence(&after, false)
        .ok()?;
    Some(next.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::AuthPolicySpec;

    fn compile(yaml: &str) -> CompiledPolicy {
        let spec: AuthPolicySpec = serde_yaml_ng::from_str(yaml).unwrap();
        let mut policy = AuthPolicy::new("p", spec);
        policy.metadata.namespace = Some("security".into());
        CompiledPolicy::compile(&policy)
    }

    #[test]
    fn bad_durations_name_their_field() {
        let policy =
            compile("token: {accessTokenTTL: 15x, refreshTokenTTL: 24h, idTokenTTL: '0s'}");
        let fields: Vec<_> = policy.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            fields,
            [
                "spec.token.accessTokenTTL: \"15x\" has unknown unit \"x\": use h, m, s, ms, us or ns",
                "spec.token.idTokenTTL: \"0s\" must be longer than zero",
            ]
        );
        assert_eq!(policy.refresh_token_ttl, Some(Lifetime::from_secs(86_400)));
    }

    #[test]
    fn rotation_needs_a_five_field_schedule() {
        let ok = compile(
            "clientAuthentication: {secretRotation: {enabled: true, schedule: '0 0 * * *'}}",
        );
        assert!(ok.errors.is_empty());
        assert_eq!(
            ok.secret_rotation.as_ref().map(|r| r.fires_per_week),
            Some(7)
        );
        let hourly = compile(
            "clientAuthentication: {secretRotation: {enabled: true, schedule: '0 * * * *'}}",
        );
        assert_eq!(hourly.secret_rotation.map(|r| r.fires_per_week), Some(168));
        let six = compile(
            "clientAuthentication: {secretRotation: {enabled: true, schedule: '0 0 0 * * *'}}",
        );
        assert_eq!(
            six.errors[0].field,
            "spec.clientAuthentication.secretRotation.schedule"
        );
        assert!(
            six.errors[0].message.contains("has 6 fields"),
            "{}",
            six.errors[0].message
        );
        let junk = compile(
            "clientAuthentication: {secretRotation: {enabled: true, schedule: '61 0 * * *'}}",
        );
        assert!(
            junk.errors[0]
                .message
                .starts_with("\"61 0 * * *\" is not a cron schedule"),
            "{}",
            junk.errors[0].message
        );
        let missing = compile("clientAuthentication: {secretRotation: {enabled: true}}");
        assert!(
            missing.errors[0]
                .message
                .starts_with("is required when rotation is enabled")
        );
        let disabled =
            compile("clientAuthentication: {secretRotation: {enabled: false, schedule: 'junk'}}");
        assert!(disabled.errors.is_empty() && disabled.secret_rotation.is_none());
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("*.example.com", "app.example.com"));
        assert!(host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "evilexample.com"));
        assert!(host_matches("example.com", "example.com"));
        let bad =
            compile("redirectUris: {allowedHosts: ['*.example.com', 'a.*.com', 'https://x.com']}");
        let fields: Vec<_> = bad.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.redirectUris.allowedHosts[1]",
                "spec.redirectUris.allowedHosts[2]"
            ]
        );
    }

    #[test]
    fn unreadable_selector_is_reported_and_matches_everything() {
        let policy = compile(
            "clientSelector: {matchExpressions: [{key: tier, operator: Within, values: [a]}]}",
        );
        assert_eq!(policy.errors[0].field, "spec.clientSelector");
        assert!(policy.governs(&BTreeMap::new(), &BTreeMap::new()));
    }

    #[test]
    fn defaults_are_secure() {
        let policy = compile("{}");
        assert!(policy.enforce_pkce);
        assert_eq!(policy.enforcement, Enforcement::Enforce);
        assert!(policy.errors.is_empty());
    }
}
