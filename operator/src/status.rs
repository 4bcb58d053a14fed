//! An AuthClient's status, from the engine's evaluation and what the reconcile left in
//! place: `Ready`, `PolicyCompliant` and `Provisioned` conditions in the Kubernetes style,
//! and everything a developer needs to know why.
//!
//! `Provisioned` says whether a registration exists; `Ready` whether it is what the
//! policies decide now. A client whose changes are withheld keeps `Provisioned=True`
//! (its registration and credentials still work) with `Ready=False` saying why.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use nauthera_shared::policy::{Compliance, Evaluation, Standing};
use nauthera_shared::resources::{
    AuthClient, AuthClientStatus, Condition, RotationStatus, SecretNameRef,
};

use crate::secrets::StoredRegistration;

/// What the reconcile left in place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// The registration that exists, and the Secret its credentials are in.
    pub registered: Option<Registered>,
    /// Why the client is not as the policies decide, beyond compliance.
    pub problem: Option<Problem>,
    /// The credentials' rotation, when this reconcile knows it (else the status keeps
    /// what it said).
    pub rotation: Option<RotationStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub client_id: String,
    /// Where; unknown when carried over from an earlier status after a failure.
    pub issuer: Option<String>,
    pub secret: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Outcome {
    pub fn registered(record: &StoredRegistration, secret: Option<String>) -> Self {
        Self {
            registered: Some(Registered {
                client_id: record.client_id.clone(),
                issuer: Some(record.issuer_url.clone()),
                secret,
            }),
            problem: None,
            rotation: None,
        }
    }

    #[must_use]
    pub fn with_problem(mut self, problem: Problem) -> Self {
        self.problem = Some(problem);
        self
    }
}

/// The status the client should have now.
pub fn client_status(
    client: &AuthClient,
    evaluation: &Evaluation,
    outcome: &Outcome,
) -> AuthClientStatus {
    let previous_status = client.status.as_ref();
    let previous = previous_status
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = client.metadata.generation;
    let condition = |type_: &str, ok: bool, reason: &str, message: String| {
        condition(previous, generation, type_, ok, reason, message)
    };
    let (compliant, compliant_reason, compliant_message) = compliance(evaluation);
    let provisionable =
        evaluation.standing == Standing::Governed && evaluation.compliance.is_provisionable();
    let (ready, ready_reason, ready_message) = match (&outcome.problem, &outcome.registered) {
        (Some(problem), _) => (false, problem.reason, problem.message.clone()),
        (None, Some(registered)) if provisionable => (
            true,
            "Ready",
            match &registered.secret {
                Some(secret) => format!("credentials in Secret {secret}"),
                None => format!("registered as {}", registered.client_id),
            },
        ),
        (None, Some(registered)) => (
            false,
            compliant_reason,
            format!(
                "{compliant_message} — registration {} and its credentials are kept as they were; changes are withheld until this is resolved",
                registered.client_id
            ),
        ),
        (None, None) => (false, compliant_reason, compliant_message.clone()),
    };
    let provisioned = match (&outcome.registered, &outcome.problem) {
        (Some(registered), _) => {
            let message = match &registered.issuer {
                Some(issuer) => format!("registered at {issuer} as {}", registered.client_id),
                None => previous
                    .iter()
                    .find(|c| c.type_ == "Provisioned" && c.status == "True")
                    .map_or_else(
                        || format!("registered as {}", registered.client_id),
                        |c| c.message.clone(),
                    ),
            };
            condition("Provisioned", true, "Registered", message)
        }
        (None, Some(problem)) => condition(
            "Provisioned",
            false,
            problem.reason,
            problem.message.clone(),
        ),
        (None, None) => condition(
            "Provisioned",
            false,
            "NotProvisioned",
            format!("not provisioned: {compliant_message}"),
        ),
    };
    // What the provider was last given: the policies' settings once they are applied;
    // while withheld, or after a failure, whatever it had before.
    let effective = if provisionable && outcome.problem.is_none() && outcome.registered.is_some() {
        evaluation.effective.clone()
    } else if outcome.registered.is_some() {
        previous_status.and_then(|s| s.effective.clone())
    } else if provisionable {
        evaluation.effective.clone()
    } else {
        None
    };
    AuthClientStatus {
        conditions: vec![
            condition("Ready", ready, ready_reason, ready_message),
            condition(
                "PolicyCompliant",
                compliant,
                compliant_reason,
                compliant_message,
            ),
            provisioned,
        ],
        observed_generation: generation,
        client_id: outcome.registered.as_ref().map(|r| r.client_id.clone()),
        client_secret_ref: outcome
            .registered
            .as_ref()
            .and_then(|r| r.secret.clone())
            .map(|name| SecretNameRef { name }),
        applied_policies: evaluation
            .governing
            .iter()
            .map(ToString::to_string)
            .collect(),
        effective,
        violations: evaluation.violations.clone(),
        rotation: outcome.registered.as_ref().and_then(|_| {
            outcome
                .rotation
                .clone()
                .or_else(|| previous_status.and_then(|s| s.rotation.clone()))
        }),
    }
}

/// `PolicyCompliant`: whether, why, and the sentence that says it.
fn compliance(evaluation: &Evaluation) -> (bool, &'static str, String) {
    let (reason, compliant) = match (evaluation.standing, evaluation.compliance) {
        (Standing::Governed, Compliance::Compliant) => ("Compliant", true),
        (Standing::Governed, Compliance::AuditViolations) => ("AuditFindings", true),
        (Standing::Governed, Compliance::NonCompliant) => ("PolicyViolation", false),
        (Standing::ServerNotFound, _) => ("ServerNotFound", false),
        (Standing::ServerInvalid, _) => ("ServerInvalid", false),
        (Standing::NamespaceNotTrusted, _) => ("NamespaceNotTrusted", false),
        (Standing::NoGoverningPolicy, _) => ("NoGoverningPolicy", false),
    };
    let message = if compliant && evaluation.violations.is_empty() {
        let names: Vec<String> = evaluation
            .governing
            .iter()
            .map(ToString::to_string)
            .collect();
        format!("complies with {}", names.join(", "))
    } else {
        evaluation
            .enforced_violations()
            .next()
            .or_else(|| evaluation.violations.first())
            .map(|violation| violation.message.clone())
            .unwrap_or_default()
    };
    (compliant, reason, message)
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
