//! The operator in a pod, end to end: its image (`testbed/image.sh`) on the one-node
//! cluster of `testbed/node.sh`, named by `NAUTHERA_E2E_NODE` (the testbed's DIR) with
//! `NAUTHERA_E2E_KUBECONFIG`; skipped, saying so, without them. Needs `kubectl`
//! (`NAUTHERA_E2E_KUBECTL`), `helm` (`NAUTHERA_E2E_HELM`), `socat`, `nsenter` and `ctr`.
//!
//! - `deploy/` applied as it is: the Deployment becomes Available, its pod holds the
//!   Lease, an AuthClient is provisioned (its credentials work at the provider), the
//!   webhook refuses a forbidden client through its Service, the metrics answer through
//!   the Service; a rolling restart hands the Lease to the new pod with no second
//!   registration; the documented uninstall (`nauthera-operator release`, then
//!   `kubectl delete -f deploy/operator.yaml`) strands nothing.
//! - the Helm chart, in the same cluster after that: installed, upgraded (a new pod takes
//!   the Lease, no second registration), uninstalled, its pre-delete hook running
//!   `nauthera-operator release` in a pod: the team's namespace then deletes, the
//!   registration stays at the provider.
//!
//! Test plumbing, not product: the provider. An issuer must be https unless it is on a
//! loopback address, and the test provider is plain http on `127.0.0.1:PORT`. So each
//! operator pod gets the same provider on its own loopback: a `socat` on the host listens
//! on the node's address (the pods' bridge) and forwards to `127.0.0.1:PORT`, and a
//! `socat` in the pod's network namespace (`nsenter --net=/proc/<pid>/ns/net`, `<pid>` a
//! process of the operator's container, found through the node's containerd) listens on
//! the pod's `127.0.0.1:PORT` and forwards to the host's. The issuer
//! `http://127.0.0.1:PORT` then names one provider for the test, the host and every pod;
//! the operator reaches a real provider, unaware of the relay.

mod common;

use std::collections::HashSet;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use common::TestProvider;
use common::cluster::{PATIENCE, Scenario, eventually, kubeconfig};

/// What deploy/ and the chart (release `nauthera-operator`) install.
const SYSTEM: &str = "nauthera-system";
const NAME: &str = "nauthera-operator";
const SELECTOR: &str = "app.kubernetes.io/name=nauthera-operator";
const FINALIZER: &str = "auth.nauthera.io/cleanup";
const WEBHOOK: &str = "authclients.auth.nauthera.io";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The tools, and the node's testbed DIR.
struct Tier {
    node: PathBuf,
    kubectl: String,
    helm: String,
    kubeconfig: PathBuf,
}

/// A program from `variable`, else `fallback` on `PATH` if `probe` runs.
fn program(variable: &str, fallback: &str, probe: &[&str]) -> Option<String> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(path.to_string_lossy().into_owned());
    }
    runs(fallback, probe).then(|| fallback.to_owned())
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The tier, or `None` having said (common::skip) what is missing.
fn tier() -> Option<Tier> {
    let Some(node) = std::env::var_os("NAUTHERA_E2E_NODE").map(PathBuf::from) else {
        common::skip(
            "set NAUTHERA_E2E_NODE to the DIR of testbed/node.sh (and NAUTHERA_E2E_KUBECONFIG) to run the operator in a pod",
        );
        return None;
    };
    let Some(kubeconfig) = kubeconfig() else {
        common::skip("NAUTHERA_E2E_NODE without NAUTHERA_E2E_KUBECONFIG: the in-cluster tier");
        return None;
    };
    if !node.join("node/containerd.sock").exists() {
        common::skip(&format!(
            "no node in {} (testbed/node.sh up): the in-cluster tier",
            node.display()
        ));
        return None;
    }
    let Some(kubectl) = program("NAUTHERA_E2E_KUBECTL", "kubectl", &["version", "--client"]) else {
        common::skip("no kubectl (set NAUTHERA_E2E_KUBECTL): the in-cluster tier");
        return None;
    };
    let Some(helm) = program("NAUTHERA_E2E_HELM", "helm", &["version"]) else {
        common::skip("no helm (set NAUTHERA_E2E_HELM): the in-cluster tier");
        return None;
    };
    for (tool, probe) in [
        ("socat", "-V"),
        ("nsenter", "--version"),
        ("ctr", "--version"),
        ("curl", "--version"),
    ] {
        if !runs(tool, &[probe]) {
            common::skip(&format!(
                "no {tool} on PATH: the in-cluster tier bridges the pods' loopback with it"
            ));
            return None;
        }
    }
    Some(Tier {
        node,
        kubectl,
        helm,
        kubeconfig,
    })
}

