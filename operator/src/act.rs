//! Carrying out a [`Decision`]: calls to the provider and writes of the two Secrets, in
//! the order that never loses track of a registration — the provider answers, the record
//! is written, then the credentials; a registration that cannot be recorded is taken back
//! at once. Every provider write is logged at INFO (never a secret) and has an event.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource};
use nauthera_shared::resources::{AuthClient, ObjectRef};

use crate::Error;
use crate::context::{Context, FIELD_MANAGER};
use crate::gather::{Gathered, adopt, current_secret_name, secrets_of};
use crate::journal::{Begun, Entry};
use crate::lifecycle::Decision;
use crate::provider::dcr::DcrDriver;
use crate::provider::{ClientMetadata, Deleted, Management, ProviderError};
use crate::secrets::{
    Retired, StoredRegistration, intent_secret, is_ours, registering_since,
    registration_secret_name, same_data,
};
use crate::status::{Outcome, Problem};

pub async fn act(
    decision: Decision,
    client: &AuthClient,
    mut gathered: Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    match decision {
        Decision::Register => {
            // Its event is the Ready transition's, which says where it was registered.
            let record = register(client, &gathered, None, None, ctx).await?;
            provisioned(client, record, &gathered, ctx).await
        }
        Decision::Reregister => reregister(client, &mut gathered, ctx).await,
        Decision::Move => move_to_new_provider(client, &mut gathered, ctx).await,
        Decision::Update => update(client, &mut gathered, ctx).await,
        Decision::Keep => {
            let record = take_record(&mut gathered)?;
            if gathered.record_changed {
                save_registration(client, &record, ctx).await?;
            }
            if !gathered.stubborn_drift.is_empty() {
                let note = format!(
                    "the provider keeps its own values for {} of {} even after they were put back; they are left as it has them",
                    gathered.stubborn_drift.join(", "),
                    record.client_id
                );
                ctx.event(client, EventType::Warning, "ProviderOverrides", note)
                    .await;
            }
            provisioned(client, record, &gathered, ctx).await
        }
        Decision::KeepWithheld => {
            let record = take_record(&mut gathered)?;
            let writable = gathered
                .credentials
                .as_ref()
                .is_none_or(|secret| is_ours(secret, &gathered.uid));
            if writable {
                write_credentials(client, &record, &gathered, ctx).await?;
            }
            Ok(Outcome::registered(
                &record,
                writable.then(|| gathered.secret_name.clone()),
            ))
        }
        Decision::Withhold => Ok(Outcome::default()),
        Decision::Conflict => Ok(conflict(client, &gathered)),
        Decision::CannotRecord => Ok(cannot_record(client, &gathered, ctx)),
        Decision::Revoke => revoke(client, &mut gathered, ctx).await,
        Decision::RecordLost => Ok(record_lost(client, &gathered)),
        Decision::Deregister | Decision::Release => {
            if let Some(since) = &gathered.registering_since {
                let issuer = gathered.record.as_ref().map_or_else(
                    || gathered.evaluation.server.to_string(),
                    |record| record.issuer_url.clone(),
                );
                possible_orphan(client, &issuer, since, ctx).await;
            }
            if let Some(client_id) = &gathered.lost {
                let note = format!(
                    "registration {client_id} could not be deleted at the provider: its record in the operator's namespace was deleted; delete it there by hand"
                );
                tracing::warn!(client = %ObjectRef::of(client), %client_id, "deleting a client whose registration record was lost");
                ctx.event(client, EventType::Warning, "RecordLost", note)
                    .await;
            }
            remove(client, gathered.record.as_ref(), ctx).await?;
            Ok(Outcome::default())
        }
    }
}

