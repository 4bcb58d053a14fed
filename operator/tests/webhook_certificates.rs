//! The webhook's certificates and configuration at the Kubernetes API contract (kube's mock
//! service checks each call), and its HTTPS with real TLS handshakes: what the operator
//! writes into the Secret and the ValidatingWebhookConfiguration is what a client trusting
//! that bundle can verify.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::mock_api::{api_server, expect, not_found, watched_api_server};
use common::world::{OPERATOR_NAMESPACE, context, namespace, stores};
use http::Method;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use nauthera_operator::context::Context;
use nauthera_operator::webhook::certificates::{Material, NOT_AFTER_ANNOTATION, obtain};
use nauthera_operator::webhook::tls::{ServedCertificate, TlsListener, server_config};
use nauthera_operator::webhook::{Endpoint, WebhookSettings, review, run};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const SECRET: &str = "nauthera-operator-webhook-tls";
const SECRET_PATH: &str =
    "/api/v1/namespaces/nauthera-system/secrets/nauthera-operator-webhook-tls";
const SECRETS_PATH: &str = "/api/v1/namespaces/nauthera-system/secrets";
const CONFIGURATION_PATH: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/nauthera-operator";

fn loopback() -> Vec<String> {
    vec!["127.0.0.1".to_owned()]
}

/// The Secret keeping `material`, as the API server returns it.
fn stored(material: &Material, resource_version: &str) -> Value {
    let mut secret = serde_json::to_value(material.to_secret(OPERATOR_NAMESPACE, SECRET)).unwrap();
    secret["metadata"]["resourceVersion"] = json!(resource_version);
    secret
}

fn decoded(body: &Value, key: &str) -> String {
    let secret: Secret = serde_json::from_value(body.clone()).unwrap();
    String::from_utf8(secret.data.unwrap()[key].0.clone()).unwrap()
}

/// A context with no API server behind it: the webhook's router needs only the stores.
fn quiet_context() -> Arc<Context> {
    let (kube, _) = api_server(Vec::new());
    let stores = stores(Vec::new(), Vec::new(), Vec::new(), Vec::new());
    context(kube, stores, Duration::from_secs(3600))
}

/// Serves the webhook's router over TLS with `served` on a loopback port.
async fn serve(served: Arc<ServedCertificate>) -> u16 {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener::new(tcp, server_config(served).unwrap()).unwrap();
    tokio::spawn(axum::serve(listener, review::router(quiet_context())).into_future());
    port
}

/// Whether a client trusting only `bundle` completes a handshake with `https://127.0.0.1:port`
/// and gets an AdmissionReview answered.
async fn trusted(bundle: &str, port: u16) -> Result<(), String> {
    let mut client = reqwest::Client::builder().tls_built_in_root_certs(false);
    for certificate in reqwest::Certificate::from_pem_bundle(bundle.as_bytes()).unwrap() {
        client = client.add_root_certificate(certificate);
    }
    let client = client.build().unwrap();
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "1", "operation": "DELETE", "userInfo": {},
            "kind": {"group": "auth.nauthera.io", "version": "v1alpha1", "kind": "AuthClient"},
            "resource": {"group": "auth.nauthera.io", "version": "v1alpha1", "resource": "authclients"}
        }
    });
    let response = client
        .post(format!("https://127.0.0.1:{port}/validate"))
        .json(&review)
        .send()
        .await
        .map_err(|error| format!("{error:?}"))?;
    let answer: Value = response.json().await.map_err(|error| error.to_string())?;
    assert_eq!(answer["response"]["allowed"], true);
    Ok(())
}