/// A command's success and its output (stdout, then stderr).
fn output(command: &mut Command, stdin: Option<&[u8]>) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

impl Tier {
    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        self.kubectl_with(args, None)
    }

    fn kubectl_with(&self, args: &[&str], stdin: Option<&[u8]>) -> (bool, String) {
        output(
            Command::new(&self.kubectl)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args),
            stdin,
        )
    }

    /// `kubectl ARGS…`, which must succeed.
    fn must_kubectl(&self, args: &[&str]) -> String {
        let (ok, text) = self.kubectl(args);
        assert!(ok, "kubectl {}: {text}", args.join(" "));
        text
    }

    fn helm(&self, args: &[&str]) -> (bool, String) {
        output(
            Command::new(&self.helm)
                .args(args)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig),
            None,
        )
    }

    fn must_helm(&self, args: &[&str]) -> String {
        let (ok, text) = self.helm(args);
        assert!(ok, "helm {}: {text}", args.join(" "));
        text
    }

    /// The pid of a process of container `id` (its init), from the node's containerd.
    fn container_pid(&self, id: &str) -> Option<u32> {
        let (ok, text) = output(
            Command::new("ctr")
                .arg("--address")
                .arg(self.node.join("node/containerd.sock"))
                .args(["-n", "k8s.io", "tasks", "ls"]),
            None,
        );
        if !ok {
            return None;
        }
        text.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()? == id).then(|| fields.next()?.parse().ok())?
        })
    }
}

/// The `socat` relays of the module's doc: killed (with the children they forked for each
/// connection, their process group) when dropped.
struct Bridges {
    port: u16,
    host: String,
    relays: Vec<Child>,
    /// The pods whose loopback is bridged, by name.
    pods: HashSet<String>,
}

impl Bridges {
    /// Relays `host:PORT` (the node's address, where the pods' traffic to the host
    /// arrives) to the provider on `127.0.0.1:PORT`.
    fn new(provider: &TestProvider, host: &str) -> Self {
        let mut bridges = Self {
            port: provider.port,
            host: host.to_owned(),
            relays: Vec::new(),
            pods: HashSet::new(),
        };
        let port = provider.port;
        bridges.spawn(Command::new("socat").args([
            format!("TCP-LISTEN:{port},bind={host},reuseaddr,fork"),
            format!("TCP:127.0.0.1:{port}"),
        ]));
        bridges
    }

    fn spawn(&mut self, command: &mut Command) {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("{command:?}: {error}"));
        // Whether it relays is checked end to end, from the pod (Self::bridge_pod).
        self.relays.push(child);
    }

    /// Gives pod `name` (its container's process `pid`) the provider on its loopback, and
    /// waits until the provider answers there.
    async fn bridge_pod(&mut self, name: &str, pid: u32) {
        let (port, host) = (self.port, self.host.clone());
        let net = format!("--net=/proc/{pid}/ns/net");
        self.spawn(Command::new("nsenter").arg(&net).args([
            "socat".to_owned(),
            format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            format!("TCP:{host}:{port}"),
        ]));
        self.pods.insert(name.to_owned());
        let discovery = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
        eventually(
            &format!("the provider to answer on pod {name}'s loopback"),
            || {
                let (net, discovery) = (net.clone(), discovery.clone());
                async move {
                    let (ok, _) = output(
                        Command::new("nsenter").arg(&net).args([
                            "curl",
                            "-fsS",
                            "--max-time",
                            "5",
                            &discovery,
                        ]),
                        None,
                    );
                    ok.then_some(())
                }
            },
        )
        .await;
    }
}

impl Drop for Bridges {
    fn drop(&mut self) {
        for relay in &mut self.relays {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", relay.id())])
                .stderr(Stdio::null())
                .status();
            let _ = relay.kill();
            let _ = relay.wait();
        }
    }
}

