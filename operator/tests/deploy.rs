//! `deploy/operator.yaml` grants what the operator does — every API call it makes — and
//! nothing wildcard; the leader Lease only in its own namespace; its Deployment runs `run`
//! with probes on the operator's own endpoints and rolls over without a gap.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde_yaml_ng::Value;

fn documents() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/operator.yaml");
    let text = std::fs::read_to_string(&path).expect("deploy/operator.yaml");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).expect("valid YAML"))
        .filter(|value: &Value| !value.is_null())
        .collect()
}

fn one<T: serde::de::DeserializeOwned>(kind: &str) -> T {
    let document = documents()
        .into_iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in deploy/operator.yaml"));
    serde_yaml_ng::from_value(document).unwrap_or_else(|error| panic!("{kind}: {error}"))
}

fn grants(rules: &[PolicyRule], group: &str, resource: &str, verb: &str) -> bool {
    rules.iter().any(|rule| {
        rule.api_groups.iter().flatten().any(|g| g == group)
            && rule.resources.iter().flatten().any(|r| r == resource)
            && rule.verbs.iter().any(|v| v == verb)
    })
}

#[test]
fn the_cluster_role_grants_every_call_the_operator_makes_and_no_wildcard() {
    let role: ClusterRole = one("ClusterRole");
    let rules = role.rules.unwrap_or_default();
    let needed = [
        (
            "auth.nauthera.io",
            "authclients",
            &["get", "list", "watch", "patch"][..],
        ),
        ("auth.nauthera.io", "authclients/status", &["patch"][..]),
        (
            "auth.nauthera.io",
            "authservers",
            &["get", "list", "watch"][..],
        ),
        (
            "auth.nauthera.io",
            "authpolicies",
            &["get", "list", "watch"][..],
        ),
        ("auth.nauthera.io", "authservers/status", &["patch"][..]),
        ("auth.nauthera.io", "authpolicies/status", &["patch"][..]),
        ("", "namespaces", &["list", "watch"][..]),
        (
            "",
            "secrets",
            &["get", "list", "watch", "create", "patch", "delete"][..],
        ),
        ("events.k8s.io", "events", &["create", "patch"][..]),
    ];
    for (group, resource, verbs) in needed {
        for verb in verbs {
            assert!(
                grants(&rules, group, resource, verb),
                "missing: {verb} {resource}.{group}"
            );
        }
    }
    for rule in &rules {
        assert!(
            !rule.verbs.iter().any(|v| v == "*"),
            "wildcard verb in {rule:?}"
        );
        assert!(
            !rule.resources.iter().flatten().any(|r| r == "*"),
            "wildcard resource in {rule:?}"
        );
    }
    let binding: ClusterRoleBinding = one("ClusterRoleBinding");
    assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
}

#[test]
fn the_leader_lease_is_granted_in_the_operators_namespace_only() {
    let role: Role = one("Role");
    let rules = role.rules.unwrap_or_default();
    for verb in ["get", "create", "update"] {
        assert!(
            grants(&rules, "coordination.k8s.io", "leases", verb),
            "missing: {verb} leases"
        );
    }
    let cluster_role: ClusterRole = one("ClusterRole");
    assert!(
        !grants(
            &cluster_role.rules.unwrap_or_default(),
            "coordination.k8s.io",
            "leases",
            "update"
        ),
        "leases are the operator's own namespace's business"
    );
    let binding: RoleBinding = one("RoleBinding");
    assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
    assert_eq!(
        binding.metadata.namespace.as_deref(),
        Some("nauthera-system")
    );
}

#[test]
fn one_replica_runs_the_operator_with_probes_on_its_endpoints() {
    let deployment: Deployment = one("Deployment");
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    let strategy = spec.strategy.unwrap();
    assert_eq!(
        strategy
            .rolling_update
            .and_then(|r| r.max_unavailable)
            .map(|m| format!("{m:?}")),
        Some("Int(0)".to_owned()),
        "the new pod starts, then takes the lease the old one releases"
    );
    let pod = spec.template.spec.unwrap();
    let binding: ClusterRoleBinding = one("ClusterRoleBinding");
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(subject.name.as_str())
    );
    let container = &pod.containers[0];
    assert_eq!(container.args.as_ref().unwrap()[0], "run");
    let env: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert!(
        env.contains(&"POD_NAMESPACE"),
        "registration Secrets go to the operator's namespace"
    );
    assert!(env.contains(&"POD_NAME"), "the leader Lease names the pod");
    let args = container.args.clone().unwrap_or_default();
    let journal = args
        .iter()
        .position(|a| a == "--journal-dir")
        .map(|i| args[i + 1].clone())
        .expect("the journal is on");
    let mounted = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == journal)
        .expect("the journal directory is a mounted volume (the root filesystem is read-only)");
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mounted.name)
        .unwrap();
    assert_eq!(
        volume.empty_dir.as_ref().and_then(|e| e.medium.as_deref()),
        Some("Memory"),
        "credentials in the journal never touch a disk"
    );
    let probe_path = |probe: Option<&k8s_openapi::api::core::v1::Probe>| {
        probe
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(
        probe_path(container.liveness_probe.as_ref()).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        probe_path(container.readiness_probe.as_ref()).as_deref(),
        Some("/readyz")
    );
}
