//! The dashboard against a real cluster, gated like the operator's end-to-end suite: set
//! `NAUTHERA_E2E_KUBECONFIG` to a kubeconfig (the tests create namespaces of their own and
//! delete them, and install `crds/`); skipped, saying so, when it is unset.

mod common;

use common::cluster::{Namespaces, apply_as, client, create_as, install_crds, kubeconfig};
use kube::Api;
use nauthera_shared::resources::{AuthPolicy, ObjectRef};
use nauthera_tui::editor::commit::to_cluster;
use nauthera_tui::editor::{CommitRequest, CommitTarget};
use serde_json::json;

fn policy(namespace: &str) -> serde_json::Value {
    json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
        "metadata": {"name": "web-apps-policy", "namespace": namespace,
                     "labels": {"nauthera.io/environment": "production"}},
        "spec": {
            "token": {"accessTokenTTL": "15m", "refreshTokenTTL": "24h", "idTokenTTL": "5m"},
            "allowedScopes": ["openid", "profile", "email"],
        }
    })
}

/// The editor's text for `policy` with `idTokenTTL` removed and access tokens shortened.
fn edited(policy: &AuthPolicy) -> String {
    let mut object = policy.clone();
    object.metadata.managed_fields = None;
    object.metadata.resource_version = None;
    object.status = None;
    let token = object.spec.token.get_or_insert_with(Default::default);
    token.id_token_ttl = None;
    token.access_token_ttl = Some("5m".to_owned());
    serde_yaml_ng::to_string(&object).unwrap()
}

/// Whoever wrote the policy (`kubectl apply` client side, or a GitOps tool applying server
/// side under its own manager), a commit leaves the cluster holding the edited text: a
/// field removed in the editor is gone.
#[tokio::test]
async fn a_commit_removes_a_field_another_manager_owns() {
    let Some(path) = kubeconfig() else { return };
    let client = client(&path).await;
    install_crds(&client).await;
    let mut namespaces = Namespaces::new(&client, &path, "ntui-commit");
    for (role, manager, server_side) in [
        ("kubectl", "kubectl-client-side-apply", false),
        ("argocd", "argocd-controller", true),
    ] {
        let namespace = namespaces.create(role, json!({})).await;
        let api: Api<AuthPolicy> = Api::namespaced(client.clone(), &namespace);
        let created = if server_side {
            apply_as(&api, manager, &policy(&namespace)).await
        } else {
            create_as(&api, manager, policy(&namespace)).await
        };
        let request = CommitRequest {
            policy: ObjectRef::new(&namespace, "web-apps-policy"),
            text: edited(&created),
            target: CommitTarget::Cluster {
                context: "e2e".to_owned(),
                previewed: Box::new(created.clone()),
            },
        };
        let result = to_cluster(client.clone(), &request).await;
        assert!(
            result
                .as_ref()
                .is_ok_and(|text| text.ends_with("read back, the cluster holds exactly your text")),
            "{manager}: {result:?}"
        );
        let token = api
            .get("web-apps-policy")
            .await
            .unwrap()
            .spec
            .token
            .unwrap();
        assert_eq!(
            token.id_token_ttl, None,
            "{manager}: the removed field is gone"
        );
        assert_eq!(token.access_token_ttl.as_deref(), Some("5m"));
        assert_eq!(token.refresh_token_ttl.as_deref(), Some("24h"));
    }
}
