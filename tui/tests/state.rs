//! How the dashboard's state follows new snapshots and keys: objects added, changed and
//! deleted move in the tree, the selection stays on the same object, changes are marked.

mod common;

use std::time::{Duration, Instant};

use common::{app_on_examples, key, select, type_text};
use crossterm::event::KeyCode;
use nauthera_shared::resources::AuthClient;
use nauthera_tui::app::{App, CHANGE_MARK, Effect};
use nauthera_tui::model::{Snapshot, State};
use nauthera_tui::tree::{NodeId, ObjectKey, Target};

fn snapshot(app: &App) -> Snapshot {
    app.world.as_ref().unwrap().snapshot.clone()
}

fn client_mut<'a>(snapshot: &'a mut Snapshot, namespace: &str, name: &str) -> &'a mut AuthClient {
    snapshot
        .inventory
        .clients
        .iter_mut()
        .find(|c| {
            c.metadata.namespace.as_deref() == Some(namespace)
                && c.metadata.name.as_deref() == Some(name)
        })
        .unwrap()
}

fn selected_label(app: &App) -> String {
    app.selected_row().unwrap().label.clone()
}

#[test]
fn a_fixed_client_changes_state_in_place_keeps_the_selection_and_is_marked() {
    let mut app = app_on_examples();
    select(&mut app, "my-app-dev/my-webapp-admin");
    let row = app.selected_row().unwrap().clone();
    assert_eq!(row.state, State::NonCompliant);

    let mut next = snapshot(&app);
    client_mut(&mut next, "my-app-dev", "my-webapp-admin")
        .spec
        .scopes
        .retain(|s| s != "api:write");
    let now = Instant::now();
    app.apply_snapshot(next, now);

    let after = app.selected_row().unwrap();
    assert_eq!(after.id, row.id, "the selection stays on the client");
    assert_eq!(after.state, State::Compliant);
    assert!(
        app.changed.contains_key(&row.id),
        "the client is marked as changed"
    );
    let policy = app
        .rows
        .iter()
        .find(|r| r.label == "web-apps-policy")
        .unwrap();
    assert!(
        app.changed.contains_key(&policy.id),
        "so is the policy whose counts changed"
    );
    let untouched = app
        .rows
        .iter()
        .find(|r| r.label == "shop/storefront")
        .unwrap();
    assert!(!app.changed.contains_key(&untouched.id));

    assert!(!app.expire_marks(now + CHANGE_MARK / 2));
    assert!(app.expire_marks(now + CHANGE_MARK + Duration::from_millis(1)));
    assert!(app.changed.is_empty());
}

#[test]
fn an_added_client_appears_under_its_policy() {
    let mut app = app_on_examples();
    select(&mut app, "shop/storefront");
    let mut next = snapshot(&app);
    let mut added = client_mut(&mut next, "shop", "storefront").clone();
    added.metadata.name = Some("storefront-v2".to_owned());
    next.inventory.clients.push(added);
    app.apply_snapshot(next, Instant::now());

    assert_eq!(selected_label(&app), "shop/storefront");
    let new_row = app
        .rows
        .iter()
        .find(|r| r.label == "shop/storefront-v2")
        .unwrap();
    assert!(app.changed.contains_key(&new_row.id));
    let policy = app
        .rows
        .iter()
        .find(|r| r.label == "web-apps-policy")
        .unwrap();
    assert_eq!(policy.counts.unwrap().total(), 9);
}

#[test]
fn a_deleted_client_leaves_the_selection_nearby() {
    let mut app = app_on_examples();
    select(&mut app, "shop/shop-legacy-admin");
    let position = app.selected;
    let mut next = snapshot(&app);
    next.inventory
        .clients
        .retain(|c| c.metadata.name.as_deref() != Some("shop-legacy-admin"));
    app.apply_snapshot(next, Instant::now());

    assert!(app.rows.iter().all(|r| r.label != "shop/shop-legacy-admin"));
    assert_eq!(app.selected, position, "the selection keeps its place");
    assert_eq!(selected_label(&app), "shop/storefront");
}

#[test]
fn a_client_that_moves_to_another_branch_stays_selected() {
    let mut app = app_on_examples();
    select(&mut app, "my-app-dev/my-webapp");
    let mut next = snapshot(&app);
    client_mut(&mut next, "my-app-dev", "my-webapp")
        .spec
        .auth_server_ref
        .name = "retired-server".to_owned();
    app.apply_snapshot(next, Instant::now());

    let row = app.selected_row().unwrap();
    assert_eq!(row.label, "my-app-dev/my-webapp");
    assert_eq!(
        row.id.object(),
        ObjectKey::Client(nauthera_shared::resources::ObjectRef::new(
            "my-app-dev",
            "my-webapp"
        ))
    );
    let NodeId::Client(parent, _) = &row.id else {
        panic!("not a client: {:?}", row.id)
    };
    assert_eq!(
        **parent,
        NodeId::Group(nauthera_tui::tree::Group::MissingServer)
    );
}

