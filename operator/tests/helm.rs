//! The Helm chart, `charts/nauthera-operator`: `helm lint --strict` passes; rendered with
//! its defaults (release `nauthera-operator` in `nauthera-system`) it is
//! `deploy/operator.yaml` object for object, Helm's own labels aside (the Namespace is
//! Helm's `--create-namespace`); it carries the CRDs of `crds/`, kept on uninstall; and
//! another release name renames what must be unique.
//!
//! Needs helm: `NAUTHERA_E2E_HELM` (./test.sh builds one), else `helm` on `PATH`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn helm() -> Option<String> {
    if let Some(path) = std::env::var_os("NAUTHERA_E2E_HELM") {
        return Some(path.to_string_lossy().into_owned());
    }
    let on_path = Command::new("helm")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success());
    if on_path {
        return Some("helm".to_owned());
    }
    common::skip("no helm (set NAUTHERA_E2E_HELM or put one on PATH): the chart's tests");
    None
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    root().join("charts/nauthera-operator")
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|document| serde::Deserialize::deserialize(document).expect("valid YAML"))
        .filter(|value: &Value| !value.is_null())
        .collect()
}

/// `helm template RELEASE chart -n nauthera-system ARGS…`, as documents.
fn render(helm: &str, release: &str, args: &[&str]) -> Vec<Value> {
    let output = Command::new(helm)
        .arg("template")
        .arg(release)
        .arg(chart())
        .args(["--namespace", "nauthera-system"])
        .args(args)
        .output()
        .expect("helm runs");
    assert!(
        output.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    documents(&String::from_utf8(output.stdout).unwrap())
}

fn key(object: &Value) -> (String, String, String) {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    (
        text(&object["kind"]),
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

/// Labels only Helm sets, on objects and in selectors.
const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

fn without_helm_labels(mut object: Value) -> Value {
    fn strip(map: &mut Value) {
        if let Some(labels) = map.as_object_mut() {
            for label in HELM_LABELS {
                labels.remove(label);
            }
        }
    }
    for pointer in [
        "/metadata/labels",
        "/spec/selector/matchLabels",
        "/spec/selector",
        "/spec/template/metadata/labels",
    ] {
        if let Some(labels) = object.pointer_mut(pointer) {
            strip(labels);
        }
    }
    // A label map left empty is no map at all in deploy/.
    if object["metadata"]["labels"]
        .as_object()
        .is_some_and(serde_json::Map::is_empty)
    {
        object["metadata"].as_object_mut().unwrap().remove("labels");
    }
    object
}

#[test]
fn the_chart_lints_clean() {
    let Some(helm) = helm() else { return };
    let output = Command::new(&helm)
        .args(["lint", "--strict"])
        .arg(chart())
        .output()
        .expect("helm runs");
    assert!(
        output.status.success(),
        "helm lint --strict: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn rendered_with_its_defaults_the_chart_is_deploy_operator_yaml() {
    let Some(helm) = helm() else { return };
    let deploy = std::fs::read_to_string(root().join("deploy/operator.yaml")).unwrap();
    let expected: BTreeMap<_, _> = documents(&deploy)
        .into_iter()
        .filter(|object| object["kind"] != "Namespace")
        .map(|object| (key(&object), object))
        .collect();
    let rendered: BTreeMap<_, _> = render(&helm, "nauthera-operator", &[])
        .into_iter()
        .filter(|object| object["kind"] != "CustomResourceDefinition" && !is_hook(object))
        .map(|object| (key(&object), without_helm_labels(object)))
        .collect();
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same objects"
    );
    for (key, object) in &expected {
        assert_eq!(&rendered[key], object, "{key:?} differs from deploy/");
    }
}

fn is_hook(object: &Value) -> bool {
    object["metadata"]["annotations"]["helm.sh/hook"].is_string()
}

/// Before anything is deleted, a Job runs `nauthera-operator release` for this
/// release's Deployment and Lease, as the operator's service account, from the operator's
/// image; a Role of the hook's own lets it scale that Deployment, and only that one.
#[test]
fn uninstalling_first_releases_every_authclient() {
    let Some(helm) = helm() else { return };
    let objects = render(&helm, "nauthera-operator", &[]);
    let hooks: Vec<&Value> = objects.iter().filter(|o| is_hook(o)).collect();
    let kinds: Vec<&str> = hooks.iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["Role", "RoleBinding", "Job"],
        "the hook's objects, in order"
    );
    for hook in &hooks {
        assert_eq!(
            hook["metadata"]["annotations"]["helm.sh/hook"],
            "pre-delete"
        );
    }
    let role = hooks[0];
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"],
                            "resourceNames": ["nauthera-operator"], "verbs": ["get", "patch"]}])
    );
    assert_eq!(hooks[1]["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(hooks[1]["subjects"][0]["name"], "nauthera-operator");
    let job = hooks[2];
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "nauthera-operator");
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let operator = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        operator["containers"][0]["image"]
    );
    assert_eq!(pod["securityContext"], operator["securityContext"]);
    let args: Vec<String> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args[0], "release");
    assert_eq!(flag(&args, "--deployment"), Some("nauthera-operator"));
    assert_eq!(flag(&args, "--lease-name"), Some("nauthera-operator"));
    let without = render(
        &helm,
        "nauthera-operator",
        &["--set", "releaseOnUninstall=false"],
    );
    assert!(without.iter().all(|object| !is_hook(object)));
}

