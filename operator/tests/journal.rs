//! What a start after a kill does with the registrations the journal holds, at the
//! Kubernetes API contract with a real provider: one its client has no record of becomes
//! the record; one its client no longer needs is deleted at the provider.

mod common;

use common::mock_api::{api_server, expect};
use common::world::{OPERATOR_NAMESPACE, context_journalled, namespace, stores};
use common::{INITIAL_ACCESS_TOKEN, TestProvider};

use std::time::Duration;

use http::Method;
use nauthera_operator::journal::{Begun, Entry, Journal};
use nauthera_operator::provider::ClientMetadata;
use nauthera_operator::provider::dcr::{DcrDriver, http_client};
use nauthera_operator::register::recover_journal;
use nauthera_operator::secrets::StoredRegistration;
use nauthera_shared::resources::AuthClient;
use secrecy::SecretString;
use serde_json::json;

const UID: &str = "6f1c1c6e-0000-4000-8000-000000000002";
const REGISTRATION: &str = "/api/v1/namespaces/nauthera-system/secrets/nauthera-registration-6f1c1c6e-0000-4000-8000-000000000002";

fn client() -> AuthClient {
    serde_json::from_value(json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": "orders", "namespace": "shop", "uid": UID},
        "spec": {"displayName": "orders", "authServerRef": {"name": "server", "namespace": "security"}}
    }))
    .unwrap()
}

/// A registration made at the provider, as the journal would hold it.
async fn journalled(provider: &TestProvider) -> Entry {
    let endpoint = format!("{}/reg", provider.issuer);
    let metadata = ClientMetadata {
        client_name: "orders".into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        response_types: vec![],
        token_endpoint_auth_method: "client_secret_basic".into(),
        scope: "api:read".into(),
        jwks_uri: None,
        nauthera_access_token_ttl: None,
        nauthera_refresh_token_ttl: None,
        nauthera_id_token_ttl: None,
        nauthera_require_pkce: false,
    };
    let registration = DcrDriver::new(http_client().unwrap())
        .register(
            &endpoint,
            Some(&SecretString::from(INITIAL_ACCESS_TOKEN)),
            &metadata,
            UID,
        )
        .await
        .unwrap();
    Entry {
        uid: UID.into(),
        namespace: "shop".into(),
        name: "orders".into(),
        record: StoredRegistration {
            client_id: registration.client_id,
            client_secret: registration.client_secret,
            issuer_url: provider.issuer.clone(),
            management: registration.management,
            retired: None,
        },
    }
}

/// Runs the journal's recovery, as a start would, with `client` in the store, against
/// the mock API server behind `kube`; the metrics it left.
async fn recover_with(kube: kube::Client, dir: &std::path::Path) -> String {
    let world = stores(
        Vec::new(),
        Vec::new(),
        vec![namespace(OPERATOR_NAMESPACE, &[])],
        vec![client()],
    );
    let ctx = context_journalled(kube, world, Duration::from_secs(3600), Some(dir.to_owned()));
    recover_journal(&ctx).await;
    ctx.metrics.render()
}

fn base64(text: &str) -> String {
    serde_json::to_value(k8s_openapi::ByteString(text.as_bytes().to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_registration_its_client_has_no_record_of_becomes_the_record() {
    let provider = TestProvider::start();
    let entry = journalled(&provider).await;
    let dir = tempfile::tempdir().unwrap();
    Journal::new(Some(dir.path().to_owned()))
        .unwrap()
        .write(&entry)
        .unwrap();
    let intent = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "x", "namespace": OPERATOR_NAMESPACE},
        "data": {"registering_since": base64("2026-11-23T10:00:00Z")}});
    let (kube, api) = api_server(vec![
        expect(Method::GET, REGISTRATION, 200, intent),
        expect(
            Method::PATCH,
            REGISTRATION,
            200,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        ),
    ]);
    recover_with(kube, dir.path()).await;
    let received = api.await.unwrap();
    let patch = &received[1].1;
    assert_eq!(patch[0]["path"], "/data", "{patch}");
    let data = &patch[0]["value"];
    let recorded: k8s_openapi::ByteString =
        serde_json::from_value(data["client_id"].clone()).unwrap();
    assert_eq!(
        String::from_utf8(recorded.0).unwrap(),
        entry.record.client_id
    );
    assert!(
        data.get("registering_since").is_none(),
        "the intent is answered"
    );
    assert!(
        Journal::new(Some(dir.path().to_owned()))
            .unwrap()
            .entries()
            .is_empty()
    );
    assert_eq!(
        provider.clients().await,
        vec![entry.record.client_id.clone()]
    );
}

