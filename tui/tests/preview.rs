//! `nauthera-tui preview`, run as a CI job would run it on a pull request that edits a
//! policy of `examples/`: three outputs, three exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    assert_eq!(report["policy"]["name"], "web-apps-policy");
    assert_eq!(report["basis"]["edit"], true);
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
