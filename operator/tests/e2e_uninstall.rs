//! Uninstalling on a real API server (`NAUTHERA_E2E_KUBECONFIG`): `nauthera-operator
//! release` — what the Helm chart runs before `helm uninstall` — leaves no AuthClient
//! behind a finalizer: a team's namespace deleted afterwards finishes deleting, its
//! registration still working at the provider; an operator started again manages the
//! clients left as before, with no second registration.

mod common;

use std::process::Command;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use nauthera_shared::resources::AuthClient;
use serde_json::json;

use common::TestProvider;
use common::cluster::{Scenario, apply, eventually, kubeconfig};

const FINALIZER: &str = "auth.nauthera.io/cleanup";
const RECORD_FINALIZER: &str = "auth.nauthera.io/registration-record";

/// `nauthera-operator release` for the scenario's operator namespace (no Deployment
/// there: the scenario's operator runs out of cluster and is stopped by the test).
fn release(scenario: &Scenario, extra: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_nauthera-operator"))
        .args(["release", "--namespace", &scenario.system])
        .args(extra)
        .env("KUBECONFIG", kubeconfig().unwrap())
        .env("RUST_LOG", "info")
        .output()
        .expect("the operator runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one uninstall, told in order
async fn release_leaves_nothing_stranded_and_a_new_operator_manages_on() {
    let Some(mut scenario) = Scenario::new("uninstall", TestProvider::start()).await else {
        return;
    };
    // A second team, whose namespace goes after the uninstall.
    let leaving = format!("{}-2", scenario.team);
    scenario.create_namespace(&leaving).await;
    scenario.start_operator(&[]);
    scenario
        .apply_client("kept", scenario.service("kept"))
        .await;
    let leaving_clients: Api<AuthClient> = Api::namespaced(scenario.client.clone(), &leaving);
    let mut spec = scenario.service("leaver");
    spec["displayName"] = json!("leaver");
    apply(
        &leaving_clients,
        json!({"apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
               "metadata": {"name": "leaver", "namespace": leaving}, "spec": spec}),
    )
    .await;
    let kept = scenario.ready("kept").await;
    let kept_id = kept.status.as_ref().unwrap().client_id.clone().unwrap();
    let leaver = eventually("leaver to be Ready", || {
        let clients = leaving_clients.clone();
        async move {
            let client = clients.get("leaver").await.ok()?;
            let ready = common::cluster::condition(&client, "Ready")?;
            (ready.0 == "True").then_some(client)
        }
    })
    .await;
    let leaver_id = leaver.status.as_ref().unwrap().client_id.clone().unwrap();
    let leaver_secret = Api::<Secret>::namespaced(scenario.client.clone(), &leaving)
        .get("leaver-client-secret")
        .await
        .unwrap();
    let leaver_password = common::cluster::decoded(&leaver_secret, "client_secret");
    let registered = scenario.provider.requests().await.post;

    // While an operator leads, nothing is released: it would put the finalizers back.
    let (released, said) = release(&scenario, &["--timeout", "5s"]);
    assert!(!released && said.contains("is still held"), "{said}");
    let kept_now = scenario.clients().get("kept").await.unwrap();
    assert!(kept_now.finalizers().iter().any(|f| f == FINALIZER));

    // The operator stops (as the chart's Job scales it to 0), then the release.
    for operator in &mut scenario.operators {
        operator.terminate().await;
    }
    let (released, said) = release(&scenario, &[]);
    assert!(released, "release failed: {said}");
    assert!(said.contains("clients=2 records=2"), "{said}");
    for (namespace, name) in [
        (scenario.team.as_str(), "kept"),
        (leaving.as_str(), "leaver"),
    ] {
        let client = Api::<AuthClient>::namespaced(scenario.client.clone(), namespace)
            .get(name)
            .await
            .unwrap();
        assert!(
            !client.finalizers().iter().any(|f| f == FINALIZER),
            "{namespace}/{name} is released"
        );
        let events: Api<Event> = Api::namespaced(scenario.client.clone(), namespace);
        let released = events.list(&ListParams::default()).await.unwrap().items;
        assert!(
            released
                .iter()
                .any(|event| event.reason.as_deref() == Some("Released")
                    && event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && event
                        .note
                        .as_deref()
                        .is_some_and(|note| note.contains("stays at the provider"))),
            "{namespace}/{name} is told"
        );
    }
    let records = scenario.records().await;
    assert_eq!(records.len(), 2, "the records stay");
    assert!(
        records
            .iter()
            .all(|record| !record.finalizers().iter().any(|f| f == RECORD_FINALIZER)),
        "and no longer hold anything"
    );

    // A team deleting its namespace after the uninstall is not held up, and its app's
    // credentials still work until someone deletes the registration at the provider.
    let namespaces: Api<Namespace> = Api::all(scenario.client.clone());
    namespaces
        .delete(&leaving, &DeleteParams::default())
        .await
        .unwrap();
    eventually(&format!("namespace {leaving} to be gone"), || {
        let namespaces = namespaces.clone();
        let leaving = leaving.clone();
        async move {
            namespaces
                .get_opt(&leaving)
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(scenario.provider.clients().await.contains(&leaver_id));
    assert!(
        scenario
            .provider
            .authenticates(&leaver_id, &leaver_password)
            .await
    );
    // What a platform team does once it no longer wants it: delete it at the provider
    // and its record.
    scenario.provider.forget(&leaver_id).await;
    let leaver_record = records
        .iter()
        .find(|record| {
            record
                .labels()
                .get("auth.nauthera.io/client-name")
                .map(String::as_str)
                == Some("leaver")
        })
        .expect("leaver's record");
    scenario
        .secrets(&scenario.system)
        .delete(&leaver_record.name_any(), &DeleteParams::default())
        .await
        .unwrap();

    // Installed again: the client left is managed on, with its own registration.
    scenario.start_operator(&[]);
    let clients = scenario.clients();
    let again = eventually("kept to carry the finalizer again", || {
        let clients = clients.clone();
        async move {
            let client = clients.get("kept").await.ok()?;
            client
                .finalizers()
                .iter()
                .any(|f| f == FINALIZER)
                .then_some(client)
        }
    })
    .await;
    let status = again.status.unwrap();
    assert_eq!(status.client_id.as_deref(), Some(kept_id.as_str()));
    scenario.wait_condition("kept", "Ready", "True", None).await;
    assert_eq!(
        scenario.provider.requests().await.post,
        registered,
        "no second registration"
    );
    scenario.finish().await;
}
