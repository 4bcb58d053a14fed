//! Leader election at the Kubernetes API contract: a fake API server holding one Lease
//! as the real one does (created once, replaced only at the resourceVersion read, 409
//! otherwise), which can also stop answering. Time is tokio's paused clock, so the
//! lease's seconds pass at once and every outcome is deterministic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use nauthera_operator::leader::{Elector, LeaseSettings, Lost};
use serde_json::{Value, json};
use tokio::time::Instant;
use tower_test::mock;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/nauthera-system/leases";
const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/nauthera-system/leases/nauthera-operator";

/// The API server's state: the Lease (if any), its version, whether it answers at all,
/// and the requests it saw.
#[derive(Default)]
struct State {
    lease: Option<Value>,
    version: u64,
    hang: bool,
    requests: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

fn status(code: u16, reason: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason}),
    )
}

impl State {
    /// Stores `lease` as a new version and returns it as stored.
    fn store(&mut self, mut lease: Value) -> Value {
        self.version += 1;
        lease["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.lease = Some(lease.clone());
        lease
    }

    fn answer(&mut self, method: &Method, path: &str, body: Value) -> (u16, Value) {
        match (method.as_str(), path) {
            ("GET", LEASE) => match &self.lease {
                Some(lease) => (200, lease.clone()),
                None => status(404, "NotFound"),
            },
            ("POST", LEASES) if self.lease.is_some() => status(409, "AlreadyExists"),
            ("POST", LEASES) => (201, self.store(body)),
            ("PUT", LEASE) => match &self.lease {
                None => status(404, "NotFound"),
                Some(lease)
                    if lease["metadata"]["resourceVersion"]
                        != body["metadata"]["resourceVersion"] =>
                {
                    status(409, "Conflict")
                }
                Some(_) => (200, self.store(body)),
            },
            _ => panic!("unexpected request: {method} {path}"),
        }
    }

    /// Another instance writes the lease as its own, renewed now.
    fn held_by(&mut self, holder: &str) {
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "nauthera-operator", "namespace": "nauthera-system"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": k8s_openapi::jiff::Timestamp::now().to_string(),
                     "leaseTransitions": 3}
        });
        self.store(lease);
    }

    fn spec(&self) -> Value {
        self.lease
            .as_ref()
            .map_or(Value::Null, |lease| lease["spec"].clone())
    }
}

/// A client of the fake API server over `state`.
fn api_server(state: &Shared) -> Client {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let state = Arc::clone(state);
    tokio::spawn(async move {
        // Requests never answered: their callers wait until they give up.
        let mut unanswered = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let answer = {
                let mut state = state.lock().unwrap();
                state.requests.push(format!("{method} {path}"));
                (!state.hang).then(|| state.answer(&method, &path, body))
            };
            match answer {
                Some((code, answer)) => respond.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                        .unwrap(),
                ),
                None => unanswered.push(respond),
            }
        }
    });
    Client::new(service, "default")
}

fn settings(identity: &str) -> LeaseSettings {
    LeaseSettings::new(
        "nauthera-operator".to_owned(),
        "nauthera-system".to_owned(),
        identity.to_owned(),
    )
}

fn elector(state: &Shared, identity: &str) -> Elector {
    Elector::new(api_server(state), settings(identity))
}

fn requests(state: &Shared) -> Vec<String> {
    state.lock().unwrap().requests.clone()
}

#[tokio::test(start_paused = true)]
async fn a_free_lease_is_created_and_held() {
    let state = Shared::default();
    let held = elector(&state, "me").acquire().await;
    assert_eq!(
        requests(&state),
        [format!("GET {LEASE}"), format!("POST {LEASES}")]
    );
    let spec = state.lock().unwrap().spec();
    assert_eq!(spec["holderIdentity"], "me");
    assert_eq!(spec["leaseDurationSeconds"], 15);
    assert!(spec["renewTime"].is_string() && spec["acquireTime"].is_string());
    assert_eq!(
        held.lease.metadata.resource_version.as_deref(),
        Some("1"),
        "the lease as the server wrote it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_taken_at_once() {
    let state = Shared::default();
    let first = elector(&state, "first");
    first.acquire().await;
    first.release().await;
    let spec = state.lock().unwrap().spec();
    assert!(spec["holderIdentity"].is_null(), "{spec}");
    assert_eq!(spec["leaseDurationSeconds"], 1);

    let started = Instant::now();
    elector(&state, "second").acquire().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "nobody holds it: no waiting"
    );
    let spec = state.lock().unwrap().spec();
    assert_eq!(spec["holderIdentity"], "second");
    assert_eq!(spec["leaseDurationSeconds"], 15);
}