/// The status names a registration whose record was deleted past its finalizer: it can
/// no longer be managed, and registering anew would leave two. Say so, touch nothing.
fn record_lost(client: &AuthClient, gathered: &Gathered) -> Outcome {
    let client_id = gathered.lost.clone().unwrap_or_default();
    let secret = client
        .status
        .as_ref()
        .and_then(|s| s.client_secret_ref.as_ref())
        .map(|s| s.name.clone());
    Outcome {
        registered: Some(crate::status::Registered {
            client_id: client_id.clone(),
            issuer: None,
            secret,
        }),
        problem: Some(Problem {
            reason: "RegistrationRecordLost",
            message: format!(
                "the record of registration {client_id} was deleted from the operator's namespace, so it can no longer be updated or deleted; its credentials keep working. Delete it at the provider by hand, then delete and re-create this AuthClient to register anew"
            ),
        }),
    }
}

/// Registers at the new provider; the old registration is retired once the credentials
/// Secret holds the new one.
async fn move_to_new_provider(
    client: &AuthClient,
    gathered: &mut Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let old = take_record(gathered)?;
    let retired = Retired {
        client_id: old.client_id.clone(),
        issuer_url: old.issuer_url.clone(),
        management: old.management.clone(),
    };
    let note = format!(
        "moved from {} ({}) to {}",
        retired.issuer_url, retired.client_id, gathered.evaluation.server
    );
    let record = register(client, gathered, Some(&old), Some(retired), ctx).await?;
    let note = format!("{note} as {}", record.client_id);
    ctx.event(client, EventType::Normal, "Moved", note).await;
    provisioned(client, record, gathered, ctx).await
}

/// Puts the policies' settings (or the provider's drifted ones back) at the provider;
/// keeps whatever the provider answers (a new secret, a rotated token).
async fn update(
    client: &AuthClient,
    gathered: &mut Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let mut record = take_record(gathered)?;
    let wanted = wanted(gathered)?.clone();
    let repair = !gathered.drifted.is_empty();
    let changed = if repair {
        ctx.metrics.drift_repaired();
        format!(
            "put back {} changed at the provider",
            gathered.drifted.join(", ")
        )
    } else {
        changed_fields(client, gathered.wanted.as_ref())
    };
    let driver = DcrDriver::new(ctx.http.clone());
    let updated = driver
        .update(&record.management, &record.client_id, &wanted)
        .await;
    ctx.metrics.provider_call("update", &updated);
    match updated {
        Err(ProviderError::Gone { .. }) => {
            gathered.record = Some(record);
            return reregister(client, gathered, ctx).await;
        }
        Err(error) => return Err(error.into()),
        Ok(answer) => {
            // A new secret (some providers issue one on every update) or a rotated
            // token must be recorded before the app is given it.
            if adopt(&mut record, answer) {
                save_registration(client, &record, ctx).await?;
            }
            ctx.verified(&gathered.uid);
        }
    }
    tracing::info!(client = %ObjectRef::of(client), client_id = %record.client_id, issuer = %record.issuer_url, %changed, "updated the registration at the provider");
    if repair {
        // A policy change shows in the status; a repair is news of its own.
        let note = format!("{changed} of {}", record.client_id);
        ctx.event(client, EventType::Warning, "DriftRepaired", note)
            .await;
    }
    provisioned(client, record, gathered, ctx).await
}

fn conflict(client: &AuthClient, gathered: &Gathered) -> Outcome {
    let kept = gathered.record.as_ref().map(|record| {
        let current = current_secret_name(client);
        Outcome::registered(record, (current != gathered.secret_name).then_some(current))
    });
    kept.unwrap_or_default().with_problem(Problem {
        reason: "SecretConflict",
        message: format!(
            "Secret {} already exists and was not created by Nauthera for this AuthClient: it is left untouched; choose another spec.secretName, or delete that Secret",
            gathered.secret_name
        ),
    })
}

fn cannot_record(client: &AuthClient, gathered: &Gathered, ctx: &Context) -> Outcome {
    let kept = gathered
        .record
        .as_ref()
        .map(|record| Outcome::registered(record, Some(current_secret_name(client))));
    kept.unwrap_or_default().with_problem(Problem {
        reason: "OperatorNamespaceMissing",
        message: format!(
            "the operator's namespace {} does not exist, so a registration could not be recorded: nothing is registered until it exists (kubectl create namespace {0}, or run the operator with --namespace)",
            ctx.settings.operator_namespace
        ),
    })
}

