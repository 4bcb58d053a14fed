//! Making a registration without ever losing track of it: the intent recorded (in the
//! local journal, or the record), the provider asked, its answer journalled, then
//! recorded; a start after a kill settles what the journal holds.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::events::EventType;
use nauthera_shared::resources::{AuthClient, ObjectRef};

use crate::Error;
use crate::act::wanted;
use crate::context::Context;
use crate::gather::Gathered;
use crate::journal::{Begun, Entry};
use crate::provider::dcr::DcrDriver;
use crate::records::{delete_record, save_registration, write_record};
use crate::secrets::{
    Retired, StoredRegistration, intent_secret, registering_since, registration_secret_name,
};

/// Registers at the client's server, recording the intent first and the answer right
/// after, before anything else. When the answer cannot be recorded, the fresh
/// registration is deleted again; if even that fails, it is kept in memory and recorded
/// before anything is registered again. `previous` is the registration this one
/// replaces (kept in the record until the new one is in it).
pub(crate) async fn register(
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
    report_earlier_attempt(client, gathered, &server.spec.issuer_url, ctx).await;
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
        Err(error) if error.may_have_registered() => return Err(error.into()),
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

/// An earlier attempt whose intent is still there (in the record, or in the journal:
/// an answer lost earlier in this run) may have left a registration: say so.
async fn report_earlier_attempt(
    client: &AuthClient,
    gathered: &Gathered,
    issuer: &str,
    ctx: &Context,
) {
    if let Some(since) = &gathered.registering_since {
        possible_orphan(client, issuer, since, ctx).await;
    }
    if let Some(earlier) = ctx.journal.begun_for(&gathered.uid) {
        possible_orphan(client, &earlier.issuer, &earlier.since, ctx).await;
    }
}

/// Settles what an earlier run journalled but may not have recorded: a registration its
/// client has no record of becomes the record; one its client no longer needs (a newer
/// one is recorded, or the client is gone) is deleted at the provider with its own token.
/// A registration begun and never answered becomes the record's intent, which outlives
/// the pod: the next reconcile reports the possible orphan before registering again.
/// Run at start-up and again on shutdown (the journal goes with the pod).
pub async fn recover_journal(ctx: &Context) {
    for begun in ctx.journal.begun() {
        let client = ctx
            .stores
            .clients
            .get(&kube::runtime::reflector::ObjectRef::new(&begun.name).within(&begun.namespace))
            .filter(|client| client.metadata.uid.as_deref() == Some(begun.uid.as_str()));
        if let Some(client) = client {
            if let Err(error) = record_intent(&client, &begun, ctx).await {
                // Said now, and kept: the next settlement tries to record it again.
                tracing::warn!(client = %ObjectRef::of(&*client), %error, "cannot record a registration begun and never answered; it stays journalled");
                possible_orphan(&client, &begun.issuer, &begun.since, ctx).await;
                continue;
            }
            tracing::info!(client = %ObjectRef::of(&*client), since = %begun.since, "a registration begun and never answered is now in the record, to be reported before registering again");
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

/// Writes what the journal's `begun` says into the client's record, as registering
/// without a journal would have before asking the provider: the record as it is, and
/// when the registration began.
async fn record_intent(client: &AuthClient, begun: &Begun, ctx: &Context) -> Result<(), Error> {
    let records: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.operator_namespace);
    let secret = records
        .get_opt(&registration_secret_name(&begun.uid))
        .await?;
    let recorded = secret.as_ref().and_then(StoredRegistration::from_secret);
    let intent = intent_secret(
        client,
        &ctx.settings.operator_namespace,
        recorded.as_ref(),
        &begun.since,
    );
    write_record(&intent, secret.is_some(), ctx).await
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
                after: None,
                rotated: None,
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
pub(crate) async fn possible_orphan(client: &AuthClient, issuer: &str, since: &str, ctx: &Context) {
    ctx.metrics.possible_orphan();
    let uid = client.metadata.uid.as_deref().unwrap_or_default();
    let note = format!(
        "a registration begun at {since} was never answered or recorded (the operator stopped, or the answer was lost): the provider at {issuer} may hold one unrecorded — delete the client with software_id {uid} there, other than the one now recorded"
    );
    tracing::warn!(client = %ObjectRef::of(client), %since, %issuer, software_id = %uid, "a registration may exist unrecorded");
    ctx.event(client, EventType::Warning, "PossibleOrphan", note)
        .await;
}
