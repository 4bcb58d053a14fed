//! An AuthClient's status, from the engine's evaluation and what happened at the
//! provider: `Ready`, `PolicyCompliant` and `Provisioned` conditions in the Kubernetes
//! style, and everything a developer needs to know why.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use nauthera_shared::policy::{Compliance, Evaluation, Standing};
use nauthera_shared::resources::{AuthClient, AuthClientStatus, Condition, SecretNameRef};

/// What happened at the provider in this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provisioning {
    /// Registered, with the settings the policies decided.
    Provisioned { client_id: String, secret: String },
    /// Not provisioned because the client is not compliant (and removed if it was).
    Withheld,
    /// The provider could not be brought in line; the reason is for a retry.
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// The status the client should have now.
pub fn client_status(
    client: &AuthClient,
    evaluation: &Evaluation,
    provisioning: &Provisioning,
) -> AuthClientStatus {
    let previous = client
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = client.metadata.generation;
    let condition = |type_: &str, ok: bool, reason: &str, message: String| {
        condition(previous, generation, type_, ok, reason, message)
    };
    let first_violation = || {
        evaluation
            .enforced_violations()
            .next()
            .or_else(|| evaluation.violations.first())
            .map(|violation| violation.message.clone())
            .unwrap_or_default()
    };
    let (compliant_reason, compliant) = match (evaluation.standing, evaluation.compliance) {
        (Standing::Governed, Compliance::Compliant) => ("Compliant", true),
        (Standing::Governed, Compliance::AuditViolations) => ("AuditFindings", true),
        (Standing::Governed, Compliance::NonCompliant) => ("PolicyViolation", false),
        (Standing::ServerNotFound, _) => ("ServerNotFound", false),
        (Standing::ServerInvalid, _) => ("ServerInvalid", false),
        (Standing::NamespaceNotTrusted, _) => ("NamespaceNotTrusted", false),
        (Standing::NoGoverningPolicy, _) => ("NoGoverningPolicy", false),
    };
    let compliant_message = if compliant && evaluation.violations.is_empty() {
        format!("complies with {}", names(&evaluation.governing))
    } else {
        first_violation()
    };
    let policy_compliant = condition(
        "PolicyCompliant",
        compliant,
        compliant_reason,
        compliant_message.clone(),
    );
    let (provisioned, ready, client_id, secret) = match provisioning {
        Provisioning::Provisioned { client_id, secret } => (
            condition(
                "Provisioned",
                true,
                "Registered",
                format!("registered as {client_id}"),
            ),
            condition(
                "Ready",
                true,
                "Ready",
                format!("credentials in Secret {secret}"),
            ),
            Some(client_id.clone()),
            Some(secret.clone()),
        ),
        Provisioning::Withheld => (
            condition(
                "Provisioned",
                false,
                "NotCompliant",
                "not provisioned: the client does not comply".to_owned(),
            ),
            condition("Ready", false, compliant_reason, compliant_message),
            None,
            None,
        ),
        Provisioning::Failed { reason, message } => (
            condition("Provisioned", false, reason, message.clone()),
            condition("Ready", false, reason, message.clone()),
            None,
            None,
        ),
    };
    AuthClientStatus {
        conditions: vec![ready, policy_compliant, provisioned],
        observed_generation: generation,
        client_id,
        client_secret_ref: secret.map(|name| SecretNameRef { name }),
        applied_policies: evaluation
            .governing
            .iter()
            .map(ToString::to_string)
            .collect(),
        effective: evaluation.effective.clone(),
        violations: evaluation.violations.clone(),
    }
}

/// A condition that keeps its transition time while its status does not change.
pub fn condition(
    previous: &[Condition],
    generation: Option<i64>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(
            || Time(Timestamp::now()),
            |c| c.last_transition_time.clone(),
        );
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: generation,
    }
}

/// Whether `new` says anything `old` does not (transition times aside): a reconcile with
/// nothing to report writes nothing.
pub fn differs(old: Option<&AuthClientStatus>, new: &AuthClientStatus) -> bool {
    let Some(old) = old else {
        return true;
    };
    let strip = |status: &AuthClientStatus| {
        let mut status = status.clone();
        for condition in &mut status.conditions {
            condition.last_transition_time = Time(Timestamp::UNIX_EPOCH);
        }
        status
    };
    strip(old) != strip(new)
}

/// The Ready condition's reason, to tell transitions apart for events.
pub fn ready_reason(status: Option<&AuthClientStatus>) -> Option<&str> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.as_str())
}

fn names(policies: &[nauthera_shared::resources::ObjectRef]) -> String {
    policies
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
