//! A policy edit reaches every client the policy can govern, whatever namespace is on
//! screen: on a cluster the editor reads the clients of every namespace the user may list
//! (kube's mock service stands in for the API server), names the namespaces RBAC hides
//! instead of counting their clients as unaffected, and reads them again before a commit.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::{examples, key, read, screen, select};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use http::{Method, Request, Response, StatusCode};
use insta::assert_snapshot;
use kube::Client;
use kube::client::Body;
use nauthera_shared::Inventory;
use nauthera_shared::resources::{AuthClient, ObjectRef};
use nauthera_tui::app::{App, Effect, Mode};
use nauthera_tui::editor::{CommitRequest, CommitTarget};
use nauthera_tui::model::{Reach, Snapshot, SourceKind};
use nauthera_tui::source::cluster::read_reach;
use serde_json::{Value, json};
use tower_test::mock;

/// What the user may do on the pretend cluster.
#[derive(Clone)]
struct Rbac {
    list_clients_cluster_wide: bool,
    list_namespaces: bool,
    /// Namespaces whose clients the user may not list.
    hidden: BTreeSet<&'static str>,
}

fn forbidden(what: &str) -> (StatusCode, Value) {
    (
        StatusCode::FORBIDDEN,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden",
               "message": format!("{what} is forbidden: User \"dev\" cannot list it")}),
    )
}

fn list(kind: &str, items: Vec<Value>) -> (StatusCode, Value) {
    let items = Value::Array(items);
    (
        StatusCode::OK,
        json!({"kind": format!("{kind}List"), "apiVersion": "v1", "metadata": {"resourceVersion": "100"}, "items": items}),
    )
}

fn client_json(client: &AuthClient) -> Value {
    let mut value = serde_json::to_value(client).unwrap();
    value["apiVersion"] = json!("auth.nauthera.io/v1alpha1");
    value["kind"] = json!("AuthClient");
    value
}

/// Answers lists of clients and namespaces from `inventory`, as `rbac` allows; records
/// every path asked for.
fn api_server(inventory: Inventory, rbac: Rbac) -> (Client, tokio::task::JoinHandle<Vec<String>>) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut asked = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            assert_eq!(request.method(), Method::GET);
            let path = request.uri().path().to_owned();
            asked.push(path.clone());
            let (status, body) = if path == "/apis/auth.nauthera.io/v1alpha1/authclients" {
                if rbac.list_clients_cluster_wide {
                    list(
                        "AuthClient",
                        inventory.clients.iter().map(client_json).collect(),
                    )
                } else {
                    forbidden("authclients.auth.nauthera.io at the cluster scope")
                }
            } else if path == "/api/v1/namespaces" {
                if rbac.list_namespaces {
                    let names: BTreeSet<&String> = inventory.namespaces.keys().collect();
                    list(
                        "Namespace",
                        names
                            .into_iter()
                            .map(|name| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
                            .collect(),
                    )
                } else {
                    forbidden("namespaces")
                }
            } else if let Some(namespace) = path
                .strip_prefix("/apis/auth.nauthera.io/v1alpha1/namespaces/")
                .and_then(|rest| rest.strip_suffix("/authclients"))
            {
                if rbac.hidden.contains(namespace) {
                    forbidden(&format!("authclients in {namespace}"))
                } else {
                    list(
                        "AuthClient",
                        inventory
                            .clients
                            .iter()
                            .filter(|c| c.metadata.namespace.as_deref() == Some(namespace))
                            .map(client_json)
                            .collect(),
                    )
                }
            } else {
                panic!("unexpected request {path}");
            };
            respond.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
        asked
    });
    (Client::new(service, "default"), server)
}

fn payments_hidden() -> Rbac {
    Rbac {
        list_clients_cluster_wide: false,
        list_namespaces: true,
        hidden: BTreeSet::from(["payments"]),
    }
}

