//! Committing an edited policy to a cluster, at the level of the Kubernetes API contract
//! (kube's mock service stands in for the API server): a server-side dry run, then a
//! server-side apply carrying the previewed resourceVersion; a conflict is reported as
//! such and nothing is applied.

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use nauthera_shared::resources::ObjectRef;
use nauthera_tui::editor::commit::{CommitError, FIELD_MANAGER, to_cluster};
use nauthera_tui::editor::{CommitRequest, CommitTarget};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

const POLICY: &str = "apiVersion: auth.nauthera.io/v1alpha1
kind: AuthPolicy
metadata:
  name: web-apps-policy
  namespace: security
  labels: {nauthera.io/environment: production}
spec:
  token: {accessTokenTTL: 5m}
  allowedScopes: [openid, profile]
";

fn request(resource_version: &str) -> CommitRequest {
    CommitRequest {
        policy: ObjectRef::new("security", "web-apps-policy"),
        text: POLICY.to_owned(),
        target: CommitTarget::Cluster {
            context: "test".to_owned(),
            resource_version: Some(resource_version.to_owned()),
        },
    }
}

type ApiServer = Handle<Request<Body>, Response<Body>>;

fn mock_cluster() -> (Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// Takes the next request, checks it is a server-side apply of the policy (dry run or
/// not) with the previewed resourceVersion, and answers `status` with `body`.
async fn expect_apply(api: &mut ApiServer, dry_run: bool, status: StatusCode, body: Value) {
    let (request, respond) = api.next_request().await.expect("a request");
    assert_eq!(request.method(), Method::PATCH);
    assert_eq!(
        request.uri().path(),
        "/apis/auth.nauthera.io/v1alpha1/namespaces/security/authpolicies/web-apps-policy"
    );
    let query = request.uri().query().unwrap_or_default().to_owned();
    assert!(
        query.contains(&format!("fieldManager={FIELD_MANAGER}")),
        "{query}"
    );
    assert!(query.contains("force=true"), "{query}");
    assert_eq!(query.contains("dryRun=All"), dry_run, "{query}");
    assert_eq!(
        request.headers()["content-type"],
        "application/apply-patch+yaml"
    );
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let sent: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        sent["metadata"]["resourceVersion"], "4242",
        "the previewed version guards the apply"
    );
    assert_eq!(sent["spec"]["token"]["accessTokenTTL"], "5m");
    assert!(sent.get("status").is_none_or(Value::is_null));
    respond.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
}

fn applied(resource_version: &str) -> Value {
    let mut object: Value = serde_yaml_ng::from_str(POLICY).unwrap();
    object["metadata"]["resourceVersion"] = json!(resource_version);
    object
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

#[tokio::test]
async fn a_dry_run_then_an_apply_guarded_by_the_previewed_resource_version() {
    let (client, mut api) = mock_cluster();
    let server = tokio::spawn(async move {
        expect_apply(&mut api, true, StatusCode::OK, applied("4242")).await;
        expect_apply(&mut api, false, StatusCode::OK, applied("4243")).await;
    });
    let result = to_cluster(client, &request("4242")).await;
    server.await.unwrap();
    assert_eq!(
        result,
        Ok("applied security/web-apps-policy (resourceVersion 4243)".to_owned())
    );
}

#[tokio::test]
async fn a_policy_changed_since_the_preview_is_a_conflict_and_nothing_is_applied() {
    let (client, mut api) = mock_cluster();
    let server = tokio::spawn(async move {
        let conflict = status(
            409,
            "Conflict",
            "the object has been modified; please apply your changes to the latest version and try again",
        );
        expect_apply(&mut api, true, StatusCode::CONFLICT, conflict).await;
        // No second request: the apply is not attempted.
        assert!(
            api.next_request().await.is_none(),
            "nothing is applied after a conflict"
        );
    });
    let result = to_cluster(client, &request("4242")).await;
    let Err(CommitError::Conflict(message)) = result else {
        panic!("a conflict: {result:?}");
    };
    assert!(message.starts_with("security/web-apps-policy changed on the cluster since it was previewed; your text is kept"), "{message}");
    server.await.unwrap();
}

#[tokio::test]
async fn an_api_server_rejection_in_the_dry_run_is_shown_as_it_came() {
    let (client, mut api) = mock_cluster();
    let server = tokio::spawn(async move {
        let invalid = status(
            422,
            "Invalid",
            "AuthPolicy.auth.nauthera.io \"web-apps-policy\" is invalid: spec.token.accessTokenTTL: Invalid value: \"5m\": denied by admission webhook",
        );
        expect_apply(&mut api, true, StatusCode::UNPROCESSABLE_ENTITY, invalid).await;
        assert!(
            api.next_request().await.is_none(),
            "nothing is applied after a rejection"
        );
    });
    let result = to_cluster(client, &request("4242")).await;
    let Err(CommitError::Refused(message)) = result else {
        panic!("a refusal: {result:?}");
    };
    assert!(
        message.starts_with("the API server refused the dry run of security/web-apps-policy: "),
        "{message}"
    );
    assert!(message.contains("denied by admission webhook"), "{message}");
    server.await.unwrap();
}

#[tokio::test]
async fn renaming_the_policy_in_the_text_is_refused_before_any_request() {
    let (client, mut api) = mock_cluster();
    let mut renamed = request("4242");
    renamed.text = POLICY.replace("name: web-apps-policy", "name: web-apps-v2");
    let result = to_cluster(client, &renamed).await;
    assert!(
        matches!(result, Err(CommitError::Refused(ref m)) if m.contains("names security/web-apps-v2, not security/web-apps-policy")),
        "{result:?}"
    );
    drop(result);
    assert!(api.next_request().await.is_none());
}
