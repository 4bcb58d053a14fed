//! The API server's floor under the scale benchmark (`scale.rs`), as a benchmark, not a
//! timed test: for each N in `NAUTHERA_FLOOR_CLIENTS`, against the cluster named by
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
//! requests are in flight at once (16, the operator's default, unless set).
//!
//! The watches are the operator's (AuthClients cluster-wide, its labelled Secrets'
//! metadata) and the harness's (the team's AuthClients). No provider, no operator: what
//! is left is what the API server, etcd and the garbage collector need for those requests
//! on this machine. It is a floor, not the operator's time: a client starts when its
//! create returns (the operator waits for the watch, twice), the Secrets are the
//! operator's own (its builders) but the status only of its shape, and the run ends at the last request (the
//! `scale` harness ends when its watch sees the last client Ready). The harness's own CPU
//! time is printed with the figures.
//!
//! Skipped, saying so, unless both are set. Run with `--nocapture` to see the figures. A
//! run that fails midway leaves its namespaces to the next scenario's clearing up.

mod common;

use std::time::{Duration, Instant};

use common::TestProvider;
use common::cluster::{PATIENCE, Scenario, cluster, cpu_seconds, within};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use nauthera_shared::resources::AuthClient;
use serde_json::json;

use nauthera_operator::context::FIELD_MANAGER as MANAGER;
use nauthera_operator::provider::Management;
use nauthera_operator::secrets::{MANAGED_BY, StoredRegistration, registration_secret_name};
use secrecy::SecretString;

/// Keeps a watch open, discarding what it sees, as a controller's reflector would (with
/// its backoff after an error); stopped when the returned handle is dropped.
fn watch<S, T, E>(events: S) -> AbortOnDrop
where
    S: futures::Stream<Item = Result<T, E>> + Send + 'static,
{
    AbortOnDrop(tokio::spawn(async move {
        let mut events = std::pin::pin!(events.default_backoff());
        while events.next().await.is_some() {}
    }))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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

    // The operator's own Secrets, from a registration of the usual size.
    let registration = StoredRegistration {
        client_id: "c".repeat(43),
        client_secret: Some(SecretString::from("s".repeat(43))),
        issuer_url: "http://127.0.0.1:40000".to_owned(),
        management: Management {
            registration_client_uri: format!("http://127.0.0.1:40000/reg/{}", "c".repeat(43)),
            registration_access_token: SecretString::from("t".repeat(43)),
        },
        retired: None,
    };
    let records = scenario.secrets(&scenario.system);
    let record_name = registration_secret_name(&uid);
    if makes("reads") {
        assert!(records.get_opt(&record_name).await.unwrap().is_none());
    }
    if makes("record") {
        let record = registration.to_secret(&client, &scenario.system);
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
        let token_endpoint = "http://127.0.0.1:40000/token";
        let credentials =
            registration.credentials_secret(&client, &secret_name, Some(token_endpoint));
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

/// Releases the finalizers the floor added (no operator will), then deletes the records
/// and the clients.
async fn clear(scenario: Scenario, names: Vec<String>) {
    let clients = scenario.clients();
    let records = scenario.secrets(&scenario.system);
    let release = json!({"metadata": {"finalizers": null}});
    let record_names: Vec<String> = scenario
        .records()
        .await
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    stream::iter(
        names
            .into_iter()
            .map(Err)
            .chain(record_names.into_iter().map(Ok)),
    )
    .for_each_concurrent(50, |name| {
        let (clients, records, release) = (&clients, &records, &release);
        async move {
            match name {
                Err(client) => {
                    if let Err(error) = clients
                        .patch(&client, &PatchParams::default(), &Patch::Merge(release))
                        .await
                    {
                        eprintln!("releasing client {client}: {error}");
                    }
                }
                Ok(record) => {
                    if let Err(error) = records
                        .patch(&record, &PatchParams::default(), &Patch::Merge(release))
                        .await
                    {
                        eprintln!("releasing record {record}: {error}");
                    }
                    let _ = records.delete(&record, &DeleteParams::default()).await;
                }
            }
        }
    })
    .await;
    let mut scenario = scenario;
    scenario.clean_up(PATIENCE).await;
    // Gone before the next measurement (this one's or another suite's, which the
    // scenario's lock holds back until it is dropped), or their deletion would run under it.
    let namespaces: Api<Namespace> = Api::all(scenario.client.clone());
    let own = [&scenario.security, &scenario.team, &scenario.system];
    within(PATIENCE, "the floor's namespaces to be gone", || async {
        for name in own {
            namespaces
                .get_opt(name)
                .await
                .ok()?
                .is_none()
                .then_some(())?;
        }
        Some(())
    })
    .await;
}

async fn floor(size: usize) {
    let scenario = Scenario::new(&format!("floor{size}"), TestProvider::start())
        .await
        .expect("a cluster");
    let _watches = [
        watch(watcher::watcher(
            Api::<AuthClient>::all(scenario.client.clone()),
            watcher::Config::default(),
        )),
        watch(watcher::watcher(
            Api::<PartialObjectMeta<Secret>>::all(scenario.client.clone()),
            watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)),
        )),
        watch(watcher::watcher(
            scenario.clients(),
            watcher::Config::default(),
        )),
    ];
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Creating on a connection pool of its own, as the harness's creates come from
    // another process than the operator's requests.
    let creator = cluster().await.expect("a cluster");
    let recorder = Recorder::new(
        scenario.client.clone(),
        Reporter {
            controller: MANAGER.to_owned(),
            instance: None,
        },
    );

    let names: Vec<String> = (0..size).map(|i| format!("client-{i:05}")).collect();
    let cpu_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    let (created_tx, created_rx) = futures::channel::mpsc::unbounded();
    let creating = {
        let names = names.clone();
        let scenario = &scenario;
        async move {
            stream::iter(names)
                .map(|name| {
                    let creator = creator.clone();
                    async move {
                        scenario
                            .apply_client_with(&creator, &name, scenario.service(&name))
                            .await
                    }
                })
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
    let harness_cpu = cpu_seconds(std::process::id()) - cpu_before;
    #[allow(clippy::cast_precision_loss)]
    let rate = size as f64 / all.as_secs_f64();
    let without = std::env::var("NAUTHERA_FLOOR_WITHOUT").unwrap_or_default();
    println!(
        "API server floor, {size} clients, {} at once{}: created in {:.2} s; the operator's requests for all made in {:.2} s ({rate:.0} clients/s; the harness's own CPU {harness_cpu:.1} s)",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_servers_floor() {
    let Some(sizes) = std::env::var("NAUTHERA_FLOOR_CLIENTS").ok() else {
        common::skip(
            "set NAUTHERA_FLOOR_CLIENTS=1000 (and NAUTHERA_E2E_KUBECONFIG) to measure the API server's floor",
        );
        return;
    };
    if cluster().await.is_none() {
        return;
    }
    for size in sizes.split(',') {
        let size = size.trim().parse().unwrap_or_else(|_| {
            panic!("NAUTHERA_FLOOR_CLIENTS: {size:?} is not a number of clients")
        });
        floor(size).await;
    }
}
