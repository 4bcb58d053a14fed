//! What the suites against a real cluster share: the cluster named by
//! `NAUTHERA_E2E_KUBECONFIG`, the CRDs installed, namespaces of a scenario's own, the
//! operator binary started (and killed, and started again), and patient waiting.
//!
//! An operator watches the whole cluster, so scenarios run one at a time (across the test
//! processes of this machine too, by a file lock), each cleaning up after itself (clients
//! deleted while its operator runs, then its namespaces).
//! Operator logs go to `target/e2e-logs/<scenario>-<n>.log`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

use super::TestProvider;

/// How long the cluster and the operator get to converge before a step fails.
pub const PATIENCE: Duration = Duration::from_secs(120);
pub const MANAGER: &str = "nauthera-e2e";
/// Every namespace a scenario makes carries this label, so leftovers can be found.
pub const E2E_LABEL: &str = "nauthera.io/e2e";

/// Scenarios run one at a time: each one's operator watches the whole cluster.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// One at a time on this machine too, whichever test binary runs them: a lock on a file
/// in the temporary directory, held while the returned file is open.
async fn machine_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("nauthera-e2e.lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::options()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        if file.try_lock().is_err() {
            eprintln!(
                "waiting for another test process's end-to-end scenario ({})",
                path.display()
            );
            file.lock().expect("the end-to-end lock");
        }
        file
    })
    .await
    .unwrap()
}

pub fn kubeconfig() -> Option<PathBuf> {
    std::env::var_os("NAUTHERA_E2E_KUBECONFIG").map(PathBuf::from)
}

