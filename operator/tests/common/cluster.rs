//! What the suites against a real cluster share: the cluster named by
//! `NAUTHERA_E2E_KUBECONFIG`, the CRDs installed, the operator binary started, and
//! patient waiting.

use std::future::Future;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use nauthera_shared::resources::AuthClient;

/// How long the cluster and the operator get to converge before a step fails.
pub const PATIENCE: Duration = Duration::from_secs(120);
pub const MANAGER: &str = "nauthera-e2e";

pub async fn cluster() -> Option<Client> {
    let Some(path) = std::env::var_os("NAUTHERA_E2E_KUBECONFIG") else {
        eprintln!(
            "skipped: set NAUTHERA_E2E_KUBECONFIG to a kubeconfig to run the end-to-end suite against that cluster"
        );
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(PathBuf::from(&path)).expect("a readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Some(Client::try_from(config).expect("a client"))
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
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub struct Operator(pub Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