#[tokio::test]
async fn a_registration_superseded_or_of_a_gone_client_is_deleted_with_its_own_token() {
    let provider = TestProvider::start();
    let entry = journalled(&provider).await;
    let newer = journalled(&provider).await;
    let dir = tempfile::tempdir().unwrap();
    Journal::new(Some(dir.path().to_owned()))
        .unwrap()
        .write(&entry)
        .unwrap();
    let record = newer.record.to_secret(&client(), OPERATOR_NAMESPACE);
    let (kube, api) = api_server(vec![expect(
        Method::GET,
        REGISTRATION,
        200,
        serde_json::to_value(record).unwrap(),
    )]);
    recover_with(kube, dir.path()).await;
    api.await.unwrap();
    assert_eq!(
        provider.clients().await,
        vec![newer.record.client_id.clone()],
        "the journalled one is gone, the recorded one stays"
    );
    assert!(
        Journal::new(Some(dir.path().to_owned()))
            .unwrap()
            .entries()
            .is_empty()
    );
}

#[tokio::test]
async fn an_entry_the_api_server_cannot_settle_stays_journalled() {
    let provider = TestProvider::start();
    let entry = journalled(&provider).await;
    let dir = tempfile::tempdir().unwrap();
    Journal::new(Some(dir.path().to_owned()))
        .unwrap()
        .write(&entry)
        .unwrap();
    let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503, "message": "etcd is down"});
    let (kube, api) = api_server(vec![expect(Method::GET, REGISTRATION, 503, unavailable)]);
    recover_with(kube, dir.path()).await;
    api.await.unwrap();
    assert_eq!(
        Journal::new(Some(dir.path().to_owned()))
            .unwrap()
            .entries()
            .len(),
        1
    );
    assert_eq!(
        provider.clients().await.len(),
        1,
        "nothing deleted in doubt"
    );
}

fn begun() -> Begun {
    Begun {
        uid: UID.into(),
        namespace: "shop".into(),
        name: "orders".into(),
        issuer: "https://auth.example.com".into(),
        since: "2026-11-23T10:00:00Z".into(),
    }
}

const SECRETS: &str = "/api/v1/namespaces/nauthera-system/secrets";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

#[tokio::test]
async fn a_registration_begun_and_never_answered_becomes_the_records_intent_which_outlives_the_pod()
{
    let dir = tempfile::tempdir().unwrap();
    Journal::new(Some(dir.path().to_owned()))
        .unwrap()
        .begin(&begun())
        .unwrap();
    let (kube, api) = api_server(vec![
        expect(
            Method::GET,
            REGISTRATION,
            404,
            common::mock_api::not_found(),
        ),
        expect(
            Method::POST,
            SECRETS,
            201,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        ),
    ]);
    let metrics = recover_with(kube, dir.path()).await;
    let received = api.await.unwrap();
    let record = &received[1].1;
    assert_eq!(
        record["metadata"]["name"],
        REGISTRATION.rsplit('/').next().unwrap()
    );
    assert_eq!(
        record["metadata"]["finalizers"],
        json!(["auth.nauthera.io/registration-record"])
    );
    assert_eq!(
        record["data"]["registering_since"],
        base64("2026-11-23T10:00:00Z"),
        "{record}"
    );
    assert!(
        metrics.contains("nauthera_possible_orphans_total 0"),
        "reported by the reconcile that reads the intent, once: {metrics}"
    );
    assert!(
        Journal::new(Some(dir.path().to_owned()))
            .unwrap()
            .begun()
            .is_empty(),
        "the record holds it now"
    );
}

#[tokio::test]
async fn a_registration_begun_whose_intent_cannot_be_recorded_is_reported_and_stays_journalled() {
    let dir = tempfile::tempdir().unwrap();
    Journal::new(Some(dir.path().to_owned()))
        .unwrap()
        .begin(&begun())
        .unwrap();
    let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503, "message": "etcd is down"});
    let (kube, api) = api_server(vec![
        expect(Method::GET, REGISTRATION, 503, unavailable),
        expect(Method::POST, EVENTS, 201, json!({})),
    ]);
    recover_with(kube, dir.path()).await;
    let received = api.await.unwrap();
    assert_eq!(received[1].1["reason"], "PossibleOrphan");
    assert_eq!(
        Journal::new(Some(dir.path().to_owned())).unwrap().begun(),
        [begun()]
    );
}
