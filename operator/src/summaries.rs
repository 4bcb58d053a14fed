//! Status for servers and policies: whether a server's provider is reachable (discovery
//! fetched, issuer matching) and which policies it selects; how many clients a policy
//! governs, and how many of those comply or break its rules. Computed from the shared
//! engine over the stores, written only when it changed.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, Resource};
use nauthera_shared::policy::{Compliance, Evaluation};
use nauthera_shared::resources::{
    AuthClient, AuthPolicy, AuthPolicyStatus, AuthServer, AuthServerStatus, Condition, ObjectRef,
};
use serde_json::json;

use crate::Error;
use crate::context::{Context, FIELD_MANAGER};
use crate::provider::dcr::{discover, http_client};
use crate::status::condition;

/// Reachability is checked again this often.
const RECHECK: Duration = Duration::from_secs(300);

/// What summaries need beyond the client controller's context: every client.
pub struct Summaries {
    pub ctx: Arc<Context>,
    pub clients: Store<AuthClient>,
}

impl Summaries {
    fn evaluations(&self) -> Vec<Evaluation> {
        let evaluator = self.ctx.evaluator();
        self.clients
            .state()
            .iter()
            .map(|client| evaluator.evaluate(client))
            .collect()
    }
}

pub async fn reconcile_server(
    server: Arc<AuthServer>,
    summaries: Arc<Summaries>,
) -> Result<Action, Error> {
    summaries.ctx.wait_for_stores().await;
    let reference = ObjectRef::of(server.as_ref());
    let issuer = &server.spec.issuer_url;
    let (reachable, message, endpoint) = match http_client() {
        Ok(http) => match discover(&http, issuer).await {
            Ok(discovery) => {
                let endpoint = server
                    .spec
                    .provider
                    .registration_endpoint
                    .clone()
                    .or(discovery.registration_endpoint);
                match &endpoint {
                    Some(endpoint) => (
                        true,
                        format!("discovery at {issuer} answered; registrations go to {endpoint}"),
                        Some(endpoint.clone()),
                    ),
                    None => (
                        false,
                        format!(
                            "{issuer} offers no registration_endpoint: dynamic client registration is not enabled there"
                        ),
                        None,
                    ),
                }
            }
            Err(error) => (false, error.to_string(), None),
        },
        Err(error) => (false, error.to_string(), None),
    };
    let evaluator = summaries.ctx.evaluator();
    let policies = evaluator
        .server(&reference)
        .map(|compiled| {
            compiled
                .policies()
                .iter()
                .map(|p| p.reference.to_string())
                .collect()
        })
        .unwrap_or_default();
    let clients = summaries
        .evaluations()
        .iter()
        .filter(|e| e.server == reference)
        .count();
    let previous = server
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = server.meta().generation;
    let reason = if reachable {
        "DiscoveryOk"
    } else {
        "Unreachable"
    };
    let status = AuthServerStatus {
        conditions: vec![
            condition(
                previous,
                generation,
                "ProviderReachable",
                reachable,
                reason,
                message.clone(),
            ),
            condition(previous, generation, "Ready", reachable, reason, message),
        ],
        observed_generation: generation,
        registration_endpoint: endpoint,
        policies,
        clients: Some(i32::try_from(clients).unwrap_or(i32::MAX)),
    };
    if !unchanged(server.status.as_ref(), &status, |s| &mut s.conditions) {
        write_status::<AuthServer>(&summaries.ctx, &reference, "AuthServer", &status).await?;
    }
    Ok(Action::requeue(RECHECK))
}

pub async fn reconcile_policy(
    policy: Arc<AuthPolicy>,
    summaries: Arc<Summaries>,
) -> Result<Action, Error> {
    summaries.ctx.wait_for_stores().await;
    let reference = ObjectRef::of(policy.as_ref());
    let name = reference.to_string();
    let governed: Vec<Evaluation> = summaries
        .evaluations()
        .into_iter()
        .filter(|e| e.governing.contains(&reference))
        .collect();
    let compliant = governed
        .iter()
        .filter(|e| e.compliance == Compliance::Compliant)
        .count();
    let violating = governed
        .iter()
        .filter(|e| {
            e.violations
                .iter()
                .any(|v| v.policy.as_deref() == Some(name.as_str()))
        })
        .count();
    let errors = summaries
        .ctx
        .evaluator()
        .policy(&reference)
        .map(|compiled| {
            compiled
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let (valid, reason, message) = if errors.is_empty() {
        (
            true,
            "InForce",
            format!(
                "governs {} clients: {compliant} compliant, {violating} breaking its rules",
                governed.len()
            ),
        )
    } else {
        (false, "Invalid", errors.join("; "))
    };
    let previous = policy
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = policy.meta().generation;
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let status = AuthPolicyStatus {
        conditions: vec![condition(
            previous, generation, "Ready", valid, reason, message,
        )],
        observed_generation: generation,
        governed_clients: count(governed.len()),
        compliant_clients: count(compliant),
        violating_clients: count(violating),
    };
    if !unchanged(policy.status.as_ref(), &status, |s| &mut s.conditions) {
        write_status::<AuthPolicy>(&summaries.ctx, &reference, "AuthPolicy", &status).await?;
    }
    Ok(Action::await_change())
}

#[allow(clippy::needless_pass_by_value)] // the signature `Controller::run` requires
pub fn summary_error<K>(_object: Arc<K>, error: &Error, summaries: Arc<Summaries>) -> Action {
    summaries.ctx.metrics.failed(error);
    tracing::warn!(%error, "status summary failed");
    Action::requeue(Duration::from_secs(30))
}

/// Whether `old` already says what `new` says, condition transition times aside.
fn unchanged<S: Clone + PartialEq>(
    old: Option<&S>,
    new: &S,
    conditions: fn(&mut S) -> &mut Vec<Condition>,
) -> bool {
    old.is_some_and(|old| {
        let (mut old, mut new) = (old.clone(), new.clone());
        let (before, after) = (conditions(&mut old), conditions(&mut new));
        if !same(before, after) {
            return false;
        }
        before.clone_from(after);
        old == new
    })
}

/// Writes a status by server-side apply, as the operator's field manager.
async fn write_status<K>(
    ctx: &Context,
    reference: &ObjectRef,
    kind: &str,
    status: &impl serde::Serialize,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &reference.namespace);
    let patch = json!({"apiVersion": "auth.nauthera.io/v1alpha1", "kind": kind, "status": status});
    api.patch_status(
        &reference.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Conditions that say the same, transition times aside.
fn same(old: &[Condition], new: &[Condition]) -> bool {
    old.len() == new.len()
        && old.iter().zip(new).all(|(a, b)| {
            (
                a.type_.as_str(),
                a.status.as_str(),
                a.reason.as_str(),
                a.message.as_str(),
                a.observed_generation,
            ) == (
                b.type_.as_str(),
                b.status.as_str(),
                b.reason.as_str(),
                b.message.as_str(),
                b.observed_generation,
            )
        })
}
