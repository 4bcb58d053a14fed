//! The policy editor on `examples/`: live impact, errors that keep the last good preview,
//! commits that write back exactly the edit, and a read-only mode that refuses them.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::{copy_dir, examples, key, read, screen, select};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use insta::assert_snapshot;
use nauthera_tui::app::{App, Effect, Mode};
use nauthera_tui::editor::Editor;
use nauthera_tui::editor::commit::{self, CommitError};
use nauthera_tui::model::SourceKind;

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// A copy of `examples/`, so commits can write to it.
fn workspace() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&examples(), dir.path());
    let mut app = App::new(SourceKind::Folder(PathBuf::from("gitops")), None);
    app.color = false;
    app.apply_snapshot(read(dir.path()), Instant::now());
    (dir, app)
}

/// Opens the editor on the policy; its first preview is asked of the planner's worker,
/// and planned here as the worker would.
fn open_web_apps_policy(app: &mut App) {
    select(app, "web-apps-policy");
    let Effect::Plan(request) = app.handle_key(key(KeyCode::Char('e'))) else {
        panic!("opening the editor asks for a first preview");
    };
    assert_eq!(app.mode, Mode::Editor);
    app.plan_ready(request.plan());
}

fn editor(app: &mut App) -> &mut Editor {
    app.editor.as_mut().expect("the editor is open")
}

/// Finds `text` with the editor's search, as a user would (ctrl-f, text, enter).
fn search(app: &mut App, text: &str) {
    app.handle_key(ctrl('f'));
    for c in text.chars() {
        app.handle_key(key(KeyCode::Char(c)));
    }
    app.handle_key(key(KeyCode::Enter));
}

/// Sends a key; when the edit asks for a plan, plans it (what the worker does).
fn press(app: &mut App, event: KeyEvent) {
    if let Effect::Plan(request) = app.handle_key(event) {
        app.plan_ready(request.plan());
    }
}

/// The TTL scenario: 15m → 5m, by deleting the "1".
fn shorten_access_tokens(app: &mut App) {
    search(app, "15m");
    press(app, key(KeyCode::Delete));
}

#[test]
fn the_seed_ttl_edit_shows_every_governed_client_changing() {
    let (_dir, mut app) = workspace();
    open_web_apps_policy(&mut app);
    shorten_access_tokens(&mut app);
    let plan = editor(&mut app).preview.plan.clone().unwrap();
    assert_eq!(plan.summary.changes, 4);
    assert!(plan.clients.iter().all(|client| {
        client
            .changes
            .iter()
            .any(|c| c.to_string() == "accessTokenTTL 15m → 5m")
    }));
    assert_snapshot!(screen(&app, 130, 36));
}

#[test]
fn removing_a_scope_that_clients_use_shows_them_breaking_with_the_reason() {
    let (_dir, mut app) = workspace();
    open_web_apps_policy(&mut app);
    search(&mut app, "\"api:read\"");
    // Delete the whole list item: the line as it stands, then the line break before it.
    for _ in 0.."\"api:read\"".len() {
        press(&mut app, key(KeyCode::Delete));
    }
    press(&mut app, key(KeyCode::Backspace));
    press(&mut app, key(KeyCode::Backspace));
    press(&mut app, key(KeyCode::Backspace));
    press(&mut app, key(KeyCode::Backspace));
    press(&mut app, key(KeyCode::Backspace));
    press(&mut app, key(KeyCode::Backspace));
    press(&mut app, key(KeyCode::Backspace));
    let plan = editor(&mut app).preview.plan.clone().unwrap();
    assert_eq!(plan.summary.breaks, 2, "{}", plan.summary);
    assert!(
        editor(&mut app).preview.errors.is_empty(),
        "{:?}",
        editor(&mut app).preview.errors
    );
    assert_snapshot!(screen(&app, 130, 36));
}

#[test]
fn removing_a_private_use_scheme_shows_the_native_app_that_uses_it_breaking() {
    let (_dir, mut app) = workspace();
    select(&mut app, "native-apps-policy");
    let Effect::Plan(request) = app.handle_key(key(KeyCode::Char('e'))) else {
        panic!("opening the editor asks for a first preview");
    };
    app.plan_ready(request.plan());
    search(&mut app, "\"com.example.shop\", ");
    for _ in 0.."\"com.example.shop\", ".len() {
        press(&mut app, key(KeyCode::Delete));
    }
    let plan = editor(&mut app).preview.plan.clone().unwrap();
    assert_eq!(plan.summary.breaks, 1, "{}", plan.summary);
    assert_eq!(
        plan.clients[0].new_violations[0].to_string(),
        r#"spec.redirectUris[0]: redirect URI "com.example.shop:/oauth/callback" uses the private-use scheme "com.example.shop", which policy security/native-apps-policy does not allow (redirectUris.allowedSchemes: com.example.fieldservice)"#
    );
    assert_snapshot!(screen(&app, 130, 36));
}

#[test]
fn a_yaml_error_mid_typing_shows_line_and_column_and_keeps_the_last_preview() {
    let (_dir, mut app) = workspace();
    open_web_apps_policy(&mut app);
    shorten_access_tokens(&mut app);
    let good = editor(&mut app).preview.plan.clone().unwrap();
    // Typing a new key, not yet finished: `enforcePKCE: true` becomes `enforcePKCE: tru e:`.
    search(&mut app, "true");
    press(&mut app, key(KeyCode::End));
    for c in " e:".chars() {
        press(&mut app, key(KeyCode::Char(c)));
    }
    let preview = &editor(&mut app).preview;
    assert!(preview.stale);
    assert_eq!(
        preview.plan.as_ref(),
        Some(&good),
        "the last good preview is kept"
    );
    let error = preview.errors.first().expect("an error");
    assert_eq!((error.line, error.column), (24, 22), "{error}");
    assert_snapshot!(screen(&app, 130, 36));
    // Undo brings the good text, and a current preview, back.
    for _ in 0..3 {
        press(&mut app, ctrl('z'));
    }
    assert!(!editor(&mut app).preview.stale);
    assert!(editor(&mut app).preview.errors.is_empty());
}

