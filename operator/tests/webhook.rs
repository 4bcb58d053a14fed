//! The admission webhook at its HTTP contract: an AdmissionReview in, the engine's verdict
//! out, through the same router the operator serves. The stores are filled as the watches
//! would fill them; the mock API server expects no call at all — judging a write reads
//! only the stores.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use common::mock_api::api_server;
use common::world::{context, namespace, stores};
use http::{Request, StatusCode};
use nauthera_operator::context::Context;
use nauthera_operator::webhook::review::router;
use nauthera_shared::fixtures;
use serde_json::{Value, json};
use tower::ServiceExt;

const SCOPE_REFUSED: &str = "spec.scopes[2]: scope \"api:write\" is not allowed by policy security/web-apps (allowedScopes: openid, profile, email, api:read)";

/// The organisation the webhook judges against: server `security/server` trusting every
/// namespace, the Enforce policy `web-apps` and, when `audit`, an Audit policy too.
fn world(kube: kube::Client, audit: bool) -> Arc<Context> {
    let mut policies = vec![fixtures::policy(
        "web-apps",
        "",
        "allowedScopes: [openid, profile, email, 'api:read']\nallowedGrantTypes: [authorization_code, refresh_token]",
    )];
    if audit {
        policies.push(fixtures::policy(
            "audit-lifetimes",
            "",
            "enforcement: Audit\nallowedScopes: [openid, profile]",
        ));
    }
    context(
        kube,
        stores(
            vec![fixtures::server("server", "")],
            policies,
            vec![namespace("security", &[]), namespace("my-app-dev", &[])],
            Vec::new(),
        ),
        Duration::from_secs(3600),
    )
}

/// An AuthClient as `kubectl apply` sends it, with these scopes and redirect URI.
fn client(scopes: &[&str], redirect: &str) -> Value {
    json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": "my-webapp", "namespace": "my-app-dev"},
        "spec": {
            "displayName": "My Awesome Web App",
            "authServerRef": {"name": "server", "namespace": "security"},
            "redirectUris": [redirect],
            "scopes": scopes
        }
    })
}

fn review(operation: &str, object: Option<Value>, old: Option<Value>) -> Value {
    let group = json!({"group": "auth.nauthera.io", "version": "v1alpha1"});
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group["group"], "version": group["version"], "kind": "AuthClient"},
            "resource": {"group": group["group"], "version": group["version"], "resource": "authclients"},
            "name": "my-webapp", "namespace": "my-app-dev",
            "operation": operation,
            "userInfo": {"username": "developer"},
            "object": object.unwrap_or(Value::Null), "oldObject": old.unwrap_or(Value::Null),
            "dryRun": false
        }
    })
}

