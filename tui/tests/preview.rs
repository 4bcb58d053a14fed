//! `nauthera-tui preview`, run as a CI job would run it on a pull request that edits
//! policies of `examples/`, or on the whole proposed state of a pull request: three
//! outputs, three exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::copy_dir;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn web_apps_policy() -> String {
    std::fs::read_to_string(examples().join("security-policies/web-apps-policy.yaml")).unwrap()
}

/// Writes `policy` to a file and previews it against `examples/`.
fn preview(policy: &str, output: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy).unwrap();
    let result = Command::new(env!("CARGO_BIN_EXE_nauthera-tui"))
        .args(["preview", "--policy"])
        .arg(&file)
        .arg("--manifests")
        .arg(examples())
        .args(["--output", output])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    (result, stdout)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The seed policy-update scenario: access tokens from 15m to 5m.
fn shorter_tokens() -> String {
    let policy = web_apps_policy();
    assert!(policy.contains(r#"accessTokenTTL: "15m""#));
    policy.replace(r#"accessTokenTTL: "15m""#, r#"accessTokenTTL: "5m""#)
}

/// A scope that compliant web apps use, taken away.
fn without_api_read() -> String {
    let policy = web_apps_policy();
    assert!(policy.contains(r#"    - "api:read""#));
    policy.replace("    - \"api:read\"\n", "")
}

#[test]
fn a_ttl_change_breaks_nothing_and_lists_every_governed_client_as_text() {
    let (output, text) = preview(&shorter_tokens(), "text");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(text.starts_with("Policy security/web-apps-policy (edited), against folder "));
    for client in [
        "data-platform/analytics-portal",
        "my-app-dev/my-webapp",
        "payments/checkout-web",
        "shop/storefront",
    ] {
        assert!(
            text.contains(&format!("  ~ {client}\n      accessTokenTTL 15m → 5m\n")),
            "{client} missing from:\n{text}"
        );
    }
    assert!(text.ends_with(
        "Plan: 0 clients become non-compliant, 4 change settings, 0 become compliant, 16 unaffected.\n"
    ));
}

#[test]
fn a_removed_scope_breaks_its_users_with_the_reason_and_exits_1() {
    let (output, text) = preview(&without_api_read(), "text");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(text.contains(
        "  - shop/storefront\n      spec.scopes[3]: scope \"api:read\" is not allowed by policy security/web-apps-policy (allowedScopes: openid, profile, email)\n"
    ), "{text}");
    assert!(
        text.contains("Plan: 2 clients become non-compliant"),
        "{text}"
    );
}

#[test]
fn markdown_is_ready_for_a_pull_request_comment() {
    let (output, markdown) = preview(&without_api_read(), "markdown");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        markdown.starts_with("### Nauthera policy preview: `security/web-apps-policy` (edited)\n")
    );
    assert!(markdown.contains("> [!CAUTION]\n> This policy would make 2 clients non-compliant"));
    assert!(markdown.contains("**Plan: 2 clients become non-compliant"));
    assert!(markdown.contains("| `-` | `shop/storefront` | becomes non-compliant<br>`spec.scopes[3]: scope \"api:read\" is not allowed"), "{markdown}");
    // Every table row has its three cells.
    for row in markdown.lines().filter(|line| line.starts_with("| `")) {
        assert_eq!(row.matches(" | ").count(), 2, "{row}");
    }

    let (output, markdown) = preview(&shorter_tokens(), "markdown");
    assert_eq!(output.status.code(), Some(0));
    assert!(!markdown.contains("CAUTION"));
    assert!(
        markdown.contains(
            "| `~` | `my-app-dev/my-webapp` | changes settings<br>`accessTokenTTL 15m → 5m` |"
        ),
        "{markdown}"
    );
}

#[test]
fn json_carries_the_whole_plan() {
    let (output, json) = preview(&without_api_read(), "json");
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(report["breaks_any"], true);
    assert_eq!(report["summary"]["breaks"], 2);
    assert_eq!(report["summary"]["unaffected"], 17);
    assert_eq!(
        report["basis"]["proposal"]["policies"][0]["policy"]["name"],
        "web-apps-policy"
    );
    assert_eq!(report["basis"]["proposal"]["policies"][0]["edit"], true);
    assert_eq!(report["changes"][0]["kind"], "AuthPolicy");
    assert_eq!(report["changes"][0]["change"], "Changed");
    let first = &report["clients"][0];
    assert_eq!(first["kind"], "Breaks");
    assert_eq!(first["client"]["name"], "analytics-portal");
    assert_eq!(first["new_violations"][0]["field"], "spec.scopes[3]");
}

#[test]
fn a_new_policy_is_previewed_as_new() {
    let policy = web_apps_policy()
        .replace("name: web-apps-policy", "name: web-apps-strict")
        .replace(r#"refreshTokenTTL: "24h""#, r#"refreshTokenTTL: "1h""#);
    let (output, text) = preview(&policy, "text");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        text.starts_with("Policy security/web-apps-strict (new)"),
        "{text}"
    );
    assert!(text.contains("  ~ shop/storefront\n      policies security/web-apps-policy → security/web-apps-policy, security/web-apps-strict\n      refreshTokenTTL 24h → 1h\n"), "{text}");
}

#[test]
fn errors_name_the_file_line_and_column_and_exit_2() {
    let policy = web_apps_policy().replace(
        r#"accessTokenTTL: "15m""#,
        r#"accessTokenTTL: "15 minutes""#,
    );
    let (output, text) = preview(&policy, "text");
    assert_eq!(output.status.code(), Some(2));
    assert!(text.is_empty());
    let error = stderr(&output);
    assert!(
        error.contains(
            "policy.yaml:18:5: spec.token.accessTokenTTL: \"15 minutes\" has unknown unit"
        ),
        "{error}"
    );

    let (output, _) = preview(
        "kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n",
        "text",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no AuthPolicy here"),
        "{}",
        stderr(&output)
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_nauthera-tui"))
        .args([
            "preview",
            "--policy",
            "/nonexistent/policy.yaml",
            "--manifests",
        ])
        .arg(examples())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("/nonexistent/policy.yaml: cannot read"));

    let empty = tempfile::tempdir().unwrap();
    let policy_file = empty.path().join("p.yaml");
    std::fs::write(&policy_file, shorter_tokens()).unwrap();
    let nothing = Command::new(env!("CARGO_BIN_EXE_nauthera-tui"))
        .args(["preview", "--policy"])
        .arg(&policy_file)
        .arg("--manifests")
        .arg(Path::new(empty.path()).join("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(nothing.status.code(), Some(2));
}

#[test]
fn a_source_is_required() {
    let output = Command::new(env!("CARGO_BIN_EXE_nauthera-tui"))
        .args(["preview", "--policy", "p.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--manifests <DIR>"),
        "{}",
        stderr(&output)
    );
}

fn nauthera_tui(args: &[&std::ffi::OsStr]) -> (Output, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_nauthera-tui"))
        .arg("preview")
        .args(args)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

/// `preview --base BASE --head HEAD --output OUTPUT`.
fn preview_states(base: &Path, head: &Path, output: &str) -> (Output, String) {
    nauthera_tui(&[
        "--base".as_ref(),
        base.as_os_str(),
        "--head".as_ref(),
        head.as_os_str(),
        "--output".as_ref(),
        output.as_ref(),
    ])
}

#[test]
fn several_policies_are_planned_together() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yaml");
    std::fs::write(&web, shorter_tokens()).unwrap();
    let pci_text =
        std::fs::read_to_string(examples().join("security-policies/pci-strict-policy.yaml"))
            .unwrap();
    assert!(pci_text.contains("idTokenTTL: \"2m\""), "{pci_text}");
    let pci = dir.path().join("pci.yaml");
    std::fs::write(
        &pci,
        pci_text.replace("idTokenTTL: \"2m\"", "idTokenTTL: \"1m\""),
    )
    .unwrap();
    let (output, text) = nauthera_tui(&[
        "--policy".as_ref(),
        web.as_os_str(),
        "--policy".as_ref(),
        pci.as_os_str(),
        "--manifests".as_ref(),
        examples().as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        text.starts_with("Policies security/web-apps-policy (edited), security/pci-strict-policy (edited), against folder "),
        "{text}"
    );
    // A client both govern gets both edits.
    assert!(
        text.contains(
            "  ~ payments/checkout-web\n      accessTokenTTL 15m → 5m\n      idTokenTTL 2m → 1m\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  ~ shop/storefront\n      accessTokenTTL 15m → 5m\n"),
        "{text}"
    );

    let (output, _) = nauthera_tui(&[
        "--policy".as_ref(),
        web.as_os_str(),
        "--policy".as_ref(),
        web.as_os_str(),
        "--manifests".as_ref(),
        examples().as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("security/web-apps-policy is already proposed by"),
        "{}",
        stderr(&output)
    );
}

/// A pull request on `examples/`: onboards the legacy CRM namespace (a label), shortens
/// the web apps' access tokens, removes the sandbox experiment, and adds a shop client
/// asking for a scope no policy allows.
fn pull_request() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (base, head) = (dir.path().join("main"), dir.path().join("branch"));
    for tree in [&base, &head] {
        std::fs::create_dir_all(tree).unwrap();
        copy_dir(&examples(), tree);
    }
    let edit = |file: &str, from: &str, to: &str| {
        let path = head.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    };
    edit(
        "platform/namespaces.yaml",
        "metadata:\n  name: legacy-crm\n",
        "metadata:\n  name: legacy-crm\n  labels:\n    nauthera.io/tenant: \"true\"\n",
    );
    edit(
        "security-policies/web-apps-policy.yaml",
        r#"accessTokenTTL: "15m""#,
        r#"accessTokenTTL: "5m""#,
    );
    std::fs::remove_dir_all(head.join("teams/sandbox")).unwrap();
    std::fs::write(
        head.join("teams/shop/reports.yaml"),
        "apiVersion: auth.nauthera.io/v1alpha1
kind: AuthClient
metadata:
  name: reports
  namespace: shop
spec:
  displayName: Reports
  authServerRef: {name: production-server, namespace: security}
  redirectUris: [\"https://reports.shop.example.com/callback\"]
  scopes: [openid, \"reports:admin\"]
",
    )
    .unwrap();
    (dir, base, head)
}

#[test]
fn a_whole_pull_request_is_planned_in_one_plan() {
    let (_dir, base, head) = pull_request();
    let (output, text) = preview_states(&base, &head, "text");
    assert_eq!(
        output.status.code(),
        Some(1),
        "a new client that would be refused fails the gate: {}",
        stderr(&output)
    );
    assert!(text.starts_with("Proposed state folder "), "{text}");
    assert!(
        text.contains(
            "Changes:\n  ~ AuthPolicy security/web-apps-policy\n  - AuthClient sandbox/experiment\n  + AuthClient shop/reports\n  ~ Namespace legacy-crm\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  x shop/reports (new, refused)\n      spec.scopes[1]: scope \"reports:admin\" is not allowed"),
        "{text}"
    );
    assert!(
        text.contains("  + legacy-crm/crm-portal\n"),
        "the onboarded namespace's client is fixed: {text}"
    );
    assert!(
        text.contains("  ~ shop/storefront\n      accessTokenTTL 15m → 5m\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 0 clients become non-compliant, 4 change settings, 1 becomes compliant, 1 new client (1 refused), 14 unaffected.\n"),
        "{text}"
    );

    let (output, markdown) = preview_states(&base, &head, "markdown");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        markdown.starts_with("### Nauthera preview: `folder "),
        "{markdown}"
    );
    assert!(
        markdown
            .contains("> [!CAUTION]\n> This change would add 1 client that would be refused.\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- `+` AuthClient `shop/reports`\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| `x` | `shop/reports` | new, would be refused<br>`spec.scopes[1]:"),
        "{markdown}"
    );

    let (_, json) = preview_states(&base, &head, "json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(report["breaks_any"], true);
    assert_eq!(report["summary"]["added_refused"], 1);
    assert_eq!(report["changes"].as_array().unwrap().len(), 4);
    assert_eq!(report["clients"][0]["kind"], "AddedRefused");
    assert!(
        report["basis"]["proposal"]["state"]["head"]
            .as_str()
            .unwrap()
            .ends_with("branch")
    );
}

#[test]
fn a_server_that_trusts_fewer_namespaces_breaks_their_clients() {
    let (_dir, base, head) = pull_request();
    std::fs::remove_dir_all(&head).unwrap();
    std::fs::create_dir_all(&head).unwrap();
    copy_dir(&base, &head);
    let servers = head.join("platform/servers.yaml");
    let text = std::fs::read_to_string(&servers).unwrap();
    std::fs::write(
        &servers,
        text.replacen("nauthera.io/tenant: \"true\"", "nauthera.io/tier: gold", 1),
    )
    .unwrap();
    let (output, text) = preview_states(&base, &head, "text");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        text.contains("Changes:\n  ~ AuthServer security/production-server\n\n"),
        "{text}"
    );
    assert!(
        text.contains("  - shop/storefront\n      policies security/web-apps-policy → (none)\n      spec.authServerRef: namespace \"shop\" is not allowed to register clients on AuthServer security/production-server"),
        "{text}"
    );
}

#[test]
fn a_proposed_state_that_cannot_be_read_is_an_error_with_the_place() {
    let (_dir, base, head) = pull_request();
    std::fs::write(
        head.join("teams/shop/broken.yaml"),
        "kind: AuthClient\n  bad: [\n",
    )
    .unwrap();
    let (output, text) = preview_states(&base, &head, "text");
    assert_eq!(output.status.code(), Some(2));
    assert!(text.is_empty());
    assert!(
        stderr(&output).contains("broken.yaml:2:"),
        "{}",
        stderr(&output)
    );
}
