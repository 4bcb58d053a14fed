//! Evaluation of one client: resolve its server, the server's trust and the governing
//! policies; check the rules; merge the settings.

use super::compiled::CompiledPolicy;
use super::effective::{PolicyDecided, SettingChange, decide};
use super::resolve::{CompiledServer, Evaluator, Labels, no_policy_message};
use super::rules::{FixedFindings, check_fixed_rules, check_policy_rules};
use super::violation::{Violation, rule};
use super::{Compliance, Evaluation, Standing};
use crate::resources::{AuthClient, ObjectRef, ViolationResponse, labels_of};

/// What the engine knows of a client before any policy is consulted: who it is, which
/// server it names, and what Nauthera's fixed rules say of it. A policy edit changes none
/// of it, so previews prepare each client once.
#[derive(Clone, Debug)]
pub struct PreparedClient {
    pub reference: ObjectRef,
    pub server: ObjectRef,
    fixed: FixedFindings,
}

impl PreparedClient {
    pub fn new(client: &AuthClient) -> Self {
        let reference = ObjectRef::of(client);
        let server_ref = &client.spec.auth_server_ref;
        let server_namespace = server_ref
            .namespace
            .clone()
            .unwrap_or_else(|| reference.namespace.clone());
        Self {
            server: ObjectRef::new(server_namespace, server_ref.name.clone()),
            reference,
            fixed: check_fixed_rules(client),
        }
    }

    /// What Nauthera's fixed rules say of the client's own fields, whatever its server and
    /// policies. An evaluation that stops at the server or the namespace's trust does not
    /// carry them; the admission webhook still refuses them.
    pub fn fixed_violations(&self) -> &[Violation] {
        &self.fixed.violations
    }
}

/// An evaluation that borrows from the evaluator, cheap to compare with an earlier one.
pub(crate) struct Outcome<'e> {
    standing: Standing,
    governing: Vec<&'e CompiledPolicy>,
    violations: Vec<Violation>,
    revoked_by: Vec<&'e CompiledPolicy>,
    compliance: Compliance,
    decided: Option<PolicyDecided<'e>>,
}

impl Outcome<'_> {
    /// Whether this outcome says exactly what `earlier` says.
    pub(crate) fn same_as(&self, earlier: &Evaluation) -> bool {
        self.same_standing(earlier)
            && match (&self.decided, &earlier.effective) {
                (Some(decided), Some(settings)) => decided.agrees_with(settings),
                (None, None) => true,
                _ => false,
            }
    }

    /// When this outcome differs from `earlier` only in policy-decided settings: those
    /// changes (possibly none). The common case of a policy edit, answered without
    /// building a whole evaluation.
    pub(crate) fn settings_changes_only(&self, earlier: &Evaluation) -> Option<Vec<SettingChange>> {
        let (Some(decided), Some(settings)) = (&self.decided, &earlier.effective) else {
            return None;
        };
        self.same_standing(earlier)
            .then(|| decided.changes_from(settings))
    }

    /// Same compliance, standing, violations and governing policies as `earlier`.
    fn same_standing(&self, earlier: &Evaluation) -> bool {
        self.compliance == earlier.compliance
            && self.standing == earlier.standing
            && self.violations == earlier.violations
            && self.revoked_by.len() == earlier.revoked_by.len()
            && self
                .revoked_by
                .iter()
                .zip(&earlier.revoked_by)
                .all(|(policy, name)| &policy.reference == name)
            && self.governing.len() == earlier.governing.len()
            && self
                .governing
                .iter()
                .zip(&earlier.governing)
                .all(|(policy, name)| &policy.reference == name)
    }

    pub(crate) fn into_evaluation(
        self,
        client: &AuthClient,
        prepared: &PreparedClient,
    ) -> Evaluation {
        Evaluation {
            client: prepared.reference.clone(),
            server: prepared.server.clone(),
            standing: self.standing,
            governing: self
                .governing
                .iter()
                .map(|policy| policy.reference.clone())
                .collect(),
            effective: self.decided.map(|decided| decided.settings_for(client)),
            violations: self.violations,
            revoked_by: self
                .revoked_by
                .iter()
                .map(|policy| policy.reference.clone())
                .collect(),
            compliance: self.compliance,
        }
    }
}

