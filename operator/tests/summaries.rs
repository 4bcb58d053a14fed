//! Server and policy status at the Kubernetes API contract, with a real provider: one pass
//! writes what changed, and a pass with nothing new writes nothing.

mod common;

use common::TestProvider;
use common::mock_api::{api_server, expect};
use common::world::{OPERATOR_NAMESPACE, context, namespace, stores};

use std::time::Duration;

use http::Method;
use nauthera_operator::summaries::pass;
use nauthera_shared::resources::{
    AuthClient, AuthPolicy, AuthPolicyStatus, AuthServer, AuthServerStatus,
};
use serde_json::json;

const SERVER_STATUS: &str =
    "/apis/auth.nauthera.io/v1alpha1/namespaces/security/authservers/production-server/status";
const POLICY_STATUS: &str = "/apis/auth.nauthera.io/v1alpha1/namespaces/security/authpolicies/backend-services-policy/status";

fn server(issuer: &str) -> AuthServer {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
        "metadata": {"name": "production-server", "namespace": "security", "generation": 1},
        "spec": {"issuerUrl": issuer, "provider": {"type": "DynamicClientRegistration"},
                 "policySelector": {"matchLabels": {"env": "prod"}}, "allowedNamespaces": {"from": "All"}}
    }))
    .unwrap()
}

fn policy() -> AuthPolicy {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
        "metadata": {"name": "backend-services-policy", "namespace": "security", "generation": 1, "labels": {"env": "prod"}},
        "spec": {"allowedGrantTypes": ["client_credentials"], "allowedScopes": ["api:read"]}
    }))
    .unwrap()
}

fn client(name: &str, scope: &str) -> AuthClient {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": name, "namespace": "shop", "uid": name},
        "spec": {"displayName": name, "authServerRef": {"name": "production-server", "namespace": "security"},
                 "grantTypes": ["client_credentials"], "scopes": [scope]}
    }))
    .unwrap()
}

#[tokio::test]
async fn one_pass_reports_reachability_latency_and_counts_then_writes_nothing_more() {
    let provider = TestProvider::start();
    let clients = vec![client("orders", "api:read"), client("admin", "admin:all")];
    let (kube, api) = api_server(vec![
        expect(
            Method::PATCH,
            SERVER_STATUS,
            200,
            serde_json::to_value(server("http://x")).unwrap(),
        ),
        expect(
            Method::PATCH,
            POLICY_STATUS,
            200,
            serde_json::to_value(policy()).unwrap(),
        ),
    ]);
    let world = stores(
        vec![server(&provider.issuer)],
        vec![policy()],
        vec![namespace(OPERATOR_NAMESPACE, &[])],
        clients.clone(),
    );
    let ctx = context(kube, world, Duration::from_secs(3600));
    pass(&ctx).await.expect("a pass");
    drop(ctx);
    let received = api.await.unwrap();
    let server_status: AuthServerStatus =
        serde_json::from_value(received[0].1["status"].clone()).unwrap();
    let reachable = &server_status.conditions[0];
    assert_eq!(
        (reachable.type_.as_str(), reachable.status.as_str()),
        ("ProviderReachable", "True")
    );
    assert_eq!(
        server_status.registration_endpoint,
        Some(format!("{}/reg", provider.issuer))
    );
    assert!(server_status.provider_latency_ms.is_some());
    assert_eq!(server_status.policies, ["security/backend-services-policy"]);
    assert_eq!(server_status.clients, Some(2));
    let policy_status: AuthPolicyStatus =
        serde_json::from_value(received[1].1["status"].clone()).unwrap();
    assert_eq!(
        (
            policy_status.governed_clients,
            policy_status.compliant_clients,
            policy_status.violating_clients
        ),
        (2, 1, 1)
    );
    assert_eq!(
        policy_status.conditions[0].message,
        "governs 2 clients: 1 compliant, 1 breaking its rules"
    );

    // The same findings again: nothing is written.
    let mut reported_server = server(&provider.issuer);
    reported_server.status = Some(server_status);
    let mut reported_policy = policy();
    reported_policy.status = Some(policy_status);
    let (kube, api) = api_server(Vec::new());
    let world = stores(
        vec![reported_server],
        vec![reported_policy],
        vec![namespace(OPERATOR_NAMESPACE, &[])],
        clients,
    );
    let ctx = context(kube, world, Duration::from_secs(3600));
    pass(&ctx).await.expect("a pass");
    drop(ctx);
    assert!(api.await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_provider_is_reported_on_its_server() {
    let (kube, api) = api_server(vec![
        expect(
            Method::PATCH,
            SERVER_STATUS,
            200,
            serde_json::to_value(server("http://x")).unwrap(),
        ),
        expect(
            Method::PATCH,
            POLICY_STATUS,
            200,
            serde_json::to_value(policy()).unwrap(),
        ),
    ]);
    let world = stores(
        vec![server("http://127.0.0.1:9")],
        vec![policy()],
        Vec::new(),
        Vec::new(),
    );
    let ctx = context(kube, world, Duration::from_secs(3600));
    pass(&ctx).await.expect("a pass");
    drop(ctx);
    let received = api.await.unwrap();
    let status: AuthServerStatus = serde_json::from_value(received[0].1["status"].clone()).unwrap();
    let reachable = &status.conditions[0];
    assert_eq!(
        (reachable.status.as_str(), reachable.reason.as_str()),
        ("False", "Unreachable")
    );
    assert!(
        reachable.message.starts_with("the provider is unavailable"),
        "{}",
        reachable.message
    );
}