/// A policy with `violationResponse: Revoke` takes the registration away.
async fn revoke(
    client: &AuthClient,
    gathered: &mut Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let record = take_record(gathered)?;
    remove(client, Some(&record), ctx).await?;
    let by = gathered
        .evaluation
        .revoked_by
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let note = format!(
        "removed {} from the provider and deleted its credentials: {by} revokes clients that break its rules",
        record.client_id
    );
    tracing::info!(client = %ObjectRef::of(client), client_id = %record.client_id, policy = %by, "revoked the registration");
    ctx.event(client, EventType::Warning, "Revoked", note).await;
    Ok(Outcome::default())
}

/// The provider no longer knows the registration: register again, and say so.
async fn reregister(
    client: &AuthClient,
    gathered: &mut Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let old = take_record(gathered)?;
    let record = register(client, gathered, Some(&old), None, ctx).await?;
    ctx.metrics.registration_lost();
    let note = format!(
        "the provider at {} no longer knew {}: registered again as {}, and the credentials Secret now holds the new credentials",
        old.issuer_url, old.client_id, record.client_id
    );
    tracing::warn!(client = %ObjectRef::of(client), old = %old.client_id, new = %record.client_id, "the provider lost the registration; registered again");
    ctx.event(client, EventType::Warning, "RegistrationLost", note)
        .await;
    provisioned(client, record, gathered, ctx).await
}

