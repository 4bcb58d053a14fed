//! The API server's floor under the scale benchmark (`scale.rs`), as a benchmark, not a
//! timed test: for each N in `NAUTHERA_SCALE_CLIENTS`, against the cluster named by
//! `NAUTHERA_E2E_KUBECONFIG`, with no operator running, the harness creates N
//! AuthClients as `scale.rs` does (50 at a time, server-side apply), and as each
//! appears it makes, 16 clients at a time (the operator's default concurrency), the
//! Kubernetes requests the operator makes for a new client:
//!
//! - the finalizer patch; a read of the registration record (none yet) and its create;
//! - a read of the credentials Secret (none yet) and its create, owned by the client;
//! - the status patch, and the Ready event.
//!
//! `NAUTHERA_FLOOR_WITHOUT` leaves kinds of request out (e.g. `finalizer,reads`: what a
//! design without them would save), `NAUTHERA_FLOOR_CONCURRENCY` sets how many clients'
//! requests are in flight at once (e.g. 64: the API server's own limit on this machine).
//!
//! The watches are the operator's (AuthClients cluster-wide, its labelled Secrets) and the
//! harness's (the team's AuthClients). No provider, no operator: what is left is what
//! the API server, etcd and the garbage collector need for those requests on this
//! machine, the least time in which any operator making them could make N clients Ready.
//!
//! Skipped, saying so, unless both are set. Run with `--nocapture` to see the figures.

mod common;

use std::time::{Duration, Instant};

use common::TestProvider;
use common::cluster::{PATIENCE, Scenario, cluster};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use nauthera_shared::resources::AuthClient;
use serde_json::json;

/// The operator's own field manager and labels, so the requests weigh the same.
const MANAGER: &str = "nauthera-operator";
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "nauthera-operator");

/// Keeps a watch open, discarding what it sees, as a controller's reflector would.
fn watch<K>(api: Api<K>, config: watcher::Config)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher::watcher(api, config));
        while let Ok(Some(_)) = events.try_next().await {}
    });
}

/// What the operator writes for one new client, in the order it writes it, less the
/// requests `NAUTHERA_FLOOR_WITHOUT` names.
async fn provision(scenario: &Scenario, recorder: &Recorder, client: AuthClient) {
    let name = client.name_any();
    let uid = client.uid().unwrap();
    let clients = scenario.clients();
    if makes("finalizer") {
        // As kube's finalizer helper: a JSON patch testing that there are none yet.
        let finalizer: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["auth.nauthera.io/cleanup"]}
        ]))
        .unwrap();
        clients
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Json::<()>(finalizer),
            )
            .await
            .unwrap();
    }

    let records = scenario.secrets(&scenario.system);
    let record_name = format!("nauthera-registration-{uid}");
    if makes("reads") {
        assert!(records.get_opt(&record_name).await.unwrap().is_none());
    }
    if makes("record") {
        let record = secret(
            &record_name,
            &scenario.system,
            None,
            &[
                ("registration", &"r".repeat(600)),
                ("registration_access_token", &"t".repeat(43)),
            ],
        );
        records
            .create(&PostParams::default(), &record)
            .await
            .unwrap();
    }

    let secrets = scenario.secrets(&scenario.team);
    let secret_name = format!("{name}-client-secret");
    if makes("reads") {
        assert!(secrets.get_opt(&secret_name).await.unwrap().is_none());
    }
    if makes("secret") {
        let owner = client.controller_owner_ref(&()).unwrap();
        let credentials = secret(
            &secret_name,
            &scenario.team,
            Some(owner),
            &[
                ("client_id", &"c".repeat(43)),
                ("client_secret", &"s".repeat(43)),
                ("issuer_url", "http://127.0.0.1:40000"),
            ],
        );
        secrets
            .create(&PostParams::default(), &credentials)
            .await
            .unwrap();
    }

    if makes("status") {
        let status = status(&name, &scenario.security);
        let patch: json_patch::Patch =
            serde_json::from_value(json!([{"op": "add", "path": "/status", "value": status}]))
                .unwrap();
        let params = PatchParams {
            field_manager: Some(MANAGER.to_owned()),
            ..PatchParams::default()
        };
        clients
            .patch_status(&name, &params, &Patch::Json::<()>(patch))
            .await
            .unwrap();
    }

    if makes("event") {
        let event = Event {
            type_: EventType::Normal,
            reason: "Ready".to_owned(),
            note: Some(format!("registered; credentials in Secret {secret_name}")),
            action: "Ready".to_owned(),
            secondary: None,
        };
        recorder
            .publish(&event, &client.object_ref(&()))
            .await
            .unwrap();
    }
}

/// Whether the floor makes this kind of request: all but those `NAUTHERA_FLOOR_WITHOUT`
/// names (`finalizer`, `reads`, `record`, `secret`, `status`, `event`).
fn makes(request: &str) -> bool {
    let without = std::env::var("NAUTHERA_FLOOR_WITHOUT").unwrap_or_default();
    !without
        .split(',')
        .any(|left_out| left_out.trim() == request)
}

