//! The operator at scale, as a benchmark, not a timed test: against the cluster named by
//! `NAUTHERA_E2E_KUBECONFIG`, for each N in `NAUTHERA_SCALE_CLIENTS` (e.g. `100,1000`),
//! creates N clients and reports time-to-Ready (p50/p99), convergence after a policy TTL
//! change, provider calls per client and the operator's RSS. Skipped, saying so, unless
//! both are set. Run with `--nocapture` to see the table; it is also written to
//! `target/scale-report.md`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestProvider;
use common::cluster::{Operator, apply, cluster, condition, install_crds};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer};
use serde_json::json;

/// How long N clients get to become Ready, or to converge, before the run gives up.
const GIVE_UP: Duration = Duration::from_secs(900);

struct Figures {
    clients: usize,
    ready_p50: Duration,
    ready_p99: Duration,
    convergence: Duration,
    provider_calls_per_client: f64,
    rss_mib: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn provider_calls(port: u16) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("nauthera_provider_calls_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

async fn run(client: &Client, provider: &TestProvider, clients: usize) -> Figures {
    let run = format!("{:x}{clients}", std::process::id());
    let (security, team, system) = (
        format!("scale-{run}-security"),
        format!("scale-{run}-team"),
        format!("scale-{run}-system"),
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in [&security, &team, &system] {
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &security);
    apply(&secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dcr-initial-token", "namespace": security},
        "stringData": {"token": common::INITIAL_ACCESS_TOKEN}})).await;
    let servers: Api<AuthServer> = Api::namespaced(client.clone(), &security);
    apply(&servers, json!({"apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
        "metadata": {"name": "scale-server", "namespace": security},
        "spec": {"issuerUrl": provider.issuer,
                 "provider": {"type": "DynamicClientRegistration", "initialAccessTokenSecretRef": {"name": "dcr-initial-token", "key": "token"}},
                 "policySelector": {"matchLabels": {"scale": "yes"}}, "allowedNamespaces": {"from": "All"}}})).await;
    let policies: Api<AuthPolicy> = Api::namespaced(client.clone(), &security);
    let policy = |ttl: &str| {
        json!({"apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
        "metadata": {"name": "scale-policy", "namespace": security, "labels": {"scale": "yes"}},
        "spec": {"token": {"accessTokenTTL": ttl}, "allowedGrantTypes": ["client_credentials"], "allowedScopes": ["api:read"]}})
    };
    apply(&policies, policy("15m")).await;

    let port = free_port();
    let operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_nauthera-operator"))
            .args([
                "run",
                "--namespace",
                &system,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env(
                "KUBECONFIG",
                std::env::var_os("NAUTHERA_E2E_KUBECONFIG").unwrap(),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    let api: Api<AuthClient> = Api::namespaced(client.clone(), &team);
    let names: Vec<String> = (0..clients).map(|i| format!("client-{i:05}")).collect();
    let created = create_clients(&api, &names, &team, &security).await;
    let mut times = time_to_ready(&api, &created).await;
    times.sort();
    let calls = provider_calls(port).await;

    apply(&policies, policy("5m")).await;
    let changed = Instant::now();
    converge(&api, "5m").await;
    let convergence = changed.elapsed();
    let rss = rss_mib(operator.0.id());

    for name in &names {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    let cleaned = Instant::now();
    while !api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty()
        && cleaned.elapsed() < GIVE_UP
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(operator);
    for name in [&team, &security, &system] {
        let _ = namespaces.delete(name, &DeleteParams::default()).await;
    }
    #[allow(clippy::cast_precision_loss)]
    let per_client = calls / clients as f64;
    Figures {
        clients,
        ready_p50: percentile(&times, 0.5),
        ready_p99: percentile(&times, 0.99),
        convergence,
        provider_calls_per_client: per_client,
        rss_mib: rss,
    }
}

/// Creates the clients, 20 at a time; returns when each was created.
async fn create_clients(
    api: &Api<AuthClient>,
    names: &[String],
    team: &str,
    security: &str,
) -> HashMap<String, Instant> {
    stream::iter(names.to_vec())
        .map(|name| {
            let (api, team, security) = (api.clone(), team.to_owned(), security.to_owned());
            async move {
                apply(&api, json!({"apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
                    "metadata": {"name": name, "namespace": team},
                    "spec": {"displayName": name, "authServerRef": {"name": "scale-server", "namespace": security},
                             "grantTypes": ["client_credentials"], "scopes": ["api:read"]}})).await;
                (name, Instant::now())
            }
        })
        .buffer_unordered(20)
        .collect()
        .await
}

/// How long each client took from its creation to Ready.
async fn time_to_ready(api: &Api<AuthClient>, created: &HashMap<String, Instant>) -> Vec<Duration> {
    let mut ready: BTreeMap<String, Duration> = BTreeMap::new();
    let started = Instant::now();
    while ready.len() < created.len() {
        assert!(
            started.elapsed() < GIVE_UP,
            "only {} of {} clients became Ready",
            ready.len(),
            created.len()
        );
        for object in api.list(&ListParams::default()).await.unwrap().items {
            let name = object.metadata.name.clone().unwrap_or_default();
            if !ready.contains_key(&name)
                && condition(&object, "Ready").is_some_and(|c| c.0 == "True")
            {
                ready.insert(name.clone(), created[&name].elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ready.into_values().collect()
}

/// Waits until every client's status shows `ttl` as its access token lifetime.
async fn converge(api: &Api<AuthClient>, ttl: &str) {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < GIVE_UP,
            "clients did not converge on the new TTL"
        );
        let converged = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|object| {
                let effective = object.status.as_ref().and_then(|s| s.effective.as_ref());
                effective
                    .and_then(|e| e.access_token_ttl)
                    .map(|t| t.to_string())
                    .as_deref()
                    == Some(ttl)
            });
        if converged {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_operator_at_scale() {
    let Some(sizes) = std::env::var("NAUTHERA_SCALE_CLIENTS").ok() else {
        eprintln!(
            "skipped: set NAUTHERA_SCALE_CLIENTS=100,1000 (and NAUTHERA_E2E_KUBECONFIG) to measure the operator at scale"
        );
        return;
    };
    let Some(client) = cluster().await else {
        return;
    };
    install_crds(&client).await;
    let provider = TestProvider::start();
    let mut report = String::from(
        "| clients | time to Ready p50 | p99 | convergence after a TTL change | provider calls per client | operator RSS |\n|---|---|---|---|---|---|\n",
    );
    for size in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        let figures = run(&client, &provider, size).await;
        let _ = writeln!(
            report,
            "| {} | {:.2} s | {:.2} s | {:.2} s | {:.1} | {:.0} MiB |",
            figures.clients,
            figures.ready_p50.as_secs_f64(),
            figures.ready_p99.as_secs_f64(),
            figures.convergence.as_secs_f64(),
            figures.provider_calls_per_client,
            figures.rss_mib,
        );
    }
    println!("{report}");
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scale-report.md");
    let _ = std::fs::write(target, &report);
}