#[tokio::test(start_paused = true)]
async fn a_lease_another_instance_keeps_renewing_is_never_taken() {
    let state = Shared::default();
    state.lock().unwrap().held_by("other");
    let renewing = {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                state.lock().unwrap().held_by("other");
            }
        })
    };
    let waited =
        tokio::time::timeout(Duration::from_secs(120), elector(&state, "me").acquire()).await;
    renewing.abort();
    assert!(waited.is_err(), "took a lease that was being renewed");
    assert_eq!(state.lock().unwrap().spec()["holderIdentity"], "other");
    assert!(
        requests(&state).iter().all(|r| r.starts_with("GET")),
        "only read: {:?}",
        requests(&state)
    );
}

#[tokio::test(start_paused = true)]
async fn a_lease_not_renewed_for_its_duration_is_taken_over() {
    let state = Shared::default();
    state.lock().unwrap().held_by("gone");
    let started = Instant::now();
    elector(&state, "me").acquire().await;
    assert!(
        started.elapsed() >= Duration::from_secs(15),
        "taken over before the lease's duration passed unrenewed: {:?}",
        started.elapsed()
    );
    let spec = state.lock().unwrap().spec();
    assert_eq!(spec["holderIdentity"], "me");
    assert_eq!(spec["leaseTransitions"], 4, "one more transition");
    assert_eq!(requests(&state).last().unwrap(), &format!("PUT {LEASE}"));
}

/// After `after`, the API server stops answering (a hung connection); returns when.
fn hang_after(state: &Shared, after: Duration) -> tokio::task::JoinHandle<Instant> {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        state.lock().unwrap().hang = true;
        Instant::now()
    })
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_is_never_answered_ends_leading_within_the_renew_deadline() {
    let state = Shared::default();
    let elector = elector(&state, "me");
    let held = elector.acquire().await;
    let hung = hang_after(&state, Duration::from_secs(7));
    let lost = elector.hold(held).await;
    let hung_at = hung.await.unwrap();
    let Lost::NotRenewed(_, error) = &lost else {
        panic!("{lost}");
    };
    assert!(error.contains("did not answer"), "{error}");
    let renewals = requests(&state)
        .iter()
        .filter(|r| r.starts_with("PUT"))
        .count();
    assert!(renewals >= 3, "renewed until the hang: {renewals}");
    // The last renewal that was answered was sent before the hang: leading ends within
    // the renew deadline of it, well before a follower may take over (15 s).
    let stopped_after = Instant::now() - hung_at;
    assert!(
        stopped_after <= Duration::from_secs(10),
        "stopped {stopped_after:?} after the API server stopped answering"
    );
}

#[tokio::test(start_paused = true)]
async fn a_renewal_refused_because_another_instance_took_the_lease_ends_leading() {
    let state = Shared::default();
    let elector = elector(&state, "me");
    let held = elector.acquire().await;
    let taker = {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            state.lock().unwrap().held_by("usurper");
        })
    };
    let lost = elector.hold(held).await;
    taker.await.unwrap();
    let Lost::TakenBy(holder) = &lost else {
        panic!("{lost}");
    };
    assert_eq!(holder, "usurper");
    let seen = requests(&state);
    assert_eq!(
        seen[seen.len() - 2..],
        [format!("PUT {LEASE}"), format!("GET {LEASE}")],
        "a 409, then who holds it now"
    );
    assert_eq!(state.lock().unwrap().spec()["holderIdentity"], "usurper");
}

#[tokio::test(start_paused = true)]
async fn release_on_shutdown_empties_the_holder_and_never_touches_anothers_lease() {
    let state = Shared::default();
    let me = elector(&state, "me");
    me.acquire().await;
    me.release().await;
    let spec = state.lock().unwrap().spec();
    assert!(spec["holderIdentity"].is_null(), "{spec}");
    assert_eq!(spec["leaseDurationSeconds"], 1);

    state.lock().unwrap().held_by("other");
    let before = requests(&state).len();
    me.release().await;
    assert_eq!(requests(&state)[before..], [format!("GET {LEASE}")]);
    assert_eq!(state.lock().unwrap().spec()["holderIdentity"], "other");
}

#[tokio::test(start_paused = true)]
async fn release_gives_up_after_two_seconds_when_the_api_server_does_not_answer() {
    let state = Shared::default();
    let me = elector(&state, "me");
    me.acquire().await;
    state.lock().unwrap().hang = true;
    let started = Instant::now();
    me.release().await;
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "released for {:?}",
        started.elapsed()
    );
    assert_eq!(state.lock().unwrap().spec()["holderIdentity"], "me");
}