/// The operator's pods not being deleted (`None`: the API server did not answer).
async fn pods(client: &Client) -> Option<Vec<Pod>> {
    let list = Api::<Pod>::namespaced(client.clone(), SYSTEM)
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .ok()?;
    Some(
        list.items
            .into_iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .collect(),
    )
}

/// An operator pod not bridged yet whose container runs: its name and container id.
async fn new_running_pod(client: &Client, bridged: &HashSet<String>) -> Option<(String, String)> {
    pods(client).await?.into_iter().find_map(|pod| {
        let name = pod.name_any();
        if bridged.contains(&name) {
            return None;
        }
        let status = pod.status?.container_statuses?;
        let container = status.iter().find(|c| c.name == "operator")?;
        container.state.as_ref()?.running.as_ref()?;
        let id = container.container_id.as_deref()?;
        Some((name, id.trim_start_matches("containerd://").to_owned()))
    })
}

/// Waits for a new operator pod to run and bridges its loopback to the provider; its name.
async fn bridge_new_pod(tier: &Tier, client: &Client, bridges: &mut Bridges) -> String {
    let known = bridges.pods.clone();
    let (name, pid) = eventually("a new operator pod to run", || {
        let known = &known;
        async move {
            let (name, id) = new_running_pod(client, known).await?;
            Some((name, tier.container_pid(&id)?))
        }
    })
    .await;
    bridges.bridge_pod(&name, pid).await;
    name
}

/// The Lease's holder.
async fn leader(client: &Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), SYSTEM)
        .get_opt(NAME)
        .await
        .ok()??
        .spec?
        .holder_identity
}

/// Waits until the Deployment is Available with all of its pods on its latest
/// template, the only operator pod left is `pod`, and it holds the Lease.
async fn leading(client: &Client, pod: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), SYSTEM);
    eventually(
        &format!("Deployment {NAME} Available, pod {pod} alone and holding the Lease"),
        || {
            let deployments = deployments.clone();
            async move {
                let deployment = deployments.get_opt(NAME).await.ok()??;
                let status = deployment.status?;
                let available = status
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True");
                let settled = status.observed_generation == deployment.metadata.generation
                    && status.updated_replicas == Some(1)
                    && status.ready_replicas == Some(1)
                    && status.replicas == Some(1);
                let names: Vec<String> = pods(client)
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect();
                (available
                    && settled
                    && names == [pod]
                    && leader(client).await.as_deref() == Some(pod))
                .then_some(())
            }
        },
    )
    .await;
}

/// The node's address, where the pods reach the host: the Node's InternalIP.
async fn node_address(client: &Client, pod: &str) -> String {
    let pod = Api::<Pod>::namespaced(client.clone(), SYSTEM)
        .get(pod)
        .await
        .unwrap();
    pod.status
        .and_then(|status| status.host_ip)
        .expect("the pod's host address")
}

/// What an earlier, failed run of this file left: the chart's release or deploy/'s
/// objects, the operator's namespace (its records' finalizers lifted), the webhook's
/// configuration. Gone before a scenario starts.
async fn clear_pod_tier(tier: &Tier, client: &Client) {
    let deploy = root().join("deploy/operator.yaml");
    let _ = tier.helm(&[
        "uninstall",
        NAME,
        "-n",
        SYSTEM,
        "--no-hooks",
        "--ignore-not-found",
    ]);
    let _ = tier.kubectl(&[
        "delete",
        "-f",
        deploy.to_str().unwrap(),
        "--ignore-not-found",
        "--wait=false",
    ]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(SYSTEM).await.unwrap().is_some() {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), SYSTEM);
        for secret in secrets.list(&ListParams::default()).await.unwrap().items {
            if !secret.finalizers().is_empty() {
                let _ = secrets
                    .patch(
                        &secret.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        }
        let _ = namespaces.delete(SYSTEM, &DeleteParams::default()).await;
    }
    let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete(NAME, &DeleteParams::default())
        .await;
    gone(client, SYSTEM).await;
}

/// Waits until namespace `name` no longer exists.
async fn gone(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    eventually(&format!("namespace {name} to be gone"), || {
        let namespaces = namespaces.clone();
        async move { namespaces.get_opt(name).await.ok()?.is_none().then_some(()) }
    })
    .await;
}

/// Deletes namespace `name` and waits until it is gone: nothing in it stranded.
async fn delete_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
    gone(client, name).await;
}

