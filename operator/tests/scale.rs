//! The operator at scale, as a benchmark, not a timed test: against the cluster named by
//! `NAUTHERA_E2E_KUBECONFIG`, for each N in `NAUTHERA_SCALE_CLIENTS` (e.g. `100,1000`):
//!
//! - N clients created at once: time until all are Ready, and p50/p99 per client;
//! - one more client when N exist: its time to Ready;
//! - a policy TTL change over N clients: convergence, and provider and Kubernetes calls;
//! - a quiet window (`NAUTHERA_SCALE_QUIET`, seconds, default 60): every write;
//! - the operator's memory (RSS), provider calls and Kubernetes calls per client, and
//!   discovery fetches.
//!
//! `NAUTHERA_SCALE_OPERATOR_ARGS` adds flags to the operator (e.g. `--concurrency 32`).
//!
//! Skipped, saying so, unless both are set. Run with `--nocapture` to see the table; it
//! is also written to `target/scale-report.md`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{Operator, PATIENCE, Scenario, cluster, condition, cpu_seconds};
use common::{Requests, TestProvider};
use futures::{StreamExt, TryStreamExt, stream};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use nauthera_shared::resources::AuthClient;

/// How long N clients get to become Ready, or to converge, before the run gives up.
const GIVE_UP: Duration = Duration::from_secs(900);

#[derive(Default)]
struct Figures {
    clients: usize,
    /// How long the harness took to create them (the API server's share of the time).
    creation: Duration,
    all_ready: Duration,
    ready_p50: Duration,
    ready_p99: Duration,
    one_more: Duration,
    convergence: Duration,
    /// Per client, while the N were created: provider requests and Kubernetes calls.
    create_provider: Requests,
    create_kube: KubeCalls,
    /// Per client, for the TTL change.
    ttl_provider: Requests,
    ttl_kube: KubeCalls,
    /// In the quiet window, in all.
    quiet_provider: Requests,
    quiet_kube: KubeCalls,
    quiet: Duration,
    discovery_fetches: f64,
    rss_mib: f64,
    creation_detail: Detail,
}

/// Where the creation's time went, per client: the operator's reconciles (and failed
/// ones, by reason), its Kubernetes reads, and its CPU time.
#[derive(Default)]
struct Detail {
    reconciles: f64,
    failures: String,
    reads: f64,
    cpu_ms: f64,
}

/// The operator's counters at one moment: reconciles, failures by reason, CPU seconds.
struct Counters(f64, String, f64);

impl Counters {
    fn since(self, before: &Self, n: f64, reads: f64) -> Detail {
        Detail {
            reconciles: (self.0 - before.0) / n,
            failures: self.1,
            reads,
            cpu_ms: (self.2 - before.2) * 1000.0 / n,
        }
    }
}

impl Detail {
    fn line(&self, size: usize) -> String {
        format!(
            "{size} clients, creation, per client: {:.2} reconciles, {:.2} Kubernetes reads, {:.1} ms operator CPU; failed reconciles (all so far): {}",
            self.reconciles,
            self.reads,
            self.cpu_ms,
            if self.failures.is_empty() {
                "none"
            } else {
                &self.failures
            },
        )
    }

    async fn of(operator: &Operator, pid: u32) -> Counters {
        let metrics = operator.metrics().await;
        let failures = metrics
            .lines()
            .filter_map(|line| line.strip_prefix("nauthera_reconcile_failures_total{"))
            .map(|line| line.replace('"', ""))
            .collect::<Vec<_>>()
            .join(", ");
        Counters(
            count(operator.metric("nauthera_reconciles_total").await),
            failures,
            cpu_seconds(pid),
        )
    }
}

/// The operator's Kubernetes calls by verb, from its metrics.
#[derive(Clone, Copy, Debug, Default)]
struct KubeCalls {
    get: f64,
    create: f64,
    update: f64,
    patch: f64,
    delete: f64,
}

