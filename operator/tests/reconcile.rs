//! Reconciling AuthClients at the level of the Kubernetes API contract: kube's mock
//! service stands in for the API server and checks every request, in order; the OIDC
//! provider is a real one on loopback, asked afterwards what it holds. Which requests are
//! sent when a client is created, unchanged, changed by a policy, refused, withheld after
//! an accident, revoked, deleted, moved, renamed, pointed at a Secret that is not its
//! own, and when the provider is down, lost the client, refuses, or drifted.

mod common;

use common::mock_api::{api_server, expect, not_found};
use common::world::{OPERATOR_NAMESPACE, context, namespace, stores};

use std::sync::Arc;
use std::time::Duration;

use common::{INITIAL_ACCESS_TOKEN, TestProvider};
use http::Method;
use kube::Client;
use nauthera_operator::context::Context;
use nauthera_operator::reconcile::{FINALIZER, reconcile};
use nauthera_shared::resources::{
    AuthClient, AuthClientStatus, AuthPolicy, AuthServer, ViolationResponse,
};
use serde_json::{Value, json};

const UID: &str = "6f1c1c6e-0000-4000-8000-000000000001";
const HOUR: Duration = Duration::from_secs(3600);

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

/// A context where the operator's namespace exists, with these policies.
fn ctx_with(
    kube: Client,
    issuer: &str,
    policies: Vec<AuthPolicy>,
    resync: Duration,
) -> Arc<Context> {
    let world = stores(
        vec![server(issuer)],
        policies,
        vec![namespace(OPERATOR_NAMESPACE, &[]), namespace("shop", &[])],
        Vec::new(),
    );
    context(kube, world, resync)
}

fn ctx(kube: Client, issuer: &str, policy: AuthPolicy) -> Arc<Context> {
    ctx_with(kube, issuer, vec![policy], HOUR)
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

fn echo() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
}

fn deleted() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})
}

const REGISTRATION: &str = "/api/v1/namespaces/nauthera-system/secrets/nauthera-registration-6f1c1c6e-0000-4000-8000-000000000001";
const RECORDS: &str = "/api/v1/namespaces/nauthera-system/secrets";
const INITIAL_TOKEN: &str = "/api/v1/namespaces/security/secrets/dcr-initial-token";
const SECRETS: &str = "/api/v1/namespaces/shop/secrets";
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

fn condition<'a>(status: &'a AuthClientStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
    let condition = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (
        condition.status.as_str(),
        condition.reason.as_str(),
        condition.message.as_str(),
    )
}

/// The data a record write sends: one JSON patch that replaces it whole.
fn data_in(body: &Value) -> &Value {
    assert_eq!(body[0]["op"], "add", "{body}");
    assert_eq!(body[0]["path"], "/data", "{body}");
    &body[0]["value"]
}

/// The record as the API server holds it after the intent was created and its data then
/// replaced.
fn record_from(intent: &Value, data_patch: &Value) -> Value {
    let mut record = intent.clone();
    record["data"] = data_in(data_patch).clone();
    record
}

/// The status a status patch sends: one JSON patch that replaces it whole.
fn status_in(body: &Value) -> &Value {
    assert_eq!(body[0]["op"], "add", "{body}");
    assert_eq!(body[0]["path"], "/status", "{body}");
    &body[0]["value"]
}

fn sent_status(body: &Value) -> AuthClientStatus {
    serde_json::from_value(status_in(body).clone()).unwrap()
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
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        expect(Method::GET, INITIAL_TOKEN, 200, initial_token_secret()),
        expect(Method::POST, RECORDS, 201, echo()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        expect(Method::POST, SECRETS, 201, echo()),
        status_patch(),
        event(),
    ]);
    let ctx = ctx(kube, &provider.issuer, policy("15m"));
    reconcile(Arc::new(client(&["api:read"])), ctx)
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    let body = |index: usize| received[index].1.clone();
    let intent = body(3);
    assert!(
        !decoded(&intent, "registering_since").is_empty()
            && intent["data"].get("client_id").is_none(),
        "the intent is recorded before the provider is asked: {intent}"
    );
    let ready = body(7);
    assert_eq!(ready["reason"], "Ready");
    assert!(
        ready["note"]
            .as_str()
            .unwrap()
            .starts_with("registered at "),
        "one event says where it was registered and where the credentials are: {ready}"
    );
    Provisioned {
        registration: record_from(&intent, &body(4)),
        credentials: body(5),
        status: sent_status(&body(6)),
    }
}

