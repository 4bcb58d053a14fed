//! Reconciling one AuthClient, top-down: gather the facts, decide what happens to its
//! registration ([`crate::lifecycle`]), carry it out ([`crate::act`]), report status and
//! events. Deletion (behind a finalizer) removes the registration at the provider first;
//! a provider that cannot be reached or refuses keeps the finalizer, and the operator
//! retries with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Error as FinalizerError, Event as Finalized, finalizer};
use kube::{Api, Resource};
use nauthera_shared::resources::{AuthClient, AuthClientStatus, ObjectRef};
use serde_json::json;

use crate::Error;
use crate::act::act;
use crate::context::{Context, FIELD_MANAGER};
use crate::gather::{gather, uid};
use crate::lifecycle::{Decision, decide};
use crate::status::{Outcome, Problem, client_status, differs, ready_reason};

pub const FINALIZER: &str = "auth.nauthera.io/cleanup";

/// How often a client waiting for the Secret of a registration to take over looks again.
const AWAIT_EXISTING_EVERY: Duration = Duration::from_secs(15);

pub async fn reconcile(client: Arc<AuthClient>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = client.meta().namespace.clone().ok_or(Error::MissingField {
        kind: "AuthClient",
        field: "metadata.namespace",
    })?;
    let api: Api<AuthClient> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, client, |event| async {
        match event {
            Finalized::Apply(client) => apply(&client, &ctx).await,
            Finalized::Cleanup(client) => cleanup(&client, &ctx).await,
        }
    })
    .await;
    ctx.metrics.reconciled(started.elapsed());
    match result {
        Ok(action) => Ok(action),
        Err(FinalizerError::ApplyFailed(error) | FinalizerError::CleanupFailed(error)) => {
            Err(error)
        }
        // The object went away under the finalizer patch: nothing left to do.
        Err(
            FinalizerError::AddFinalizer(kube::Error::Api(response))
            | FinalizerError::RemoveFinalizer(kube::Error::Api(response)),
        ) if response.code == 404 => Ok(Action::await_change()),
        Err(other) => Err(Error::Finalizer(other.to_string())),
    }
}

/// After a failed reconcile: count it, and try again later, later each time.
#[allow(clippy::needless_pass_by_value)] // the signature `Controller::run` requires
pub fn error_policy(client: Arc<AuthClient>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error);
    let reference = ObjectRef::of(client.as_ref());
    let backoff = ctx.backoff(client.meta().uid.as_deref().unwrap_or_default());
    if error.is_expected() {
        tracing::debug!(client = %reference, %error, "reconcile raced another change; again shortly");
        // Twice at once; then, against something that keeps changing it, the backoff.
        if backoff <= Duration::from_secs(10) {
            return Action::requeue(Duration::from_millis(500));
        }
        return Action::requeue(backoff);
    }
    tracing::warn!(client = %reference, %error, "reconcile failed");
    Action::requeue(backoff)
}

async fn apply(client: &AuthClient, ctx: &Context) -> Result<Action, Error> {
    let uid = uid(client)?.to_owned();
    let gathered = match Box::pin(gather(client, ctx)).await {
        Ok(gathered) => gathered,
        Err(error) => return report_failure(client, ctx, error).await,
    };
    let decision = decide(gathered.facts(false, ctx.can_record()));
    tracing::debug!(client = %ObjectRef::of(client), ?decision, "decided");
    let evaluation = gathered.evaluation.clone();
    let outcome = match Box::pin(act(decision, client, gathered, ctx)).await {
        Ok(outcome) => outcome,
        Err(error) => return report_failure(client, ctx, error).await,
    };
    let status = report(client, &evaluation, &outcome, ctx).await?;
    ctx.succeeded(&uid);
    // Back when the registration is due to be read again (drift, a provider that lost
    // it), or when its rotation falls due, whichever comes first.
    let now = k8s_openapi::jiff::Timestamp::now();
    let read = ctx.read_due_in(&uid);
    let mut wake =
        crate::rotation::wake_in(status.rotation.as_ref(), now).map_or(read, |w| w.min(read));
    if decision == Decision::AwaitExisting {
        // Nothing watches the team's own Secrets: look again for the one it names (a
        // refused one less often: it needs someone to mend it).
        let every = if status
            .conditions
            .iter()
            .any(|c| c.reason == "ExistingRegistrationMissing")
        {
            AWAIT_EXISTING_EVERY
        } else {
            AWAIT_EXISTING_EVERY * 4
        };
        wake = wake.min(every);
    }
    Ok(Action::requeue(wake.max(Duration::from_secs(1))))
}