#[test]
fn commit_to_a_folder_writes_only_the_edit_and_keeps_comments_and_other_documents() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("security.yaml");
    let servers = std::fs::read_to_string(examples().join("platform/servers.yaml")).unwrap();
    let policy =
        std::fs::read_to_string(examples().join("security-policies/web-apps-policy.yaml")).unwrap();
    let original = format!(
        "# Everything the security team owns.\n{servers}---\n{policy}--- # trailing document\n# nothing here but a comment\n"
    );
    std::fs::write(&file, &original).unwrap();
    for team in ["my-app-dev", "shop"] {
        std::fs::create_dir_all(dir.path().join(team)).unwrap();
        copy_dir(&examples().join("teams").join(team), &dir.path().join(team));
    }
    std::fs::copy(
        examples().join("platform/namespaces.yaml"),
        dir.path().join("namespaces.yaml"),
    )
    .unwrap();

    let mut app = App::new(SourceKind::Folder(dir.path().to_owned()), None);
    app.apply_snapshot(read(dir.path()), Instant::now());
    open_web_apps_policy(&mut app);
    shorten_access_tokens(&mut app);
    app.handle_key(ctrl('s'));
    let Effect::Commit(request) = app.handle_key(key(KeyCode::Char('y'))) else {
        panic!("y confirms the commit");
    };
    let done = commit::to_folder(&request);
    assert!(
        done.as_ref()
            .is_ok_and(|text| text.starts_with("wrote security/web-apps-policy to ")),
        "{done:?}"
    );
    app.commit_finished(done);
    assert_eq!(
        app.mode,
        Mode::Normal,
        "a successful commit closes the editor"
    );

    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        written,
        original.replace("accessTokenTTL: \"15m\"", "accessTokenTTL: \"5m\"")
    );
}

#[test]
fn a_file_changed_on_disk_meanwhile_is_not_overwritten_and_the_text_is_kept() {
    let (dir, mut app) = workspace();
    open_web_apps_policy(&mut app);
    shorten_access_tokens(&mut app);
    app.handle_key(ctrl('s'));
    let Effect::Commit(request) = app.handle_key(key(KeyCode::Char('y'))) else {
        panic!("y confirms the commit");
    };
    let file = dir.path().join("security-policies/web-apps-policy.yaml");
    let someone_elses = std::fs::read_to_string(&file)
        .unwrap()
        .replace("24h", "12h");
    std::fs::write(&file, &someone_elses).unwrap();

    let result = commit::to_folder(&request);
    assert!(
        matches!(result, Err(CommitError::Conflict(_))),
        "{result:?}"
    );
    app.apply_snapshot(read(dir.path()), Instant::now());
    app.commit_finished(result);
    assert_eq!(app.mode, Mode::Editor, "the editor stays open");
    let editor = editor(&mut app);
    assert!(
        editor.text().contains("accessTokenTTL: \"5m\""),
        "the text is kept"
    );
    assert!(
        editor
            .message
            .as_ref()
            .unwrap()
            .text
            .contains("changed on disk")
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), someone_elses);
}

#[test]
fn esc_asks_before_dropping_unsaved_edits() {
    let (_dir, mut app) = workspace();
    open_web_apps_policy(&mut app);
    shorten_access_tokens(&mut app);
    app.handle_key(key(KeyCode::Esc));
    assert!(screen(&app, 130, 36).contains("Unsaved edits will be lost. Leave the editor? (y/n)"));
    app.handle_key(key(KeyCode::Char('n')));
    assert_eq!(app.mode, Mode::Editor);
    app.handle_key(key(KeyCode::Esc));
    app.handle_key(key(KeyCode::Char('y')));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn read_only_mode_previews_but_refuses_to_commit() {
    let (_dir, mut app) = workspace();
    app.readonly = true;
    open_web_apps_policy(&mut app);
    shorten_access_tokens(&mut app);
    assert_eq!(
        editor(&mut app)
            .preview
            .plan
            .as_ref()
            .unwrap()
            .summary
            .changes,
        4
    );
    assert_eq!(app.handle_key(ctrl('s')), Effect::None);
    assert!(
        editor(&mut app)
            .message
            .as_ref()
            .unwrap()
            .text
            .starts_with("read-only mode (--readonly): commits are refused")
    );
    assert_eq!(editor(&mut app).prompt, None);
}

#[test]
fn enter_keeps_yaml_indentation() {
    let (_dir, mut app) = workspace();
    open_web_apps_policy(&mut app);
    search(&mut app, "- openid");
    press(&mut app, key(KeyCode::End));
    press(&mut app, key(KeyCode::Enter));
    for c in "- phone".chars() {
        press(&mut app, key(KeyCode::Char(c)));
    }
    assert!(
        editor(&mut app)
            .text()
            .contains("    - openid\n    - phone\n")
    );
    assert!(editor(&mut app).preview.errors.is_empty());
}

#[test]
fn e_on_a_client_says_to_select_a_policy() {
    let (_dir, mut app) = workspace();
    select(&mut app, "shop/storefront");
    app.handle_key(key(KeyCode::Char('e')));
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(
        app.message.as_ref().unwrap().text,
        "select a policy to edit it (e)"
    );
}
