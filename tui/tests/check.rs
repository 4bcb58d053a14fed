//! `nauthera-tui check`, run as a user or a CI job would run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nauthera-tui"))
        .arg("check")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SERVER: &str = "apiVersion: auth.nauthera.io/v1alpha1
kind: AuthServer
metadata: {name: prod, namespace: security}
spec:
  issuerUrl: https://auth.example.com
  provider: {type: DynamicClientRegistration}
  policySelector: {}
  allowedNamespaces: {from: All}
---
apiVersion: auth.nauthera.io/v1alpha1
kind: AuthPolicy
metadata: {name: web, namespace: security}
spec:
  allowedScopes: [openid]
";

fn client(name: &str, scope: &str) -> String {
    format!(
        "apiVersion: auth.nauthera.io/v1alpha1\nkind: AuthClient\nmetadata: {{name: {name}, namespace: team}}\nspec:\n  displayName: {name}\n  authServerRef: {{name: prod, namespace: security}}\n  redirectUris: [https://{name}.example.com/cb]\n  scopes: [{scope}]\n"
    )
}

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

#[test]
fn examples_report_every_client_and_exit_1_for_the_non_compliant_ones() {
    let output = check(&[examples().to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("✔ my-app-dev/my-webapp "), "{stdout}");
    assert!(stdout.contains("✖ my-app-dev/my-webapp-admin "), "{stdout}");
    assert!(
        stdout.contains(r#"    spec.scopes[2]: scope "api:write" is not allowed by policy security/web-apps-policy (allowedScopes: openid, profile, email, api:read)"#),
        "{stdout}"
    );
    assert!(stdout.contains("⚠ internal-tools/grafana "), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("20 clients: 10 compliant, 1 with audit findings, 9 non-compliant."),
        "{stdout}"
    );
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

#[test]
fn json_output_holds_every_evaluation() {
    let output = check(&["--output", "json", examples().to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(report["summary"]["clients"], 20);
    assert_eq!(report["summary"]["non_compliant"], 9);
    let admin = report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"]["name"] == "my-webapp-admin")
        .expect("my-webapp-admin");
    assert_eq!(admin["compliance"], "NonCompliant");
    assert_eq!(admin["violations"][0]["rule"], "allowedScopes");
    assert_eq!(admin["violations"][0]["policy"], "security/web-apps-policy");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn all_compliant_exits_0() {
    let dir = folder(&[
        ("platform.yaml", SERVER),
        ("team/app.yaml", &client("app", "openid")),
    ]);
    let output = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(
        text(&output.stdout)
            .contains("1 clients: 1 compliant, 0 with audit findings, 0 non-compliant.")
    );
}

#[test]
fn a_bad_document_is_named_and_exits_2_while_the_rest_is_checked() {
    let broken = client("broken", "openid").replace("scopes: [openid]", "scopes: openid]");
    let dir = folder(&[
        ("platform.yaml", SERVER),
        ("team/app.yaml", &client("app", "openid")),
        ("team/broken.yaml", &broken),
    ]);
    let output = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stdout).contains("✔ team/app "),
        "{}",
        text(&output.stdout)
    );
    let stderr = text(&output.stderr);
    let expected = format!(
        "error: {}:8:",
        Path::new(dir.path()).join("team/broken.yaml").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_missing_folder_exits_2_with_its_name() {
    let output = check(&["/no/such/manifests"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr).trim(),
        "error: /no/such/manifests: no such file or directory"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_folder_without_nauthera_manifests_exits_2() {
    let dir = folder(&[(
        "deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
    )]);
    let output = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("no Nauthera manifests under")
            && text(&output.stderr).contains("(1 YAML files read, 1 other documents skipped)"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn help_explains_the_exit_codes() {
    let output = Command::new(env!("CARGO_BIN_EXE_nauthera-tui"))
        .args(["check", "--help"])
        .output()
        .unwrap();
    let help = text(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("exits 0 when every client complies"),
        "{help}"
    );
    assert!(help.contains("2 on errors"), "{help}");
}
