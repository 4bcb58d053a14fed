//! Reconciling AuthClients at the level of the Kubernetes API contract: kube's mock
//! service stands in for the API server and checks every request, in order; the OIDC
//! provider is a real one on loopback. Which requests are sent for create, unchanged,
//! policy change, non-compliant, deprovisioning, delete and a provider outage.

mod common;

use common::mock_api::{api_server, expect, not_found};

use std::sync::Arc;

use common::{INITIAL_ACCESS_TOKEN, TestProvider};
use http::Method;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use nauthera_operator::context::Context;
use nauthera_operator::reconcile::{FINALIZER, reconcile};
use nauthera_operator::summaries::{Summaries, reconcile_policy, reconcile_server};
use nauthera_shared::resources::{
    AuthClient, AuthClientStatus, AuthPolicy, AuthServer, AuthServerStatus,
};
use serde_json::{Value, json};

const OPERATOR_NAMESPACE: &str = "nauthera-system";
const UID: &str = "6f1c1c6e-0000-4000-8000-000000000001";

fn server(issuer: &str) -> AuthServer {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
        "metadata": {"name": "production-server", "namespace": "security"},
        "spec": {
            "issuerUrl": issuer,
            "provider": {"type": "DynamicClientRegistration", "initialAccessTokenSecretRef": {"name": "dcr-initial-token", "key": "token"}},
            "policySelector": {"matchLabels": {"env": "prod"}},
            "allowedNamespaces": {"from": "All"}
        }
    }))
    .unwrap()
}

fn policy(ttl: &str) -> AuthPolicy {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
        "metadata": {"name": "backend-services-policy", "namespace": "security", "labels": {"env": "prod"}},
        "spec": {"token": {"accessTokenTTL": ttl}, "allowedGrantTypes": ["client_credentials"], "allowedScopes": ["api:read", "api:write"]}
    }))
    .unwrap()
}

fn client(scopes: &[&str]) -> AuthClient {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": "order-service", "namespace": "shop", "uid": UID, "generation": 1, "finalizers": [FINALIZER]},
        "spec": {
            "displayName": "Order service",
            "authServerRef": {"name": "production-server", "namespace": "security"},
            "grantTypes": ["client_credentials"],
            "scopes": scopes
        }
    }))
    .unwrap()
}

