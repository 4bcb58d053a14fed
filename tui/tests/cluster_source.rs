//! The dashboard's cluster source at the level of the Kubernetes API contract (kube's
//! mock service stands in for the API server): objects listed become a snapshot, the first
//! one only once every kind is listed, and a kind the user may not watch becomes a message
//! on screen instead of a crash.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use nauthera_tui::source::{SourceEvent, cluster};
use serde_json::{Value, json};
use tokio::sync::mpsc::unbounded_channel;
use tower_test::mock;

fn list(kind: &str, items: &Value) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": "v1", "metadata": {"resourceVersion": "100"}, "items": items})
}

/// Answers like an API server where the user may list everything but AuthPolicies, and
/// where the list of clients comes last, well after the others.
async fn api_server(mut handle: mock::Handle<Request<Body>, Response<Body>>) {
    while let Some((request, respond)) = handle.next_request().await {
        let path = request.uri().path().to_owned();
        let watching = request
            .uri()
            .query()
            .unwrap_or_default()
            .contains("watch=true");
        if watching {
            // Keep the watch open and quiet: hand the responder to a task that never answers.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(respond);
            });
            continue;
        }
        let (status, body) = if path.ends_with("/authpolicies") {
            (
                StatusCode::FORBIDDEN,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden",
                "message": "authpolicies.auth.nauthera.io is forbidden: User \"dev\" cannot list resource \"authpolicies\" in API group \"auth.nauthera.io\" at the cluster scope"}),
            )
        } else if path.ends_with("/authservers") {
            (
                StatusCode::OK,
                list(
                    "AuthServer",
                    &json!([{
                        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
                        "metadata": {"name": "production-server", "namespace": "security", "resourceVersion": "7"},
                        "spec": {"issuerUrl": "https://auth.example.com", "provider": {"type": "DynamicClientRegistration"}}
                    }]),
                ),
            )
        } else if path.ends_with("/authclients") {
            (
                StatusCode::OK,
                list(
                    "AuthClient",
                    &json!([{
                        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
                        "metadata": {"name": "my-webapp", "namespace": "my-app-dev", "resourceVersion": "9"},
                        "spec": {"displayName": "My web app", "authServerRef": {"name": "production-server", "namespace": "security"},
                                 "redirectUris": ["https://my-webapp.example.com/cb"], "scopes": ["openid"]}
                    }]),
                ),
            )
        } else if path.ends_with("/namespaces") {
            (
                StatusCode::OK,
                list(
                    "Namespace",
                    &json!([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my-app-dev", "labels": {"team": "web"}}}]),
                ),
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                json!({"kind": "Status", "code": 404}),
            )
        };
        let response = Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        if path.ends_with("/authclients") {
            // Several of the source's coalescing ticks after the other lists.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(600)).await;
                respond.send_response(response);
            });
        } else {
            respond.send_response(response);
        }
    }
}

#[tokio::test]
async fn the_first_read_has_every_kind_listed_and_a_forbidden_kind_is_a_problem_on_screen() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(api_server(handle));
    let (sender, mut receiver) = unbounded_channel();
    let watch = cluster::watch(Client::new(service, "default"), None, sender);

    // The first read waits for every kind: it has it all, and is marked first.
    let event = tokio::time::timeout(Duration::from_secs(30), receiver.recv())
        .await
        .expect("a first read")
        .expect("the source is running");
    let SourceEvent::Read(world) = event else {
        panic!("a read comes first");
    };
    assert!(world.snapshot.first, "the source's first read says so");
    assert_eq!(world.snapshot.inventory.servers.len(), 1);
    assert_eq!(
        world.snapshot.inventory.clients.len(),
        1,
        "the first read waited for the clients' list"
    );
    watch.abort();

    assert!(world.snapshot.live);
    assert_eq!(
        world.snapshot.problems.len(),
        1,
        "{:?}",
        world.snapshot.problems
    );
    let problem = &world.snapshot.problems[0];
    assert!(problem.starts_with("cannot watch authpolicies: forbidden (authpolicies.auth.nauthera.io is forbidden: User \"dev\" cannot list"), "{problem}");
    assert_eq!(
        world.snapshot.inventory.namespaces["my-app-dev"]["team"],
        "web"
    );
    // With no policy readable, the client is judged as the operator would: refused.
    assert_eq!(
        world.evaluations[0].client.to_string(),
        "my-app-dev/my-webapp"
    );
    assert!(!world.evaluations[0].compliance.is_provisionable());
}