pub async fn cluster() -> Option<Client> {
    let Some(path) = kubeconfig() else {
        super::skip(
            "set NAUTHERA_E2E_KUBECONFIG to a kubeconfig to run the end-to-end suite against that cluster",
        );
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("a readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Some(Client::try_from(config).expect("a client"))
}

/// Waits for `check` to hold, polling; fails with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(PATIENCE, what, check).await
}

/// Waits for `check` to hold, polling; fails with `what` after `patience`.
pub async fn within<T, F, Fut>(patience: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {patience:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An operator process, killed when dropped.
pub struct Operator {
    pub child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl Operator {
    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then how long it took to exit and with what status.
    pub async fn terminate(&mut self) -> (Duration, Option<i32>) {
        let started = std::time::Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (started.elapsed(), status.code());
            }
            if started.elapsed() > Duration::from_secs(60) {
                self.kill();
                return (started.elapsed(), None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The operator's metrics, as text.
    pub async fn metrics(&self) -> String {
        match reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port)).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// One counter's or gauge's value (summed over its labels), 0 when absent.
    pub async fn metric(&self, name: &str) -> u64 {
        self.metrics()
            .await
            .lines()
            .filter(|line| line.starts_with(name) && !line.starts_with('#'))
            .filter(|line| {
                line[name.len()..].starts_with(' ') || line[name.len()..].starts_with('{')
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, yaml) in nauthera_shared::crds::crd_files() {
        let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&yaml).expect("a CRD");
        let crd_name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &crd_name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|error| panic!("installing {name}: {error}"));
        eventually(&format!("CRD {crd_name} to be established"), || {
            let crds = crds.clone();
            let crd_name = crd_name.clone();
            async move {
                let crd = crds.get(&crd_name).await.ok()?;
                let established = crd
                    .status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                established.then_some(())
            }
        })
        .await;
    }
}

pub async fn apply<K>(api: &Api<K>, object: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|error| panic!("applying {name}: {error}"))
}

pub fn condition(client: &AuthClient, type_: &str) -> Option<(String, String, String)> {
    client
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub fn decoded(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

/// One scenario's world: its own namespaces (a security team's, a developer team's and
/// the operator's), a real provider, a server and a policy, and the operator when started.
pub struct Scenario {
    pub client: Client,
    pub provider: TestProvider,
    pub name: String,
    pub security: String,
    pub team: String,
    pub system: String,
    pub operators: Vec<Operator>,
    /// `RUST_LOG` for the operators it starts.
    pub log_filter: String,
    started: usize,
    _one_at_a_time: MutexGuard<'static, ()>,
    _machine_lock: std::fs::File,
}

impl Scenario {
    /// The scenario `name` on the cluster named by `NAUTHERA_E2E_KUBECONFIG`, or `None`
    /// (saying so) when there is none.
    pub async fn new(name: &str, provider: TestProvider) -> Option<Self> {
        let issuer = provider.issuer.clone();
        Self::at(name, provider, &issuer, super::INITIAL_ACCESS_TOKEN).await
    }

    /// The same, with its server naming another provider: `issuer`, registering with
    /// `initial_access_token`.
    pub async fn at(
        name: &str,
        provider: TestProvider,
        issuer: &str,
        initial_access_token: &str,
    ) -> Option<Self> {
        let client = cluster().await?;
        let guard = ONE_AT_A_TIME.lock().await;
        let machine_lock = machine_lock().await;
        clear_leftovers(&client).await;
        install_crds(&client).await;
        let run = format!("{:x}", std::process::id());
        let scenario = Self {
            security: format!("e2e-{run}-{name}-sec"),
            team: format!("e2e-{run}-{name}-team"),
            system: format!("e2e-{run}-{name}-sys"),
            client,
            provider,
            name: name.to_owned(),
            operators: Vec::new(),
            log_filter: "info,kube=warn,nauthera_operator=debug".to_owned(),
            started: 0,
            _one_at_a_time: guard,
            _machine_lock: machine_lock,
        };
        for namespace in [&scenario.security, &scenario.team, &scenario.system] {
            scenario.create_namespace(namespace).await;
        }
        apply(&scenario.secrets(&scenario.security), json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dcr-initial-token", "namespace": scenario.security},
            "stringData": {"token": initial_access_token}
        })).await;
        apply(&scenario.servers(), json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
            "metadata": {"name": "production-server", "namespace": scenario.security},
            "spec": {
                "issuerUrl": issuer,
                "provider": {"type": "DynamicClientRegistration", "initialAccessTokenSecretRef": {"name": "dcr-initial-token", "key": "token"}},
                "policySelector": {"matchLabels": {"nauthera.io/environment": "production"}},
                "allowedNamespaces": {"from": "Selector", "selector": {"matchLabels": {"nauthera.io/tenant": "true"}}}
            }
        })).await;
        scenario.apply_policy(scenario.policy("15m")).await;
        Some(scenario)
    }

    pub async fn create_namespace(&self, name: &str) {
        let labels = BTreeMap::from([
            ("nauthera.io/tenant".to_owned(), "true".to_owned()),
            (E2E_LABEL.to_owned(), "true".to_owned()),
        ]);
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|error| panic!("creating namespace {name}: {error}"));
    }

    pub fn secrets(&self, namespace: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), namespace)
    }

    pub fn servers(&self) -> Api<AuthServer> {
        Api::namespaced(self.client.clone(), &self.security)
    }

    pub fn policies(&self) -> Api<AuthPolicy> {
        Api::namespaced(self.client.clone(), &self.security)
    }

    pub fn clients(&self) -> Api<AuthClient> {
        Api::namespaced(self.client.clone(), &self.team)
    }

    /// The seed web-apps policy with this access token lifetime.
    pub fn policy(&self, ttl: &str) -> Value {
        json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
            "metadata": {"name": "web-apps-policy", "namespace": self.security, "labels": {"nauthera.io/environment": "production"}},
            "spec": {
                "token": {"accessTokenTTL": ttl, "refreshTokenTTL": "24h", "idTokenTTL": "5m"},
                "allowedGrantTypes": ["authorization_code", "refresh_token", "client_credentials"],
                "enforcePKCE": true,
                "allowedScopes": ["openid", "profile", "email", "api:read"],
                "clientAuthentication": {"method": "client_secret_basic"}
            }
        })
    }

    pub async fn apply_policy(&self, policy: Value) -> AuthPolicy {
        apply(&self.policies(), policy).await
    }

    /// Starts an operator for this scenario, with these extra arguments.
    pub fn start_operator(&mut self, extra: &[&str]) -> &mut Operator {
        let operator = self.spawn_operator(extra);
        self.operators.push(operator);
        self.operators.last_mut().unwrap()
    }

    pub fn spawn_operator(&mut self, extra: &[&str]) -> Operator {
        self.started += 1;
        let port = free_port();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../e2e-logs");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("{}-{}.log", self.name, self.started));
        let file = std::fs::File::create(&log).unwrap();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["run", "--listen", &listen];
        if !extra.contains(&"--namespace") {
            args.extend(["--namespace", &self.system]);
        }
        if !extra.contains(&"--resync") {
            args.extend(["--resync", "1h"]);
        }
        args.extend_from_slice(extra);
        let child = Command::new(env!("CARGO_BIN_EXE_nauthera-operator"))
            .args(&args)
            .env("KUBECONFIG", kubeconfig().unwrap())
            .env("RUST_LOG", &self.log_filter)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("the operator starts");
        Operator {
            child,
            metrics_port: port,
            log,
        }
    }

    /// An AuthClient in the team's namespace with this spec.
    pub async fn apply_client(&self, name: &str, spec: Value) -> AuthClient {
        self.apply_client_with(&self.client, name, spec).await
    }

    /// [`Self::apply_client`] through `client` (a connection pool of its own).
    pub async fn apply_client_with(&self, client: &Client, name: &str, spec: Value) -> AuthClient {
        apply(
            &Api::namespaced(client.clone(), &self.team),
            json!({
                "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
                "metadata": {"name": name, "namespace": self.team},
                "spec": spec
            }),
        )
        .await
    }

    /// A service with the client_credentials grant, to fetch real tokens with.
    pub fn service(&self, name: &str) -> Value {
        json!({"displayName": name, "authServerRef": {"name": "production-server", "namespace": self.security},
               "grantTypes": ["client_credentials"], "scopes": ["api:read"]})
    }

    /// Waits until the client's `type_` condition has `status` (and `reason`, if given).
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> AuthClient {
        let clients = self.clients();
        eventually(
            &format!("{name} to have {type_}={status} {reason:?}"),
            || {
                let clients = clients.clone();
                async move {
                    let object = clients.get(name).await.ok()?;
                    let (found, why, _) = condition(&object, type_)?;
                    let generation = object.status.as_ref()?.observed_generation;
                    (found == status
                        && reason.is_none_or(|r| r == why)
                        && generation == object.metadata.generation)
                        .then_some(object)
                }
            },
        )
        .await
    }

    pub async fn ready(&self, name: &str) -> AuthClient {
        self.wait_condition(name, "Ready", "True", None).await
    }

    /// The client id and secret in a credentials Secret of the team's namespace.
    pub async fn credentials(&self, secret: &str) -> (String, String) {
        let secret = self
            .secrets(&self.team)
            .get(secret)
            .await
            .unwrap_or_else(|error| panic!("Secret {secret}: {error}"));
        (
            decoded(&secret, "client_id"),
            decoded(&secret, "client_secret"),
        )
    }

    /// Whether an event with this reason was recorded on the team's client `name`.
    pub async fn has_event(&self, name: &str, reason: &str) -> bool {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.team);
        events.list(&ListParams::default()).await.is_ok_and(|list| {
            list.items.iter().any(|event| {
                event.reason.as_deref() == Some(reason)
                    && event
                        .regarding
                        .as_ref()
                        .is_some_and(|r| r.name.as_deref() == Some(name))
            })
        })
    }

    /// The registration records in the operator's namespace.
    pub async fn records(&self) -> Vec<Secret> {
        self.secrets(&self.system)
            .list(&ListParams::default().labels("app.kubernetes.io/managed-by=nauthera-operator"))
            .await
            .unwrap()
            .items
    }

    /// Deletes every AuthClient of the scenario (its operator must run, to deregister
    /// them), waits until they are gone, then deletes the namespaces.
    pub async fn finish(self) {
        self.finish_within(PATIENCE).await;
    }

    /// [`Self::finish`], given `patience` for each step (thousands of clients take
    /// minutes to deregister).
    pub async fn finish_within(mut self, patience: Duration) {
        self.clean_up(patience).await;
    }

    /// [`Self::finish_within`], keeping the scenario (and its hold on the cluster) for
    /// whatever must follow before another scenario may start.
    pub async fn clean_up(&mut self, patience: Duration) {
        let clients = self.clients();
        let _ = clients
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
        within(
            patience,
            "every AuthClient of the scenario to be gone",
            || {
                let clients = clients.clone();
                async move {
                    let left = clients.list(&ListParams::default()).await.ok()?.items;
                    // A collection delete of thousands can end early (it times out
                    // after some): ask again for those not yet being deleted.
                    if left.iter().any(|c| c.metadata.deletion_timestamp.is_none()) {
                        let _ = clients
                            .delete_collection(&DeleteParams::default(), &ListParams::default())
                            .await;
                    }
                    left.is_empty().then_some(())
                }
            },
        )
        .await;
        within(patience, "the registration records to be gone", || async {
            self.records().await.is_empty().then_some(())
        })
        .await;
        assert!(
            self.provider.clients().await.is_empty(),
            "registrations left at the provider: {:?}",
            self.provider.clients().await
        );
        for operator in &mut self.operators {
            operator.kill();
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for name in [&self.team, &self.security, &self.system] {
            let _ = namespaces.delete(name, &DeleteParams::default()).await;
        }
    }
}