fn ready<K: kube::Resource<DynamicType = ()> + Clone>(writer: &mut Writer<K>, objects: Vec<K>) {
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

fn context(client: Client, issuer: &str, policy: AuthPolicy) -> Arc<Context> {
    let (servers, mut servers_writer) = reflector::store();
    let (policies, mut policies_writer) = reflector::store();
    let (namespaces, mut namespaces_writer) = reflector::store::<Namespace>();
    ready(&mut servers_writer, vec![server(issuer)]);
    ready(&mut policies_writer, vec![policy]);
    ready(&mut namespaces_writer, Vec::new());
    // The writers must outlive the test's reconciles for the stores to stay ready.
    std::mem::forget((servers_writer, policies_writer, namespaces_writer));
    Arc::new(Context::new(
        client,
        servers,
        policies,
        namespaces,
        OPERATOR_NAMESPACE.to_owned(),
    ))
}

/// The status patch, answered with the object.
fn status_patch() -> common::mock_api::Expect {
    expect(
        Method::PATCH,
        STATUS,
        200,
        serde_json::to_value(client(&["api:read"])).unwrap(),
    )
}

/// An event recorded.
fn event() -> common::mock_api::Expect {
    expect(Method::POST, EVENTS, 201, json!({}))
}

const REGISTRATION: &str = "/api/v1/namespaces/nauthera-system/secrets/nauthera-registration-6f1c1c6e-0000-4000-8000-000000000001";
const INITIAL_TOKEN: &str = "/api/v1/namespaces/security/secrets/dcr-initial-token";
const CREDENTIALS: &str = "/api/v1/namespaces/shop/secrets/order-service-client-secret";
const STATUS: &str =
    "/apis/auth.nauthera.io/v1alpha1/namespaces/shop/authclients/order-service/status";
const OBJECT: &str = "/apis/auth.nauthera.io/v1alpha1/namespaces/shop/authclients/order-service";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

fn initial_token_secret() -> Value {
    let token = base64(INITIAL_ACCESS_TOKEN);
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dcr-initial-token", "namespace": "security"}, "data": {"token": token}})
}

fn base64(text: &str) -> String {
    serde_json::to_value(k8s_openapi::ByteString(text.as_bytes().to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// The client id and secret a credentials Secret holds.
fn id_and_secret(secret: &Value) -> (String, String) {
    (
        decoded(secret, "client_id"),
        decoded(secret, "client_secret"),
    )
}

fn decoded(secret: &Value, key: &str) -> String {
    let bytes: k8s_openapi::ByteString =
        serde_json::from_value(secret["data"][key].clone()).unwrap();
    String::from_utf8(bytes.0).unwrap()
}

/// What a first reconcile of a compliant client sends, and what it leaves behind.
struct Provisioned {
    registration: Value,
    credentials: Value,
    status: AuthClientStatus,
}

async fn provision(provider: &TestProvider) -> Provisioned {
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(Method::GET, INITIAL_TOKEN, 200, initial_token_secret()),
        expect(
            Method::PATCH,
            REGISTRATION,
            200,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        ),
        event(),
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        expect(
            Method::PATCH,
            CREDENTIALS,
            200,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        ),
        status_patch(),
        event(),
    ]);
    let ctx = context(kube, &provider.issuer, policy("15m"));
    let action = reconcile(Arc::new(client(&["api:read"])), ctx)
        .await
        .expect("reconciled");
    assert_eq!(
        action,
        Action::requeue(std::time::Duration::from_secs(3600))
    );
    let received = server.await.unwrap();
    let body = |index: usize| received[index].1.clone();
    let status: AuthClientStatus = serde_json::from_value(body(6)["status"].clone()).unwrap();
    Provisioned {
        registration: body(2),
        credentials: body(5),
        status,
    }
}

#[tokio::test]
async fn a_compliant_client_is_registered_and_gets_working_credentials() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;

    let credentials = &done.credentials;
    assert_eq!(
        credentials["metadata"]["ownerReferences"][0]["uid"], UID,
        "owned by the AuthClient"
    );
    let client_id = decoded(credentials, "client_id");
    let secret = decoded(credentials, "client_secret");
    assert_eq!(decoded(credentials, "issuer_url"), provider.issuer);
    assert!(
        credentials["data"]
            .get("registration_access_token")
            .is_none(),
        "the team never sees the registration token"
    );
    assert!(!decoded(&done.registration, "registration_access_token").is_empty());
    assert_eq!(
        provider
            .client_credentials(&client_id, &secret, "api:read")
            .await,
        Ok(900),
        "working credentials, with the policy's 15m tokens"
    );

    let ready = done
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Ready")
    );
    assert_eq!(done.status.client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(
        done.status.applied_policies,
        ["security/backend-services-policy"]
    );
    assert_eq!(done.status.observed_generation, Some(1));
}

/// The client as the API server holds it after the first reconcile.
fn provisioned_client(done: &Provisioned) -> AuthClient {
    let mut client = client(&["api:read"]);
    client.status = Some(done.status.clone());
    client
}

fn secret_answer(sent: &Value) -> Value {
    let mut answer = sent.clone();
    answer["metadata"]["uid"] = json!("secret-uid");
    answer
}

#[tokio::test]
async fn a_reconcile_with_nothing_to_change_writes_nothing() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let (kube, server) = api_server(vec![
        expect(
            Method::GET,
            REGISTRATION,
            200,
            secret_answer(&done.registration),
        ),
        expect(
            Method::GET,
            CREDENTIALS,
            200,
            secret_answer(&done.credentials),
        ),
    ]);
    let ctx = context(kube, &provider.issuer, policy("15m"));
    reconcile(Arc::new(provisioned_client(&done)), ctx)
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    assert!(
        received
            .iter()
            .all(|(request, _)| request.starts_with("GET")),
        "{received:?}"
    );
}