#[test]
fn the_chart_installs_the_crds_of_crds_and_keeps_them_on_uninstall() {
    let Some(helm) = helm() else { return };
    let rendered: Vec<Value> = render(&helm, "nauthera-operator", &[])
        .into_iter()
        .filter(|object| object["kind"] == "CustomResourceDefinition")
        .collect();
    let rendered: Vec<Value> = rendered.into_iter().map(numbers_as_floats).collect();
    let generated = nauthera_shared::crds::crd_files();
    assert_eq!(rendered.len(), generated.len());
    for (_, yaml) in generated {
        let mut expected: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        expected["metadata"]["annotations"]["helm.sh/resource-policy"] = "keep".into();
        let expected = numbers_as_floats(expected);
        assert!(
            rendered.contains(&expected),
            "{} as crds/ has it, with helm.sh/resource-policy: keep",
            expected["metadata"]["name"]
        );
    }
    let without = render(&helm, "nauthera-operator", &["--set", "crds.install=false"]);
    assert!(
        without
            .iter()
            .all(|object| object["kind"] != "CustomResourceDefinition")
    );
}

/// Helm's templates read YAML numbers as floats and write `0.0` as `0`: the same number
/// to the API server, compared as such.
fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(number) => number
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Number(number), Value::Number),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, numbers_as_floats(value)))
                .collect(),
        ),
        other => other,
    }
}

/// The string arguments of the operator's container.
fn args(objects: &[Value]) -> Vec<String> {
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap().to_owned())
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|arg| arg == name)?;
    args.get(at + 1).map(String::as_str)
}

#[test]
fn another_release_name_renames_the_lease_the_webhook_and_its_service() {
    let Some(helm) = helm() else { return };
    let objects = render(&helm, "acme", &[]);
    let args = args(&objects);
    let name = "acme-nauthera-operator";
    assert_eq!(flag(&args, "--lease-name"), Some(name));
    assert_eq!(flag(&args, "--webhook-name"), Some(name));
    assert_eq!(flag(&args, "--webhook-service"), Some(name));
    let role = objects.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
    let webhook_rule = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["resources"][0] == "validatingwebhookconfigurations")
        .unwrap();
    assert_eq!(webhook_rule["resourceNames"], serde_json::json!([name]));
    for object in &objects {
        if object["kind"] != "CustomResourceDefinition" {
            assert!(
                object["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(name),
                "{:?} is named after the release",
                key(object)
            );
        }
    }
}

#[test]
fn values_reach_the_operator_and_the_webhook_can_be_left_off() {
    let Some(helm) = helm() else { return };
    let objects = render(
        &helm,
        "nauthera-operator",
        &[
            "--set",
            "webhook.enabled=false,resync=1m,concurrency=32,logFormat=text,image.tag=0.2.0",
            "--set-json",
            r#"extraArgs=["--grace","10s"]"#,
        ],
    );
    let args = args(&objects);
    assert_eq!(flag(&args, "--webhook-listen"), None);
    assert_eq!(flag(&args, "--resync"), Some("1m"));
    assert_eq!(flag(&args, "--concurrency"), Some("32"));
    assert_eq!(flag(&args, "--log-format"), Some("text"));
    assert_eq!(flag(&args, "--grace"), Some("10s"));
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "ghcr.io/nauthera/nauthera-operator:0.2.0"
    );
    assert!(
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|port| port["name"] != "webhook")
    );
    let service = objects.iter().find(|o| o["kind"] == "Service").unwrap();
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|port| port["name"] != "webhook")
    );
}