#[test]
fn a_selected_client_moving_into_a_collapsed_branch_opens_it() {
    let mut app = app_on_examples();
    select(&mut app, "Server not found");
    app.handle_key(key(KeyCode::Char('h')));
    assert!(!app.selected_row().unwrap().expanded);
    select(&mut app, "shop/storefront");
    let mut next = snapshot(&app);
    client_mut(&mut next, "shop", "storefront")
        .spec
        .auth_server_ref
        .name = "gone".to_owned();
    app.apply_snapshot(next, Instant::now());
    assert_eq!(selected_label(&app), "shop/storefront");
    assert!(matches!(
        app.selected_row().unwrap().target,
        Target::Client(_)
    ));
}

#[test]
fn collapse_expand_and_go_to_the_parent() {
    let mut app = app_on_examples();
    let before = app.rows.len();
    select(&mut app, "web-apps-policy");
    app.handle_key(key(KeyCode::Char('h')));
    assert_eq!(app.rows.len(), before - 8, "its 8 clients are hidden");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(app.rows.len(), before);
    select(&mut app, "shop/storefront");
    app.handle_key(key(KeyCode::Left));
    assert_eq!(
        selected_label(&app),
        "web-apps-policy",
        "h on a leaf goes to its parent"
    );
}

#[test]
fn filters_by_namespace_label_and_name() {
    let mut app = app_on_examples();
    app.handle_key(key(KeyCode::Char('/')));
    type_text(&mut app, "ns:payments");
    app.handle_key(key(KeyCode::Enter));
    let clients: Vec<&str> = app
        .rows
        .iter()
        .filter(|r| matches!(r.target, Target::Client(_)))
        .map(|r| r.label.as_str())
        .collect();
    assert!(
        clients.iter().all(|c| c.starts_with("payments/")),
        "{clients:?}"
    );
    assert!(clients.contains(&"payments/fraud-dashboard"));

    app.handle_key(key(KeyCode::Esc));
    assert!(!app.filter.is_active(), "esc clears the filter");

    app.handle_key(key(KeyCode::Char('/')));
    type_text(&mut app, "native");
    app.handle_key(key(KeyCode::Enter));
    let labels: Vec<&str> = app.rows.iter().map(|r| r.label.as_str()).collect();
    assert!(labels.contains(&"native-apps-policy"));
    assert!(
        labels.contains(&"mobile/field-app"),
        "clients under a matching policy show: {labels:?}"
    );
    assert!(!labels.contains(&"web-apps-policy"));
}

#[test]
fn a_bad_filter_word_says_what_is_expected_and_esc_restores_the_filter() {
    let mut app = app_on_examples();
    app.handle_key(key(KeyCode::Char('/')));
    type_text(&mut app, "state:broken");
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("unknown state \"broken\"")
    );
    app.handle_key(key(KeyCode::Esc));
    assert!(!app.filter.is_active());
    assert_eq!(app.rows.len(), app_on_examples().rows.len());
}

#[test]
fn namespace_and_context_commands() {
    let mut app = app_on_examples();
    app.handle_key(key(KeyCode::Char(':')));
    type_text(&mut app, "ns shop");
    let effect = app.handle_key(key(KeyCode::Enter));
    assert_eq!(effect, Effect::SwitchNamespace(Some("shop".to_owned())));
    let clients: Vec<&str> = app
        .rows
        .iter()
        .filter(|r| matches!(r.target, Target::Client(_)))
        .map(|r| r.label.as_str())
        .collect();
    assert!(
        !clients.is_empty() && clients.iter().all(|c| c.starts_with("shop/")),
        "{clients:?}"
    );

    app.handle_key(key(KeyCode::Char(':')));
    type_text(&mut app, "ctx prod");
    app.handle_key(key(KeyCode::Enter));
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .starts_with("no contexts here: reading the folder")
    );

    app.handle_key(key(KeyCode::Char(':')));
    type_text(&mut app, "frobnicate");
    app.handle_key(key(KeyCode::Enter));
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .starts_with("unknown command :frobnicate")
    );

    app.handle_key(key(KeyCode::Char(':')));
    type_text(&mut app, "q");
    assert_eq!(app.handle_key(key(KeyCode::Enter)), Effect::Quit);
}

#[test]
fn on_a_cluster_a_compliant_client_is_pending_until_the_operator_reports() {
    use nauthera_shared::resources::{AuthClientStatus, Condition};
    let mut app = app_on_examples();
    let mut live = snapshot(&app);
    live.live = true;
    {
        let client = client_mut(&mut live, "shop", "storefront");
        client.metadata.generation = Some(2);
        client.status = Some(AuthClientStatus {
            observed_generation: Some(2),
            conditions: vec![Condition {
                type_: "Ready".to_owned(),
                status: "True".to_owned(),
                reason: "Provisioned".to_owned(),
                message: String::new(),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
                observed_generation: Some(2),
            }],
            ..AuthClientStatus::default()
        });
    }
    app.apply_snapshot(live, Instant::now());
    let state = |app: &App, label: &str| app.rows.iter().find(|r| r.label == label).unwrap().state;
    assert_eq!(state(&app, "shop/storefront"), State::Compliant);
    assert_eq!(
        state(&app, "my-app-dev/my-webapp"),
        State::Pending,
        "no status yet"
    );
    assert_eq!(state(&app, "shop/shop-legacy-admin"), State::NonCompliant);
}