impl Evaluator {
    /// Resolves and checks one client.
    pub fn evaluate(&self, client: &AuthClient) -> Evaluation {
        let prepared = PreparedClient::new(client);
        self.evaluate_prepared(client, &prepared)
    }

    /// Resolves and checks a client prepared earlier (see [`PreparedClient`]).
    pub fn evaluate_prepared(&self, client: &AuthClient, prepared: &PreparedClient) -> Evaluation {
        self.outcome(client, prepared)
            .into_evaluation(client, prepared)
    }

    pub(crate) fn outcome<'e>(
        &'e self,
        client: &AuthClient,
        prepared: &PreparedClient,
    ) -> Outcome<'e> {
        let server = self.servers.get(&prepared.server).map(AsRef::as_ref);
        let namespace_labels = self.namespace_labels(&prepared.reference.namespace);
        Self::outcome_on(server, namespace_labels, client, prepared)
    }

    /// [`Self::outcome`] with the client's server and namespace labels already looked up,
    /// for callers that evaluate many clients of few servers.
    pub(crate) fn outcome_on<'e>(
        server: Option<&'e CompiledServer>,
        namespace_labels: &Labels,
        client: &AuthClient,
        prepared: &PreparedClient,
    ) -> Outcome<'e> {
        let refuse = |standing: Standing, rule: &str, message: String| Outcome {
            standing,
            governing: Vec::new(),
            violations: vec![Violation::fixed("spec.authServerRef", rule, message)],
            revoked_by: Vec::new(),
            compliance: Compliance::NonCompliant,
            decided: None,
        };
        let server_ref = &prepared.server;
        let Some(server) = server else {
            let message = format!("AuthServer {server_ref} does not exist");
            return refuse(Standing::ServerNotFound, rule::SERVER_EXISTS, message);
        };
        if !server.errors.is_empty() {
            let problems: Vec<String> = server.errors.iter().map(ToString::to_string).collect();
            let message = format!(
                "AuthServer {server_ref} is invalid: {}",
                problems.join("; ")
            );
            return refuse(Standing::ServerInvalid, rule::SERVER_VALID, message);
        }
        let namespace = &prepared.reference.namespace;
        if let Err(message) = server.trusts(namespace, namespace_labels) {
            return refuse(
                Standing::NamespaceNotTrusted,
                rule::ALLOWED_NAMESPACES,
                message,
            );
        }
        let client_labels = labels_of(client);
        let governing: Vec<&CompiledPolicy> = server
            .policies
            .iter()
            .filter(|policy| policy.governs(client_labels, namespace_labels))
            .map(AsRef::as_ref)
            .collect();
        if governing.is_empty() {
            return refuse(
                Standing::NoGoverningPolicy,
                rule::POLICY_SELECTOR,
                no_policy_message(server),
            );
        }
        let mut violations = prepared.fixed.violations.clone();
        violations.extend(check_policy_rules(client, &prepared.fixed, &governing));
        let compliance = if violations.is_empty() {
            Compliance::Compliant
        } else if violations.iter().any(Violation::is_enforced) {
            Compliance::NonCompliant
        } else {
            Compliance::AuditViolations
        };
        let revoked_by = governing
            .iter()
            .copied()
            .filter(|policy| revokes(policy, &violations))
            .collect();
        Outcome {
            standing: Standing::Governed,
            revoked_by,
            decided: compliance
                .is_provisionable()
                .then(|| decide(client, &governing)),
            governing,
            violations,
            compliance,
        }
    }
}

/// Whether `policy` revokes a client with these violations: it asks for it, and the
/// client breaks one of its enforced rules. A policy that is itself broken revokes
/// nothing: a bad edit must not wipe registrations.
fn revokes(policy: &CompiledPolicy, violations: &[Violation]) -> bool {
    let name = policy.reference.to_string();
    policy.violation_response == ViolationResponse::Revoke
        && policy.errors.is_empty()
        && violations.iter().any(|violation| {
            violation.is_enforced()
                && violation.rule != rule::POLICY_VALID
                && violation.policy.as_deref() == Some(name.as_str())
        })
}
