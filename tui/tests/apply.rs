//! Committing an edited policy to a cluster, at the level of the Kubernetes API contract
//! (kube's mock service stands in for the API server): a dry run, then a replace (PUT)
//! carrying the previewed resourceVersion, then a read back compared with the text; a
//! conflict is reported as such and nothing is written.

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use nauthera_shared::resources::ObjectRef;
use nauthera_tui::editor::commit::{CommitError, FIELD_MANAGER, to_cluster};
use nauthera_tui::editor::{CommitRequest, CommitTarget};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

/// The edit: `idTokenTTL` (set on the cluster by another field manager) removed, the access
/// token shortened.
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

const PATH: &str =
    "/apis/auth.nauthera.io/v1alpha1/namespaces/security/authpolicies/web-apps-policy";

/// The policy as the editor previewed it: as written by `kubectl apply`, `idTokenTTL`
/// included, at `resource_version`.
fn previewed(resource_version: &str) -> Value {
    let mut object: Value = serde_yaml_ng::from_str(POLICY).unwrap();
    object["spec"]["token"]["idTokenTTL"] = json!("5m");
    object["metadata"]["resourceVersion"] = json!(resource_version);
    object["status"] = json!({"governed": 4});
    object
}

fn request(resource_version: &str) -> CommitRequest {
    CommitRequest {
        policy: ObjectRef::new("security", "web-apps-policy"),
        text: POLICY.to_owned(),
        target: CommitTarget::Cluster {
            context: "test".to_owned(),
            previewed: Box::new(serde_json::from_value(previewed(resource_version)).unwrap()),
        },
    }
}

type ApiServer = Handle<Request<Body>, Response<Body>>;

fn mock_cluster() -> (Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// Takes the next request, checks it is a replace (PUT) of the whole policy (dry run or
/// not) guarded by resourceVersion 4242, and answers `status` with `body`.
async fn expect_replace(api: &mut ApiServer, dry_run: bool, status: StatusCode, body: Value) {
    expect_replace_of(api, "4242", dry_run, status, body).await;
}

/// [`expect_replace`], guarded by `guard`.
async fn expect_replace_of(
    api: &mut ApiServer,
    guard: &str,
    dry_run: bool,
    status: StatusCode,
    body: Value,
) {
    let (request, respond) = api.next_request().await.expect("a request");
    assert_eq!(request.method(), Method::PUT, "a replace, not a patch");
    assert_eq!(request.uri().path(), PATH);
    let query = request.uri().query().unwrap_or_default().to_owned();
    assert!(
        query.contains(&format!("fieldManager={FIELD_MANAGER}")),
        "{query}"
    );
    assert_eq!(query.contains("dryRun=All"), dry_run, "{query}");
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let sent: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        sent["metadata"]["resourceVersion"], guard,
        "the previewed version guards the replace"
    );
    assert_eq!(sent["spec"]["token"]["accessTokenTTL"], "5m");
    assert!(
        sent["spec"]["token"]
            .get("idTokenTTL")
            .is_none_or(Value::is_null),
        "the removed field is not sent: {sent}"
    );
    assert_eq!(
        sent["metadata"]["labels"]["nauthera.io/environment"],
        "production"
    );
    assert!(sent.get("status").is_none_or(Value::is_null));
    respond.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
}

/// Takes the next request, checks it reads the policy, and answers with `object`.
async fn expect_read_back(api: &mut ApiServer, object: &Value) {
    let (request, respond) = api.next_request().await.expect("a read back");
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().path(), PATH);
    respond.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(object).unwrap()))
            .unwrap(),
    );
}

/// The policy as the API server stores it after the replace: the text, the schema's
/// defaults filled in, and what the server sets itself — including the ownership of the
/// fields `kubectl apply` had written, now the TUI's.
fn stored(resource_version: &str) -> Value {
    let mut object: Value = serde_yaml_ng::from_str(POLICY).unwrap();
    object["metadata"]["resourceVersion"] = json!(resource_version);
    object["metadata"]["uid"] = json!("0b5e0c3a-7d52-4a8e-9d0e-3f3a1c2b4d5e");
    object["metadata"]["generation"] = json!(3);
    object["metadata"]["creationTimestamp"] = json!("2026-11-20T08:00:00Z");
    object["metadata"]["managedFields"] = json!([
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "auth.nauthera.io/v1alpha1",
         "time": "2026-11-20T08:00:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:nauthera.io/environment": {}}}}},
        {"manager": FIELD_MANAGER, "operation": "Update", "apiVersion": "auth.nauthera.io/v1alpha1",
         "time": "2026-11-22T09:31:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:token": {"f:accessTokenTTL": {}}}}}
    ]);
    object["spec"]["enforcement"] = json!("Enforce");
    object["status"] = json!({"governed": 4});
    object
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