/// How many clients' requests are in flight at once (`NAUTHERA_FLOOR_CONCURRENCY`; the
/// operator's default, 16, unless set).
fn concurrency() -> usize {
    std::env::var("NAUTHERA_FLOOR_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16)
}

fn secret(
    name: &str,
    namespace: &str,
    owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    data: &[(&str, &str)],
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())].into()),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// A status of the operator's shape and size for a Ready client.
fn status(name: &str, security: &str) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let condition = |type_: &str, reason: &str, message: String| {
        json!({"type": type_, "status": "True", "reason": reason, "message": message,
               "observedGeneration": 1, "lastTransitionTime": now})
    };
    json!({
        "appliedPolicies": [format!("{security}/web-apps-policy")],
        "clientId": "c".repeat(43),
        "clientSecretRef": {"name": format!("{name}-client-secret")},
        "conditions": [
            condition("Ready", "Ready", format!("credentials in Secret {name}-client-secret")),
            condition("PolicyCompliant", "Compliant", format!("complies with {security}/web-apps-policy")),
            condition("Provisioned", "Registered", format!("registered at http://127.0.0.1:40000 as {}", "c".repeat(43))),
        ],
        "effective": {
            "accessTokenTTL": "15m", "clientType": "Confidential", "grantTypes": ["client_credentials"],
            "idTokenTTL": "5m", "refreshTokenTTL": "24h", "requirePKCE": false, "scopes": ["api:read"],
            "secretName": format!("{name}-client-secret"), "tokenEndpointAuthMethod": "client_secret_basic"
        },
        "observedGeneration": 1
    })
}

/// Releases the finalizers the floor added (no operator will), then deletes the clients.
async fn clear(scenario: Scenario, names: Vec<String>) {
    let clients = scenario.clients();
    let release = json!({"metadata": {"finalizers": null}});
    stream::iter(names)
        .for_each_concurrent(50, |name| {
            let clients = clients.clone();
            let release = release.clone();
            async move {
                let _ = clients
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&release))
                    .await;
            }
        })
        .await;
    for record in scenario.records().await {
        let _ = scenario
            .secrets(&scenario.system)
            .delete(&record.name_any(), &kube::api::DeleteParams::default())
            .await;
    }
    scenario.finish_within(PATIENCE).await;
}

async fn floor(size: usize) {
    let scenario = Scenario::new(&format!("floor{size}"), TestProvider::start())
        .await
        .expect("a cluster");
    watch(
        Api::<AuthClient>::all(scenario.client.clone()),
        watcher::Config::default(),
    );
    watch(
        Api::<Secret>::all(scenario.client.clone()),
        watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)),
    );
    watch(scenario.clients(), watcher::Config::default());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let recorder = Recorder::new(
        scenario.client.clone(),
        Reporter {
            controller: MANAGER.to_owned(),
            instance: None,
        },
    );

    let names: Vec<String> = (0..size).map(|i| format!("client-{i:05}")).collect();
    let started = Instant::now();
    let (created_tx, created_rx) = futures::channel::mpsc::unbounded();
    let creating = {
        let names = names.clone();
        let scenario = &scenario;
        async move {
            stream::iter(names)
                .map(|name| async move { scenario.apply_client(&name, scenario.service(&name)).await })
                .buffer_unordered(50)
                .for_each(|client| {
                    created_tx.unbounded_send(client).unwrap();
                    async {}
                })
                .await;
            drop(created_tx);
            started.elapsed()
        }
    };
    let provisioning = created_rx.for_each_concurrent(concurrency(), |client| {
        provision(&scenario, &recorder, client)
    });
    let (creation, ()) = tokio::join!(creating, provisioning);
    let all = started.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let rate = size as f64 / all.as_secs_f64();
    let without = std::env::var("NAUTHERA_FLOOR_WITHOUT").unwrap_or_default();
    println!(
        "API server floor, {size} clients, {} at once{}: created in {:.2} s; the operator's requests for all made in {:.2} s ({rate:.0} clients/s)",
        concurrency(),
        if without.is_empty() {
            String::new()
        } else {
            format!(", without {without}")
        },
        creation.as_secs_f64(),
        all.as_secs_f64(),
    );
    clear(scenario, names).await;
}

#[tokio::test]
async fn the_api_servers_floor() {
    let Some(sizes) = std::env::var("NAUTHERA_SCALE_CLIENTS").ok() else {
        eprintln!(
            "skipped: set NAUTHERA_SCALE_CLIENTS=100,1000 (and NAUTHERA_E2E_KUBECONFIG) to measure the API server's floor"
        );
        return;
    };
    if cluster().await.is_none() {
        return;
    }
    for size in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        floor(size).await;
    }
}