#[tokio::test]
async fn a_policy_ttl_change_updates_the_provider_and_the_status_not_the_secret() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let (kube, server) = api_server(vec![
        expect(
            Method::GET,
            REGISTRATION,
            200,
            secret_answer(&done.registration),
        ),
        event(),
        expect(
            Method::GET,
            CREDENTIALS,
            200,
            secret_answer(&done.credentials),
        ),
        status_patch(),
    ]);
    let ctx = context(kube, &provider.issuer, policy("5m"));
    reconcile(Arc::new(provisioned_client(&done)), ctx)
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    assert_eq!(received[1].1["reason"], "Updated");
    assert_eq!(received[3].1["status"]["effective"]["accessTokenTTL"], "5m");

    let (id, secret) = id_and_secret(&done.credentials);
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Ok(300),
        "5m tokens, same credentials"
    );
}

#[tokio::test]
async fn a_non_compliant_client_is_never_registered_and_says_exactly_why() {
    let provider = TestProvider::start();
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(
            Method::PATCH,
            STATUS,
            200,
            serde_json::to_value(client(&["admin:all"])).unwrap(),
        ),
        event(),
    ]);
    let ctx = context(kube, &provider.issuer, policy("15m"));
    reconcile(Arc::new(client(&["admin:all"])), ctx)
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    let status: AuthClientStatus = serde_json::from_value(received[1].1["status"].clone()).unwrap();
    let compliant = status
        .conditions
        .iter()
        .find(|c| c.type_ == "PolicyCompliant")
        .unwrap();
    assert_eq!(
        (compliant.status.as_str(), compliant.reason.as_str()),
        ("False", "PolicyViolation")
    );
    assert_eq!(
        compliant.message,
        "scope \"admin:all\" is not allowed by policy security/backend-services-policy (allowedScopes: api:read, api:write)"
    );
    assert_eq!(status.client_id, None);
    assert_eq!(received[2].1["type"], "Warning");
}

#[tokio::test]
async fn a_provisioned_client_that_turns_non_compliant_is_removed_from_the_provider() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let mut script = removal(&done);
    script.extend([event(), status_patch(), event()]);
    let (kube, server) = api_server(script);
    // The policy stops allowing api:read.
    let mut narrowed = policy("15m");
    narrowed.spec.allowed_scopes = Some(vec!["api:write".to_owned()]);
    let ctx = context(kube, &provider.issuer, narrowed);
    reconcile(Arc::new(provisioned_client(&done)), ctx)
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    assert_eq!(received[5].1["reason"], "Deprovisioned");

    let (id, secret) = id_and_secret(&done.credentials);
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Err("invalid_client".to_owned())
    );
}

/// What removing a provisioned client sends: its credentials Secret (ours: owned by the
/// client) and then its registration Secret are deleted.
fn removal(done: &Provisioned) -> Vec<common::mock_api::Expect> {
    let mut credentials = secret_answer(&done.credentials);
    credentials["metadata"]["ownerReferences"] =
        done.credentials["metadata"]["ownerReferences"].clone();
    let deleted = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
    vec![
        expect(
            Method::GET,
            REGISTRATION,
            200,
            secret_answer(&done.registration),
        ),
        expect(Method::GET, CREDENTIALS, 200, credentials),
        expect(Method::DELETE, CREDENTIALS, 200, deleted.clone()),
        expect(
            Method::GET,
            REGISTRATION,
            200,
            secret_answer(&done.registration),
        ),
        expect(Method::DELETE, REGISTRATION, 200, deleted),
    ]
}

fn being_deleted(done: &Provisioned) -> AuthClient {
    let mut client = provisioned_client(done);
    client.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    client
}

