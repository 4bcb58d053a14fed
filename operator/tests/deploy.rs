//! `deploy/operator.yaml` grants what the operator does — every API call it makes — and
//! nothing wildcard; the leader Lease only in its own namespace; its Deployment runs `run`
//! with probes on the operator's own endpoints and rolls over without a gap; the admission
//! webhook is served behind the Service its configuration names.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
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
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            &["create", "patch"][..],
        ),
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

/// The running operator never scales Deployments or reads pods: `nauthera-operator
/// release` runs with the installer's own credentials for deploy/ (the chart grants its
/// hook that, and only for the hook's life).
#[test]
fn the_operator_cannot_scale_deployments() {
    let role: Role = one("Role");
    let cluster_role: ClusterRole = one("ClusterRole");
    for rules in [
        role.rules.unwrap_or_default(),
        cluster_role.rules.unwrap_or_default(),
    ] {
        for verb in ["patch", "update"] {
            assert!(!grants(&rules, "apps", "deployments", verb));
            assert!(!grants(&rules, "apps", "deployments/scale", verb));
        }
    }
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

#[test]
fn the_webhook_configuration_is_granted_by_name_only() {
    let role: ClusterRole = one("ClusterRole");
    let rules: Vec<PolicyRule> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|rule| {
            rule.resources
                .iter()
                .flatten()
                .any(|r| r.contains("webhookconfigurations"))
        })
        .collect();
    assert!(!rules.is_empty());
    for rule in rules {
        assert_eq!(
            rule.resource_names.as_deref(),
            Some(&["nauthera-operator".to_owned()][..]),
            "a webhook configuration can intercept anything: only the operator's own ({rule:?})"
        );
    }
}

#[test]
fn the_webhook_is_served_behind_the_service_the_configuration_names() {
    let deployment: Deployment = one("Deployment");
    let template = deployment.spec.unwrap().template;
    let pod_labels = template
        .metadata
        .unwrap_or_default()
        .labels
        .unwrap_or_default();
    let container = &template.spec.unwrap().containers[0];
    let args = container.args.clone().unwrap_or_default();
    let listen = args
        .iter()
        .position(|a| a == "--webhook-listen")
        .map(|i| args[i + 1].clone())
        .expect("the webhook is on in the cluster");
    assert!(
        !args.iter().any(|a| a == "--webhook-url"),
        "in cluster, the API server calls the Service"
    );
    let port: i32 = listen.rsplit(':').next().unwrap().parse().unwrap();
    let named = container
        .ports
        .iter()
        .flatten()
        .find(|p| p.container_port == port)
        .and_then(|p| p.name.clone())
        .expect("the webhook's port is a named container port");

    // The defaults of --webhook-service and --webhook-service-port.
    let service: Service = one("Service");
    assert_eq!(service.metadata.name.as_deref(), Some("nauthera-operator"));
    let spec = service.spec.unwrap();
    let webhook = spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.port == 443)
        .expect("port 443");
    assert_eq!(webhook.target_port, Some(IntOrString::String(named)));
    for (key, value) in spec.selector.unwrap_or_default() {
        assert_eq!(pod_labels.get(&key), Some(&value));
    }
}

/// The `USER`, `ENTRYPOINT` and `CMD` of the Dockerfile's final stage.
fn image_settings() -> (String, Vec<String>, Vec<String>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile");
    let text = std::fs::read_to_string(&path).expect("Dockerfile");
    let last_stage = text.rsplit("\nFROM ").next().unwrap();
    let instruction = |name: &str| {
        last_stage
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map_or_else(
                || panic!("the Dockerfile's last stage has no {name}"),
                |value| value.trim().to_owned(),
            )
    };
    let exec_form = |value: String| -> Vec<String> {
        serde_json::from_str(&value)
            .unwrap_or_else(|error| panic!("{value} is not exec form ({error})"))
    };
    (
        instruction("USER"),
        exec_form(instruction("ENTRYPOINT")),
        exec_form(instruction("CMD")),
    )
}

#[test]
fn the_image_runs_as_the_numeric_non_root_user_the_deployment_requires() {
    let (user, entrypoint, cmd) = image_settings();
    let (uid, gid) = user.split_once(':').unwrap_or((&user, &user));
    let uid: i64 = uid.parse().unwrap_or_else(|_| {
        panic!("USER {user}: runAsNonRoot can only be verified for a numeric user")
    });
    assert!(gid.parse::<i64>().is_ok(), "USER {user}: a numeric group");
    assert_ne!(uid, 0, "USER {user} is root");

    let deployment: Deployment = one("Deployment");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let context = pod.security_context.unwrap_or_default();
    assert_eq!(context.run_as_non_root, Some(true));
    let container = &pod.containers[0];
    let container_context = container.security_context.clone().unwrap_or_default();
    for run_as in [context.run_as_user, container_context.run_as_user]
        .into_iter()
        .flatten()
    {
        assert_eq!(run_as, uid, "runAsUser and the image's USER agree");
    }
    let gid: i64 = gid.parse().unwrap();
    for run_as in [context.run_as_group, container_context.run_as_group]
        .into_iter()
        .flatten()
    {
        assert_eq!(run_as, gid, "runAsGroup and the image's USER agree");
    }
    // Kubernetes' `args` replace the image's CMD, not its ENTRYPOINT.
    assert_eq!(container.command, None, "the image's ENTRYPOINT is used");
    assert_eq!(entrypoint, ["/usr/local/bin/nauthera-operator"]);
    assert_eq!(cmd, ["run"]);
    assert_eq!(
        container
            .args
            .as_ref()
            .and_then(|args| args.first())
            .map(String::as_str),
        Some("run")
    );
}