/// Whether a namespace belongs to a test run still going on on this machine (another
/// suite, a benchmark): scenario namespaces are named `e2e-<pid in hex>-…`, and such a
/// run's namespaces are not leftovers.
fn of_a_live_run(namespace: &str) -> bool {
    let Some(pid) = namespace
        .strip_prefix("e2e-")
        .and_then(|rest| rest.split('-').next())
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
    else {
        return false;
    };
    pid != std::process::id() && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Clears what earlier runs left behind (a failed or killed scenario): every namespace
/// labelled [`E2E_LABEL`] goes, with the finalizers of its AuthClients and registration
/// records removed first — no operator will ever serve them again.
/// Namespaces of a run still alive on this machine are left alone.
pub async fn clear_leftovers(client: &Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Ok(list) = namespaces
        .list(&ListParams::default().labels(&format!("{E2E_LABEL}=true")))
        .await
    else {
        return;
    };
    let release = json!({"metadata": {"finalizers": null}});
    for namespace in list.items {
        let name = namespace.name_any();
        if of_a_live_run(&name) {
            continue;
        }
        let clients: Api<AuthClient> = Api::namespaced(client.clone(), &name);
        for stuck in clients
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let _ = clients
                .patch(
                    &stuck.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&release),
                )
                .await;
        }
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &name);
        for stuck in secrets
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            if !stuck.finalizers().is_empty() {
                let _ = secrets
                    .patch(
                        &stuck.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&release),
                    )
                    .await;
            }
        }
        if namespace.metadata.deletion_timestamp.is_none() {
            let _ = namespaces.delete(&name, &DeleteParams::default()).await;
        }
    }
}

/// The process's CPU time so far (user and system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (in parentheses): utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 100 a second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}
