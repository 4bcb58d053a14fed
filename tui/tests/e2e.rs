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

/// A server selecting only the policy labelled `mark`, that policy written under
/// kubectl's field manager (`idTokenTTL` included), a client in each team namespace, and an
/// Event about the first, as the operator's recorder would publish it.
async fn seed(client: &kube::Client, security: &str, teams: [&str; 2], mark: &str) {
    use k8s_openapi::api::events::v1::Event;
    use nauthera_shared::resources::{AuthClient, AuthServer};

    let servers: Api<AuthServer> = Api::namespaced(client.clone(), security);
    apply_as(&servers, "platform-team", &json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
        "metadata": {"name": "server", "namespace": security},
        "spec": {"issuerUrl": "https://auth.example.com", "provider": {"type": "DynamicClientRegistration"},
                 "policySelector": {"matchLabels": {"nauthera.io/e2e": mark}},
                 "allowedNamespaces": {"from": "All"}}
    }))
    .await;
    let policies: Api<AuthPolicy> = Api::namespaced(client.clone(), security);
    let mut written = policy(security);
    written["metadata"]["labels"] = json!({"nauthera.io/e2e": mark});
    create_as(&policies, "kubectl-client-side-apply", written).await;
    for (namespace, name) in teams.iter().zip(["app-a", "app-b"]) {
        let clients: Api<AuthClient> = Api::namespaced(client.clone(), namespace);
        apply_as(&clients, "team", &json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"displayName": name, "authServerRef": {"name": "server", "namespace": security},
                     "redirectUris": [format!("https://{name}.example.com/callback")], "scopes": ["openid"]}
        }))
        .await;
    }
    let events: Api<Event> = Api::namespaced(client.clone(), teams[0]);
    create_as(&events, "nauthera-operator", json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "app-a.e2e", "namespace": teams[0]},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "nauthera-operator", "reportingInstance": "nauthera-operator-0",
        "action": "Register", "reason": "Registered", "type": "Normal",
        "note": "registered at the provider (an e2e event)",
        "regarding": {"apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient", "name": "app-a", "namespace": teams[0]}
    }))
    .await;
}

/// The real binary in a pseudo-terminal on a real cluster, as a user would: open a
/// namespaced view (nothing marked on the first read), see a client's Events, edit a
/// policy whose clients live in another namespace too (the plan says so), commit, and read
/// the policy back: the field removed in the editor, owned by another manager, is gone.
#[test]
fn the_dashboard_edits_a_policy_on_a_real_cluster_and_it_reads_back_as_edited() {
    use common::terminal::Terminal;

    let Some(path) = kubeconfig() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(client(&path));
    runtime.block_on(install_crds(&client));
    let mut namespaces = Namespaces::new(&client, &path, "ntui-pty");
    let (security, team_a, team_b) = runtime.block_on(async {
        (
            namespaces.create("sec", json!({})).await,
            namespaces.create("a", json!({})).await,
            namespaces.create("b", json!({})).await,
        )
    });
    let mark = namespaces.prefix.clone();
    runtime.block_on(seed(&client, &security, [&team_a, &team_b], &mark));

    let log = tempfile::NamedTempFile::new().unwrap();
    let mut terminal = Terminal::start(
        &[
            "-n".as_ref(),
            team_a.as_ref(),
            "--log-file".as_ref(),
            log.path().as_os_str(),
        ],
        &[("KUBECONFIG", path.as_os_str())],
        50,
        220,
    );
    terminal.wait_for(&format!("{security}/server"));
    terminal.wait_for(&format!("{team_a}/app-a"));
    assert!(
        !terminal.contents().contains('•'),
        "nothing is marked on the first read:\n{}",
        terminal.contents()
    );

    // Only this test's objects: the server, its policy and the client on screen.
    terminal.send(&format!("/{mark}\r"));
    terminal.wait_for(&format!("filter: {mark}"));
    terminal.send("gjj");
    terminal.wait_for("Registered");
    terminal.wait_for("registered at the provider (an e2e event)");
    terminal.send("k");
    terminal.wait_for("AuthPolicy ");

    terminal.send("e");
    terminal.wait_for("Planned against every client in the cluster");
    // Remove idTokenTTL (written by kubectl's manager), shorten the access tokens.
    terminal.send("\x06    idTokenTTL\r");
    terminal.send("\x0b\x7f");
    terminal.send("\x06TTL: 15m\r");
    terminal.send("\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[3~");
    terminal.wait_for(&format!("~ {team_b}/app-b"));
    terminal.wait_for(&format!("~ {team_a}/app-a"));
    terminal.wait_for("accessTokenTTL 15m → 5m");

    terminal.send("\x13");
    // The dialog wraps its sentences where the context's name puts the line ends: wait
    // for single words and the keys' line, which never wrap.
    terminal.wait_for("Confirm");
    terminal.wait_for("resourceVersion");
    terminal.wait_for("y commit · any other key cancels");
    terminal.send("y");
    terminal.wait_for("read back, the cluster holds exactly your text");

    let token = runtime.block_on(async {
        let policies: Api<AuthPolicy> = Api::namespaced(client.clone(), &security);
        policies
            .get("web-apps-policy")
            .await
            .unwrap()
            .spec
            .token
            .unwrap()
    });
    assert_eq!(token.id_token_ttl, None, "the removed field is gone");
    assert_eq!(token.access_token_ttl.as_deref(), Some("5m"));
    assert_eq!(token.refresh_token_ttl.as_deref(), Some("24h"));

    terminal.send("\x1b");
    terminal.quit();
}
