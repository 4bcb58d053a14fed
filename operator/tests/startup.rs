//! A fatal start-up error, as `kubectl logs` shows it: no terminal, so one plain line and
//! a non-zero exit — no colours, no backtrace section.

use std::process::Command;

fn run_without_a_cluster(extra: &[&str]) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_nauthera-operator"))
        .args(["run", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
        .env("HOME", home.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("RUST_LOG")
        .output()
        .expect("the operator runs");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

#[test]
fn no_cluster_is_one_plain_sentence_and_status_1() {
    let (status, output) = run_without_a_cluster(&[]);
    assert_eq!(status, Some(1), "{output}");
    let last = output.lines().last().unwrap_or_default();
    assert!(
        last.contains("not in a pod") && last.contains("no-such-kubeconfig"),
        "the last line says why: {output}"
    );
    assert!(
        !output.contains('\x1b') && !output.contains("BACKTRACE") && !output.contains("Location:"),
        "plain text only: {output}"
    );
}

#[test]
fn with_json_logs_the_fatal_error_is_one_json_line() {
    let (status, output) = run_without_a_cluster(&["--log-format", "json"]);
    assert_eq!(status, Some(1), "{output}");
    let last: serde_json::Value = serde_json::from_str(output.lines().last().unwrap_or_default())
        .unwrap_or_else(|error| panic!("the last line is JSON ({error}): {output}"));
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(
        last["fields"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("not in a pod")),
        "{last}"
    );
}