async fn cleanup(client: &AuthClient, ctx: &Context) -> Result<Action, Error> {
    let uid = uid(client)?.to_owned();
    if ctx.is_released(&uid) {
        // Cleaned up already; only the finalizer's removal is still on its way.
        return Ok(Action::await_change());
    }
    let result = async {
        let gathered = Box::pin(gather(client, ctx)).await?;
        let decision = decide(gathered.facts(true, ctx.can_record()));
        Box::pin(act(decision, client, gathered, ctx)).await
    }
    .await;
    match result {
        Ok(_) => {
            ctx.released(&uid);
            Ok(Action::await_change())
        }
        Err(error) => {
            let message = format!("deletion waits: {error}");
            let outcome = Outcome::default().with_problem(Problem {
                reason: error.reason(),
                message,
            });
            let evaluation = ctx.evaluator().evaluate(client);
            // The status says why deletion waits; a failure to say so changes nothing.
            let _ = report(client, &evaluation, &kept(client, outcome), ctx).await;
            Err(error)
        }
    }
}

/// A failure after gathering or acting: the registration the status knew of is still
/// there (nothing was deleted), and the status says what went wrong.
async fn report_failure(client: &AuthClient, ctx: &Context, error: Error) -> Result<Action, Error> {
    let outcome = Outcome::default().with_problem(Problem {
        reason: error.reason(),
        message: error.to_string(),
    });
    let evaluation = ctx.evaluator().evaluate(client);
    if let Err(report_error) = report(client, &evaluation, &kept(client, outcome), ctx).await {
        tracing::debug!(client = %ObjectRef::of(client), %report_error, "cannot report the failure in status");
    }
    Err(error)
}

/// The registration the status already reports, carried into an outcome that failed.
fn kept(client: &AuthClient, mut outcome: Outcome) -> Outcome {
    let status = client.status.as_ref();
    if let Some(client_id) = status.and_then(|s| s.client_id.clone()) {
        outcome.registered = Some(crate::status::Registered {
            client_id,
            issuer: None,
            secret: status
                .and_then(|s| s.client_secret_ref.as_ref())
                .map(|s| s.name.clone()),
        });
    }
    outcome
}

/// Status and events, written only when they say something new.
async fn report(
    client: &AuthClient,
    evaluation: &nauthera_shared::policy::Evaluation,
    outcome: &Outcome,
    ctx: &Context,
) -> Result<AuthClientStatus, Error> {
    let status = client_status(client, evaluation, outcome);
    if !differs(client.status.as_ref(), &status) {
        return Ok(status);
    }
    let before = ready_reason(client.status.as_ref()).map(str::to_owned);
    let namespace = client.meta().namespace.clone().unwrap_or_default();
    let name = client.meta().name.clone().unwrap_or_default();
    let api: Api<AuthClient> = Api::namespaced(ctx.client.clone(), &namespace);
    // The whole status in one JSON patch: what the operator reports replaces what it
    // reported, and the API server is spared server-side apply's merge, which at a
    // thousand clients was its largest cost.
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/status", "value": status}
    ]))
    .map_err(|error| Error::Finalizer(error.to_string()))?;
    api.patch_status(
        &name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Json::<()>(patch),
    )
    .await?;
    let after = ready_reason(Some(&status)).unwrap_or_default();
    if before.as_deref() != Some(after) {
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        let mut note = ready.map(|c| c.message.clone()).unwrap_or_default();
        if ready.is_some_and(|c| c.status == "True")
            && let Some(provisioned) = status.conditions.iter().find(|c| c.type_ == "Provisioned")
        {
            note = format!("{}; {note}", provisioned.message);
        }
        let type_ = if ready.is_some_and(|c| c.status == "True") {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.event(client, type_, after, note).await;
    }
    Ok(status)
}