#[tokio::test]
async fn deletion_removes_the_registration_first_then_the_secrets_then_the_finalizer() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let mut script = removal(&done);
    script.push(expect(
        Method::PATCH,
        OBJECT,
        200,
        serde_json::to_value(client(&["api:read"])).unwrap(),
    ));
    let (kube, server) = api_server(script);
    let ctx = context(kube, &provider.issuer, policy("15m"));
    reconcile(Arc::new(being_deleted(&done)), ctx)
        .await
        .expect("cleaned up");
    let received = server.await.unwrap();
    assert_eq!(
        received[5].1,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]),
        "only our finalizer is removed, and only if it is still ours"
    );

    let (id, secret) = id_and_secret(&done.credentials);
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Err("invalid_client".to_owned())
    );
}

#[tokio::test]
async fn a_provider_outage_during_deletion_keeps_the_finalizer_and_everything_else() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    drop(provider);
    let (kube, server) = api_server(vec![expect(
        Method::GET,
        REGISTRATION,
        200,
        secret_answer(&done.registration),
    )]);
    let ctx = context(kube, "http://127.0.0.1:9", policy("15m"));
    let error = reconcile(Arc::new(being_deleted(&done)), ctx)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("provider: the provider is unavailable"),
        "{error}"
    );
    let received = server.await.unwrap();
    assert_eq!(
        received.len(),
        1,
        "no Secret deleted, no finalizer removed: {received:?}"
    );
}

fn summaries(kube: Client, issuer: &str, clients: Vec<AuthClient>) -> Arc<Summaries> {
    let ctx = context(kube, issuer, policy("15m"));
    let (store, mut writer) = reflector::store();
    ready(&mut writer, clients);
    std::mem::forget(writer);
    Arc::new(Summaries {
        ctx,
        clients: store,
    })
}

const SERVER_STATUS: &str =
    "/apis/auth.nauthera.io/v1alpha1/namespaces/security/authservers/production-server/status";
const POLICY_STATUS: &str = "/apis/auth.nauthera.io/v1alpha1/namespaces/security/authpolicies/backend-services-policy/status";

#[tokio::test]
async fn a_server_reports_its_provider_reachable_and_the_policies_it_selects() {
    let provider = TestProvider::start();
    let (kube, api) = api_server(vec![expect(
        Method::PATCH,
        SERVER_STATUS,
        200,
        serde_json::to_value(server(&provider.issuer)).unwrap(),
    )]);
    let summaries = summaries(kube, &provider.issuer, vec![client(&["api:read"])]);
    reconcile_server(Arc::new(server(&provider.issuer)), summaries)
        .await
        .expect("summarised");
    let status = &api.await.unwrap()[0].1["status"];
    assert_eq!(status["conditions"][0]["type"], "ProviderReachable");
    assert_eq!(status["conditions"][0]["status"], "True");
    assert_eq!(
        status["registrationEndpoint"],
        format!("{}/reg", provider.issuer)
    );
    assert_eq!(
        status["policies"],
        json!(["security/backend-services-policy"])
    );
    assert_eq!(status["clients"], 1);
}

#[tokio::test]
async fn an_unreachable_provider_is_reported_on_its_server_and_written_once() {
    let issuer = "http://127.0.0.1:9";
    let (kube, api) = api_server(vec![expect(
        Method::PATCH,
        SERVER_STATUS,
        200,
        serde_json::to_value(server(issuer)).unwrap(),
    )]);
    reconcile_server(
        Arc::new(server(issuer)),
        summaries(kube, issuer, Vec::new()),
    )
    .await
    .expect("summarised");
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

    // The same finding again writes nothing.
    let mut reported = server(issuer);
    reported.status = Some(status);
    let (kube, api) = api_server(Vec::new());
    reconcile_server(Arc::new(reported), summaries(kube, issuer, Vec::new()))
        .await
        .expect("summarised");
    assert!(api.await.unwrap().is_empty());
}