#[tokio::test]
async fn a_missing_secret_is_created_with_a_certificate_its_bundle_verifies() {
    let (kube, api) = api_server(vec![
        expect(Method::GET, SECRET_PATH, 404, not_found()),
        expect(
            Method::POST,
            SECRETS_PATH,
            201,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}}),
        ),
    ]);
    let material = obtain(&kube, OPERATOR_NAMESPACE, SECRET, &loopback(), false)
        .await
        .unwrap();
    drop(kube);
    let calls = api.await.unwrap();
    let created = &calls[1].1;
    assert_eq!(created["type"], "kubernetes.io/tls");
    assert_eq!(created["metadata"]["name"], SECRET);
    assert_eq!(
        created["metadata"]["annotations"]["nauthera.io/webhook-names"],
        "127.0.0.1"
    );
    assert_eq!(decoded(created, "ca.crt"), material.ca_bundle);
    assert_eq!(decoded(created, "tls.crt"), material.certificate);
    assert!(decoded(created, "tls.key").contains("PRIVATE KEY"));
    let lifetime = material.not_after.duration_since(Timestamp::now());
    assert!(
        lifetime > SignedDuration::from_hours(364 * 24),
        "a year: {lifetime}"
    );

    let port = serve(Arc::new(ServedCertificate::new(
        material.certified_key().unwrap(),
    )))
    .await;
    trusted(&material.ca_bundle, port).await.unwrap();
    // Another operator's CA is not trusted: the check above means something.
    let stranger = Material::generate(&loopback(), None, Timestamp::now()).unwrap();
    let refused = trusted(&stranger.ca_bundle, port).await.unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
}

#[tokio::test]
async fn a_valid_secret_is_served_as_it_is_with_no_write() {
    let kept = Material::generate(&loopback(), None, Timestamp::now()).unwrap();
    let (kube, api) = api_server(vec![expect(
        Method::GET,
        SECRET_PATH,
        200,
        stored(&kept, "7"),
    )]);
    let material = obtain(&kube, OPERATOR_NAMESPACE, SECRET, &loopback(), true)
        .await
        .unwrap();
    drop(kube);
    assert_eq!(api.await.unwrap().len(), 1, "one read, no write");
    assert_eq!(material.certificate, kept.certificate);
    assert_eq!(material.ca_bundle, kept.ca_bundle);
}

#[tokio::test]
async fn two_replicas_racing_to_create_serve_the_one_that_won() {
    let theirs = Material::generate(&loopback(), None, Timestamp::now()).unwrap();
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409, "message": "already exists"});
    let (kube, api) = api_server(vec![
        expect(Method::GET, SECRET_PATH, 404, not_found()),
        expect(Method::POST, SECRETS_PATH, 409, conflict),
        expect(Method::GET, SECRET_PATH, 200, stored(&theirs, "8")),
    ]);
    let material = obtain(&kube, OPERATOR_NAMESPACE, SECRET, &loopback(), false)
        .await
        .unwrap();
    drop(kube);
    assert_eq!(api.await.unwrap().len(), 3);
    assert_eq!(
        material.certificate, theirs.certificate,
        "what the other wrote"
    );
}

#[tokio::test]
async fn the_leader_renews_a_certificate_near_expiry_and_the_old_ca_stays_trusted() {
    let eleven_months_ago = Timestamp::now() - SignedDuration::from_hours(340 * 24);
    let old = Material::generate(&loopback(), None, eleven_months_ago).unwrap();
    assert!(
        old.renewal_due(&loopback(), Timestamp::now())
            .unwrap()
            .starts_with("it expires at ")
    );

    // A replica that does not lead serves it as it is.
    let (kube, api) = api_server(vec![expect(
        Method::GET,
        SECRET_PATH,
        200,
        stored(&old, "41"),
    )]);
    let served = obtain(&kube, OPERATOR_NAMESPACE, SECRET, &loopback(), false)
        .await
        .unwrap();
    drop(kube);
    assert_eq!(api.await.unwrap().len(), 1);
    assert_eq!(served.certificate, old.certificate);

    // The leader renews it, guarded by the version it read.
    let (kube, api) = api_server(vec![
        expect(Method::GET, SECRET_PATH, 200, stored(&old, "41")),
        expect(Method::PATCH, SECRET_PATH, 200, stored(&old, "42")),
    ]);
    let renewed = obtain(&kube, OPERATOR_NAMESPACE, SECRET, &loopback(), true)
        .await
        .unwrap();
    drop(kube);
    let calls = api.await.unwrap();
    let patch = &calls[1].1;
    assert_eq!(patch["metadata"]["resourceVersion"], "41");
    assert_eq!(decoded(patch, "tls.crt"), renewed.certificate);
    assert_ne!(renewed.certificate, old.certificate);
    assert_eq!(
        patch["metadata"]["annotations"][NOT_AFTER_ANNOTATION],
        renewed.not_after.to_string()
    );
    assert!(
        renewed.not_after.duration_since(Timestamp::now()) > SignedDuration::from_hours(364 * 24)
    );
    // The bundle: the new CA first, then the old one, for replicas not yet reloaded.
    assert_eq!(
        renewed.ca_bundle,
        format!("{}{}", renewed.current_ca(), old.ca_bundle)
    );

    // A client trusting the new bundle accepts both the new and the old certificate.
    let new_port = serve(Arc::new(ServedCertificate::new(
        renewed.certified_key().unwrap(),
    )))
    .await;
    let old_port = serve(Arc::new(ServedCertificate::new(
        old.certified_key().unwrap(),
    )))
    .await;
    trusted(&renewed.ca_bundle, new_port).await.unwrap();
    trusted(&renewed.ca_bundle, old_port).await.unwrap();
}