async fn reach_of(inventory: &Inventory, rbac: Rbac, hints: &[String]) -> (Reach, Vec<String>) {
    let (client, server) = api_server(inventory.clone(), rbac);
    let reach = read_reach(client, hints).await.expect("a reach");
    (reach, server.await.unwrap())
}

fn names(clients: &[AuthClient]) -> BTreeSet<String> {
    clients
        .iter()
        .map(|client| ObjectRef::of(client).to_string())
        .collect()
}

#[tokio::test]
async fn clients_listed_cluster_wide_when_allowed_in_one_request() {
    let inventory = read(&examples()).inventory;
    let rbac = Rbac {
        list_clients_cluster_wide: true,
        ..payments_hidden()
    };
    let (reach, asked) = reach_of(&inventory, rbac, &[]).await;
    assert_eq!(asked, ["/apis/auth.nauthera.io/v1alpha1/authclients"]);
    assert!(reach.cluster_wide && !reach.is_partial());
    assert_eq!(names(&reach.clients), names(&inventory.clients));
    assert_eq!(
        reach.describe(),
        "Planned against every client in the cluster (20)."
    );
}

#[tokio::test]
async fn else_namespace_by_namespace_naming_the_ones_rbac_hides() {
    let inventory = read(&examples()).inventory;
    let (reach, asked) = reach_of(&inventory, payments_hidden(), &[]).await;
    assert_eq!(asked.len(), 2 + inventory.namespaces.len(), "{asked:?}");
    assert_eq!(reach.hidden, ["payments"]);
    assert!(!reach.listed.contains(&"payments".to_owned()));
    let expected: BTreeSet<String> = inventory
        .clients
        .iter()
        .filter(|c| c.metadata.namespace.as_deref() != Some("payments"))
        .map(|c| ObjectRef::of(c).to_string())
        .collect();
    assert_eq!(names(&reach.clients), expected);
    assert!(reach.is_partial());
    assert!(
        reach
            .describe()
            .starts_with("1 namespace hidden by RBAC (payments): clients there are not in this plan, affected or not."),
        "{}",
        reach.describe()
    );
}