/// `helm ARGS… --kubeconfig K`: its success and its output.
fn helm_on(helm: &str, kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(helm)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .expect("helm runs");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// On a real API server (no node needed: what is checked is what the API server holds):
/// install (taking over the CRDs the suites installed), upgrade with a changed value, and
/// uninstall, which removes every object but the CRDs.
#[tokio::test]
#[allow(clippy::too_many_lines)] // one release's life, told in order
async fn installs_upgrades_and_uninstalls_on_a_real_api_server() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::Api;
    use kube::api::{DeleteParams, PostParams};

    let Some(client) = common::cluster::cluster().await else {
        return;
    };
    let Some(helm) = helm() else { return };
    let kubeconfig = common::cluster::kubeconfig().unwrap();
    common::cluster::install_crds(&client).await;
    let run = format!("{:x}", std::process::id());
    let namespace = format!("e2e-{run}-helm");
    let release = format!("e2e-{run}");
    let name = format!("{release}-nauthera-operator");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": namespace, "labels": {common::cluster::E2E_LABEL: "true"}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let chart = chart();
    let chart = chart.to_str().unwrap();

    let (installed, output) = helm_on(
        &helm,
        &kubeconfig,
        // No operator runs (replicas 0): on a node it would reconcile every AuthClient,
        // and this test removes it without the hook that lets them go.
        &[
            "install",
            &release,
            chart,
            "-n",
            &namespace,
            "--take-ownership",
            "--set",
            "replicas=0,webhook.enabled=false",
        ],
    );
    assert!(installed, "helm install: {output}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = deployments.get(&name).await.unwrap();
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/nauthera/nauthera-operator:0.1.0")
    );
    let roles: Api<ClusterRole> = Api::all(client.clone());
    roles.get(&name).await.expect("the ClusterRole");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get("authclients.auth.nauthera.io").await.unwrap();
    let annotations = crd.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations
            .get("helm.sh/resource-policy")
            .map(String::as_str),
        Some("keep")
    );
    assert_eq!(
        annotations
            .get("meta.helm.sh/release-name")
            .map(String::as_str),
        Some(release.as_str()),
        "the release owns the CRDs"
    );

    let (upgraded, output) = helm_on(
        &helm,
        &kubeconfig,
        &[
            "upgrade",
            &release,
            chart,
            "-n",
            &namespace,
            "--reuse-values",
            "--set",
            "resync=1m",
        ],
    );
    assert!(upgraded, "helm upgrade: {output}");
    let deployment = deployments.get(&name).await.unwrap();
    let args = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert_eq!(flag(&args, "--resync"), Some("1m"), "{args:?}");

    // No operator ran, so there is nothing to release: without the hook here (e2e_pod runs
    // it in a pod).
    let (uninstalled, output) = helm_on(
        &helm,
        &kubeconfig,
        &["uninstall", &release, "-n", &namespace, "--no-hooks"],
    );
    assert!(uninstalled, "helm uninstall: {output}");
    // Every object the release rendered is gone, but the CRDs.
    let kubectl = std::env::var("NAUTHERA_E2E_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
    for object in render(&helm, &release, &[]) {
        let (kind, _, object_name) = key(&object);
        if kind == "CustomResourceDefinition" || is_hook(&object) {
            continue;
        }
        let output = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", &format!("{kind}/{object_name}"), "-n", &namespace])
            .args(["--ignore-not-found", "-o", "name"])
            .output()
            .expect("kubectl runs");
        assert!(output.status.success(), "kubectl get {kind}/{object_name}");
        assert!(
            output.stdout.is_empty(),
            "{kind}/{object_name} is gone: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    for crd in [
        "authclients.auth.nauthera.io",
        "authpolicies.auth.nauthera.io",
        "authservers.auth.nauthera.io",
    ] {
        let kept = crds.get_opt(crd).await.unwrap();
        assert!(
            kept.is_some_and(|crd| crd.metadata.deletion_timestamp.is_none()),
            "{crd} is kept"
        );
    }
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
}