#[tokio::test]
async fn a_policy_counts_the_clients_it_governs_and_those_breaking_its_rules() {
    let issuer = "http://127.0.0.1:9";
    let mut breaking = client(&["admin:all"]);
    breaking.metadata.name = Some("inventory-sync".to_owned());
    let (kube, api) = api_server(vec![expect(
        Method::PATCH,
        POLICY_STATUS,
        200,
        serde_json::to_value(policy("15m")).unwrap(),
    )]);
    let summaries = summaries(kube, issuer, vec![client(&["api:read"]), breaking]);
    reconcile_policy(Arc::new(policy("15m")), summaries)
        .await
        .expect("summarised");
    let status = &api.await.unwrap()[0].1["status"];
    assert_eq!(
        (
            status["governedClients"].clone(),
            status["compliantClients"].clone(),
            status["violatingClients"].clone()
        ),
        (json!(2), json!(1), json!(1))
    );
    assert_eq!(
        status["conditions"][0]["message"],
        "governs 2 clients: 1 compliant, 1 breaking its rules"
    );
}

#[tokio::test]
async fn a_client_that_moves_to_another_server_leaves_the_old_provider_for_the_new() {
    let old_provider = TestProvider::start();
    let done = provision(&old_provider).await;
    let new_provider = TestProvider::start();
    let echo = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    let (kube, server) = api_server(vec![
        expect(
            Method::GET,
            REGISTRATION,
            200,
            secret_answer(&done.registration),
        ),
        event(),
        expect(Method::GET, INITIAL_TOKEN, 200, initial_token_secret()),
        expect(Method::PATCH, REGISTRATION, 200, echo.clone()),
        event(),
        expect(
            Method::GET,
            CREDENTIALS,
            200,
            secret_answer(&done.credentials),
        ),
        expect(Method::PATCH, CREDENTIALS, 200, echo),
        status_patch(),
    ]);
    // Same server name, a new provider behind it.
    let ctx = context(kube, &new_provider.issuer, policy("15m"));
    reconcile(Arc::new(provisioned_client(&done)), ctx)
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    assert_eq!(received[1].1["reason"], "Moved");

    let (old_id, old_secret) = id_and_secret(&done.credentials);
    assert_eq!(
        old_provider
            .client_credentials(&old_id, &old_secret, "api:read")
            .await,
        Err("invalid_client".to_owned()),
        "gone from the old provider"
    );
    let credentials = &received[6].1;
    assert_eq!(decoded(credentials, "issuer_url"), new_provider.issuer);
    let (id, secret) = id_and_secret(credentials);
    assert_eq!(
        new_provider
            .client_credentials(&id, &secret, "api:read")
            .await,
        Ok(900),
        "working at the new one"
    );
}

#[tokio::test]
async fn a_renamed_secret_is_written_under_the_new_name_and_the_old_one_removed() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let mut renamed = provisioned_client(&done);
    renamed.spec.secret_name = Some("orders-credentials".to_owned());
    let mut old = secret_answer(&done.credentials);
    old["metadata"]["ownerReferences"] = done.credentials["metadata"]["ownerReferences"].clone();
    let new_path = "/api/v1/namespaces/shop/secrets/orders-credentials";
    let echo = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    let (kube, server) = api_server(vec![
        expect(
            Method::GET,
            REGISTRATION,
            200,
            secret_answer(&done.registration),
        ),
        expect(Method::GET, new_path, 404, not_found()),
        expect(Method::PATCH, new_path, 200, echo),
        expect(Method::GET, CREDENTIALS, 200, old),
        expect(
            Method::DELETE,
            CREDENTIALS,
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
        status_patch(),
    ]);
    let ctx = context(kube, &provider.issuer, policy("15m"));
    reconcile(Arc::new(renamed), ctx).await.expect("reconciled");
    let received = server.await.unwrap();
    assert_eq!(
        decoded(&received[2].1, "client_id"),
        decoded(&done.credentials, "client_id"),
        "same credentials, new name"
    );
    assert_eq!(
        received[5].1["status"]["clientSecretRef"]["name"],
        "orders-credentials"
    );
}
