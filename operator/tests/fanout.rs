//! Which clients a change re-reconciles: exactly those a server, policy or namespace
//! governs — including clients a narrowed policy stops governing.

mod common;

use common::world::stores;
use kube::runtime::reflector;
use nauthera_operator::context::Stores;
use nauthera_operator::watch::{clients_in_namespace, clients_of_policy, clients_of_server};
use nauthera_shared::resources::{AuthClient, AuthClientStatus, AuthPolicy, AuthServer, ObjectRef};
use serde_json::json;

fn server(name: &str, env: &str) -> AuthServer {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
        "metadata": {"name": name, "namespace": "security"},
        "spec": {"issuerUrl": "https://auth.example.com", "provider": {"type": "DynamicClientRegistration"},
                 "policySelector": {"matchLabels": {"env": env}}, "allowedNamespaces": {"from": "All"}}
    }))
    .unwrap()
}

fn policy(name: &str, env: &str) -> AuthPolicy {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
        "metadata": {"name": name, "namespace": "security", "labels": {"env": env}},
        "spec": {}
    }))
    .unwrap()
}

fn client(namespace: &str, name: &str, server: &str, applied: &[&str]) -> AuthClient {
    let mut client: AuthClient = serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"displayName": name, "authServerRef": {"name": server, "namespace": "security"},
                 "grantTypes": ["client_credentials"], "scopes": ["api:read"]}
    }))
    .unwrap();
    client.status = Some(AuthClientStatus {
        applied_policies: applied.iter().map(|p| (*p).to_owned()).collect(),
        ..AuthClientStatus::default()
    });
    client
}

fn world() -> Stores {
    stores(
        vec![
            server("production-server", "prod"),
            server("staging-server", "staging"),
        ],
        vec![
            policy("web-apps-policy", "prod"),
            policy("staging-audit-policy", "staging"),
        ],
        Vec::new(),
        vec![
            client(
                "shop",
                "storefront",
                "production-server",
                &["security/web-apps-policy"],
            ),
            client(
                "shop",
                "preview",
                "staging-server",
                &["security/staging-audit-policy"],
            ),
            client(
                "payments",
                "checkout",
                "production-server",
                &["security/web-apps-policy"],
            ),
            // Governed by web-apps-policy until its server moved to staging.
            client(
                "legacy",
                "crm",
                "staging-server",
                &["security/web-apps-policy"],
            ),
        ],
    )
}

fn names(refs: Vec<reflector::ObjectRef<AuthClient>>) -> Vec<String> {
    let mut names: Vec<String> = refs
        .into_iter()
        .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_server_change_reaches_the_clients_that_name_it() {
    let world = world();
    let reached = clients_of_server(
        &world.clients,
        &ObjectRef::new("security", "production-server"),
    );
    assert_eq!(names(reached), ["payments/checkout", "shop/storefront"]);
}

#[tokio::test]
async fn a_policy_change_reaches_the_clients_it_may_govern_and_those_it_governed() {
    let world = world();
    let reached = clients_of_policy(&world, &ObjectRef::new("security", "web-apps-policy"));
    assert_eq!(
        names(reached),
        ["legacy/crm", "payments/checkout", "shop/storefront"]
    );
    let reached = clients_of_policy(&world, &ObjectRef::new("security", "staging-audit-policy"));
    assert_eq!(names(reached), ["legacy/crm", "shop/preview"]);
}

#[tokio::test]
async fn a_deleted_policy_still_reaches_the_clients_it_governed() {
    let world = world();
    let reached = clients_of_policy(&world, &ObjectRef::new("security", "retired-policy"));
    assert!(reached.is_empty());
    let reached = clients_of_policy(&world, &ObjectRef::new("security", "web-apps-policy"));
    assert!(names(reached).contains(&"legacy/crm".to_owned()));
}

#[tokio::test]
async fn a_namespace_change_reaches_its_clients_only() {
    let world = world();
    assert_eq!(
        names(clients_in_namespace(&world.clients, "shop")),
        ["shop/preview", "shop/storefront"]
    );
}