/// Registers at the client's server, recording the intent first and the answer right
/// after, before anything else. When the answer cannot be recorded, the fresh
/// registration is deleted again; if even that fails, it is kept in memory and recorded
/// before anything is registered again. `previous` is the registration this one
/// replaces (kept in the record until the new one is in it).
async fn register(
    client: &AuthClient,
    gathered: &Gathered,
    previous: Option<&StoredRegistration>,
    retired: Option<Retired>,
    ctx: &Context,
) -> Result<StoredRegistration, Error> {
    let server = gathered.server.as_ref().ok_or(Error::MissingField {
        kind: "AuthServer",
        field: "(it was deleted during the reconcile)",
    })?;
    let wanted = wanted(gathered)?;
    let (endpoint, token) = ctx.registration_endpoint(server).await?;
    if let Some(since) = &gathered.registering_since {
        possible_orphan(client, &server.spec.issuer_url, since, ctx).await;
    }
    let reference = ObjectRef::of(client);
    // The intent first: should the operator stop before the answer is recorded, the
    // next attempt knows a registration may exist unrecorded, and says so. Kept in the
    // local journal when there is one (no API write), else in the record.
    let since = k8s_openapi::jiff::Timestamp::now().to_string();
    let begun = Begun {
        uid: gathered.uid.clone(),
        namespace: client.metadata.namespace.clone().unwrap_or_default(),
        name: client.metadata.name.clone().unwrap_or_default(),
        issuer: server.spec.issuer_url.clone(),
        since: since.clone(),
    };
    let journalled = ctx.journal.enabled() && ctx.journal.begin(&begun).is_ok();
    if !journalled {
        let intent = intent_secret(client, &ctx.settings.operator_namespace, previous, &since);
        let exists = previous.is_some() || gathered.registering_since.is_some();
        write_record(&intent, exists, ctx).await.map_err(|error| {
            Error::Unrecorded(format!(
                "could not record the intent to register in Secret {}/{} ({error}); nothing was registered",
                ctx.settings.operator_namespace,
                registration_secret_name(&gathered.uid)
            ))
        })?;
    }
    let driver = DcrDriver::new(ctx.http.clone());
    tracing::debug!(client = %reference, "asking the provider to register");
    let registered = driver
        .register(&endpoint, token.as_ref(), wanted, &gathered.uid)
        .await;
    tracing::debug!(client = %reference, ok = registered.is_ok(), "the provider answered");
    ctx.metrics.provider_call("register", &registered);
    let registration = match registered {
        Ok(registration) => registration,
        // The provider may have registered it: the intent stays, to be reported.
        Err(error @ ProviderError::AnswerLost(_)) => return Err(error.into()),
        Err(error) => {
            // Nothing was registered: the intent goes, the record is what it was.
            if journalled {
                ctx.journal.remove(&gathered.uid);
            } else {
                match previous {
                    Some(previous) => save_registration(client, previous, ctx).await?,
                    None => delete_record(&gathered.uid, ctx).await?,
                }
            }
            return Err(error.into());
        }
    };
    let record = StoredRegistration {
        client_id: registration.client_id,
        client_secret: registration.client_secret,
        issuer_url: server.spec.issuer_url.clone(),
        management: registration.management,
        retired,
    };
    // Journalled locally first (no network): a kill from here on loses nothing.
    let entry = Entry {
        uid: gathered.uid.clone(),
        namespace: client.metadata.namespace.clone().unwrap_or_default(),
        name: client.metadata.name.clone().unwrap_or_default(),
        record,
    };
    if let Err(error) = ctx.journal.write(&entry) {
        tracing::warn!(client = %reference, %error, "cannot journal the registration; recording it directly");
    }
    tracing::debug!(client = %reference, "journalled");
    let record = entry.record;
    let exists = !journalled || previous.is_some() || gathered.registering_since.is_some();
    let secret = record.to_secret(client, &ctx.settings.operator_namespace);
    if let Err(error) = write_record(&secret, exists, ctx).await {
        let taken_back = driver.delete(&record.management).await;
        ctx.metrics.provider_call("delete", &taken_back);
        let fate = if taken_back.is_ok() {
            ctx.journal.remove(&gathered.uid);
            "it was removed from the provider again".to_owned()
        } else {
            ctx.keep_unrecorded(&gathered.uid, record.clone());
            format!(
                "the provider would not take it back either, so it is held in memory and recorded as soon as the record can be written (client {})",
                record.client_id
            )
        };
        tracing::warn!(client = %reference, client_id = %record.client_id, %error, %fate, "registered but could not record it");
        return Err(Error::Unrecorded(format!(
            "could not record the new registration in Secret {}/{} ({error}); {fate}",
            ctx.settings.operator_namespace,
            registration_secret_name(&gathered.uid)
        )));
    }
    ctx.journal.remove(&gathered.uid);
    ctx.verified(&gathered.uid);
    tracing::info!(client = %reference, client_id = %record.client_id, issuer = %record.issuer_url, "registered at the provider");
    Ok(record)
}

/// Settles what an earlier run journalled but may not have recorded: a registration its
/// client has no record of becomes the record; one its client no longer needs (a newer
/// one is recorded, or the client is gone) is deleted at the provider with its own token.
pub async fn recover_journal(ctx: &Context) {
    for begun in ctx.journal.begun() {
        let client = ctx
            .stores
            .clients
            .get(&kube::runtime::reflector::ObjectRef::new(&begun.name).within(&begun.namespace))
            .filter(|client| client.metadata.uid.as_deref() == Some(begun.uid.as_str()));
        if let Some(client) = client {
            possible_orphan(&client, &begun.issuer, &begun.since, ctx).await;
        } else {
            ctx.metrics.possible_orphan();
            tracing::warn!(client = %format!("{}/{}", begun.namespace, begun.name), since = %begun.since, issuer = %begun.issuer, software_id = %begun.uid, "a registration of a client now gone may exist unrecorded");
        }
        ctx.journal.remove(&begun.uid);
    }
    for entry in ctx.journal.entries() {
        let uid = entry.uid.clone();
        match recover(&entry, ctx).await {
            Ok(outcome) => {
                tracing::info!(client = %format!("{}/{}", entry.namespace, entry.name), client_id = %entry.record.client_id, %outcome, "settled a journalled registration");
                ctx.journal.remove(&uid);
            }
            Err(error) => {
                tracing::warn!(client = %format!("{}/{}", entry.namespace, entry.name), client_id = %entry.record.client_id, %error, "cannot settle a journalled registration yet; it stays journalled");
            }
        }
    }
}