/// Waits until the webhook's configuration is gone (its owner, the operator's namespace,
/// is).
async fn no_webhook_configuration(client: &Client) {
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    eventually("the webhook's configuration to be gone", || {
        let configurations = configurations.clone();
        async move {
            configurations
                .get_opt(NAME)
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
}

/// Provisions AuthClient `name` (client_credentials) and checks its credentials at the
/// provider: its client_id.
async fn provisioned(scenario: &Scenario, name: &str) -> String {
    scenario.apply_client(name, scenario.service(name)).await;
    let ready = scenario.ready(name).await;
    let client_id = ready.status.unwrap().client_id.expect("a client_id");
    let (id, secret) = scenario.credentials(&format!("{name}-client-secret")).await;
    assert_eq!(id, client_id);
    let token = scenario
        .provider
        .client_credentials(&id, &secret, "api:read")
        .await;
    assert!(
        token.is_ok(),
        "a token with the Secret's credentials: {token:?}"
    );
    client_id
}

/// After a new pod took over: the client is still Ready with the same client_id, the new
/// leader reconciled it, and the provider saw no second registration.
async fn managed_on(scenario: &Scenario, name: &str, client_id: &str, registered: u64) {
    let ready = scenario.ready(name).await;
    assert_eq!(
        ready.status.unwrap().client_id.as_deref(),
        Some(client_id),
        "the same registration"
    );
    let metrics = service_metrics(&scenario.client).await;
    assert!(
        counter(&metrics, "nauthera_reconciles_total") > 0,
        "the new leader reconciled: {metrics}"
    );
    assert_eq!(
        scenario.provider.requests().await.post,
        registered,
        "no second registration"
    );
}

/// `/metrics` through the Service's ClusterIP (kube-proxy's rules make it reachable from
/// the host), once the operator's reconciles are counted there.
async fn service_metrics(client: &Client) -> String {
    let service = Api::<Service>::namespaced(client.clone(), SYSTEM)
        .get(NAME)
        .await
        .unwrap();
    let ip = service.spec.and_then(|spec| spec.cluster_ip).unwrap();
    let url = format!("http://{ip}:8080/metrics");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    eventually(&format!("{url} to count reconciles"), || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            (counter(&text, "nauthera_reconciles_total") > 0).then_some(text)
        }
    })
    .await
}

/// A counter's value, summed over its labels.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A forbidden AuthClient (a scope the policy does not allow) is refused by the webhook,
/// through `kubectl apply`, with the policy engine's sentence; never stored.
async fn webhook_refuses(tier: &Tier, scenario: &Scenario) {
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(scenario.client.clone());
    // The leader writes it, with the CA bundle of the Secret it made.
    eventually("the webhook's configuration with its CA bundle", || {
        let configurations = configurations.clone();
        async move {
            let configuration = configurations.get_opt(NAME).await.ok()??;
            let webhook = configuration.webhooks?.into_iter().next()?;
            let bundle = webhook.client_config.ca_bundle?;
            let service = webhook.client_config.service?;
            (!bundle.0.is_empty() && service.namespace == SYSTEM && service.name == NAME)
                .then_some(())
        }
    })
    .await;
    let forbidden = json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": "pod-webapp-admin", "namespace": scenario.team},
        "spec": {
            "displayName": "pod-webapp-admin",
            "authServerRef": {"name": "production-server", "namespace": scenario.security},
            "redirectUris": ["https://pod-webapp-admin.dev.example.com/callback"],
            "scopes": ["openid", "profile", "api:write"]
        }
    });
    let sentence = format!(
        "admission webhook \"{WEBHOOK}\" denied the request: spec.scopes[2]: scope \"api:write\" is not allowed by policy {}/web-apps-policy (allowedScopes: openid, profile, email, api:read)",
        scenario.security
    );
    let bytes = serde_json::to_vec(&forbidden).unwrap();
    // Until the API server takes the configuration up, failurePolicy Ignore admits: a
    // server-side dry run asks without storing anything.
    eventually(
        "the API server to call the webhook through its Service",
        || {
            let (bytes, sentence) = (&bytes, &sentence);
            async move {
                let (applied, text) =
                    tier.kubectl_with(&["apply", "--dry-run=server", "-f", "-"], Some(bytes));
                (!applied && text.contains(sentence.as_str())).then_some(())
            }
        },
    )
    .await;
    let (applied, text) = tier.kubectl_with(&["apply", "-f", "-"], Some(&bytes));
    assert!(!applied, "kubectl apply fails");
    assert!(text.contains(&sentence), "kubectl says why: {text}");
    assert!(
        scenario
            .clients()
            .get_opt("pod-webapp-admin")
            .await
            .unwrap()
            .is_none(),
        "never stored"
    );
}

