//! Whole screens of the dashboard on `examples/`, drawn into ratatui's `TestBackend`
//! and compared with reviewed snapshots (`cargo insta review` after a deliberate change).

mod common;

use common::{app_on_examples, key, screen, select, type_text};
use crossterm::event::KeyCode;
use insta::assert_snapshot;

#[test]
fn the_tree_on_examples() {
    let app = app_on_examples();
    assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn only_non_compliant_clients_with_a_filter() {
    let mut app = app_on_examples();
    app.handle_key(key(KeyCode::Char('/')));
    type_text(&mut app, "state:non-compliant");
    app.handle_key(key(KeyCode::Enter));
    assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn the_detail_of_a_non_compliant_client() {
    let mut app = app_on_examples();
    select(&mut app, "my-app-dev/my-webapp-admin");
    assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn the_detail_of_a_policy() {
    let mut app = app_on_examples();
    select(&mut app, "web-apps-policy");
    assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn the_help_overlay() {
    let mut app = app_on_examples();
    app.handle_key(key(KeyCode::Char('?')));
    assert_snapshot!(screen(&app, 100, 32));
}

#[test]
fn a_narrow_terminal() {
    let mut app = app_on_examples();
    select(&mut app, "mobile/field-app-legacy");
    assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn the_yaml_of_a_client() {
    let mut app = app_on_examples();
    select(&mut app, "my-app-dev/my-webapp");
    app.handle_key(key(KeyCode::Char('y')));
    assert_snapshot!(screen(&app, 100, 30));
}

#[test]
fn an_empty_folder_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = nauthera_tui::app::App::new(
        nauthera_tui::model::SourceKind::Folder("gitops".into()),
        None,
    );
    app.apply_snapshot(common::read(dir.path()), std::time::Instant::now());
    let text = screen(&app, 220, 12);
    assert!(text.contains("! no Nauthera manifests in"), "{text}");
    assert!(
        text.contains("No AuthServer, AuthPolicy or AuthClient in folder gitops."),
        "{text}"
    );
}

#[test]
fn a_broken_manifest_is_a_problem_on_screen_and_the_rest_still_shows() {
    let dir = tempfile::tempdir().unwrap();
    let examples = common::examples();
    for file in [
        "platform/servers.yaml",
        "security-policies/web-apps-policy.yaml",
    ] {
        let target = dir.path().join(file.replace('/', "-"));
        std::fs::copy(examples.join(file), target).unwrap();
    }
    std::fs::write(dir.path().join("broken.yaml"), "apiVersion: auth.nauthera.io/v1alpha1\nkind: AuthClient\nmetadata: {name: x, namespace: y}\nspec:\n  scopes: [openid\n").unwrap();
    let mut app = nauthera_tui::app::App::new(
        nauthera_tui::model::SourceKind::Folder("gitops".into()),
        None,
    );
    app.apply_snapshot(common::read(dir.path()), std::time::Instant::now());
    let text = screen(&app, 260, 20);
    assert!(text.contains("broken.yaml:"), "{text}");
    assert!(text.contains("security/production-server"), "{text}");
}