#[tokio::test]
async fn a_compliant_client_is_registered_recorded_first_and_gets_working_credentials() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;

    let credentials = &done.credentials;
    assert_eq!(
        credentials["metadata"]["ownerReferences"][0]["uid"], UID,
        "owned by the AuthClient"
    );
    let (client_id, secret) = id_and_secret(credentials);
    assert_eq!(decoded(credentials, "issuer_url"), provider.issuer);
    assert!(
        credentials["data"]
            .get("registration_access_token")
            .is_none(),
        "the team never sees the registration token"
    );
    let record = &done.registration;
    assert!(!decoded(record, "registration_access_token").is_empty());
    assert!(
        record["data"].get("registering_since").is_none(),
        "the answer recorded, the intent is done"
    );
    let held = provider.registrations().await;
    assert_eq!(
        held[0].software_id.as_deref(),
        Some(UID),
        "findable by its AuthClient"
    );
    assert_eq!(decoded(record, "client_id"), client_id);
    assert_eq!(
        record["metadata"]["finalizers"],
        json!(["auth.nauthera.io/registration-record"]),
        "the record is guarded against deletion by anyone but the operator"
    );
    assert_eq!(
        done.status
            .effective
            .as_ref()
            .unwrap()
            .access_token_ttl
            .unwrap()
            .to_string(),
        "15m",
        "what the provider was given is the status's effective settings"
    );
    assert_eq!(
        provider
            .client_credentials(&client_id, &secret, "api:read")
            .await,
        Ok(900),
        "working credentials, with the policy's 15m tokens"
    );
    assert_eq!(provider.clients().await, vec![client_id.clone()]);

    assert_eq!(condition(&done.status, "Ready").0, "True");
    assert_eq!(condition(&done.status, "Provisioned").0, "True");
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

/// A Secret as the API server answers it: sent body, with server-set fields.
fn stored(sent: &Value) -> Value {
    let mut answer = sent.clone();
    answer["metadata"]["uid"] = json!("secret-uid");
    answer["metadata"]["resourceVersion"] = json!("7");
    answer
}

/// The two GETs every reconcile of a provisioned client starts with.
fn reads(done: &Provisioned) -> Vec<common::mock_api::Expect> {
    vec![
        expect(Method::GET, REGISTRATION, 200, stored(&done.registration)),
        expect(Method::GET, CREDENTIALS, 200, stored(&done.credentials)),
    ]
}

#[tokio::test]
async fn a_reconcile_with_nothing_to_change_writes_nothing_anywhere() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let before = provider.requests().await;
    let (kube, server) = api_server(reads(&done));
    reconcile(
        Arc::new(provisioned_client(&done)),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .expect("reconciled");
    server.await.unwrap();
    assert_eq!(
        provider.requests().await,
        before,
        "not even a read: none is due"
    );
}

#[tokio::test]
async fn a_policy_ttl_change_is_one_update_at_the_provider_and_one_status_write_nothing_else() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let mut script = reads(&done);
    script.push(status_patch());
    let (kube, server) = api_server(script);
    reconcile(
        Arc::new(provisioned_client(&done)),
        ctx(kube, &provider.issuer, policy("5m")),
    )
    .await
    .expect("reconciled");
    let received = server.await.unwrap();
    assert_eq!(
        status_in(&received[2].1)["effective"]["accessTokenTTL"],
        "5m"
    );
    let requests = provider.requests().await;
    assert_eq!((requests.put, requests.get), (1, 0), "one write, no read");

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
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        status_patch(),
        event(),
    ]);
    reconcile(
        Arc::new(client(&["admin:all"])),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .expect("reconciled");
    let received = server.await.unwrap();
    let status = sent_status(&received[2].1);
    let (compliant, reason, message) = condition(&status, "PolicyCompliant");
    assert_eq!((compliant, reason), ("False", "PolicyViolation"));
    assert_eq!(
        message,
        "scope \"admin:all\" is not allowed by policy security/backend-services-policy (allowedScopes: api:read, api:write)"
    );
    assert_eq!(condition(&status, "Provisioned").0, "False");
    assert_eq!(status.client_id, None);
    assert_eq!(received[3].1["type"], "Warning");
    assert!(provider.clients().await.is_empty());
}