/// POSTs `body` to the webhook, returning the status and the body.
async fn post(ctx: Arc<Context>, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let response = router(ctx)
        .oneshot(
            Request::post("/validate?timeout=5s")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

/// The `response` of the AdmissionReview the webhook answers `review` with.
async fn answer(audit: bool, review: &Value) -> Value {
    let (kube, api) = api_server(Vec::new());
    let ctx = world(kube, audit);
    let (status, body) = post(Arc::clone(&ctx), serde_json::to_vec(review).unwrap()).await;
    drop(ctx);
    assert!(api.await.unwrap().is_empty(), "no API call");
    assert_eq!(status, StatusCode::OK);
    let answered: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answered["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answered["kind"], "AdmissionReview");
    assert_eq!(
        answered["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002",
        "the answer names the request"
    );
    answered["response"].clone()
}

#[tokio::test]
async fn an_enforced_rule_refuses_the_create_with_the_engines_sentence() {
    let object = client(
        &["openid", "profile", "api:write"],
        "https://my-webapp.example.com/cb",
    );
    let response = answer(false, &review("CREATE", Some(object), None)).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["reason"], "Forbidden");
    assert_eq!(response["status"]["message"], SCOPE_REFUSED);
    assert_eq!(
        response["status"]["details"]["causes"],
        json!([{
            "reason": "allowedScopes",
            "field": "spec.scopes[2]",
            "message": "scope \"api:write\" is not allowed by policy security/web-apps (allowedScopes: openid, profile, email, api:read)"
        }])
    );
    assert!(response.get("warnings").is_none());
}

#[tokio::test]
async fn every_enforced_violation_is_in_the_refusal() {
    let object = client(&["openid", "api:write"], "http://my-webapp.example.com/cb");
    let response = answer(false, &review("CREATE", Some(object), None)).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    let causes: Vec<&str> = response["status"]["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cause| cause["reason"].as_str().unwrap())
        .collect();
    assert_eq!(causes, ["redirectUris.https", "allowedScopes"]);
    assert!(
        message.starts_with("spec.redirectUris[0]: ") && message.contains("; spec.scopes[1]: "),
        "{message}"
    );
}

#[tokio::test]
async fn an_audit_policy_admits_with_its_findings_as_warnings() {
    let object = client(
        &["openid", "profile", "email"],
        "https://my-webapp.example.com/cb",
    );
    let response = answer(true, &review("CREATE", Some(object), None)).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        response["warnings"],
        json!([
            "spec.scopes[2]: scope \"email\" is not allowed by policy security/audit-lifetimes (allowedScopes: openid, profile) (audit only)"
        ])
    );
}

#[tokio::test]
async fn a_compliant_client_is_admitted_without_a_word() {
    let object = client(&["openid", "profile"], "https://my-webapp.example.com/cb");
    let response = answer(true, &review("CREATE", Some(object), None)).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("warnings").is_none(), "{response}");
    assert!(
        response
            .get("status")
            .is_none_or(|status| status == &json!({})),
        "no refusal: {response}"
    );
}

#[tokio::test]
async fn an_update_is_refused_only_for_what_it_introduces() {
    let compliant = client(&["openid", "profile"], "https://my-webapp.example.com/cb");
    let broken = client(
        &["openid", "profile", "api:write"],
        "https://my-webapp.example.com/cb",
    );
    let response = answer(
        false,
        &review("UPDATE", Some(broken.clone()), Some(compliant)),
    )
    .await;
    assert_eq!(response["allowed"], false, "the edit breaks the policy");
    assert_eq!(response["status"]["message"], SCOPE_REFUSED);

    // A violation the object had already (a policy tightened after it was applied): a
    // label, the operator's finalizer, any unrelated edit goes through, with a warning.
    let mut labelled = broken.clone();
    labelled["metadata"]["labels"] = json!({"team": "web"});
    let response = answer(false, &review("UPDATE", Some(labelled), Some(broken))).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        response["warnings"],
        json!([format!(
            "{SCOPE_REFUSED} (already so before this change; the operator withholds the client until it is fixed)"
        )])
    );
}

#[tokio::test]
async fn what_is_not_the_clients_own_doing_only_warns() {
    // GitOps may apply a client before its server: admitted, the reconcile withholds it.
    let mut object = client(&["openid"], "https://my-webapp.example.com/cb");
    object["spec"]["authServerRef"]["name"] = json!("not-yet");
    let response = answer(false, &review("CREATE", Some(object.clone()), None)).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        response["warnings"],
        json!([
            "AuthServer security/not-yet does not exist: admitted without a policy check; the operator provisions nothing until this is resolved"
        ])
    );

    // Its own fields still answer to Nauthera's fixed rules, whatever its server.
    object["spec"]["redirectUris"] = json!(["http://my-webapp.example.com/cb"]);
    let response = answer(false, &review("CREATE", Some(object), None)).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["details"]["causes"][0]["reason"],
        "redirectUris.https"
    );
}

#[tokio::test]
async fn a_deletion_is_never_judged() {
    let broken = client(&["api:write"], "http://my-webapp.example.com/cb");
    let response = answer(false, &review("DELETE", None, Some(broken.clone()))).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("warnings").is_none());

    // Neither is the last update of an object being deleted (the finalizer's removal).
    let mut deleting = broken.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    deleting["metadata"]["finalizers"] = json!([]);
    let response = answer(false, &review("UPDATE", Some(deleting), Some(broken))).await;
    assert_eq!(response["allowed"], true);
}

#[tokio::test]
async fn another_kind_is_let_through_untouched() {
    let mut other = review(
        "CREATE",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})),
        None,
    );
    other["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    other["request"]["resource"] = json!({"group": "", "version": "v1", "resource": "configmaps"});
    let response = answer(false, &other).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("warnings").is_none());
}

#[tokio::test]
async fn an_authclient_the_engine_cannot_read_is_admitted_with_a_warning_not_a_panic() {
    // The CRD's schema stops this at the API server; the webhook must not fall over if
    // something like it reaches it anyway.
    let object = json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": "my-webapp", "namespace": "my-app-dev"},
        "spec": {"scopes": "openid"}
    });
    let response = answer(false, &review("CREATE", Some(object), None)).await;
    assert_eq!(response["allowed"], true);
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("nauthera-operator cannot read this AuthClient (")
            && warning.ends_with("): admitted unchecked; its status will say more"),
        "{warning}"
    );
}

#[tokio::test]
async fn what_is_not_an_admission_review_is_a_bad_request_that_says_why() {
    for (body, expected) in [
        (b"{not json".to_vec(), "not an AdmissionReview: "),
        (
            serde_json::to_vec(
                &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            )
            .unwrap(),
            "",
        ),
    ] {
        let (kube, api) = api_server(Vec::new());
        let ctx = world(kube, false);
        let (status, answer) = post(Arc::clone(&ctx), body).await;
        drop(ctx);
        assert!(api.await.unwrap().is_empty());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let text = String::from_utf8(answer).unwrap();
        assert!(
            text.starts_with(expected) && !text.is_empty(),
            "a reason: {text}"
        );
    }
}
