//! Carrying out a [`Decision`]: calls to the provider and writes of the two Secrets, in
//! the order that never loses track of a registration — the provider answers, the record
//! is written, then the credentials; a registration that cannot be recorded is taken back
//! at once. Every provider write is logged at INFO (never a secret) and has an event.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use nauthera_shared::resources::{AuthClient, DeletionPolicy, ObjectRef};

use crate::Error;
use crate::context::Context;
use crate::gather::{Gathered, adopt, current_secret_name, secrets_of};
use crate::lifecycle::Decision;
use crate::provider::dcr::DcrDriver;
use crate::provider::{ClientMetadata, Deleted, ProviderError};
use crate::records::{
    delete_if_ours, delete_record, remove, save_registration, write_credentials, write_record,
};
use crate::register::{possible_orphan, register};
use crate::secrets::{Retired, StoredRegistration, is_ours};
use crate::status::{Outcome, Problem};

pub async fn act(
    decision: Decision,
    client: &AuthClient,
    mut gathered: Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    // What a read taught (a rotated registration access token, a new secret) is kept
    // whatever comes next: the old token may already be dead at the provider.
    if gathered.record_changed
        && let Some(record) = &gathered.record
    {
        save_registration(client, record, ctx).await?;
        gathered.record_changed = false;
    }
    match decision {
        Decision::Register => {
            // Its event is the Ready transition's, which says where it was registered.
            let record = register(client, &gathered, None, None, ctx).await?;
            provisioned(client, record, &gathered, ctx).await
        }
        Decision::Reregister => reregister(client, &mut gathered, ctx).await,
        Decision::Move => move_to_new_provider(client, &mut gathered, ctx).await,
        Decision::Update => update(client, &mut gathered, false, ctx).await,
        Decision::Keep => {
            let record = take_record(&mut gathered)?;
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
            // Kept exactly as it was; only a Secret deleted meanwhile is written again.
            if gathered.credentials.is_none() {
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
        Decision::Orphan => orphan(client, &mut gathered, ctx).await,
        Decision::Adopt => adopt_existing(client, &mut gathered, ctx).await,
        Decision::AwaitExisting => Ok(await_existing(&gathered)),
        Decision::Rotate => rotate(client, &mut gathered, ctx).await,
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
            if gathered.lost.is_some() && client.spec.deletion_policy == DeletionPolicy::Orphan {
                // Nothing to delete at the provider; the Secret stays as Orphan asks.
                let name = current_secret_name(client);
                if let Some(secret) = &gathered.credentials
                    && secret.metadata.name.as_deref() == Some(name.as_str())
                    && is_ours(secret, &gathered.uid)
                {
                    release_secret(client, &name, ctx).await?;
                }
            }
            remove(client, gathered.record.as_ref(), ctx).await?;
            Ok(Outcome::default())
        }
    }
}

/// Takes over the registration the client names (`spec.existingRegistration`): recorded
/// first, then brought in line with what the policies decide.
async fn adopt_existing(
    client: &AuthClient,
    gathered: &mut Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let record = gathered.adoptable.take().ok_or(Error::MissingField {
        kind: "existing registration",
        field: "(decided on one, found none)",
    })?;
    let secret = record.to_secret(client, &ctx.settings.operator_namespace);
    write_record(&secret, false, ctx).await?;
    let from = client
        .spec
        .existing_registration
        .as_ref()
        .map(|e| e.secret_name.as_str())
        .unwrap_or_default();
    let note = format!(
        "took over {} at {} from Secret {from}",
        record.client_id, record.issuer_url
    );
    tracing::info!(client = %ObjectRef::of(client), client_id = %record.client_id, "took over an existing registration");
    ctx.event(client, EventType::Normal, "Adopted", note).await;
    gathered.record = Some(record);
    update(client, gathered, true, ctx).await
}

/// The registration to take over is not there, or not accepted: nothing is registered in
/// its place, and the status says why.
fn await_existing(gathered: &Gathered) -> Outcome {
    let reason = if gathered.existing == crate::lifecycle::Existing::Missing {
        "ExistingRegistrationMissing"
    } else {
        "ExistingRegistrationRefused"
    };
    Outcome::default().with_problem(Problem {
        reason,
        message: gathered.existing_problem.clone().unwrap_or_default(),
    })
}

/// `deletionPolicy: Orphan`: the registration stays at the provider and the credentials
/// Secret stays in the namespace, no longer owned by the client (the garbage collector
/// would otherwise take it); the record goes. Of a registration being retired and its
/// successor, the one the Secret holds stays (a switch may not have happened yet); the
/// other is deleted.
async fn orphan(
    client: &AuthClient,
    gathered: &mut Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let record = take_record(gathered)?;
    let name = current_secret_name(client);
    let secret = secrets_of(client, ctx)
        .get_opt(&name)
        .await?
        .filter(|secret| is_ours(secret, &gathered.uid));
    let held = secret
        .as_ref()
        .and_then(|secret| held_client_id(client, secret));
    let (kept, discarded) = match &record.retired {
        Some(retired) if held.as_deref() == Some(retired.client_id.as_str()) => {
            (&retired.client_id, Some(&record.management))
        }
        Some(retired) => (&record.client_id, Some(&retired.management)),
        None => (&record.client_id, None),
    };
    if let Some(management) = discarded {
        let deleted = DcrDriver::new(ctx.http.clone()).delete(management).await;
        ctx.metrics.provider_call("delete", &deleted);
        deleted?;
    }
    if secret.is_some() {
        release_secret(client, &name, ctx).await?;
    }
    delete_record(&gathered.uid, ctx).await?;
    let note = format!(
        "left {kept} at {} as deletionPolicy: Orphan asks; Secret {name} stays",
        record.issuer_url
    );
    tracing::info!(client = %ObjectRef::of(client), client_id = %kept, "left the registration at the provider");
    ctx.event(client, EventType::Normal, "Orphaned", note).await;
    Ok(Outcome::default())
}

/// The client_id a credentials Secret holds, under the client's key name.
fn held_client_id(
    client: &AuthClient,
    secret: &k8s_openapi::api::core::v1::Secret,
) -> Option<String> {
    let key = client
        .spec
        .secret_template
        .clone()
        .unwrap_or_default()
        .keys
        .client_id;
    String::from_utf8(secret.data.as_ref()?.get(&key)?.0.clone()).ok()
}

/// Hands the credentials Secret over to the namespace: no owner, so it outlives the
/// client, annotated with where it came from.
async fn release_secret(client: &AuthClient, name: &str, ctx: &Context) -> Result<(), Error> {
    let release = serde_json::json!({"metadata": {
        "ownerReferences": null,
        "annotations": {"auth.nauthera.io/orphaned-from": ObjectRef::of(client).to_string()}
    }});
    secrets_of(client, ctx)
        .patch(name, &PatchParams::default(), &Patch::Merge(&release))
        .await?;
    Ok(())
}

/// Rotates the client secret the way every provider supports: a new registration with
/// the same settings; the Secret switches to it in one write; the old one keeps working
/// for the overlap window, then is deleted.
async fn rotate(
    client: &AuthClient,
    gathered: &mut Gathered,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let old = take_record(gathered)?;
    let until = overlap_end(gathered);
    let retired = Retired {
        client_id: old.client_id.clone(),
        issuer_url: old.issuer_url.clone(),
        management: old.management.clone(),
        after: Some(until.to_string()),
        rotated: Some(crate::secrets::Rotated {
            at: k8s_openapi::jiff::Timestamp::now().to_string(),
            requested: crate::rotation::requested(client).map(str::to_owned),
        }),
    };
    let record = register(client, gathered, Some(&old), Some(retired), ctx).await?;
    ctx.metrics.rotated();
    let note = format!(
        "rotated: {} replaces {}, which keeps working until {until}",
        record.client_id, old.client_id
    );
    tracing::info!(client = %ObjectRef::of(client), new = %record.client_id, old = %old.client_id, %until, "rotated the client's credentials");
    ctx.event(client, EventType::Normal, "Rotated", note).await;
    provisioned(client, record, gathered, ctx).await
}

/// When credentials replaced now stop working: after the governing policies' overlap.
fn overlap_end(gathered: &Gathered) -> k8s_openapi::jiff::Timestamp {
    let overlap = gathered
        .evaluation
        .effective
        .as_ref()
        .and_then(|settings| settings.secret_rotation_overlap)
        .map_or(DEFAULT_OVERLAP, |overlap| {
            std::time::Duration::from_secs(overlap.as_secs())
        });
    let now = k8s_openapi::jiff::Timestamp::now();
    now.checked_add(k8s_openapi::jiff::SignedDuration::try_from(overlap).unwrap_or_default())
        .unwrap_or(now)
}

/// How long old credentials keep working after a rotation when no policy says.
pub const DEFAULT_OVERLAP: std::time::Duration = std::time::Duration::from_secs(3600);

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
        rotation: None,
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
    retire_now(client, &old, ctx).await?;
    // Running apps hold the old credentials until they read the Secret again: they keep
    // working for the same overlap a rotation gives.
    let retired = Retired {
        client_id: old.client_id.clone(),
        issuer_url: old.issuer_url.clone(),
        management: old.management.clone(),
        after: Some(overlap_end(gathered).to_string()),
        rotated: None,
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
    taking_over: bool,
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
        Err(ProviderError::Gone { .. }) if !taking_over => {
            gathered.record = Some(record);
            return reregister(client, gathered, ctx).await;
        }
        Err(error @ ProviderError::Gone { .. }) => {
            // Read with the team's token, but not updated: not taken over after all, and
            // never replaced by a new registration.
            delete_record(&gathered.uid, ctx).await?;
            return Err(error.into());
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
    ctx.deleted_registration(&gathered.uid, &record.client_id);
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
    retire_now(client, &old, ctx).await?;
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

/// A registration still being retired (a rotation's overlap) is deleted before the
/// record is replaced by one that no longer names it: its window ends early rather than
/// never.
async fn retire_now(
    client: &AuthClient,
    record: &StoredRegistration,
    ctx: &Context,
) -> Result<(), Error> {
    let Some(retired) = &record.retired else {
        return Ok(());
    };
    let deleted = DcrDriver::new(ctx.http.clone())
        .delete(&retired.management)
        .await;
    ctx.metrics.provider_call("delete", &deleted);
    deleted?;
    tracing::info!(client = %ObjectRef::of(client), client_id = %retired.client_id, "retired the registration the client left, before replacing its record");
    Ok(())
}

/// The client is provisioned: its credentials Secret says so, a Secret under an earlier
/// name is gone, and a registration it left behind is retired.
pub(crate) async fn provisioned(
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
    let due = |retired: &Retired| {
        retired.after.as_deref().is_none_or(|after| {
            after
                .parse::<k8s_openapi::jiff::Timestamp>()
                .is_ok_and(|after| after <= k8s_openapi::jiff::Timestamp::now())
        })
    };
    let rotated = record.retired.as_ref().and_then(|r| r.rotated.clone());
    if let Some(retired) = record.retired.take_if(|retired| due(retired)) {
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
    let mut outcome = Outcome::registered(&record, Some(gathered.secret_name.clone()));
    outcome.rotation = crate::rotation::status(
        client,
        gathered.rotation_schedule(),
        Some(&record),
        rotated.as_ref(),
        k8s_openapi::jiff::Timestamp::now(),
    );
    Ok(outcome)
}

fn take_record(gathered: &mut Gathered) -> Result<StoredRegistration, Error> {
    gathered.record.take().ok_or(Error::MissingField {
        kind: "registration record",
        field: "(decided on one, found none)",
    })
}

pub(crate) fn wanted(gathered: &Gathered) -> Result<&ClientMetadata, Error> {
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