/// Reconciles a provisioned client in a world changed by `accident`, and checks that its
/// registration and credentials are kept exactly as they were, with the reason in status.
async fn kept_through(accident: &str, policies: Vec<AuthPolicy>, expected_reason: &str) {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let mut script = reads(&done);
    script.extend([status_patch(), event()]);
    let (kube, server) = api_server(script);
    let ctx = ctx_with(kube, &provider.issuer, policies, HOUR);
    reconcile(Arc::new(provisioned_client(&done)), ctx)
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    let status = sent_status(&received[2].1);
    let (ready, reason, message) = condition(&status, "Ready");
    assert_eq!((ready, reason), ("False", expected_reason), "{accident}");
    assert!(
        message.contains("are kept as they were"),
        "{accident}: {message}"
    );
    assert_eq!(condition(&status, "Provisioned").0, "True", "{accident}");
    let (id, secret) = id_and_secret(&done.credentials);
    assert_eq!(status.client_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        status
            .client_secret_ref
            .as_ref()
            .map(|secret| secret.name.as_str()),
        Some("order-service-client-secret")
    );
    assert_eq!(received[3].1["type"], "Warning", "{accident}");
    assert_eq!(provider.clients().await, vec![id.clone()], "{accident}");
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Ok(900),
        "{accident}: the credentials keep working, as they were"
    );
    assert_eq!(
        provider.requests().await.writes(),
        1,
        "{accident}: only the registration"
    );
}

#[tokio::test]
async fn a_deleted_policy_keeps_the_registration_and_its_secret() {
    kept_through("the policy was deleted", Vec::new(), "NoGoverningPolicy").await;
}

#[tokio::test]
async fn a_broken_policy_edit_keeps_the_registration_and_its_secret() {
    let mut broken = policy("15m");
    broken.spec.token.as_mut().unwrap().access_token_ttl = Some("soon".to_owned());
    kept_through(
        "the policy no longer parses",
        vec![broken],
        "PolicyViolation",
    )
    .await;
}

#[tokio::test]
async fn a_narrowed_policy_keeps_the_registration_without_the_forbidden_change() {
    let mut narrowed = policy("5m");
    narrowed.spec.allowed_scopes = Some(vec!["api:write".to_owned()]);
    kept_through(
        "the policy stopped allowing api:read",
        vec![narrowed],
        "PolicyViolation",
    )
    .await;
}

#[tokio::test]
async fn a_revoke_policy_removes_a_violating_registration_and_its_secrets() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let mut script = reads(&done);
    let mut ours = stored(&done.credentials);
    ours["metadata"]["ownerReferences"] = done.credentials["metadata"]["ownerReferences"].clone();
    script.extend([
        expect(Method::GET, CREDENTIALS, 200, ours),
        expect(Method::DELETE, CREDENTIALS, 200, deleted()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        expect(Method::DELETE, REGISTRATION, 200, deleted()),
        event(),
        status_patch(),
        event(),
    ]);
    // Then a reconcile that still reads the status from before the revoke (the store
    // lags the operator's own write): nothing is there, and nothing is "lost".
    script.extend([
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        status_patch(),
        expect(Method::PATCH, &format!("{EVENTS}/*"), 200, json!({})),
    ]);
    let (kube, server) = api_server(script);
    let mut revoking = policy("15m");
    revoking.spec.allowed_scopes = Some(vec!["api:write".to_owned()]);
    revoking.spec.violation_response = ViolationResponse::Revoke;
    let ctx = ctx(kube, &provider.issuer, revoking);
    for _ in 0..2 {
        reconcile(Arc::new(provisioned_client(&done)), Arc::clone(&ctx))
            .await
            .expect("reconciled");
    }
    drop(ctx);
    let received = server.await.unwrap();
    let stale = sent_status(&received[11].1);
    let (_, reason, _) = condition(&stale, "Ready");
    assert_ne!(reason, "RegistrationRecordLost", "{stale:?}");
    assert_eq!(stale.client_id, None);
    assert_eq!(
        received[4].1,
        json!({"metadata": {"finalizers": null}}),
        "the record's finalizer released, by the operator only"
    );
    assert_eq!(received[6].1["reason"], "Revoked");
    let status = sent_status(&received[7].1);
    assert_eq!(condition(&status, "Provisioned").0, "False");
    assert_eq!(status.client_id, None);
    assert!(provider.clients().await.is_empty());
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
    let mut ours = stored(&done.credentials);
    ours["metadata"]["ownerReferences"] = done.credentials["metadata"]["ownerReferences"].clone();
    let mut script = reads(&done);
    script.extend([
        expect(Method::GET, CREDENTIALS, 200, ours),
        expect(Method::DELETE, CREDENTIALS, 200, deleted()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        expect(Method::DELETE, REGISTRATION, 200, deleted()),
        expect(
            Method::PATCH,
            OBJECT,
            200,
            serde_json::to_value(client(&["api:read"])).unwrap(),
        ),
    ]);
    let (kube, server) = api_server(script);
    let before = provider.requests().await;
    reconcile(
        Arc::new(being_deleted(&done)),
        // Every registration due for a read.
        ctx_with(kube, &provider.issuer, vec![policy("15m")], Duration::ZERO),
    )
    .await
    .expect("cleaned up");
    let during = provider.requests().await;
    assert_eq!(
        (during.get - before.get, during.delete - before.delete),
        (0, 1),
        "one delete at the provider, and no read first (a read is due, but not for a client on its way out)"
    );
    let received = server.await.unwrap();
    assert_eq!(
        received[6].1,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]),
        "only our finalizer is removed, and only if it is still ours"
    );
    assert!(provider.clients().await.is_empty());
}

