//! Uninstalling without stranding anyone: `nauthera-operator release`, which the Helm
//! chart runs before `helm uninstall` deletes anything.
//!
//! Every AuthClient carries the operator's finalizer so that deleting it deletes its
//! registration. With no operator left, that finalizer would hold every AuthClient — and
//! the namespaces of their teams — in deletion forever. So, once no operator runs (the
//! Deployment is scaled to zero and its pods are gone, else one would put the finalizers
//! back), `release` takes the finalizer off every AuthClient and off every registration
//! record. Nothing else changes: registrations stay at their providers and credentials
//! Secrets where they are, so every application keeps working; each client gets a
//! Warning event saying so. The records stay in the operator's namespace: an operator
//! installed again there finds them and manages every registration on as before (its
//! first reconcile puts the finalizers back). A client deleted meanwhile leaves its
//! registration at the provider, named in its event.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use nauthera_shared::resources::AuthClient;

use crate::reconcile::FINALIZER;
use crate::secrets::{MANAGED_BY, RECORD_FINALIZER};

/// What was let go.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub clients: usize,
    pub records: usize,
}

/// How many finalizers are taken off at once.
const AT_ONCE: usize = 16;

/// Scales the operator's Deployment (if there is one) to zero, waits until its pods are
/// gone, then releases every AuthClient and record.
pub async fn release(
    client: &Client,
    namespace: &str,
    deployment: &str,
    patience: Duration,
) -> color_eyre::Result<Released> {
    stop_operator(client, namespace, deployment, patience).await?;
    let clients = release_clients(client).await?;
    let records = release_records(client, namespace).await?;
    Ok(Released { clients, records })
}

async fn stop_operator(
    client: &Client,
    namespace: &str,
    name: &str,
    patience: Duration,
) -> color_eyre::Result<()> {
    use color_eyre::eyre::{WrapErr, eyre};
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let Some(deployment) = deployments
        .get_opt(name)
        .await
        .wrap_err_with(|| format!("cannot read Deployment {namespace}/{name}"))?
    else {
        tracing::info!(%namespace, deployment = %name, "no operator Deployment: none to stop");
        return Ok(());
    };
    if deployment.spec.as_ref().and_then(|s| s.replicas) != Some(0) {
        deployments
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})),
            )
            .await
            .wrap_err_with(|| format!("cannot scale Deployment {namespace}/{name} to 0"))?;
        tracing::info!(%namespace, deployment = %name, "scaled the operator to 0");
    }
    // Not only scaled down: gone. A pod still in its termination grace may finish a
    // reconcile, and that puts a finalizer back.
    let selector = deployment
        .spec
        .and_then(|spec| spec.selector.match_labels)
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let running = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .wrap_err_with(|| format!("cannot list the operator's pods in {namespace}"))?
            .items
            .len();
        if running == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(eyre!(
                "Deployment {namespace}/{name} still has {running} pod(s) after {patience:?}: nothing was released (an operator still running would put the finalizers back)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Takes the operator's finalizer off every AuthClient that has it, with an event each.
async fn release_clients(client: &Client) -> color_eyre::Result<usize> {
    use color_eyre::eyre::WrapErr;
    let all: Api<AuthClient> = Api::all(client.clone());
    let held: Vec<AuthClient> = all
        .list(&ListParams::default())
        .await
        .wrap_err("cannot list AuthClients")?
        .items
        .into_iter()
        .filter(|c| c.finalizers().iter().any(|f| f == FINALIZER))
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
    let note = match (client_id, secret) {
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
