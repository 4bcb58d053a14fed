//! Status for servers and policies: whether a server's provider is reachable (discovery
//! fetched, issuer matching), how long it took, which policies it selects, how many
//! clients it has, and which settings its provider does not keep; how many clients a
//! policy governs, and how many of those comply or break its rules.
//!
//! One task computes them all at once — every client evaluated once per pass — after
//! changes settle (a burst of a thousand client events is one pass, not a thousand), and
//! every few minutes to recheck reachability. A status is written only when it changed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use nauthera_shared::policy::{Compliance, Evaluation};
use nauthera_shared::resources::{
    AuthPolicy, AuthPolicyStatus, AuthServer, AuthServerStatus, Condition, ObjectRef,
};
use serde_json::json;
use tokio::sync::Notify;

use crate::Error;
use crate::context::{Context, FIELD_MANAGER};
use crate::status::condition;

/// How long changes are left to settle before a pass.
const SETTLE: Duration = Duration::from_secs(1);
/// Reachability is checked again this often, changes or not.
const RECHECK: Duration = Duration::from_secs(300);

/// Runs passes until the future is dropped.
pub async fn run(ctx: Arc<Context>, changes: Arc<Notify>) {
    loop {
        if let Err(error) = pass(&ctx).await {
            ctx.metrics.failed(&error);
            tracing::warn!(%error, "server and policy status not written; trying again");
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        let _ = tokio::time::timeout(RECHECK, changes.notified()).await;
        tokio::time::sleep(SETTLE).await;
    }
}

/// One pass over every server and policy.
pub async fn pass(ctx: &Context) -> Result<(), Error> {
    ctx.forget_gone();
    let evaluator = ctx.evaluator();
    let evaluations: Vec<Evaluation> = ctx
        .stores
        .clients
        .state()
        .iter()
        .map(|client| evaluator.evaluate(client))
        .collect();
    let mut clients_per_server: HashMap<&ObjectRef, usize> = HashMap::new();
    for evaluation in &evaluations {
        *clients_per_server.entry(&evaluation.server).or_default() += 1;
    }
    for server in ctx.stores.servers.state() {
        let reference = ObjectRef::of(server.as_ref());
        let clients = clients_per_server.get(&reference).copied().unwrap_or(0);
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
        let status = server_status(ctx, &server, policies, clients).await;
        if !unchanged(server.status.as_ref(), &status, |s| &mut s.conditions) {
            write_status::<AuthServer>(ctx, &reference, "AuthServer", &status).await?;
        }
    }
    for policy in ctx.stores.policies.state() {
        let reference = ObjectRef::of(policy.as_ref());
        let errors: Vec<String> = evaluator
            .policy(&reference)
            .map(|compiled| compiled.errors.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let status = policy_status(&policy, &reference, &evaluations, &errors);
        if !unchanged(policy.status.as_ref(), &status, |s| &mut s.conditions) {
            write_status::<AuthPolicy>(ctx, &reference, "AuthPolicy", &status).await?;
        }
    }
    Ok(())
}

async fn server_status(
    ctx: &Context,
    server: &AuthServer,
    policies: Vec<String>,
    clients: usize,
) -> AuthServerStatus {
    let issuer = &server.spec.issuer_url;
    let discovered = ctx.discovery.get(&ctx.http, issuer).await;
    let (reachable, message, endpoint, latency) = match discovered {
        Ok(discovered) => {
            let endpoint = server
                .spec
                .provider
                .registration_endpoint
                .clone()
                .or_else(|| discovered.document.registration_endpoint.clone());
            let latency = Some(discovered.latency);
            match endpoint {
                Some(endpoint) => (
                    true,
                    format!("discovery at {issuer} answered; registrations go to {endpoint}"),
                    Some(endpoint),
                    latency,
                ),
                None => (
                    false,
                    format!(
                        "{issuer} offers no registration_endpoint: dynamic client registration is not enabled there"
                    ),
                    None,
                    latency,
                ),
            }
        }
        Err(error) => (false, error.to_string(), None, None),
    };
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
    let unheld: BTreeSet<&'static str> = ctx.unheld(issuer);
    AuthServerStatus {
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
        provider_latency_ms: latency.map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
        unsupported_settings: unheld.into_iter().map(str::to_owned).collect(),
    }
}

fn policy_status(
    policy: &AuthPolicy,
    reference: &ObjectRef,
    evaluations: &[Evaluation],
    errors: &[String],
) -> AuthPolicyStatus {
    let name = reference.to_string();
    let governed: Vec<&Evaluation> = evaluations
        .iter()
        .filter(|e| e.governing.contains(reference))
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
    AuthPolicyStatus {
        conditions: vec![condition(
            previous, generation, "Ready", valid, reason, message,
        )],
        observed_generation: generation,
        governed_clients: count(governed.len()),
        compliant_clients: count(compliant),
        violating_clients: count(violating),
    }
}

/// Whether `old` already says what `new` says, condition transition times aside, and
/// latency within a margin (a few milliseconds more is not news worth a write).
fn unchanged<S: Clone + PartialEq + serde::Serialize>(
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
        let (Ok(mut old), Ok(new)) = (serde_json::to_value(&old), serde_json::to_value(&new))
        else {
            return false;
        };
        let (before, after) = (
            old.get("providerLatencyMs")
                .and_then(serde_json::Value::as_u64),
            new.get("providerLatencyMs")
                .and_then(serde_json::Value::as_u64),
        );
        if let (Some(before), Some(after)) = (before, after)
            && close(before, after)
        {
            old["providerLatencyMs"] = json!(after);
        }
        old == new
    })
}

/// Latencies within a factor of two, or less than 250 ms apart: a busy machine's jitter
/// is not news worth a status write.
fn close(before: u64, after: u64) -> bool {
    let difference = before.abs_diff(after);
    difference < 250 || before.max(after) <= 2 * before.min(after)
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