#[tokio::test]
async fn deletion_policy_orphan_releases_the_secret_and_the_record_and_leaves_the_registration() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let mut ours = stored(&done.credentials);
    ours["metadata"]["ownerReferences"] = done.credentials["metadata"]["ownerReferences"].clone();
    let mut script = reads(&done);
    script.extend([
        expect(Method::GET, CREDENTIALS, 200, ours),
        expect(Method::PATCH, CREDENTIALS, 200, echo()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        expect(Method::DELETE, REGISTRATION, 200, deleted()),
        event(),
        expect(
            Method::PATCH,
            OBJECT,
            200,
            serde_json::to_value(client(&["api:read"])).unwrap(),
        ),
    ]);
    let (kube, server) = api_server(script);
    let mut orphaned = being_deleted(&done);
    orphaned.spec.deletion_policy = nauthera_shared::resources::DeletionPolicy::Orphan;
    let before = provider.requests().await;
    reconcile(
        Arc::new(orphaned),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .expect("released");
    let received = server.await.unwrap();
    let release = &received[3].1["metadata"];
    assert!(
        release.get("ownerReferences") == Some(&Value::Null),
        "the Secret is no longer owned, so the garbage collector leaves it: {release}"
    );
    assert_eq!(received[6].1["reason"], "Orphaned");
    let (client_id, secret) = id_and_secret(&done.credentials);
    assert!(
        received[6].1["note"].as_str().unwrap().contains(&client_id),
        "the event names what was left"
    );
    assert_eq!(
        provider.requests().await,
        before,
        "the provider was not asked anything"
    );
    assert!(provider.authenticates(&client_id, &secret).await);
}

#[tokio::test]
async fn a_registration_to_take_over_that_is_missing_is_never_replaced_by_a_new_one() {
    let provider = TestProvider::start();
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        expect(
            Method::GET,
            "/api/v1/namespaces/shop/secrets/legacy",
            404,
            not_found(),
        ),
        status_patch(),
        event(),
    ]);
    let mut legacy = client(&["api:read"]);
    legacy.spec.existing_registration = Some(nauthera_shared::resources::ExistingRegistration {
        secret_name: "legacy".to_owned(),
    });
    reconcile(Arc::new(legacy), ctx(kube, &provider.issuer, policy("15m")))
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    let status = sent_status(&received[3].1);
    let (ready, reason, message) = condition(&status, "Ready");
    assert_eq!((ready, reason), ("False", "ExistingRegistrationMissing"));
    assert!(
        message.contains("spec.existingRegistration.secretName"),
        "{message}"
    );
    assert_eq!(provider.requests().await.writes(), 0, "nothing registered");
}

#[tokio::test]
async fn a_registration_to_take_over_elsewhere_than_the_issuer_is_refused_unread() {
    let provider = TestProvider::start();
    let elsewhere = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "legacy", "namespace": "shop"},
        "data": {
            "client_id": base64("legacy-id"),
            "registration_client_uri": base64("http://169.254.169.254/latest/meta-data"),
            "registration_access_token": base64("their-token"),
        }
    });
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        expect(
            Method::GET,
            "/api/v1/namespaces/shop/secrets/legacy",
            200,
            elsewhere,
        ),
        status_patch(),
        event(),
    ]);
    let mut legacy = client(&["api:read"]);
    legacy.spec.existing_registration = Some(nauthera_shared::resources::ExistingRegistration {
        secret_name: "legacy".to_owned(),
    });
    reconcile(Arc::new(legacy), ctx(kube, &provider.issuer, policy("15m")))
        .await
        .expect("reconciled");
    let received = server.await.unwrap();
    let status = sent_status(&received[3].1);
    let (ready, reason, message) = condition(&status, "Ready");
    assert_eq!((ready, reason), ("False", "ExistingRegistrationRefused"));
    assert!(message.contains("registration_client_uri"), "{message}");
    assert!(
        !message.contains("their-token"),
        "never the token: {message}"
    );
}