/// The client was let go: no finalizer, a `Released` event.
async fn released(scenario: &Scenario, name: &str) {
    let client = scenario.clients().get(name).await.unwrap();
    assert!(
        !client.finalizers().iter().any(|f| f == FINALIZER),
        "{name} is released: {:?}",
        client.finalizers()
    );
    eventually(&format!("{name}'s Released event"), || async {
        scenario.has_event(name, "Released").await.then_some(())
    })
    .await;
}

/// After the uninstall: the team's namespace deletes completely, the registration is
/// still at the provider (then deleted there, as its administrator would), the
/// scenario's other namespaces go.
async fn teams_leave(scenario: &Scenario, client_id: &str) {
    delete_namespace(&scenario.client, &scenario.team).await;
    assert!(
        scenario
            .provider
            .clients()
            .await
            .iter()
            .any(|id| id == client_id),
        "the registration stays at the provider"
    );
    scenario.provider.forget(client_id).await;
    delete_namespace(&scenario.client, &scenario.security).await;
    delete_namespace(&scenario.client, &scenario.system).await;
}

/// deploy/, then the chart: in this order, one operator at a time (each scenario holds
/// the machine's end-to-end lock, and clears what the other left).
#[tokio::test]
async fn the_operator_in_a_pod() {
    let Some(tier) = tier() else { return };
    from_deploy(&tier).await;
    from_the_chart(&tier).await;
}

