//! Uninstalling without stranding anyone: `nauthera-operator release`, which the Helm
//! chart runs before `helm uninstall` deletes anything.
//!
//! Every AuthClient carries the operator's finalizer so that deleting it deletes its
//! registration. With no operator left, that finalizer would hold every AuthClient — and
//! the namespaces of their teams — in deletion forever. So, once no operator reconciles
//! (its Deployment scaled to zero and its leader Lease taken by `release` itself, so no
//! instance anywhere leads meanwhile; one that did would put the finalizers back),
//! `release` takes the finalizer off this operator's AuthClients and records. Nothing else
//! changes: registrations stay at their providers and credentials Secrets where they are,
//! so every application keeps working; each client gets a Warning event saying so. The
//! records stay in the operator's namespace: an operator installed again there finds them
//! and manages every registration on (its first reconcile puts the finalizers back).
//!
//! "This operator's": clients whose record is in its namespace, and clients with the
//! finalizer and no record anywhere (never registered: refused, withheld). A client
//! recorded by an operator in another namespace is left to that one.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use nauthera_shared::resources::AuthClient;

use crate::leader::{Elector, LeaseSettings};
use crate::reconcile::FINALIZER;
use crate::secrets::{MANAGED_BY, RECORD_FINALIZER};

/// Registration records are named `nauthera-registration-<client UID>`.
const RECORD_PREFIX: &str = "nauthera-registration-";

/// What was let go.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub clients: usize,
    pub records: usize,
}

/// How many finalizers are taken off at once.
const AT_ONCE: usize = 16;

/// Stops the operator (its Deployment, if there is one, scaled to zero; its Lease taken
/// once whichever instance holds it lets it go), then releases this operator's
/// AuthClients and records. If the Lease cannot be had within `patience`, the Deployment
/// is scaled back and nothing is released.
pub async fn release(
    client: &Client,
    namespace: &str,
    deployment: &str,
    lease: &str,
    patience: Duration,
) -> color_eyre::Result<Released> {
    let scaled_from = scale_to_zero(client, namespace, deployment).await?;
    // Unique per process and pod: a Job's process is always PID 1.
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    let identity = format!(
        "nauthera-operator-release-{}-{}",
        host.trim(),
        std::process::id()
    );
    let elector = Elector::new(
        client.clone(),
        LeaseSettings::new(lease.to_owned(), namespace.to_owned(), identity),
    );
    let Ok(held) = tokio::time::timeout(patience, elector.acquire()).await else {
        // An acquire cut short may have taken it after all.
        elector.release().await;
        scale_back(client, namespace, deployment, scaled_from).await;
        return Err(color_eyre::eyre::eyre!(
            "Lease {namespace}/{lease} is still held after {patience:?}: an operator other than Deployment {namespace}/{deployment} runs, or one that cannot stop; nothing was released{}",
            if scaled_from.is_some() {
                ", and the Deployment is scaled back"
            } else {
                ""
            }
        ));
    };
    tracing::info!(%namespace, %lease, "holding the operator's Lease: no instance leads while releasing");
    let elector = std::sync::Arc::new(elector);
    let mut holding = tokio::spawn({
        let elector = std::sync::Arc::clone(&elector);
        async move { elector.hold(held).await }
    });
    let work = async {
        let clients = release_clients(client, namespace).await?;
        let records = release_records(client, namespace).await?;
        color_eyre::Result::<Released>::Ok(Released { clients, records })
    };
    let released = tokio::select! {
        released = work => released,
        // Another instance may lead from now on: stop at once (what is released stays
        // released; that instance puts finalizers back where it reconciles).
        lost = &mut holding => Err(color_eyre::eyre::eyre!(
            "lost Lease {namespace}/{lease} while releasing ({}): stopped",
            lost.map_or_else(|error| error.to_string(), |lost| lost.to_string())
        )),
    };
    holding.abort();
    elector.release().await;
    if released.is_err() {
        scale_back(client, namespace, deployment, scaled_from).await;
    }
    released
}

/// After a failure: the operator runs again as it did, so nothing is left unmanaged.
async fn scale_back(client: &Client, namespace: &str, deployment: &str, to: Option<i32>) {
    if let Some(replicas) = to {
        match scale(client, namespace, deployment, replicas).await {
            Ok(()) => tracing::info!(%namespace, %deployment, replicas, "scaled the operator back"),
            Err(error) => {
                tracing::error!(%namespace, %deployment, replicas, error = %crate::error::one_line(&error), "cannot scale the operator back: scale it by hand");
            }
        }
    }
}

/// Scales the Deployment to zero, if it exists: its former replicas, when it ran any.
async fn scale_to_zero(
    client: &Client,
    namespace: &str,
    name: &str,
) -> color_eyre::Result<Option<i32>> {
    use color_eyre::eyre::WrapErr;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let Some(deployment) = deployments
        .get_opt(name)
        .await
        .wrap_err_with(|| format!("cannot read Deployment {namespace}/{name}"))?
    else {
        tracing::info!(%namespace, deployment = %name, "no such Deployment: the Lease alone says when no operator leads");
        return Ok(None);
    };
    let replicas = deployment.spec.and_then(|s| s.replicas).unwrap_or(1);
    if replicas == 0 {
        return Ok(None);
    }
    scale(client, namespace, name, 0).await?;
    tracing::info!(%namespace, deployment = %name, from = replicas, "scaled the operator to 0");
    Ok(Some(replicas))
}