async fn recover(entry: &Entry, ctx: &Context) -> Result<&'static str, Error> {
    let records: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.operator_namespace);
    let secret = records
        .get_opt(&registration_secret_name(&entry.uid))
        .await?;
    let recorded = secret.as_ref().and_then(StoredRegistration::from_secret);
    let awaited = secret.as_ref().and_then(registering_since).is_some();
    if recorded
        .as_ref()
        .is_some_and(|r| r.client_id == entry.record.client_id)
    {
        return Ok("already recorded");
    }
    let client = ctx
        .stores
        .clients
        .get(&kube::runtime::reflector::ObjectRef::new(&entry.name).within(&entry.namespace))
        .filter(|client| client.metadata.uid.as_deref() == Some(entry.uid.as_str()));
    // The answer to the registration the record says was begun (or to a first one).
    if let Some(client) = client
        && (recorded.is_none() || awaited)
    {
        let mut record = entry.record.clone();
        // A move keeps the registration it left, to be retired once the Secret switches.
        record.retired = recorded
            .filter(|old| !crate::gather::same_issuer(&old.issuer_url, &record.issuer_url))
            .map(|old| Retired {
                client_id: old.client_id,
                issuer_url: old.issuer_url,
                management: old.management,
            });
        save_registration(&client, &record, ctx).await?;
        return Ok("recorded");
    }
    let driver = DcrDriver::new(ctx.http.clone());
    let deleted = driver.delete(&entry.record.management).await;
    ctx.metrics.provider_call("delete", &deleted);
    deleted?;
    Ok("deleted at the provider: a newer registration is recorded, or its client is gone")
}

/// A registration was begun and its answer never recorded: the operator stopped in
/// between (killed, or the answer lost). Pure DCR offers no way to look it up, so it is
/// reported with what finds it at the provider.
async fn possible_orphan(client: &AuthClient, issuer: &str, since: &str, ctx: &Context) {
    ctx.metrics.possible_orphan();
    let uid = client.metadata.uid.as_deref().unwrap_or_default();
    let note = format!(
        "a registration begun at {since} was never answered or recorded (the operator stopped, or the answer was lost): the provider at {issuer} may hold one unrecorded — delete the client with software_id {uid} there, other than the one now recorded"
    );
    tracing::warn!(client = %ObjectRef::of(client), %since, %issuer, software_id = %uid, "a registration may exist unrecorded");
    ctx.event(client, EventType::Warning, "PossibleOrphan", note)
        .await;
}

/// The client is provisioned: its credentials Secret says so, a Secret under an earlier
/// name is gone, and a registration it left behind is retired.
async fn provisioned(
    client: &AuthClient,
    mut record: StoredRegistration,
    gathered: &Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    write_credentials(client, &record, gathered, ctx).await?;
    let previous = current_secret_name(client);
    if previous != gathered.secret_name {
        delete_if_ours(client, &previous, &gathered.uid, ctx).await?;
    }
    if let Some(retired) = record.retired.take() {
        let driver = DcrDriver::new(ctx.http.clone());
        let deleted = driver.delete(&retired.management).await;
        ctx.metrics.provider_call("delete", &deleted);
        match deleted {
            Ok(found) => {
                save_registration(client, &record, ctx).await?;
                tracing::info!(client = %ObjectRef::of(client), client_id = %retired.client_id, issuer = %retired.issuer_url, already_gone = found == Deleted::AlreadyGone, "retired the registration the client left");
            }
            Err(error) => {
                // Kept in the record: the next reconcile tries again.
                tracing::warn!(client = %ObjectRef::of(client), client_id = %retired.client_id, %error, "cannot retire the registration the client left yet");
            }
        }
    }
    Ok(Outcome::registered(
        &record,
        Some(gathered.secret_name.clone()),
    ))
}