#[tokio::test]
async fn when_namespaces_cannot_be_listed_the_hints_are_tried_and_the_plan_says_so() {
    let inventory = read(&examples()).inventory;
    let rbac = Rbac {
        list_namespaces: false,
        ..payments_hidden()
    };
    let hints = ["my-app-dev".to_owned(), "shop".to_owned()];
    let (reach, _) = reach_of(&inventory, rbac, &hints).await;
    assert!(reach.namespaces_unknown && reach.is_partial());
    assert_eq!(reach.listed, hints);
    assert!(
        reach.describe().contains(
            "of my-app-dev, shop only: namespaces cannot be listed (RBAC), so other namespaces may hold clients this plan cannot see"
        ),
        "{}",
        reach.describe()
    );
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// The dashboard on a cluster, watching namespace `my-app-dev` only: the read holds the
/// servers, policies and namespaces, and the clients of that namespace.
fn namespaced_view() -> (App, Inventory) {
    let everything = read(&examples());
    let mut snapshot: Snapshot = everything.clone();
    snapshot
        .inventory
        .clients
        .retain(|c| c.metadata.namespace.as_deref() == Some("my-app-dev"));
    for policy in &mut snapshot.inventory.policies {
        policy.metadata.resource_version = Some("4242".to_owned());
    }
    snapshot.first = true;
    let mut app = App::new(
        SourceKind::Cluster {
            context: "prod".to_owned(),
        },
        Some("my-app-dev".to_owned()),
    );
    app.color = false;
    app.apply_snapshot(snapshot, Instant::now());
    (app, everything.inventory)
}

/// Sends a key; plans what it asks to plan, as the planner's worker would.
fn press(app: &mut App, event: KeyEvent) -> Effect {
    match app.handle_key(event) {
        Effect::Plan(request) => {
            app.plan_ready(request.plan());
            Effect::None
        }
        other => other,
    }
}

/// The seed TTL edit: 15m → 5m.
fn shorten_access_tokens(app: &mut App) {
    press(app, ctrl('f'));
    for c in "15m".chars() {
        press(app, key(KeyCode::Char(c)));
    }
    press(app, key(KeyCode::Enter));
    press(app, key(KeyCode::Delete));
}

/// Opens the editor on the web apps' policy, reads every namespace (payments hidden),
/// plans, and makes the seed TTL edit; returns what was read.
async fn open_and_shorten_access_tokens(app: &mut App, everything: &Inventory) -> Reach {
    select(app, "web-apps-policy");
    let Effect::ReadReach { hints, .. } = app.handle_key(key(KeyCode::Char('e'))) else {
        panic!("on a cluster, opening the editor reads every namespace first");
    };
    let (reach, _) = reach_of(everything, payments_hidden(), &hints).await;
    let Effect::Plan(request) = app.reach_read(Ok(reach.clone()), None) else {
        panic!("the reach read, the preview is planned");
    };
    app.plan_ready(request.plan());
    shorten_access_tokens(app);
    reach
}

/// `ctrl-s`, then [`confirm`].
fn confirm_commit(app: &mut App) -> CommitRequest {
    app.handle_key(ctrl('s'));
    confirm(app)
}

/// `y` at the confirmation: on a cluster, every namespace is read again first.
fn confirm(app: &mut App) -> CommitRequest {
    let Effect::ReadReach {
        commit: Some(request),
        ..
    } = app.handle_key(key(KeyCode::Char('y')))
    else {
        panic!("a cluster commit reads every namespace first");
    };
    request
}

fn planned(app: &App) -> BTreeSet<String> {
    let plan = app.editor.as_ref().unwrap().preview.plan.as_ref().unwrap();
    plan.clients.iter().map(|c| c.client.to_string()).collect()
}

#[tokio::test]
async fn a_namespaced_view_plans_a_policy_edit_against_every_namespace_it_reaches() {
    let (mut app, everything) = namespaced_view();
    select(&mut app, "web-apps-policy");
    let Effect::ReadReach {
        context,
        hints,
        commit: None,
    } = app.handle_key(key(KeyCode::Char('e')))
    else {
        panic!("on a cluster, opening the editor reads every namespace first");
    };
    assert_eq!(context, "prod");
    assert!(hints.contains(&"my-app-dev".to_owned()), "{hints:?}");
    assert_eq!(app.mode, Mode::Editor);
    assert!(screen(&app, 130, 36).contains("Reading the clients of every namespace you may list…"));
    // No commit before every namespace is read.
    app.handle_key(ctrl('s'));
    assert!(app.editor.as_ref().unwrap().prompt.is_none());

    let (reach, _) = reach_of(&everything, payments_hidden(), &hints).await;
    let Effect::Plan(request) = app.reach_read(Ok(reach.clone()), None) else {
        panic!("the reach read, the preview is planned");
    };
    app.plan_ready(request.plan());
    shorten_access_tokens(&mut app);

    let affected = planned(&app);
    for client in [
        "my-app-dev/my-webapp",
        "shop/storefront",
        "data-platform/analytics-portal",
    ] {
        assert!(affected.contains(client), "{client} missing: {affected:?}");
    }
    assert!(
        affected.iter().all(|c| !c.starts_with("payments/")),
        "hidden clients are not planned: {affected:?}"
    );
    let summary = app
        .editor
        .as_ref()
        .unwrap()
        .preview
        .plan
        .as_ref()
        .unwrap()
        .summary;
    assert_eq!(
        summary.changes + summary.unaffected + summary.breaks + summary.fixes,
        reach.clients.len(),
        "every client read is counted once"
    );
    assert_snapshot!(screen(&app, 130, 36));

    // The commit reads every namespace again; nothing changed, so it goes ahead, guarded
    // by the version previewed.
    app.handle_key(ctrl('s'));
    assert!(screen(&app, 130, 36).contains("1 namespace hidden by RBAC (payments)"));
    let request = confirm(&mut app);
    let Effect::Commit(request) = app.reach_read(Ok(reach.clone()), Some(request)) else {
        panic!("nothing changed: the commit goes ahead");
    };
    assert!(
        matches!(request.target, CommitTarget::Cluster { ref context, .. } if context == "prod")
    );
    assert_eq!(request.target.resource_version(), Some("4242"));

    // Had a client appeared in another namespace meanwhile, the plan is shown again.
    let mut newer = reach;
    let mut added = newer
        .clients
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("storefront"))
        .unwrap()
        .clone();
    added.metadata.name = Some("storefront-v2".to_owned());
    newer.clients.push(added);
    let request = confirm_commit(&mut app);
    assert_eq!(app.reach_read(Ok(newer), Some(request)), Effect::None);
    let editor = app.editor.as_ref().unwrap();
    assert!(
        editor
            .message
            .as_ref()
            .unwrap()
            .text
            .starts_with("the objects changed since the preview: re-planned"),
        "{:?}",
        editor.message
    );
    assert!(planned(&app).contains("shop/storefront-v2"));
}

