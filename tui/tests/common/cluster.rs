//! What the suites against a real cluster share: the cluster named by
//! `NAUTHERA_E2E_KUBECONFIG`, the CRDs installed, namespaces of the test's own (deleted
//! when it ends), and patient waiting.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use nauthera_shared::resources::AuthClient;

/// How long the cluster gets to converge before a step fails.
pub const PATIENCE: Duration = Duration::from_secs(120);
/// The field manager of what the tests write themselves.
pub const MANAGER: &str = "nauthera-tui-e2e";

/// A suite that cannot run here says so and passes — unless `NAUTHERA_E2E_REQUIRED` is
/// set (`./test.sh` sets it when it starts a cluster), where a skip would hide a suite
/// that never ran: then it fails.
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("NAUTHERA_E2E_REQUIRED").is_none_or(|v| v.is_empty() || v == "0"),
        "not skipped, NAUTHERA_E2E_REQUIRED is set: {why}"
    );
    eprintln!("skipped: {why}");
}

/// The kubeconfig of the cluster to test against, or `None` (and a line saying the test
/// is skipped) when `NAUTHERA_E2E_KUBECONFIG` is unset.
pub fn kubeconfig() -> Option<PathBuf> {
    let path = std::env::var_os("NAUTHERA_E2E_KUBECONFIG");
    if path.is_none() {
        skip(
            "set NAUTHERA_E2E_KUBECONFIG to a kubeconfig to run the end-to-end suite against that cluster",
        );
    }
    path.map(PathBuf::from)
}

pub async fn client(kubeconfig: &std::path::Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("a readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Client::try_from(config).expect("a client")
}

/// Waits for `check` to hold, polling; fails with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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

/// Namespaces of one test run, named `<prefix>-<role>`; deleted on drop.
pub struct Namespaces {
    client: Client,
    kubeconfig: PathBuf,
    pub prefix: String,
    created: Vec<String>,
}

impl Namespaces {
    pub fn new(client: &Client, kubeconfig: &std::path::Path, test: &str) -> Self {
        let unique = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                % 0xff_ffff
        );
        Self {
            client: client.clone(),
            kubeconfig: kubeconfig.to_owned(),
            prefix: format!("{test}-{unique}"),
            created: Vec::new(),
        }
    }

    /// Creates `<prefix>-<role>` with `labels`, and returns its name.
    pub async fn create(&mut self, role: &str, labels: serde_json::Value) -> String {
        let name = format!("{}-{role}", self.prefix);
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }))
        .unwrap();
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|error| panic!("creating namespace {name}: {error}"));
        self.created.push(name.clone());
        name
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let (kubeconfig, names) = (self.kubeconfig.clone(), std::mem::take(&mut self.created));
        // Drop cannot await: delete on a runtime of its own, on a thread of its own, with a
        // client of its own (the test's client is driven by the runtime this blocks).
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = client(&kubeconfig).await;
                let api = Api::<Namespace>::all(client.clone());
                for name in &names {
                    let _ = api.delete(name, &DeleteParams::background()).await;
                }
                // An operator running on the cluster may have put its finalizer on the
                // test's clients, and cannot deregister them from a provider that does
                // not exist: let them go, so the namespaces do not stay Terminating.
                let deadline = tokio::time::Instant::now() + PATIENCE;
                for name in &names {
                    let clients: Api<AuthClient> = Api::namespaced(client.clone(), name);
                    while api.get_opt(name).await.ok().flatten().is_some()
                        && tokio::time::Instant::now() < deadline
                    {
                        for held in clients
                            .list(&ListParams::default())
                            .await
                            .map(|l| l.items)
                            .unwrap_or_default()
                        {
                            if held
                                .metadata
                                .finalizers
                                .as_ref()
                                .is_some_and(|f| !f.is_empty())
                            {
                                let release = serde_json::json!({"metadata": {"finalizers": null}});
                                let _ = clients
                                    .patch(
                                        &held.name_any(),
                                        &PatchParams::default(),
                                        &Patch::Merge(&release),
                                    )
                                    .await;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            });
        })
        .join();
    }
}

/// Creates `object` as `manager` would: `kubectl create`/`kubectl apply` (client side)
/// record their fields under their own manager with an `Update` operation.
pub async fn create_as<K>(api: &Api<K>, manager: &str, object: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    let typed: K = serde_json::from_value(object).expect("a valid object");
    let params = PostParams {
        dry_run: false,
        field_manager: Some(manager.to_owned()),
    };
    api.create(&params, &typed)
        .await
        .unwrap_or_else(|error| panic!("creating {name}: {error}"))
}

/// Server-side applies `object` under `manager` (as Argo CD or Flux do).
pub async fn apply_as<K>(api: &Api<K>, manager: &str, object: &serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    api.patch(
        &name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap_or_else(|error| panic!("applying {name}: {error}"))
}
