//! A mock Kubernetes API server (kube's mock service) that checks each request against a
//! script, in order, and answers it.

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_test::mock;

/// One expected request: method, path, and the answer.
pub struct Expect {
    method: Method,
    path: String,
    status: u16,
    answer: Value,
}

pub fn expect(method: Method, path: &str, status: u16, answer: Value) -> Expect {
    Expect {
        method,
        path: path.to_owned(),
        status,
        answer,
    }
}

pub fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

/// A mock API server that checks each request against `script`, in order, answers it,
/// and returns the bodies it received. A request beyond the script fails the test.
pub fn api_server(script: Vec<Expect>) -> (Client, JoinHandle<Received>) {
    let (client, task, _answered) = watched_api_server(script);
    (client, task)
}

/// What a mock API server received so far: `METHOD path` and body, in order.
pub type Received = Vec<(String, Value)>;

/// [`api_server`], also showing what it has received so far: for a task that runs on and
/// on, to know when it is where the test wants it and what it sent.
pub fn watched_api_server(
    script: Vec<Expect>,
) -> (Client, JoinHandle<Received>, watch::Receiver<Received>) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let (answered, progress) = watch::channel(Vec::new());
    let task = tokio::spawn(async move {
        let mut received = Vec::new();
        for step in script {
            let (request, respond) = handle.next_request().await.unwrap_or_else(|| {
                panic!(
                    "expected {} {}, but no more requests came",
                    step.method, step.path
                )
            });
            let path = request.uri().path().to_owned();
            // A path ending in `*` stands for any name under it (an event's generated name).
            let expected = match step.path.strip_suffix('*') {
                Some(prefix) if path.starts_with(prefix) => path.clone(),
                _ => step.path.clone(),
            };
            assert_eq!(
                (request.method().clone(), path.clone()),
                (step.method.clone(), expected),
                "request {}",
                received.len() + 1
            );
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            received.push((format!("{} {path}", step.method), body));
            respond.send_response(
                Response::builder()
                    .status(step.status)
                    .body(Body::from(serde_json::to_vec(&step.answer).unwrap()))
                    .unwrap(),
            );
            answered.send_replace(received.clone());
        }
        if let Some((request, _)) = handle.next_request().await {
            panic!(
                "unexpected request: {} {}",
                request.method(),
                request.uri().path()
            );
        }
        received
    });
    (Client::new(service, "default"), task, progress)
}