async fn scale(
    client: &Client,
    namespace: &str,
    name: &str,
    replicas: i32,
) -> color_eyre::Result<()> {
    use color_eyre::eyre::WrapErr;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    deployments
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await
        .map(|_| ())
        .wrap_err_with(|| format!("cannot scale Deployment {namespace}/{name} to {replicas}"))
}

/// Where each client's registration is recorded: the record's namespace by client UID.
async fn record_namespaces(client: &Client) -> color_eyre::Result<BTreeMap<String, String>> {
    use color_eyre::eyre::WrapErr;
    let secrets: Api<Secret> = Api::all(client.clone());
    // Names and namespaces are all it takes: never the records' tokens.
    let records = secrets
        .list_metadata(&ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)))
        .await
        .wrap_err("cannot list the registration records")?
        .items;
    Ok(records
        .into_iter()
        .filter_map(|record| {
            let uid = record.name_any().strip_prefix(RECORD_PREFIX)?.to_owned();
            Some((uid, record.namespace()?))
        })
        .collect())
}

/// Takes the operator's finalizer off each of this operator's AuthClients, with an event
/// each.
async fn release_clients(client: &Client, namespace: &str) -> color_eyre::Result<usize> {
    use color_eyre::eyre::WrapErr;
    let record_at = record_namespaces(client).await?;
    let all: Api<AuthClient> = Api::all(client.clone());
    let held: Vec<AuthClient> = all
        .list(&ListParams::default())
        .await
        .wrap_err("cannot list AuthClients")?
        .items
        .into_iter()
        .filter(|c| c.finalizers().iter().any(|f| f == FINALIZER))
        .filter(|c| {
            c.uid()
                .and_then(|uid| record_at.get(&uid))
                .is_none_or(|at| at == namespace)
        })
        .collect();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "nauthera-operator".into(),
            instance: None,
        },
    );
    futures::stream::iter(
        held.iter()
            .map(|held| release_client(client, &recorder, held)),
    )
    .buffer_unordered(AT_ONCE)
    .try_collect::<Vec<()>>()
    .await
    .map(|released| released.len())
}

async fn release_client(
    client: &Client,
    recorder: &Recorder,
    held: &AuthClient,
) -> color_eyre::Result<()> {
    use color_eyre::eyre::WrapErr;
    let namespace = held.namespace().unwrap_or_default();
    let name = held.name_any();
    let api: Api<AuthClient> = Api::namespaced(client.clone(), &namespace);
    without_finalizer(&api, &name, FINALIZER)
        .await
        .wrap_err_with(|| format!("cannot release AuthClient {namespace}/{name}"))?;
    let status = held.status.as_ref();
    let client_id = status.and_then(|s| s.client_id.as_deref());
    let secret = status
        .and_then(|s| s.client_secret_ref.as_ref())
        .map(|s| s.name.as_str());
    let deleting = held.metadata.deletion_timestamp.is_some();
    let note = match (client_id, secret) {
        (Some(client_id), _) if deleting => format!(
            "nauthera-operator was uninstalled while this AuthClient was being deleted: registration {client_id} stays at the provider, to delete there by hand (its record, with the registration access token, stays in the operator's namespace)"
        ),
        (Some(client_id), Some(secret)) => format!(
            "nauthera-operator was uninstalled: registration {client_id} stays at the provider and Secret {secret} keeps working, unmanaged until an operator is installed again (deleting this AuthClient meanwhile leaves the registration at the provider)"
        ),
        _ => "nauthera-operator was uninstalled: nothing was registered for this AuthClient"
            .to_owned(),
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "Released".into(),
        note: Some(note),
        action: "Release".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &held.object_ref(&())).await {
        tracing::warn!(client = %format!("{namespace}/{name}"), %error, "cannot record an event");
    }
    tracing::info!(client = %format!("{namespace}/{name}"), client_id, "released");
    Ok(())
}

/// Takes the registration records' finalizer off; the records stay.
async fn release_records(client: &Client, namespace: &str) -> color_eyre::Result<usize> {
    use color_eyre::eyre::WrapErr;
    let records: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let held: Vec<Secret> = records
        .list(&ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)))
        .await
        .wrap_err_with(|| format!("cannot list the registration records in {namespace}"))?
        .items
        .into_iter()
        .filter(|s| s.finalizers().iter().any(|f| f == RECORD_FINALIZER))
        .collect();
    futures::stream::iter(held.iter().map(|record| {
        let records = records.clone();
        async move {
            let name = record.name_any();
            without_finalizer(&records, &name, RECORD_FINALIZER)
                .await
                .wrap_err_with(|| format!("cannot release record {namespace}/{name}"))
        }
    }))
    .buffer_unordered(AT_ONCE)
    .try_collect::<Vec<()>>()
    .await
    .map(|released| released.len())
}

/// Removes `finalizer` from the object, leaving any other: a JSON patch that tests the
/// entry it removes, read again when someone changed the list meanwhile.
async fn without_finalizer<K>(api: &Api<K>, name: &str, finalizer: &str) -> kube::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut attempts = 0;
    loop {
        let Some(object) = api.get_opt(name).await? else {
            return Ok(());
        };
        let Some(at) = object
            .meta()
            .finalizers
            .iter()
            .flatten()
            .position(|f| f == finalizer)
        else {
            return Ok(());
        };
        let entry = format!("/metadata/finalizers/{at}");
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": entry, "value": finalizer},
            {"op": "remove", "path": entry},
        ]))
        .expect("a JSON patch");
        match api
            .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(response)) if response.code == 404 => return Ok(()),
            // The list changed under the test: read it again.
            Err(kube::Error::Api(response)) if response.code == 422 && attempts < 5 => {
                attempts += 1;
            }
            Err(error) => return Err(error),
        }
    }
}