/// Deletes the registration (and one being retired) at the provider, then the
/// credentials Secrets the operator created, then the record. A provider that refuses
/// (403) or cannot be reached stops it all: nothing is forgotten.
pub async fn remove(
    client: &AuthClient,
    record: Option<&StoredRegistration>,
    ctx: &Context,
) -> Result<(), Error> {
    let uid = crate::gather::uid(client)?;
    let reference = ObjectRef::of(client);
    if let Some(record) = record {
        let driver = DcrDriver::new(ctx.http.clone());
        let registrations = record
            .retired
            .iter()
            .map(|r| (&r.client_id, &r.issuer_url, &r.management))
            .chain([(&record.client_id, &record.issuer_url, &record.management)]);
        for (client_id, issuer, management) in registrations {
            deregister(&driver, management, ctx).await.map_err(|error| {
                tracing::warn!(client = %reference, %client_id, %error, "cannot delete the registration at the provider; keeping everything until it can");
                error
            })?;
            tracing::info!(client = %reference, %client_id, %issuer, "deleted the registration at the provider");
        }
    }
    let names = [current_secret_name(client), spec_secret_name(client)];
    for name in names.iter().collect::<std::collections::BTreeSet<_>>() {
        delete_if_ours(client, name, uid, ctx).await?;
    }
    let records: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.operator_namespace);
    let name = registration_secret_name(uid);
    // The record's finalizer guards it against everyone but this moment.
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    let released = records
        .patch(&name, &PatchParams::default(), &Patch::Merge(&release))
        .await;
    let deleted = match released {
        Ok(_) => records
            .delete(&name, &DeleteParams::default())
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    match deleted {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(response)) if response.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

async fn deregister(
    driver: &DcrDriver,
    management: &Management,
    ctx: &Context,
) -> Result<Deleted, Error> {
    let deleted = driver.delete(management).await;
    ctx.metrics.provider_call("delete", &deleted);
    Ok(deleted?)
}

/// Writes the record in the operator's namespace, by server-side apply.
pub async fn save_registration(
    client: &AuthClient,
    record: &StoredRegistration,
    ctx: &Context,
) -> Result<(), Error> {
    let secret = record.to_secret(client, &ctx.settings.operator_namespace);
    write_record(&secret, true, ctx).await
}

/// Writes a record: its data replaced by a JSON patch when it exists (`exists` is the
/// guess: the other way is tried when it was wrong), else created whole. Cheaper for the
/// API server than a server-side apply, which mattered most at a thousand clients.
async fn write_record(secret: &Secret, exists: bool, ctx: &Context) -> Result<(), Error> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let records: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.operator_namespace);
    let patch = || -> Result<Patch<()>, Error> {
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/data", "value": secret.data.clone().unwrap_or_default()}
        ]))
        .map_err(|error| Error::Unrecorded(error.to_string()))?;
        Ok(Patch::Json(patch))
    };
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let create = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let code = |result: &Result<_, kube::Error>| match result {
        Err(kube::Error::Api(response)) => Some(response.code),
        _ => None,
    };
    if exists {
        let patched = records.patch(&name, &params, &patch()?).await;
        if code(&patched) != Some(404) {
            return patched.map(|_| ()).map_err(Into::into);
        }
        records.create(&create, secret).await?;
        return Ok(());
    }
    let created = records.create(&create, secret).await;
    if code(&created) != Some(409) {
        return created.map(|_| ()).map_err(Into::into);
    }
    records.patch(&name, &params, &patch()?).await?;
    Ok(())
}