#[test]
fn a_sources_first_read_marks_nothing_and_a_later_change_is_marked() {
    let mut app = app_on_examples();
    assert!(
        app.changed.is_empty(),
        "nothing is marked on the first read"
    );

    // A new source (another namespace or context) starts with a first read of its own:
    // everything in it is new to the app, and still nothing is marked.
    let mut other = snapshot(&app);
    other
        .inventory
        .clients
        .retain(|c| c.metadata.namespace.as_deref() == Some("shop"));
    other.first = true;
    app.apply_snapshot(other.clone(), Instant::now());
    assert!(app.changed.is_empty(), "{:?}", app.changed.keys());

    let mut next = other;
    next.first = false;
    client_mut(&mut next, "shop", "storefront")
        .spec
        .scopes
        .push("phone".to_owned());
    app.apply_snapshot(next, Instant::now());
    let marked: Vec<String> = app
        .rows
        .iter()
        .filter(|row| app.changed.contains_key(&row.id))
        .map(|row| row.label.clone())
        .collect();
    assert!(marked.contains(&"shop/storefront".to_owned()), "{marked:?}");
    assert!(
        !marked.contains(&"shop/shop-legacy-admin".to_owned()),
        "{marked:?}"
    );
}

/// A read is prepared off the UI's thread; the user may collapse a branch or switch
/// namespace meanwhile, and the rows that come back follow the view as it is now.
#[test]
fn a_read_prepared_while_the_view_changed_follows_the_view_as_it_is_now() {
    let mut app = app_on_examples();
    let mut next = snapshot(&app);
    client_mut(&mut next, "shop", "storefront")
        .spec
        .scopes
        .push("phone".to_owned());
    let request = app.view_request(nauthera_tui::model::World::new(next.clone()));

    select(&mut app, "web-apps-policy");
    app.handle_key(key(KeyCode::Char('h')));
    let collapsed = app.rows.len();
    drop(app.take_view(nauthera_tui::view::prepare(request), Instant::now()));
    assert_eq!(app.rows.len(), collapsed, "the branch stays collapsed");
    assert_eq!(selected_label(&app), "web-apps-policy");
    assert!(app.rows.iter().all(|r| r.label != "shop/storefront"));

    let request = app.view_request(nauthera_tui::model::World::new(next));
    app.handle_key(key(KeyCode::Char(':')));
    type_text(&mut app, "ns mobile");
    app.handle_key(key(KeyCode::Enter));
    drop(app.take_view(nauthera_tui::view::prepare(request), Instant::now()));
    let clients: Vec<&str> = app
        .rows
        .iter()
        .filter(|r| matches!(r.target, Target::Client(_)))
        .map(|r| r.label.as_str())
        .collect();
    assert!(
        !clients.is_empty() && clients.iter().all(|c| c.starts_with("mobile/")),
        "{clients:?}"
    );
}

#[test]
fn a_filter_hides_branches_with_nothing_under_them_that_do_not_match() {
    let mut app = app_on_examples();
    let mut next = snapshot(&app);
    let mut empty = next.inventory.servers[0].clone();
    empty.metadata.name = Some("empty-server".to_owned());
    empty.spec.policy_selector = None;
    next.inventory.servers.push(empty);
    app.apply_snapshot(next, Instant::now());
    assert!(app.rows.iter().any(|r| r.label == "security/empty-server"));

    app.handle_key(key(KeyCode::Char('/')));
    type_text(&mut app, "storefront");
    app.handle_key(key(KeyCode::Enter));
    let labels: Vec<&str> = app.rows.iter().map(|r| r.label.as_str()).collect();
    assert!(labels.contains(&"shop/storefront"), "{labels:?}");
    assert!(!labels.contains(&"security/empty-server"), "{labels:?}");

    app.handle_key(key(KeyCode::Esc));
    app.handle_key(key(KeyCode::Char('/')));
    type_text(&mut app, "empty");
    app.handle_key(key(KeyCode::Enter));
    let labels: Vec<&str> = app.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        ["security/empty-server"],
        "it shows when it matches"
    );
}

#[test]
fn an_edited_policy_is_marked_wherever_it_sits() {
    let mut app = app_on_examples();
    let mut next = snapshot(&app);
    let policy = next
        .inventory
        .policies
        .iter_mut()
        .find(|p| p.metadata.name.as_deref() == Some("web-apps-policy"))
        .unwrap();
    policy.spec.token.as_mut().unwrap().access_token_ttl = Some("5m".to_owned());
    app.apply_snapshot(next, Instant::now());
    let marked: Vec<&str> = app
        .rows
        .iter()
        .filter(|row| app.changed.contains_key(&row.id))
        .map(|row| row.label.as_str())
        .collect();
    assert!(marked.contains(&"web-apps-policy"), "{marked:?}");
    assert!(!marked.contains(&"pci-strict-policy"), "{marked:?}");
}