#[tokio::test]
async fn a_provider_outage_during_deletion_keeps_the_finalizer_and_everything_else() {
    let mut provider = TestProvider::start();
    let done = provision(&provider).await;
    provider.stop();
    let mut script = reads(&done);
    script.extend([status_patch(), event()]);
    let (kube, server) = api_server(script);
    let error = reconcile(
        Arc::new(being_deleted(&done)),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("provider: the provider is unavailable"),
        "{error}"
    );
    let received = server.await.unwrap();
    let status = sent_status(&received[2].1);
    let (_, reason, message) = condition(&status, "Ready");
    assert_eq!(reason, "ProviderUnavailable");
    assert!(message.starts_with("deletion waits: "), "{message}");
    assert!(
        received
            .iter()
            .all(|(request, _)| !request.starts_with("DELETE")
                && !request.contains("/authclients/order-service ")),
        "no Secret deleted, no finalizer removed: {received:?}"
    );
}

#[tokio::test]
async fn a_refused_delete_keeps_the_finalizer_and_says_why() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    provider.refuse_management(403).await;
    let mut script = reads(&done);
    script.extend([status_patch(), event()]);
    let (kube, server) = api_server(script);
    let error = reconcile(
        Arc::new(being_deleted(&done)),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("403"), "{error}");
    let received = server.await.unwrap();
    assert_eq!(
        condition(&sent_status(&received[2].1), "Ready").1,
        "ProviderForbidden"
    );
    provider.refuse_management(0).await;
    assert_eq!(
        provider.clients().await.len(),
        1,
        "not forgotten: still there"
    );
}

#[tokio::test]
async fn a_secret_the_team_owns_is_never_touched() {
    let provider = TestProvider::start();
    let theirs = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "order-service-client-secret", "namespace": "shop", "resourceVersion": "3"},
        "data": {"password": base64("hunter2")}
    });
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(Method::GET, CREDENTIALS, 200, theirs),
        status_patch(),
        event(),
    ]);
    reconcile(
        Arc::new(client(&["api:read"])),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .expect("reconciled");
    let received = server.await.unwrap();
    let status = sent_status(&received[2].1);
    let (ready, reason, message) = condition(&status, "Ready");
    assert_eq!((ready, reason), ("False", "SecretConflict"));
    assert!(message.contains("left untouched"), "{message}");
    assert!(
        provider.clients().await.is_empty(),
        "nothing registered whose credentials could not be delivered"
    );
}

#[tokio::test]
async fn without_the_operators_namespace_nothing_is_registered_and_the_status_says_why() {
    let provider = TestProvider::start();
    let (kube, api) = api_server(vec![
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        status_patch(),
        event(),
    ]);
    let world = stores(
        vec![server(&provider.issuer)],
        vec![policy("15m")],
        vec![namespace("shop", &[])],
        Vec::new(),
    );
    reconcile(Arc::new(client(&["api:read"])), context(kube, world, HOUR))
        .await
        .expect("reconciled");
    let received = api.await.unwrap();
    let status = sent_status(&received[2].1);
    let (_, reason, message) = condition(&status, "Ready");
    assert_eq!(reason, "OperatorNamespaceMissing");
    assert!(message.contains("nauthera-system"), "{message}");
    assert!(provider.clients().await.is_empty());
}

#[tokio::test]
async fn a_registration_that_cannot_be_recorded_is_taken_back_at_once() {
    let provider = TestProvider::start();
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "secrets is forbidden"});
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        expect(Method::GET, INITIAL_TOKEN, 200, initial_token_secret()),
        expect(Method::POST, RECORDS, 201, echo()),
        expect(Method::PATCH, REGISTRATION, 403, forbidden),
        status_patch(),
        event(),
    ]);
    let error = reconcile(
        Arc::new(client(&["api:read"])),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("removed from the provider again"),
        "{error}"
    );
    let received = server.await.unwrap();
    assert_eq!(
        condition(&sent_status(&received[5].1), "Ready").1,
        "CannotRecordRegistration"
    );
    assert!(provider.clients().await.is_empty(), "no orphan left behind");
    let requests = provider.requests().await;
    assert_eq!((requests.post, requests.delete), (1, 1));
}

