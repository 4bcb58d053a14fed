//! The operator's view of each object in the detail pane, on a cluster: a client's
//! conditions with their age, the provider's client_id (never the secret), the last
//! reconcile and its recent Events; a server's reachability and latency. The Events are
//! read at the Kubernetes API contract (kube's mock service), forbidden ones shown as such.

mod common;

use std::time::{Duration, Instant};

use common::{examples, read, screen, select};
use http::{Request, Response, StatusCode};
use insta::assert_snapshot;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use nauthera_shared::resources::{
    AuthClientStatus, AuthServerStatus, Condition, ObjectRef, SecretNameRef,
};
use nauthera_tui::app::App;
use nauthera_tui::model::{ObjectEvent, ObjectEvents, Snapshot, SourceKind};
use nauthera_tui::source::events;
use serde_json::{Value, json};
use tokio::sync::mpsc::unbounded_channel;
use tower_test::mock;

/// 2026-11-22 09:30:00 UTC, when every screen here is drawn.
fn now() -> Timestamp {
    "2026-11-22T09:30:00Z".parse().unwrap()
}

fn ago(seconds: i64) -> Timestamp {
    now() - Duration::from_secs(seconds.unsigned_abs())
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, age: i64) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: Time(ago(age)),
        observed_generation: Some(3),
    }
}

/// `examples/` as a cluster would hold it once the operator has reported on
/// `my-app-dev/my-webapp` and on `security/production-server`.
fn cluster_app() -> App {
    let mut snapshot: Snapshot = read(&examples());
    snapshot.live = true;
    snapshot.first = true;
    let client = snapshot
        .inventory
        .clients
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some("my-webapp"))
        .unwrap();
    client.metadata.generation = Some(3);
    client.metadata.managed_fields = Some(vec![
        ManagedFieldsEntry {
            manager: Some("kubectl-client-side-apply".to_owned()),
            operation: Some("Update".to_owned()),
            time: Some(Time(ago(3 * 86_400))),
            ..ManagedFieldsEntry::default()
        },
        ManagedFieldsEntry {
            manager: Some("nauthera-operator".to_owned()),
            operation: Some("Apply".to_owned()),
            subresource: Some("status".to_owned()),
            time: Some(Time(ago(310))),
            ..ManagedFieldsEntry::default()
        },
    ]);
    client.status = Some(AuthClientStatus {
        observed_generation: Some(3),
        client_id: Some("dcr-7f3a9c".to_owned()),
        client_secret_ref: Some(SecretNameRef {
            name: "my-webapp-client-secret".to_owned(),
        }),
        conditions: vec![
            condition("Ready", "True", "Provisioned", "", 310),
            condition(
                "PolicyCompliant",
                "True",
                "Compliant",
                "governed by security/web-apps-policy",
                3 * 86_400,
            ),
            condition(
                "Provisioned",
                "True",
                "Registered",
                "registered at https://auth.prod.example.com",
                310,
            ),
        ],
        ..AuthClientStatus::default()
    });
    let server = snapshot
        .inventory
        .servers
        .iter_mut()
        .find(|s| s.metadata.name.as_deref() == Some("production-server"))
        .unwrap();
    server.status = Some(AuthServerStatus {
        conditions: vec![condition(
            "ProviderReachable",
            "True",
            "DiscoveryOk",
            "discovery document fetched; its issuer matches",
            2 * 3600,
        )],
        provider_latency_ms: Some(42),
        registration_endpoint: Some("https://auth.prod.example.com/reg".to_owned()),
        ..AuthServerStatus::default()
    });
    let mut app = App::new(
        SourceKind::Cluster {
            context: "prod".to_owned(),
        },
        None,
    );
    app.color = false;
    app.now = now();
    app.apply_snapshot(snapshot, Instant::now());
    app
}

fn recent_events() -> ObjectEvents {
    ObjectEvents {
        object: ObjectRef::new("my-app-dev", "my-webapp"),
        events: Ok(vec![
            ObjectEvent {
                type_: "Normal".to_owned(),
                reason: "Registered".to_owned(),
                from: "nauthera-operator".to_owned(),
                message: "registered at the provider as dcr-7f3a9c".to_owned(),
                count: 1,
                first: Some(ago(310)),
                last: Some(ago(310)),
            },
            ObjectEvent {
                type_: "Warning".to_owned(),
                reason: "DriftRepaired".to_owned(),
                from: "nauthera-operator".to_owned(),
                message: "the provider held accessTokenTTL 1h; set back to 15m".to_owned(),
                count: 3,
                first: Some(ago(1800)),
                last: Some(ago(95)),
            },
        ]),
    }
}

#[test]
fn a_client_on_a_cluster_shows_the_operators_view() {
    let mut app = cluster_app();
    select(&mut app, "my-app-dev/my-webapp");
    assert_eq!(
        app.events_wanted(),
        Some(ObjectRef::new("my-app-dev", "my-webapp")),
        "the selected client's Events are wanted"
    );
    app.events_read(recent_events());
    assert_snapshot!(screen(&app, 150, 60));
}