/// Deletes the record, releasing the finalizer that guards it from everyone else.
async fn delete_record(uid: &str, ctx: &Context) -> Result<(), Error> {
    let records: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.operator_namespace);
    let name = registration_secret_name(uid);
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    let released = records
        .patch(&name, &PatchParams::default(), &Patch::Merge(&release))
        .await;
    let deleted = match released {
        Ok(_) => records
            .delete(&name, &DeleteParams::default())
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    match deleted {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(response)) if response.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Writes the credentials Secret when it does not already say what the record says:
/// created when absent (never over a Secret that appeared meanwhile), updated in place
/// when ours, guarded by the resourceVersion that was read.
async fn write_credentials(
    client: &AuthClient,
    record: &StoredRegistration,
    gathered: &Gathered,
    ctx: &Context,
) -> Result<(), Error> {
    let name = &gathered.secret_name;
    let mut wanted = record.credentials_secret(client, name);
    let secrets = secrets_of(client, ctx);
    match &gathered.credentials {
        Some(existing) if same_data(existing, &wanted) => return Ok(()),
        Some(existing) => {
            wanted
                .metadata
                .resource_version
                .clone_from(&existing.metadata.resource_version);
            let written = secrets
                .patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&wanted),
                )
                .await;
            match written {
                Err(kube::Error::Api(response)) if response.code == 409 => {
                    return Err(Error::SecretChanged(format!(
                        "Secret {name} changed while it was being updated; trying again"
                    )));
                }
                other => other?,
            };
        }
        None => match secrets.create(&PostParams::default(), &wanted).await {
            Err(kube::Error::Api(response)) if response.code == 409 => {
                return Err(Error::SecretChanged(format!(
                    "Secret {name} appeared while it was being created; looking again"
                )));
            }
            other => {
                other?;
            }
        },
    }
    tracing::info!(client = %ObjectRef::of(client), secret = %name, client_id = %record.client_id, "wrote the credentials Secret");
    Ok(())
}

async fn delete_if_ours(
    client: &AuthClient,
    name: &str,
    uid: &str,
    ctx: &Context,
) -> Result<(), Error> {
    let secrets = secrets_of(client, ctx);
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok(());
    };
    if !is_ours(&secret, uid) {
        return Ok(());
    }
    match secrets.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(response)) if response.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn spec_secret_name(client: &AuthClient) -> String {
    client.spec.secret_name.clone().unwrap_or_else(|| {
        nauthera_shared::policy::default_secret_name(
            client.meta().name.as_deref().unwrap_or_default(),
        )
    })
}

fn take_record(gathered: &mut Gathered) -> Result<StoredRegistration, Error> {
    gathered.record.take().ok_or(Error::MissingField {
        kind: "registration record",
        field: "(decided on one, found none)",
    })
}

fn wanted(gathered: &Gathered) -> Result<&ClientMetadata, Error> {
    gathered.wanted.as_ref().ok_or(Error::MissingField {
        kind: "Evaluation",
        field: "effective",
    })
}

/// Which settings an update changes, against what the status says was applied, in words
/// for logs (never a secret).
fn changed_fields(client: &AuthClient, wanted: Option<&ClientMetadata>) -> String {
    let applied = client
        .status
        .as_ref()
        .and_then(|s| s.effective.as_ref())
        .map(|had| {
            ClientMetadata::from_settings(
                &wanted.map(|w| w.client_name.clone()).unwrap_or_default(),
                had,
            )
        });
    let (Some(applied), Some(wanted)) = (applied, wanted) else {
        return "the settings the policies decide".to_owned();
    };
    let (Ok(before), Ok(after)) = (serde_json::to_value(applied), serde_json::to_value(wanted))
    else {
        return "the settings the policies decide".to_owned();
    };
    let fields: Vec<String> = after
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| before.get(key.as_str()) != Some(value))
        .map(|(key, value)| format!("{key} → {value}"))
        .collect();
    if fields.is_empty() {
        "the settings the policies decide".to_owned()
    } else {
        fields.join(", ")
    }
}