#[tokio::test]
async fn when_not_even_the_intent_can_be_recorded_nothing_is_registered() {
    let provider = TestProvider::start();
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "secrets is forbidden"});
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 404, not_found()),
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        expect(Method::GET, INITIAL_TOKEN, 200, initial_token_secret()),
        expect(Method::POST, RECORDS, 403, forbidden),
        status_patch(),
        event(),
    ]);
    let error = reconcile(
        Arc::new(client(&["api:read"])),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("nothing was registered"),
        "{error}"
    );
    server.await.unwrap();
    assert_eq!(provider.requests().await.post, 0);
}

#[tokio::test]
async fn a_registration_begun_but_never_recorded_is_reported_before_registering_again() {
    let provider = TestProvider::start();
    let intent = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "nauthera-registration-6f1c1c6e-0000-4000-8000-000000000001", "namespace": OPERATOR_NAMESPACE,
                     "finalizers": ["auth.nauthera.io/registration-record"]},
        "data": {"registering_since": base64("2026-11-23T10:00:00Z")}
    });
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 200, intent),
        expect(Method::GET, CREDENTIALS, 404, not_found()),
        expect(Method::GET, INITIAL_TOKEN, 200, initial_token_secret()),
        event(),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        expect(Method::POST, SECRETS, 201, echo()),
        status_patch(),
        event(),
    ]);
    let ctx = ctx(kube, &provider.issuer, policy("15m"));
    reconcile(Arc::new(client(&["api:read"])), Arc::clone(&ctx))
        .await
        .expect("reconciled");
    let metrics = ctx.metrics.render();
    drop(ctx);
    let received = server.await.unwrap();
    assert_eq!(received[3].1["reason"], "PossibleOrphan");
    let note = received[3].1["note"].as_str().unwrap();
    assert!(
        note.contains("2026-11-23T10:00:00Z") && note.contains(UID),
        "{note}"
    );
    assert!(
        metrics.contains("nauthera_possible_orphans_total 1"),
        "{metrics}"
    );
    assert_eq!(provider.clients().await.len(), 1);
}