/// Someone else changed the policy while it was being edited: the commit does not go
/// ahead on the old guard; the preview is re-planned against their version, which the
/// guard now names, and the user is asked again.
#[tokio::test]
async fn a_policy_changed_by_someone_else_meanwhile_is_re_planned_before_it_is_replaced() {
    let (mut app, everything) = namespaced_view();
    let reach = open_and_shorten_access_tokens(&mut app, &everything).await;

    // They shorten the refresh tokens.
    let mut theirs = app.world.as_ref().unwrap().snapshot.clone();
    theirs.first = false;
    for policy in &mut theirs.inventory.policies {
        policy.metadata.resource_version = Some("4243".to_owned());
        if policy.metadata.name.as_deref() == Some("web-apps-policy") {
            policy.spec.token.as_mut().unwrap().refresh_token_ttl = Some("12h".to_owned());
        }
    }
    app.apply_snapshot(theirs.clone(), Instant::now());

    let request = confirm_commit(&mut app);
    assert_eq!(
        app.reach_read(Ok(reach.clone()), Some(request)),
        Effect::None
    );
    let editor = app.editor.as_ref().unwrap();
    assert!(
        editor.message.as_ref().unwrap().text.starts_with(
            "security/web-apps-policy changed on the cluster since the preview: your text would replace that version"
        ),
        "{:?}",
        editor.message
    );
    assert!(
        editor.text().contains("accessTokenTTL: 5m"),
        "the text is kept"
    );

    // The operator then writes the policy's status: its version moves, the policy does
    // not; asked again, the commit replaces the version just read, without asking more.
    for policy in &mut theirs.inventory.policies {
        policy.metadata.resource_version = Some("4244".to_owned());
    }
    app.apply_snapshot(theirs, Instant::now());
    let request = confirm_commit(&mut app);
    let Effect::Commit(request) = app.reach_read(Ok(reach), Some(request)) else {
        panic!("previewed against their version, the commit goes ahead");
    };
    assert_eq!(request.target.resource_version(), Some("4244"));
}

/// Clients the edit leaves alone come and go on a busy cluster: that changes only how many
/// are unaffected, and the commit goes ahead without asking again.
#[tokio::test]
async fn an_unaffected_client_appearing_elsewhere_does_not_stop_the_commit() {
    let (mut app, everything) = namespaced_view();
    let reach = open_and_shorten_access_tokens(&mut app, &everything).await;

    let mut newer = reach;
    let mut other = newer
        .clients
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("field-app"))
        .unwrap()
        .clone();
    other.metadata.name = Some("field-app-2".to_owned());
    newer.clients.push(other);
    let request = confirm_commit(&mut app);
    assert!(
        matches!(app.reach_read(Ok(newer), Some(request)), Effect::Commit(_)),
        "{:?}",
        app.editor.as_ref().unwrap().message
    );
}