#[tokio::test]
async fn a_dry_run_then_a_replace_guarded_by_the_previewed_version_then_a_read_back() {
    let (client, mut api) = mock_cluster();
    let server = tokio::spawn(async move {
        expect_replace(&mut api, true, StatusCode::OK, stored("4242")).await;
        expect_replace(&mut api, false, StatusCode::OK, stored("4243")).await;
        expect_read_back(&mut api, &stored("4243")).await;
        assert!(api.next_request().await.is_none(), "nothing more is sent");
    });
    let result = to_cluster(client, &request("4242")).await;
    server.await.unwrap();
    assert_eq!(
        result,
        Ok("replaced security/web-apps-policy (resourceVersion 4243); read back, the cluster holds exactly your text".to_owned())
    );
}

#[tokio::test]
async fn a_read_back_that_differs_from_the_text_says_where() {
    let (client, mut api) = mock_cluster();
    let server = tokio::spawn(async move {
        expect_replace(&mut api, true, StatusCode::OK, stored("4242")).await;
        expect_replace(&mut api, false, StatusCode::OK, stored("4243")).await;
        // Something put the removed field back between the replace and the read.
        let mut changed = stored("4244");
        changed["spec"]["token"]["idTokenTTL"] = json!("5m");
        expect_read_back(&mut api, &changed).await;
    });
    let result = to_cluster(client, &request("4242")).await;
    server.await.unwrap();
    assert_eq!(
        result,
        Err(CommitError::Differs(
            "replaced security/web-apps-policy (resourceVersion 4243), but read back it differs from your text: \
             spec.token.idTokenTTL is \"5m\" on the cluster, null in the text — an admission webhook or another writer changed it"
                .to_owned()
        ))
    );
}

/// The operator wrote the policy's status between the preview and the commit: its
/// resourceVersion moved, what was previewed did not, so the replace goes ahead on the new
/// version.
#[tokio::test]
async fn a_conflict_where_only_the_status_moved_is_replaced_on_the_new_version() {
    let (client, mut api) = mock_cluster();
    let server = tokio::spawn(async move {
        let conflict = status(409, "Conflict", "the object has been modified");
        expect_replace(&mut api, true, StatusCode::CONFLICT, conflict).await;
        let mut status_written = previewed("4250");
        status_written["status"] = json!({"governed": 5, "compliant": 5});
        expect_read_back(&mut api, &status_written).await;
        expect_replace_of(&mut api, "4250", true, StatusCode::OK, stored("4250")).await;
        expect_replace_of(&mut api, "4250", false, StatusCode::OK, stored("4251")).await;
        expect_read_back(&mut api, &stored("4251")).await;
    });
    let result = to_cluster(client, &request("4242")).await;
    server.await.unwrap();
    assert_eq!(
        result,
        Ok("replaced security/web-apps-policy (resourceVersion 4251); read back, the cluster holds exactly your text".to_owned())
    );
}

/// Someone changed the policy itself: a conflict, and nothing is written.
#[tokio::test]
async fn a_conflict_where_the_policy_itself_changed_writes_nothing() {
    let (client, mut api) = mock_cluster();
    let server = tokio::spawn(async move {
        let conflict = status(409, "Conflict", "the object has been modified");
        expect_replace(&mut api, true, StatusCode::CONFLICT, conflict).await;
        let mut theirs = previewed("4250");
        theirs["spec"]["allowedScopes"] = json!(["openid"]);
        expect_read_back(&mut api, &theirs).await;
        assert!(api.next_request().await.is_none(), "nothing is written");
    });
    let result = to_cluster(client, &request("4242")).await;
    server.await.unwrap();
    assert!(
        matches!(result, Err(CommitError::Conflict(ref m)) if m.starts_with("security/web-apps-policy changed on the cluster since it was previewed")),
        "{result:?}"
    );
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
        expect_replace(&mut api, true, StatusCode::UNPROCESSABLE_ENTITY, invalid).await;
        assert!(
            api.next_request().await.is_none(),
            "nothing is written after a rejection"
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
