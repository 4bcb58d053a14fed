//! The real binary in a pseudo-terminal on a copy of `examples/`: it starts, draws the
//! tree, takes keys, follows an edit on disk, and gives the terminal back when it quits.

mod common;

use std::path::Path;

use common::copy_dir;
use common::terminal::Terminal;

#[test]
fn the_dashboard_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"),
        dir.path(),
    );
    let mut terminal = Terminal::start(
        &["--manifests".as_ref(), dir.path().as_os_str()],
        &[],
        30,
        110,
    );

    terminal.wait_for("security/production-server");
    terminal.wait_for("20 clients 10 ✔ 1 ⚠ 9 ✖");
    assert!(
        !terminal.contents().contains('•'),
        "nothing is marked as changed on the first read"
    );

    // Filter to the non-compliant clients, then clear the filter.
    terminal.send("/state:non-compliant\r");
    terminal.wait_for("filter: state:non-compliant");
    assert!(!terminal.contents().contains("shop/storefront"));
    terminal.send("\x1b");
    terminal.wait_for("shop/storefront");

    // The help overlay lists the keys.
    terminal.send("?");
    terminal.wait_for("Keys (esc closes)");
    terminal.send("?");

    // An edit on disk shows up without a key: the admin client drops the forbidden scope.
    let file = dir.path().join("teams/my-app-dev/admin-client.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace(
            r#"scopes: [openid, profile, "api:write"]"#,
            "scopes: [openid, profile]",
        ),
    )
    .unwrap();
    terminal.wait_for("20 clients 11 ✔ 1 ⚠ 8 ✖");

    terminal.quit();
}
