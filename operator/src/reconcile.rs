//! Reconciling one AuthClient, top-down: evaluate it against its server and policies;
//! provision it at the provider (or withhold it, removing a registration that an enforced
//! policy no longer allows); write its credentials Secret; report status and events.
//! Deletion removes the registration at the provider first; an outage keeps the
//! finalizer and retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalized, finalizer};
use kube::{Api, Resource};
use nauthera_shared::policy::{Evaluation, Standing, default_secret_name};
use nauthera_shared::resources::{AuthClient, ObjectRef};
use serde_json::json;

use crate::Error;
use crate::context::{Context, FIELD_MANAGER};
use crate::provider::dcr::DcrDriver;
use crate::provider::{ClientMetadata, ProviderDriver, ProviderError};
use crate::secrets::{StoredRegistration, registration_secret_name, same_data};
use crate::status::{Provisioning, client_status, differs, ready_reason};

pub const FINALIZER: &str = "auth.nauthera.io/cleanup";

/// How often a settled client is looked at again, to notice drift at the provider.
const RESYNC: Duration = Duration::from_secs(3600);

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
    .await
    .map_err(|error| match error {
        kube::runtime::finalizer::Error::ApplyFailed(error)
        | kube::runtime::finalizer::Error::CleanupFailed(error) => error,
        other => Error::Finalizer(other.to_string()),
    });
    ctx.metrics.reconciled(started.elapsed());
    result
}

/// After a failed reconcile: count it, and try again later, later each time.
#[allow(clippy::needless_pass_by_value)] // the signature `Controller::run` requires
pub fn error_policy(client: Arc<AuthClient>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error);
    let reference = ObjectRef::of(client.as_ref());
    tracing::warn!(client = %reference, %error, "reconcile failed");
    Action::requeue(ctx.backoff(&reference))
}

async fn apply(client: &AuthClient, ctx: &Context) -> Result<Action, Error> {
    let reference = ObjectRef::of(client);
    ctx.wait_for_stores().await;
    let evaluation = ctx.evaluator().evaluate(client);
    let stored = load_registration(client, ctx).await?;
    let outcome = if evaluation.compliance.is_provisionable() {
        provision(client, &evaluation, stored, ctx).await
    } else if matches!(
        evaluation.standing,
        Standing::ServerNotFound | Standing::ServerInvalid
    ) {
        // A missing or broken server is the platform's to fix: the client is reported,
        // and its registration kept, rather than wiped by an accident.
        Ok(Provisioning::Withheld)
    } else {
        withhold(client, stored, ctx).await
    };
    let (provisioning, failure) = match outcome {
        Ok(provisioning) => (provisioning, None),
        Err(Error::Provider(error)) => {
            let reason = if error.is_transient() {
                "ProviderUnavailable"
            } else {
                "ProviderRefused"
            };
            let provisioning = Provisioning::Failed {
                reason,
                message: error.to_string(),
            };
            (provisioning, Some(Error::Provider(error)))
        }
        Err(Error::InitialAccessToken(message)) => (
            Provisioning::Failed {
                reason: "InitialAccessTokenMissing",
                message: message.clone(),
            },
            Some(Error::InitialAccessToken(message)),
        ),
        Err(other) => return Err(other),
    };
    report(client, &evaluation, &provisioning, ctx).await?;
    if let Some(error) = failure {
        return Err(error);
    }
    ctx.succeeded(&reference);
    Ok(Action::requeue(RESYNC))
}