impl KubeCalls {
    /// The operator's calls so far, by verb, leaving out the leader Lease's renewals
    /// (every two seconds, whatever the load: reported apart).
    async fn of(operator: &Operator) -> Self {
        let mut calls = Self::default();
        for line in operator.metrics().await.lines() {
            let Some(labels) = line.strip_prefix("nauthera_kube_calls_total{") else {
                continue;
            };
            let value = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            if labels.contains("resource=\"leases\"") {
                continue;
            }
            let verb = labels
                .split("verb=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            match verb {
                "get" => calls.get += value,
                "create" => calls.create += value,
                "update" => calls.update += value,
                "patch" => calls.patch += value,
                "delete" => calls.delete += value,
                _ => {}
            }
        }
        calls
    }

    fn since(self, before: Self, per: f64) -> Self {
        Self {
            get: (self.get - before.get) / per,
            create: (self.create - before.create) / per,
            update: (self.update - before.update) / per,
            patch: (self.patch - before.patch) / per,
            delete: (self.delete - before.delete) / per,
        }
    }

    fn writes(self) -> f64 {
        self.create + self.update + self.patch + self.delete
    }
}

#[allow(clippy::cast_precision_loss)]
fn count(value: u64) -> f64 {
    value as f64
}

fn since(after: &Requests, before: &Requests) -> Requests {
    Requests {
        post: after.post - before.post,
        get: after.get - before.get,
        put: after.put - before.put,
        delete: after.delete - before.delete,
    }
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

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// What a watch of the team's namespace saw: when each client was first Ready, and its
/// access token lifetime now.
#[derive(Clone, Default)]
struct Watched(Arc<Mutex<Seen>>);

#[derive(Default)]
struct Seen {
    ready: HashMap<String, Instant>,
    ttl: HashMap<String, String>,
}

impl Watched {
    fn follow(api: Api<AuthClient>) -> Self {
        let watched = Self::default();
        let seen = watched.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
            while let Ok(Some(event)) = events.try_next().await {
                if let watcher::Event::Apply(client) | watcher::Event::InitApply(client) = event {
                    let mut seen = seen.lock();
                    let name = client.name_any();
                    if condition(&client, "Ready").is_some_and(|c| c.0 == "True") {
                        seen.ready.entry(name.clone()).or_insert_with(Instant::now);
                    }
                    if let Some(ttl) = client
                        .status
                        .as_ref()
                        .and_then(|s| s.effective.as_ref())
                        .and_then(|e| e.access_token_ttl)
                    {
                        seen.ttl.insert(name, ttl.to_string());
                    }
                }
            }
        });
        watched
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap()
    }

    async fn until(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        let started = Instant::now();
        while !done(&self.lock()) {
            assert!(started.elapsed() < GIVE_UP, "gave up waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ready(&self, names: &[String]) {
        self.until("clients to be Ready", |seen| {
            names.iter().all(|name| seen.ready.contains_key(name))
        })
        .await;
    }
}

/// As deploy/ runs it: with the journal (so the intent costs no API write) in memory
/// (deploy/ mounts an `emptyDir` of medium Memory; on disk, its syncs would queue behind
/// etcd's on the same disk); and any flags to compare, e.g.
/// NAUTHERA_SCALE_OPERATOR_ARGS="--concurrency 32".
fn operator_args(system: &str) -> Vec<String> {
    let journal = journal_dir(system).to_string_lossy().into_owned();
    let mut args: Vec<String> = ["--resync", "5m", "--journal-dir", &journal]
        .map(str::to_owned)
        .into();
    let extra = std::env::var("NAUTHERA_SCALE_OPERATOR_ARGS").unwrap_or_default();
    args.extend(extra.split_whitespace().map(str::to_owned));
    args
}

/// The run's journal: in memory where the machine has /dev/shm. Removed after the run.
fn journal_dir(system: &str) -> std::path::PathBuf {
    let memory = std::path::Path::new("/dev/shm");
    let base = if memory.is_dir() {
        memory.join("nauthera-e2e-journal")
    } else {
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../e2e-journal")
    };
    base.join(system)
}

/// Creates the clients, 50 at a time (as a GitOps sync would): when each was created.
async fn create_all(scenario: &Scenario, names: &[String]) -> HashMap<String, Instant> {
    stream::iter(names.to_vec())
        .map(|name| async move {
            scenario.apply_client(&name, scenario.service(&name)).await;
            (name, Instant::now())
        })
        .buffer_unordered(50)
        .collect()
        .await
}

async fn run(size: usize, quiet: Duration) -> Figures {
    let mut scenario = Scenario::new(&format!("scale{size}"), TestProvider::start())
        .await
        .expect("a cluster");
    "info,kube=warn".clone_into(&mut scenario.log_filter);
    let args = operator_args(&scenario.system);
    scenario.start_operator(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let clients = scenario.clients();
    let times = Watched::follow(clients.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let operator_pid = scenario.operators[0].child.id();
    let provider_before = scenario.provider.requests().await;
    let kube_before = KubeCalls::of(&scenario.operators[0]).await;
    let detail_before = Detail::of(&scenario.operators[0], operator_pid).await;

    // N clients at once.
    let names: Vec<String> = (0..size).map(|i| format!("client-{i:05}")).collect();
    let started = Instant::now();
    let created = create_all(&scenario, &names).await;
    let creation = started.elapsed();
    times.ready(&names).await;
    let mut per_client: Vec<Duration> = {
        let ready = &times.lock().ready;
        names
            .iter()
            .map(|name| ready[name].saturating_duration_since(created[name]))
            .collect()
    };
    per_client.sort();
    let all_ready = names
        .iter()
        .map(|name| times.lock().ready[name])
        .max()
        .unwrap()
        .duration_since(started);
    let operator = &scenario.operators[0];
    #[allow(clippy::cast_precision_loss)]
    let n = size as f64;
    let create_provider = since(&scenario.provider.requests().await, &provider_before);
    let create_kube = KubeCalls::of(operator).await.since(kube_before, n);
    let creation_detail =
        Detail::of(operator, operator_pid)
            .await
            .since(&detail_before, n, create_kube.get);
    // Let the creation settle (summaries, the last status writes) before measuring more.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // One more.
    let extra = "client-extra".to_owned();
    let one_started = Instant::now();
    scenario
        .apply_client(&extra, scenario.service(&extra))
        .await;
    times.ready(std::slice::from_ref(&extra)).await;
    let one_more = times.lock().ready[&extra].duration_since(one_started);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The TTL change.
    let operator = &scenario.operators[0];
    let provider_before = scenario.provider.requests().await;
    let kube_before = KubeCalls::of(operator).await;
    let changed = Instant::now();
    scenario.apply_policy(scenario.policy("5m")).await;
    let every: Vec<String> = names.iter().cloned().chain([extra]).collect();
    times
        .until("every client to show the new lifetime", |seen| {
            every
                .iter()
                .all(|name| seen.ttl.get(name).map(String::as_str) == Some("5m"))
        })
        .await;
    let convergence = changed.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ttl_provider = since(&scenario.provider.requests().await, &provider_before);
    let ttl_kube = KubeCalls::of(operator).await.since(kube_before, n + 1.0);

    // Quiet.
    let provider_before = scenario.provider.requests().await;
    let kube_before = KubeCalls::of(operator).await;
    tokio::time::sleep(quiet).await;
    let quiet_provider = since(&scenario.provider.requests().await, &provider_before);
    let quiet_kube = KubeCalls::of(operator).await.since(kube_before, 1.0);

    let figures = Figures {
        clients: size,
        creation,
        all_ready,
        ready_p50: percentile(&per_client, 0.5),
        ready_p99: percentile(&per_client, 0.99),
        one_more,
        convergence,
        create_provider,
        create_kube,
        ttl_provider,
        ttl_kube,
        quiet_provider,
        quiet_kube,
        quiet,
        discovery_fetches: count(operator.metric("nauthera_discovery_fetches_total").await),
        rss_mib: rss_mib(operator_pid),
        creation_detail,
    };
    // The figures first: deregistering thousands of clients takes minutes.
    println!("{}", row(&figures));
    print_details(&figures);
    let journal = journal_dir(&scenario.system);
    finish(scenario, size).await;
    let _ = std::fs::remove_dir_all(journal);
    figures
}

/// What the figures must say on any machine, however fast: one registration per client,
/// the TTL change one update per client and no new registration, and nothing written,
/// to the provider or to Kubernetes, while nothing changes.
fn holds_at_any_speed(f: &Figures) {
    let n = f.clients as u64;
    assert_eq!(
        (
            f.create_provider.post,
            f.create_provider.put,
            f.create_provider.delete
        ),
        (n, 0, 0),
        "creating {n} clients: one registration each"
    );
    assert_eq!(
        (
            f.ttl_provider.post,
            f.ttl_provider.put,
            f.ttl_provider.delete
        ),
        (0, n + 1, 0),
        "the TTL change: one update per client ({n} and one more)"
    );
    assert_eq!(f.quiet_provider.writes(), 0, "provider writes while quiet");
    assert!(
        f.quiet_kube.writes() < 0.5,
        "Kubernetes writes while quiet: {}",
        f.quiet_kube.writes()
    );
}

/// What the table leaves out: where the creation went, and the quiet window's reads
/// (the resync's, spread over it: about N per resync interval, 5m here).
fn print_details(figures: &Figures) {
    let size = figures.clients;
    println!("{}", figures.creation_detail.line(size));
    println!(
        "{size} clients, quiet window of {} s: {} provider reads, {} Kubernetes reads",
        figures.quiet.as_secs(),
        figures.quiet_provider.get,
        figures.quiet_kube.get,
    );
}

/// Deletes every client, waiting as long as thousands take, and says how long it took.
async fn finish(scenario: Scenario, size: usize) {
    let deleting = Instant::now();
    scenario
        .finish_within(PATIENCE.max(Duration::from_secs(size as u64 / 10)))
        .await;
    println!(
        "{size} clients deleted (deregistered, Secrets and records gone) in {:.1} s",
        deleting.elapsed().as_secs_f64()
    );
}

#[allow(clippy::cast_precision_loss)]
fn per(requests: &Requests, n: usize) -> String {
    let n = n as f64;
    format!(
        "{:.2} reg · {:.2} read · {:.2} upd",
        requests.post as f64 / n,
        requests.get as f64 / n,
        requests.put as f64 / n
    )
}

/// One size's line of the report.
fn row(f: &Figures) -> String {
    format!(
        "| {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {} | {:.2} | {} | {:.2} | {} / {} in {} s | {} | {:.0} MiB |",
        f.clients,
        f.creation.as_secs_f64(),
        f.all_ready.as_secs_f64(),
        f.ready_p50.as_secs_f64(),
        f.ready_p99.as_secs_f64(),
        f.one_more.as_secs_f64(),
        f.convergence.as_secs_f64(),
        per(&f.create_provider, f.clients),
        f.create_kube.writes(),
        per(&f.ttl_provider, f.clients + 1),
        f.ttl_kube.writes(),
        f.quiet_provider.writes(),
        f.quiet_kube.writes(),
        f.quiet.as_secs(),
        f.discovery_fetches,
        f.rss_mib,
    )
}

#[tokio::test]
async fn the_operator_at_scale() {
    let Some(sizes) = std::env::var("NAUTHERA_SCALE_CLIENTS").ok() else {
        common::skip(
            "set NAUTHERA_SCALE_CLIENTS=100,1000 (and NAUTHERA_E2E_KUBECONFIG) to measure the operator at scale",
        );
        return;
    };
    if cluster().await.is_none() {
        return;
    }
    let quiet = Duration::from_secs(
        std::env::var("NAUTHERA_SCALE_QUIET")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let mut report = String::from(
        "| clients | created in | all Ready | Ready p50 | p99 | one more | TTL change converged | provider calls per client (create) | Kubernetes writes per client (create) | provider calls per client (TTL change) | Kubernetes writes per client (TTL change) | writes while quiet (provider / Kubernetes, lease renewals aside) | discovery fetches | operator RSS |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for size in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        let f = run(size, quiet).await;
        report.push_str(&row(&f));
        report.push('\n');
        println!("{report}");
        let target =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scale-report.md");
        let _ = std::fs::write(target, &report);
        holds_at_any_speed(&f);
    }
}