/// Scenario A: `deploy/operator.yaml` applied as it is.
async fn from_deploy(tier: &Tier) {
    let Some(scenario) = Scenario::new("pod", TestProvider::start()).await else {
        return;
    };
    let client = scenario.client.clone();
    clear_pod_tier(tier, &client).await;
    let crds = root().join("crds");
    let deploy = root().join("deploy/operator.yaml");
    let deploy = deploy.to_str().unwrap();
    tier.must_kubectl(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
    tier.must_kubectl(&["apply", "-f", deploy]);

    // The pod runs: its loopback gets the provider, it becomes Ready and leads.
    let (first, pid) = eventually("the operator's pod to run", || async {
        let (name, id) = new_running_pod(&client, &HashSet::new()).await?;
        Some((name, tier.container_pid(&id)?))
    })
    .await;
    let host = node_address(&client, &first).await;
    let mut bridges = Bridges::new(&scenario.provider, &host);
    bridges.bridge_pod(&first, pid).await;
    leading(&client, &first).await;

    // Provisioned from the pod; the credentials work at the provider.
    let client_id = provisioned(&scenario, "pod-service").await;
    webhook_refuses(tier, &scenario).await;
    let metrics = service_metrics(&client).await;
    assert!(metrics.contains("nauthera_reconciles_total"), "{metrics}");

    // A rolling restart: the new pod takes the Lease over and manages on.
    let registered = scenario.provider.requests().await.post;
    tier.must_kubectl(&[
        "-n",
        SYSTEM,
        "rollout",
        "restart",
        &format!("deployment/{NAME}"),
    ]);
    let second = bridge_new_pod(tier, &client, &mut bridges).await;
    assert_ne!(second, first);
    tier.must_kubectl(&[
        "-n",
        SYSTEM,
        "rollout",
        "status",
        &format!("deployment/{NAME}"),
        &format!("--timeout={}s", PATIENCE.as_secs()),
    ]);
    leading(&client, &second).await;
    managed_on(&scenario, "pod-service", &client_id, registered).await;

    // The documented uninstall: `nauthera-operator release`, then delete deploy/.
    let (ok, said) = output(
        Command::new(env!("CARGO_BIN_EXE_nauthera-operator"))
            .arg("release")
            .env("KUBECONFIG", &tier.kubeconfig)
            .env("RUST_LOG", "info"),
        None,
    );
    assert!(ok, "nauthera-operator release: {said}");
    assert!(
        pods(&client).await.unwrap().is_empty(),
        "the operator is stopped"
    );
    released(&scenario, "pod-service").await;
    tier.must_kubectl(&["delete", "-f", deploy, "--wait=false"]);
    gone(&client, SYSTEM).await;
    no_webhook_configuration(&client).await;
    teams_leave(&scenario, &client_id).await;
}

/// Scenario B: the chart, installed, upgraded and uninstalled with Helm.
#[allow(clippy::too_many_lines)] // one release's life, told in order
async fn from_the_chart(tier: &Tier) {
    let Some(scenario) = Scenario::new("podhelm", TestProvider::start()).await else {
        return;
    };
    let client = scenario.client.clone();
    clear_pod_tier(tier, &client).await;
    let chart = root().join("charts/nauthera-operator");
    let chart = chart.to_str().unwrap();
    tier.must_helm(&[
        "install",
        NAME,
        chart,
        "-n",
        SYSTEM,
        "--create-namespace",
        "--take-ownership",
    ]);

    let (first, pid) = eventually("the operator's pod to run", || async {
        let (name, id) = new_running_pod(&client, &HashSet::new()).await?;
        Some((name, tier.container_pid(&id)?))
    })
    .await;
    let host = node_address(&client, &first).await;
    let mut bridges = Bridges::new(&scenario.provider, &host);
    bridges.bridge_pod(&first, pid).await;
    leading(&client, &first).await;
    let client_id = provisioned(&scenario, "chart-service").await;

    // An upgrade with a changed value: a new pod, the Lease handed over.
    let registered = scenario.provider.requests().await.post;
    tier.must_helm(&[
        "upgrade",
        NAME,
        chart,
        "-n",
        SYSTEM,
        "--reuse-values",
        "--set",
        "resync=1m",
    ]);
    let second = bridge_new_pod(tier, &client, &mut bridges).await;
    assert_ne!(second, first);
    leading(&client, &second).await;
    let deployment = Api::<Deployment>::namespaced(client.clone(), SYSTEM)
        .get(NAME)
        .await
        .unwrap();
    let args = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap_or_default();
    assert!(
        args.windows(2).any(|pair| pair == ["--resync", "1m"]),
        "{args:?}"
    );
    managed_on(&scenario, "chart-service", &client_id, registered).await;

    // The uninstall: its pre-delete hook runs `nauthera-operator release` in a pod.
    let timeout = format!("{}s", PATIENCE.as_secs());
    let (uninstalled, said) = tier.helm(&["uninstall", NAME, "-n", SYSTEM, "--timeout", &timeout]);
    if !uninstalled {
        let (_, job) = tier.kubectl(&[
            "-n",
            SYSTEM,
            "logs",
            &format!("job/{NAME}-release"),
            "--all-containers",
        ]);
        let (_, described) =
            tier.kubectl(&["-n", SYSTEM, "describe", &format!("job/{NAME}-release")]);
        panic!("helm uninstall: {said}\nthe release Job's log:\n{job}\n{described}");
    }
    assert!(
        pods(&client).await.unwrap().is_empty(),
        "the operator is gone"
    );
    released(&scenario, "chart-service").await;
    teams_leave(&scenario, &client_id).await;
    // What the release keeps for an operator installed again: the record, deleted here
    // with the namespace Helm made.
    let records =
        Api::<Secret>::namespaced(client.clone(), SYSTEM)
            .list(&ListParams::default().labels(
                "app.kubernetes.io/managed-by=nauthera-operator,auth.nauthera.io/client-name",
            ))
            .await
            .unwrap()
            .items;
    assert_eq!(records.len(), 1, "the record stays: {records:?}");
    for record in records {
        Api::<Secret>::namespaced(client.clone(), SYSTEM)
            .delete(&record.name_any(), &DeleteParams::default())
            .await
            .unwrap();
    }
    delete_namespace(&client, SYSTEM).await;
    no_webhook_configuration(&client).await;
}