#[tokio::test]
async fn names_not_covered_are_a_reason_to_renew() {
    let for_loopback = Material::generate(&loopback(), None, Timestamp::now()).unwrap();
    let in_cluster = vec![
        "nauthera-operator.nauthera-system.svc".to_owned(),
        "nauthera-operator.nauthera-system.svc.cluster.local".to_owned(),
    ];
    assert_eq!(
        for_loopback.renewal_due(&in_cluster, Timestamp::now()),
        Some("it does not cover nauthera-operator.nauthera-system.svc".to_owned())
    );
    assert_eq!(
        for_loopback.renewal_due(&loopback(), Timestamp::now()),
        None
    );
}

#[tokio::test]
async fn an_unusable_secret_is_replaced_by_the_leader_and_never_quoted() {
    let good = Material::generate(&loopback(), None, Timestamp::now()).unwrap();
    let mut broken = stored(&good, "5");
    let leaked = "-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LWJ1dC1hLXNlY3JldA==\n-----END PRIVATE KEY-----\n";
    broken["data"]["tls.key"] = json!(k8s_openapi::ByteString(leaked.as_bytes().to_vec()));

    let (kube, api) = api_server(vec![expect(Method::GET, SECRET_PATH, 200, broken.clone())]);
    let error = obtain(&kube, OPERATOR_NAMESPACE, SECRET, &loopback(), false)
        .await
        .unwrap_err()
        .to_string();
    drop(kube);
    api.await.unwrap();
    assert!(
        error.starts_with("Secret nauthera-system/nauthera-operator-webhook-tls is unusable (")
            && error.contains("tls.key")
            && error.ends_with("the leader replaces it"),
        "{error}"
    );
    assert!(
        !error.contains("bm90LWEta2V5"),
        "the key is never quoted: {error}"
    );

    let (kube, api) = api_server(vec![
        expect(Method::GET, SECRET_PATH, 200, broken),
        expect(Method::PATCH, SECRET_PATH, 200, stored(&good, "6")),
    ]);
    let replaced = obtain(&kube, OPERATOR_NAMESPACE, SECRET, &loopback(), true)
        .await
        .unwrap();
    drop(kube);
    let calls = api.await.unwrap();
    assert_eq!(calls[1].1["metadata"]["resourceVersion"], "5");
    assert_eq!(
        replaced.ca_bundle,
        replaced.current_ca(),
        "nothing of the broken Secret is kept"
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_served_to_the_next_handshake() {
    let first = Material::generate(&loopback(), None, Timestamp::now()).unwrap();
    let second = Material::generate(&loopback(), None, Timestamp::now()).unwrap();
    let served = Arc::new(ServedCertificate::new(first.certified_key().unwrap()));
    let port = serve(Arc::clone(&served)).await;
    trusted(&first.ca_bundle, port).await.unwrap();
    assert!(trusted(&second.ca_bundle, port).await.is_err());
    served.replace(second.certified_key().unwrap());
    trusted(&second.ca_bundle, port).await.unwrap();
    assert!(trusted(&first.ca_bundle, port).await.is_err());
}

#[tokio::test]
async fn the_leader_serves_and_writes_the_configuration_with_the_bundle_it_serves() {
    let material = Material::generate(&loopback(), None, Timestamp::now()).unwrap();
    let (kube, api, answered) = watched_api_server(vec![
        // At start: the certificates to serve with.
        expect(Method::GET, SECRET_PATH, 200, stored(&material, "3")),
        // Then, leading: read again, and the configuration written.
        expect(Method::GET, SECRET_PATH, 200, stored(&material, "3")),
        expect(
            Method::PATCH,
            CONFIGURATION_PATH,
            200,
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "nauthera-operator"}}),
        ),
    ]);
    let mut system = namespace(OPERATOR_NAMESPACE, &[]);
    system.metadata.uid = Some("0b1f6c39-system".to_owned());
    let ctx = context(
        kube,
        stores(Vec::new(), Vec::new(), vec![system], Vec::new()),
        Duration::from_secs(3600),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let url = format!("https://127.0.0.1:{port}/validate");
    let settings = WebhookSettings {
        listen: tcp.local_addr().unwrap(),
        endpoint: Endpoint::Url(url.parse().unwrap()),
        name: "nauthera-operator".to_owned(),
        namespace_labels: [("nauthera.io/tenant".to_owned(), "true".to_owned())].into(),
    };
    let (_leading, leading_seen) = tokio::sync::watch::channel(true);
    let task = tokio::spawn(run(Arc::clone(&ctx), settings, tcp, leading_seen));
    let calls = tokio::time::timeout(Duration::from_secs(10), {
        let mut answered = answered.clone();
        async move {
            answered
                .wait_for(|calls| calls.len() == 3)
                .await
                .map(|calls| calls.clone())
        }
    })
    .await
    .expect("the configuration written")
    .unwrap();
    trusted(&material.ca_bundle, port).await.unwrap();
    // It serves on; the scripted calls were all it made.
    task.abort();
    drop(api);

    let configuration = &calls[2].1;
    assert_eq!(configuration["kind"], "ValidatingWebhookConfiguration");
    assert_eq!(
        configuration["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Namespace", "name": "nauthera-system", "uid": "0b1f6c39-system"}]),
        "deleting the operator's namespace removes it"
    );
    let webhook = &configuration["webhooks"][0];
    let bundle = webhook["clientConfig"]["caBundle"].clone();
    let bundle: k8s_openapi::ByteString = serde_json::from_value(bundle).unwrap();
    assert_eq!(String::from_utf8(bundle.0).unwrap(), material.ca_bundle);
    assert_eq!(webhook["clientConfig"]["url"], url);
    assert!(webhook["clientConfig"].get("service").is_none());
    assert_eq!(webhook["name"], "authclients.auth.nauthera.io");
    assert_eq!(webhook["failurePolicy"], "Ignore");
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(
        webhook["namespaceSelector"],
        json!({"matchLabels": {"nauthera.io/tenant": "true"}})
    );
    assert_eq!(
        webhook["rules"],
        json!([{"apiGroups": ["auth.nauthera.io"], "apiVersions": ["v1alpha1"], "resources": ["authclients"],
                "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}])
    );
}

#[test]
fn in_cluster_the_configuration_names_the_service() {
    let settings = WebhookSettings {
        listen: "0.0.0.0:8443".parse().unwrap(),
        endpoint: Endpoint::Service {
            name: "nauthera-operator".to_owned(),
            port: 443,
        },
        name: "nauthera-operator".to_owned(),
        namespace_labels: std::collections::BTreeMap::new(),
    };
    assert_eq!(
        settings.names("nauthera-system"),
        [
            "nauthera-operator.nauthera-system.svc",
            "nauthera-operator.nauthera-system.svc.cluster.local"
        ]
    );
    let configuration = nauthera_operator::webhook::configuration::desired(
        &settings,
        "nauthera-system",
        "bundle",
        None,
    );
    let webhook = serde_json::to_value(&configuration.webhooks.unwrap()[0]).unwrap();
    assert_eq!(
        webhook["clientConfig"]["service"],
        json!({"namespace": "nauthera-system", "name": "nauthera-operator", "path": "/validate", "port": 443})
    );
    assert!(webhook["clientConfig"].get("url").is_none());
    assert_eq!(
        webhook["namespaceSelector"],
        json!({}),
        "every namespace, written so a narrower one is taken back"
    );
}