#[test]
fn events_of_another_client_are_not_shown_and_forbidden_ones_say_so() {
    let mut app = cluster_app();
    select(&mut app, "my-app-dev/my-webapp");
    let mut elsewhere = recent_events();
    elsewhere.object = ObjectRef::new("shop", "storefront");
    app.events_read(elsewhere);
    assert_eq!(app.events, None, "events of a client no longer selected");

    app.events_read(ObjectEvents {
        object: ObjectRef::new("my-app-dev", "my-webapp"),
        events: Err("cannot watch events: forbidden (events is forbidden: User \"dev\" cannot list resource \"events\" in the namespace \"my-app-dev\")".to_owned()),
    });
    let shown = screen(&app, 150, 60);
    assert!(
        shown.contains("cannot watch events: forbidden (events is forbidden: User \"dev\""),
        "{shown}"
    );
}

#[test]
fn a_server_on_a_cluster_shows_reachability_and_latency() {
    let mut app = cluster_app();
    select(&mut app, "security/production-server");
    assert_eq!(app.events_wanted(), None, "servers have no Events watched");
    assert_snapshot!(screen(&app, 150, 50));
}

/// The events of `my-app-dev/my-webapp`, as core/v1 lists them: one written through
/// core/v1 (a count), one through events.k8s.io/v1 by kube's recorder (a series).
fn event_list() -> Value {
    json!({"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": "500"}, "items": [
        {"apiVersion": "v1", "kind": "Event",
         "metadata": {"name": "my-webapp.1", "namespace": "my-app-dev"},
         "involvedObject": {"kind": "AuthClient", "name": "my-webapp", "namespace": "my-app-dev"},
         "type": "Warning", "reason": "DriftRepaired", "message": "set back to 15m",
         "count": 3, "firstTimestamp": "2026-11-22T09:00:00Z", "lastTimestamp": "2026-11-22T09:28:25Z",
         "source": {"component": "nauthera-operator"}},
        {"apiVersion": "v1", "kind": "Event",
         "metadata": {"name": "my-webapp.2", "namespace": "my-app-dev"},
         "involvedObject": {"kind": "AuthClient", "name": "my-webapp", "namespace": "my-app-dev"},
         "type": "Normal", "reason": "Registered", "message": "registered as dcr-7f3a9c",
         "eventTime": "2026-11-22T09:24:50.000000Z", "reportingComponent": "nauthera-operator",
         "reportingInstance": "nauthera-operator-0"}
    ]})
}

/// Answers the list of Events (checking it is narrowed to the client) with `status` and
/// `body`, and keeps the watch that follows open.
async fn events_api(
    mut handle: mock::Handle<Request<Body>, Response<Body>>,
    status: StatusCode,
    body: Value,
) {
    while let Some((request, respond)) = handle.next_request().await {
        assert_eq!(request.uri().path(), "/api/v1/namespaces/my-app-dev/events");
        let query = request.uri().query().unwrap_or_default().to_owned();
        assert!(
            query.contains(
                "fieldSelector=involvedObject.kind%3DAuthClient%2CinvolvedObject.name%3Dmy-webapp"
            ),
            "{query}"
        );
        if query.contains("watch=true") {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(respond);
            });
            continue;
        }
        respond.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }
}

async fn first_read(status: StatusCode, body: Value) -> ObjectEvents {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(events_api(handle, status, body));
    let (sender, mut receiver) = unbounded_channel();
    let object = ObjectRef::new("my-app-dev", "my-webapp");
    let follow = tokio::spawn(events::follow(
        Client::new(service, "default"),
        object,
        sender,
    ));
    let read = tokio::time::timeout(Duration::from_secs(30), receiver.recv())
        .await
        .expect("the Events are read")
        .expect("the watch is running");
    follow.abort();
    read
}

#[tokio::test]
async fn a_clients_events_are_watched_narrowed_to_it_oldest_first() {
    let read = first_read(StatusCode::OK, event_list()).await;
    assert_eq!(read.object, ObjectRef::new("my-app-dev", "my-webapp"));
    let events = read.events.expect("events");
    let summary: Vec<(&str, &str, i32)> = events
        .iter()
        .map(|e| (e.reason.as_str(), e.from.as_str(), e.count))
        .collect();
    assert_eq!(
        summary,
        [
            ("Registered", "nauthera-operator", 1),
            ("DriftRepaired", "nauthera-operator", 3)
        ],
        "oldest last-seen first"
    );
    assert_eq!(
        events[1].first,
        Some("2026-11-22T09:00:00Z".parse().unwrap())
    );
    assert_eq!(
        events[0].last,
        Some("2026-11-22T09:24:50Z".parse().unwrap())
    );
}

#[tokio::test]
async fn forbidden_events_become_a_message() {
    let forbidden = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden",
        "message": "events is forbidden: User \"dev\" cannot list resource \"events\" in API group \"\" in the namespace \"my-app-dev\""});
    let read = first_read(StatusCode::FORBIDDEN, forbidden).await;
    assert_eq!(
        read.events,
        Err("cannot watch events: forbidden (events is forbidden: User \"dev\" cannot list resource \"events\" in API group \"\" in the namespace \"my-app-dev\")".to_owned())
    );
}