#[tokio::test]
async fn a_provider_that_lost_the_client_gets_it_again_with_an_event_and_new_credentials() {
    let mut provider = TestProvider::start();
    let done = provision(&provider).await;
    provider.restart_empty();
    let mut script = reads(&done);
    script.extend([
        expect(Method::GET, INITIAL_TOKEN, 200, initial_token_secret()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        event(),
        expect(Method::PATCH, CREDENTIALS, 200, echo()),
        status_patch(),
    ]);
    let (kube, server) = api_server(script);
    let ctx = ctx_with(
        kube,
        &provider.issuer,
        vec![policy("15m")],
        Duration::from_millis(1),
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    reconcile(Arc::new(provisioned_client(&done)), Arc::clone(&ctx))
        .await
        .expect("reconciled");
    let metrics = ctx.metrics.render();
    drop(ctx);
    let received = server.await.unwrap();
    assert_eq!(
        decoded(&json!({"data": data_in(&received[3].1)}), "client_id"),
        decoded(&done.registration, "client_id"),
        "the intent keeps the registration it replaces until the new one is recorded"
    );
    assert_eq!(received[5].1["reason"], "RegistrationLost");
    let (old_id, _) = id_and_secret(&done.credentials);
    let (new_id, new_secret) = id_and_secret(&received[6].1);
    assert_ne!(new_id, old_id);
    assert_eq!(
        received[6].1["metadata"]["resourceVersion"], "7",
        "the Secret updated in place, guarded by what was read"
    );
    assert_eq!(provider.clients().await, vec![new_id.clone()]);
    assert_eq!(
        provider
            .client_credentials(&new_id, &new_secret, "api:read")
            .await,
        Ok(900)
    );
    assert!(
        metrics.contains("nauthera_registrations_lost_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_provider_that_refuses_a_read_is_never_registered_again() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    provider.refuse_management(403).await;
    let mut script = reads(&done);
    script.extend([status_patch(), event()]);
    let (kube, server) = api_server(script);
    let ctx = ctx_with(
        kube,
        &provider.issuer,
        vec![policy("15m")],
        Duration::from_millis(1),
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    reconcile(Arc::new(provisioned_client(&done)), ctx)
        .await
        .unwrap_err();
    let received = server.await.unwrap();
    let status = sent_status(&received[2].1);
    assert_eq!(condition(&status, "Ready").1, "ProviderForbidden");
    assert_eq!(
        condition(&status, "Provisioned").0,
        "True",
        "still registered"
    );
    assert_eq!(provider.requests().await.post, 1, "no second registration");
}

#[tokio::test]
async fn settings_changed_at_the_provider_are_put_back() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    // Someone edits the client at the provider: an hour-long token.
    let driver = nauthera_operator::provider::dcr::DcrDriver::new(reqwest::Client::new());
    let management = nauthera_operator::provider::Management {
        registration_client_uri: decoded(&done.registration, "registration_client_uri"),
        registration_access_token: decoded(&done.registration, "registration_access_token").into(),
    };
    let mut edited = nauthera_operator::provider::ClientMetadata::from_settings(
        "Order service",
        done.status.effective.as_ref().unwrap(),
    );
    edited.nauthera_access_token_ttl = Some(3600);
    let (id, secret) = id_and_secret(&done.credentials);
    driver.update(&management, &id, &edited).await.unwrap();
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Ok(3600)
    );

    let mut script = reads(&done);
    script.push(event());
    let (kube, server) = api_server(script);
    let ctx = ctx_with(
        kube,
        &provider.issuer,
        vec![policy("15m")],
        Duration::from_millis(1),
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    reconcile(Arc::new(provisioned_client(&done)), Arc::clone(&ctx))
        .await
        .expect("reconciled");
    let metrics = ctx.metrics.render();
    drop(ctx);
    let received = server.await.unwrap();
    assert_eq!(received[2].1["reason"], "DriftRepaired");
    assert!(
        received[2].1["note"]
            .as_str()
            .unwrap()
            .contains("put back nauthera_access_token_ttl"),
        "{}",
        received[2].1["note"]
    );
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Ok(900)
    );
    assert!(
        metrics.contains("nauthera_drift_repaired_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_provider_that_keeps_no_unknown_metadata_sees_no_write_when_nothing_changed() {
    let provider = TestProvider::start_with(common::Flavour::DropsUnknown, 0);
    let done = provision(&provider).await;
    let (kube, server) = api_server(reads(&done));
    let ctx = ctx_with(
        kube,
        &provider.issuer,
        vec![policy("15m")],
        Duration::from_millis(1),
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    reconcile(Arc::new(provisioned_client(&done)), ctx)
        .await
        .expect("reconciled");
    server.await.unwrap();
    let requests = provider.requests().await;
    assert_eq!(
        (requests.post, requests.get, requests.put),
        (1, 1, 0),
        "a read at resync, and no write"
    );
}

#[tokio::test]
async fn a_client_that_moves_to_another_provider_registers_there_and_leaves_the_old_after_the_overlap()
 {
    let old_provider = TestProvider::start();
    let done = provision(&old_provider).await;
    let new_provider = TestProvider::start();
    let mut script = reads(&done);
    script.extend([
        expect(Method::GET, INITIAL_TOKEN, 200, initial_token_secret()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        expect(Method::PATCH, REGISTRATION, 200, echo()),
        event(),
        expect(Method::PATCH, CREDENTIALS, 200, echo()),
        status_patch(),
    ]);
    let (kube, server) = api_server(script);
    // Same server name, a new provider behind it.
    reconcile(
        Arc::new(provisioned_client(&done)),
        ctx(kube, &new_provider.issuer, policy("15m")),
    )
    .await
    .expect("reconciled");
    let received = server.await.unwrap();
    let recorded = json!({"data": data_in(&received[4].1)});
    let (old_id, old_secret) = id_and_secret(&done.credentials);
    assert_eq!(
        decoded(&recorded, "retired_client_id"),
        old_id,
        "the old registration is recorded as retiring"
    );
    assert!(
        !decoded(&recorded, "retire_after").is_empty(),
        "after the overlap window"
    );
    assert_eq!(received[5].1["reason"], "Moved");
    assert_eq!(
        old_provider
            .client_credentials(&old_id, &old_secret, "api:read")
            .await,
        Ok(900),
        "the old credentials keep working until apps read the new ones"
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
    let status = sent_status(&received[7].1);
    let retiring = status
        .rotation
        .and_then(|r| r.retiring)
        .expect("shown in the status");
    assert_eq!(retiring.client_id, old_id);
}

#[tokio::test]
async fn a_renamed_secret_is_written_under_the_new_name_and_the_old_one_removed() {
    let provider = TestProvider::start();
    let done = provision(&provider).await;
    let mut renamed = provisioned_client(&done);
    renamed.spec.secret_name = Some("orders-credentials".to_owned());
    let mut old = stored(&done.credentials);
    old["metadata"]["ownerReferences"] = done.credentials["metadata"]["ownerReferences"].clone();
    let new_path = "/api/v1/namespaces/shop/secrets/orders-credentials";
    let (kube, server) = api_server(vec![
        expect(Method::GET, REGISTRATION, 200, stored(&done.registration)),
        expect(Method::GET, new_path, 404, not_found()),
        expect(Method::POST, SECRETS, 201, echo()),
        expect(Method::GET, CREDENTIALS, 200, old),
        expect(Method::DELETE, CREDENTIALS, 200, deleted()),
        status_patch(),
    ]);
    reconcile(
        Arc::new(renamed),
        ctx(kube, &provider.issuer, policy("15m")),
    )
    .await
    .expect("reconciled");
    let received = server.await.unwrap();
    assert_eq!(
        decoded(&received[2].1, "client_id"),
        decoded(&done.credentials, "client_id"),
        "same credentials, new name"
    );
    assert_eq!(
        status_in(&received[5].1)["clientSecretRef"]["name"],
        "orders-credentials"
    );
}

/// Against a second, independent provider: Glewlwyd issues a new client secret on every
/// update and kills the old one at once, so a policy change must bring the new secret
/// into the credentials Secret in the same reconcile — and a steady client must get no
/// update at all, since each would rotate the app's secret.
mod glewlwyd {
    use super::*;
    use crate::common::glewlwyd::Glewlwyd;

    fn service() -> AuthClient {
        let mut client = client(&["api:read"]);
        // Glewlwyd wants a redirect URI whatever the grant.
        client.spec.redirect_uris = vec!["https://orders.example.com/callback".to_owned()];
        client
    }

    fn token_secret(token: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dcr-initial-token", "namespace": "security"},
               "data": {"token": base64(token)}})
    }

    #[tokio::test]
    async fn a_policy_change_follows_the_new_secret_and_a_steady_client_is_never_updated() {
        let Some(glewlwyd) = Glewlwyd::start() else {
            return;
        };
        let token = glewlwyd.initial_access_token().await;
        let (kube, api) = api_server(vec![
            expect(Method::GET, REGISTRATION, 404, not_found()),
            expect(Method::GET, CREDENTIALS, 404, not_found()),
            expect(Method::GET, INITIAL_TOKEN, 200, token_secret(&token)),
            expect(Method::POST, RECORDS, 201, echo()),
            expect(Method::PATCH, REGISTRATION, 200, echo()),
            expect(Method::POST, SECRETS, 201, echo()),
            status_patch(),
            event(),
        ]);
        reconcile(
            Arc::new(service()),
            ctx(kube, &glewlwyd.issuer, policy("15m")),
        )
        .await
        .expect("registered at Glewlwyd");
        let received = api.await.unwrap();
        let credentials = received[5].1.clone();
        let record = record_from(&received[3].1, &received[4].1);
        let (id, first) = id_and_secret(&credentials);
        assert_eq!(glewlwyd.client_credentials(&id, &first).await, Ok(3600));
        let mut provisioned = service();
        provisioned.status = Some(sent_status(&received[6].1));

        // Steady, and a read at resync: in sync (it keeps neither scope nor lifetimes),
        // so nothing is written anywhere.
        let (kube, api) = api_server(vec![
            expect(Method::GET, REGISTRATION, 200, stored(&record)),
            expect(Method::GET, CREDENTIALS, 200, stored(&credentials)),
        ]);
        let steady = ctx_with(
            kube,
            &glewlwyd.issuer,
            vec![policy("15m")],
            Duration::from_millis(1),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        reconcile(Arc::new(provisioned.clone()), steady)
            .await
            .expect("reconciled");
        api.await.unwrap();
        assert_eq!(
            glewlwyd.client_credentials(&id, &first).await,
            Ok(3600),
            "not updated: the app's secret still works"
        );

        // The policy changes: one update, whose new secret is recorded and handed over.
        let (kube, api) = api_server(vec![
            expect(Method::GET, REGISTRATION, 200, stored(&record)),
            expect(Method::GET, CREDENTIALS, 200, stored(&credentials)),
            expect(Method::PATCH, REGISTRATION, 200, echo()),
            expect(Method::PATCH, CREDENTIALS, 200, echo()),
            status_patch(),
        ]);
        reconcile(
            Arc::new(provisioned),
            ctx(kube, &glewlwyd.issuer, policy("5m")),
        )
        .await
        .expect("updated");
        let received = api.await.unwrap();
        let (same_id, second) = id_and_secret(&received[3].1);
        assert_eq!(same_id, id);
        assert_ne!(second, first, "the new secret Glewlwyd issued");
        assert_eq!(
            decoded(&json!({"data": data_in(&received[2].1)}), "client_secret"),
            second,
            "recorded before it is handed over"
        );
        assert!(glewlwyd.client_credentials(&id, &first).await.is_err());
        assert_eq!(glewlwyd.client_credentials(&id, &second).await, Ok(3600));
    }
}