/// Brings the provider in line with the effective settings, and the credentials Secret
/// with the registration. Writes nothing that is already right.
async fn provision(
    client: &AuthClient,
    evaluation: &Evaluation,
    stored: Option<StoredRegistration>,
    ctx: &Context,
) -> Result<Provisioning, Error> {
    let settings = evaluation.effective.as_ref().ok_or(Error::MissingField {
        kind: "Evaluation",
        field: "effective",
    })?;
    let server = ctx.server(&evaluation.server).ok_or(Error::MissingField {
        kind: "AuthServer",
        field: "(it was deleted during the reconcile)",
    })?;
    let name = client_name(client);
    let wanted = ClientMetadata::from_settings(&name, settings);
    let stored = match stored {
        // The client moved to another server: leave the old provider, then register anew.
        Some(old) if old.issuer_url != server.spec.issuer_url => {
            let driver = DcrDriver::for_registrations()?;
            let deleted = driver.delete(&old.management).await;
            ctx.metrics.provider_call("delete", &deleted);
            deleted?;
            ctx.event(
                client,
                EventType::Normal,
                "Moved",
                format!(
                    "removed {} from {}: the client now names {}",
                    old.client_id, old.issuer_url, evaluation.server
                ),
            )
            .await;
            register(client, &server, &wanted, ctx).await?
        }
        Some(mut stored) => {
            let driver = DcrDriver::for_registrations()?;
            let read = driver.read(&stored.management).await;
            ctx.metrics.provider_call("read", &read);
            match read {
                Ok(registered) => {
                    let mut changed = false;
                    if let Some(token) = registered.rotated_token {
                        changed |= rotate(&mut stored, token);
                    }
                    if !wanted.agrees_with(&registered.metadata) {
                        let updated = driver.update(&stored.management, &wanted).await;
                        ctx.metrics.provider_call("update", &updated);
                        if let Some(token) = updated?.rotated_token {
                            changed |= rotate(&mut stored, token);
                        }
                        ctx.event(
                            client,
                            EventType::Normal,
                            "Updated",
                            format!(
                                "settings at the provider updated to what {} decide",
                                names(evaluation)
                            ),
                        )
                        .await;
                    }
                    if changed {
                        save_registration(client, &stored, ctx).await?;
                    }
                    stored
                }
                // The provider no longer knows it (reset, deleted by hand): register again.
                Err(ProviderError::NotFound | ProviderError::Unauthorized { .. }) => {
                    register(client, &server, &wanted, ctx).await?
                }
                Err(error) => return Err(error.into()),
            }
        }
        None => register(client, &server, &wanted, ctx).await?,
    };
    let secret_name = settings.secret_name.clone();
    write_credentials(client, &stored, &secret_name, ctx).await?;
    // spec.secretName changed: the Secret written under the old name goes.
    if credentials_secret_name(client) != secret_name {
        delete_credentials(client, ctx).await?;
    }
    Ok(Provisioning::Provisioned {
        client_id: stored.client_id,
        secret: secret_name,
    })
}

fn rotate(stored: &mut StoredRegistration, token: secrecy::SecretString) -> bool {
    use secrecy::ExposeSecret;
    let changed =
        token.expose_secret() != stored.management.registration_access_token.expose_secret();
    stored.management.registration_access_token = token;
    changed
}

async fn register(
    client: &AuthClient,
    server: &nauthera_shared::resources::AuthServer,
    wanted: &ClientMetadata,
    ctx: &Context,
) -> Result<StoredRegistration, Error> {
    let driver = ctx.registering_driver(server).await?;
    let registered = driver.register(wanted).await;
    ctx.metrics.provider_call("register", &registered);
    let registration = registered?;
    let stored = StoredRegistration {
        client_id: registration.client_id,
        client_secret: registration.client_secret,
        issuer_url: server.spec.issuer_url.clone(),
        management: registration.management,
    };
    // Remember it before anything else can fail, so a retry updates instead of registering twice.
    save_registration(client, &stored, ctx).await?;
    ctx.event(
        client,
        EventType::Normal,
        "Registered",
        format!(
            "registered at {} as {}",
            stored.issuer_url, stored.client_id
        ),
    )
    .await;
    Ok(stored)
}

/// A client that does not comply is not provisioned; one that was is removed from the
/// provider, and its Secrets deleted.
async fn withhold(
    client: &AuthClient,
    stored: Option<StoredRegistration>,
    ctx: &Context,
) -> Result<Provisioning, Error> {
    if let Some(stored) = stored {
        deregister(client, &stored, ctx).await?;
        ctx.event(
            client,
            EventType::Warning,
            "Deprovisioned",
            format!(
                "removed {} from the provider: the client no longer complies",
                stored.client_id
            ),
        )
        .await;
    }
    Ok(Provisioning::Withheld)
}

async fn cleanup(client: &AuthClient, ctx: &Context) -> Result<Action, Error> {
    if let Some(stored) = load_registration(client, ctx).await? {
        deregister(client, &stored, ctx).await?;
    } else {
        delete_credentials(client, ctx).await?;
    }
    ctx.succeeded(&ObjectRef::of(client));
    Ok(Action::await_change())
}

