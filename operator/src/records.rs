//! The operator's writes to Kubernetes for a registration: its record in the operator's
//! namespace, and the credentials Secret in the client's — only ever one the operator
//! created for this AuthClient.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use nauthera_shared::resources::{AuthClient, ObjectRef};

use crate::Error;
use crate::context::{Context, FIELD_MANAGER};
use crate::gather::{Gathered, current_secret_name, secrets_of};
use crate::provider::dcr::DcrDriver;
use crate::provider::{Deleted, Management};
use crate::secrets::{StoredRegistration, is_ours, registration_secret_name, same_data};

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
    delete_record(uid, ctx).await
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
pub(crate) async fn write_record(
    secret: &Secret,
    exists: bool,
    ctx: &Context,
) -> Result<(), Error> {
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
pub(crate) async fn delete_record(uid: &str, ctx: &Context) -> Result<(), Error> {
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
pub(crate) async fn write_credentials(
    client: &AuthClient,
    record: &StoredRegistration,
    gathered: &Gathered,
    ctx: &Context,
) -> Result<(), Error> {
    let name = &gathered.secret_name;
    // The token endpoint for the Secret, from the discovery document (cached per issuer);
    // without it, the Secret just lacks that key.
    // A discovery outage keeps the value the Secret has (never a write to drop it).
    let known = || {
        let keys = client.spec.secret_template.clone().unwrap_or_default().keys;
        let data = gathered.credentials.as_ref()?.data.as_ref()?;
        let value = |key: &str| String::from_utf8(data.get(key)?.0.clone()).ok();
        // Only while the Secret is for the same issuer.
        (value(&keys.issuer_url)? == record.issuer_url)
            .then(|| value(&keys.token_endpoint))
            .flatten()
    };
    let token_endpoint = match ctx.discovery.get(&ctx.http, &record.issuer_url).await {
        Ok(discovered) => discovered.document.token_endpoint.clone(),
        Err(_) => known(),
    };
    let mut wanted = record.credentials_secret(client, name, token_endpoint.as_deref());
    let secrets = secrets_of(client, ctx);
    match &gathered.credentials {
        Some(existing) if same_data(existing, &wanted) => return Ok(()),
        Some(existing) => {
            let written = secrets
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(credentials_update(existing, &mut wanted)),
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

/// The update of a credentials Secret the operator owns, in place: its data becomes
/// exactly what is wanted (a key renamed by `secretTemplate.keys` leaves no stale copy
/// behind), the template's labels and annotations are set (those it no longer sets are
/// removed), and whatever else others added to its metadata (Argo CD, Reloader) stays.
/// Guarded by the resource version it was read at.
fn credentials_update(existing: &Secret, wanted: &mut Secret) -> serde_json::Value {
    let dropped = crate::template_keys::dropped(existing, wanted);
    let mut data = serde_json::Map::new();
    for key in existing.data.iter().flat_map(|data| data.keys()) {
        data.insert(key.clone(), serde_json::Value::Null);
    }
    for (key, value) in wanted.data.take().unwrap_or_default() {
        data.insert(key, serde_json::to_value(value).unwrap_or_default());
    }
    // `null` in a merge patch deletes: only what the template sets is sent.
    let mut metadata = serde_json::json!({"resourceVersion": existing.metadata.resource_version});
    let set_or_drop = |wanted: Option<BTreeMap<String, String>>, dropped: &[String]| {
        let mut map: serde_json::Map<String, serde_json::Value> = dropped
            .iter()
            .map(|key| (key.clone(), serde_json::Value::Null))
            .collect();
        for (key, value) in wanted.unwrap_or_default() {
            map.insert(key, serde_json::Value::String(value));
        }
        (!map.is_empty()).then_some(serde_json::Value::Object(map))
    };
    if let Some(labels) = set_or_drop(wanted.metadata.labels.take(), &dropped.labels) {
        metadata["labels"] = labels;
    }
    if let Some(annotations) = set_or_drop(wanted.metadata.annotations.take(), &dropped.annotations)
    {
        metadata["annotations"] = annotations;
    }
    serde_json::json!({"metadata": metadata, "data": data})
}

pub(crate) async fn delete_if_ours(
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