/// The provider first; only once the registration is gone are the Secrets deleted, so an
/// outage never orphans a registration.
async fn deregister(
    client: &AuthClient,
    stored: &StoredRegistration,
    ctx: &Context,
) -> Result<(), Error> {
    let driver = DcrDriver::for_registrations()?;
    let deleted = driver.delete(&stored.management).await;
    ctx.metrics.provider_call("delete", &deleted);
    deleted?;
    delete_credentials(client, ctx).await?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.operator_namespace);
    let name = registration_secret_name(uid(client)?);
    if secrets.get_opt(&name).await?.is_some() {
        secrets.delete(&name, &DeleteParams::default()).await?;
    }
    Ok(())
}

async fn delete_credentials(client: &AuthClient, ctx: &Context) -> Result<(), Error> {
    let namespace = client.meta().namespace.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = credentials_secret_name(client);
    if let Some(secret) = secrets.get_opt(&name).await? {
        // Only ours: a Secret of that name the team wrote themselves is left alone.
        let ours = secret
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|owner| Some(&owner.uid) == client.meta().uid.as_ref());
        if ours {
            secrets.delete(&name, &DeleteParams::default()).await?;
        }
    }
    Ok(())
}

fn credentials_secret_name(client: &AuthClient) -> String {
    client
        .status
        .as_ref()
        .and_then(|status| status.client_secret_ref.as_ref())
        .map(|secret| secret.name.clone())
        .or_else(|| client.spec.secret_name.clone())
        .unwrap_or_else(|| default_secret_name(client.meta().name.as_deref().unwrap_or_default()))
}

fn uid(client: &AuthClient) -> Result<&str, Error> {
    client.meta().uid.as_deref().ok_or(Error::MissingField {
        kind: "AuthClient",
        field: "metadata.uid",
    })
}

async fn load_registration(
    client: &AuthClient,
    ctx: &Context,
) -> Result<Option<StoredRegistration>, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.operator_namespace);
    let secret = secrets
        .get_opt(&registration_secret_name(uid(client)?))
        .await?;
    Ok(secret.as_ref().and_then(StoredRegistration::from_secret))
}

async fn save_registration(
    client: &AuthClient,
    stored: &StoredRegistration,
    ctx: &Context,
) -> Result<(), Error> {
    let secret = stored.to_secret(client, &ctx.operator_namespace);
    let name = secret.metadata.name.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.operator_namespace);
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await?;
    Ok(())
}

/// The credentials Secret, written only when it does not already say the same.
async fn write_credentials(
    client: &AuthClient,
    stored: &StoredRegistration,
    name: &str,
    ctx: &Context,
) -> Result<(), Error> {
    let namespace = client.meta().namespace.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let wanted = stored.credentials_secret(client, name);
    let existing = secrets.get_opt(name).await?;
    if !same_data(existing.as_ref(), &wanted) {
        secrets
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&wanted),
            )
            .await?;
    }
    Ok(())
}

/// Status and events, written only when they say something new.
async fn report(
    client: &AuthClient,
    evaluation: &Evaluation,
    provisioning: &Provisioning,
    ctx: &Context,
) -> Result<(), Error> {
    let status = client_status(client, evaluation, provisioning);
    let before = ready_reason(client.status.as_ref()).map(str::to_owned);
    if !differs(client.status.as_ref(), &status) {
        return Ok(());
    }
    let namespace = client.meta().namespace.clone().unwrap_or_default();
    let name = client.meta().name.clone().unwrap_or_default();
    let api: Api<AuthClient> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = json!({
        "apiVersion": "auth.nauthera.io/v1alpha1",
        "kind": "AuthClient",
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    let after = ready_reason(Some(&status)).unwrap_or_default();
    if before.as_deref() != Some(after) {
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        let note = ready.map(|c| c.message.clone()).unwrap_or_default();
        let type_ = if ready.is_some_and(|c| c.status == "True") {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.event(client, type_, after, note).await;
    }
    Ok(())
}

fn client_name(client: &AuthClient) -> String {
    if client.spec.display_name.is_empty() {
        ObjectRef::of(client).to_string()
    } else {
        client.spec.display_name.clone()
    }
}

fn names(evaluation: &Evaluation) -> String {
    evaluation
        .governing
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
