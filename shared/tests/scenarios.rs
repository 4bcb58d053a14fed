//! The three seed scenarios at engine level, on the manifests in `examples/`, and the
//! examples themselves: every file loads, and every comment about a client's state is true.

use std::path::{Path, PathBuf};

use nauthera_shared::impact::{ImpactKind, Planner};
use nauthera_shared::manifests::{Loaded, load_dir};
use nauthera_shared::policy::{Compliance, Evaluation};
use nauthera_shared::resources::ObjectRef;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn examples() -> Loaded {
    let loaded = load_dir(&examples_dir()).expect("examples/ is readable");
    assert!(
        loaded.errors.is_empty(),
        "examples/ has bad documents: {:#?}",
        loaded.errors
    );
    loaded
}

fn evaluation<'a>(evaluations: &'a [Evaluation], namespace: &str, name: &str) -> &'a Evaluation {
    let wanted = ObjectRef::new(namespace, name);
    evaluations
        .iter()
        .find(|e| e.client == wanted)
        .unwrap_or_else(|| panic!("no client {wanted}"))
}

#[test]
fn every_example_file_loads() {
    let loaded = examples();
    let inventory = &loaded.inventory;
    assert!(inventory.servers.len() >= 2);
    assert!(inventory.policies.len() >= 4);
    assert!(inventory.clients.len() >= 12);
    let namespaces: std::collections::BTreeSet<&str> = inventory
        .clients
        .iter()
        .filter_map(|c| c.metadata.namespace.as_deref())
        .collect();
    assert!(namespaces.len() >= 4, "{namespaces:?}");
    for entry in walk(&examples_dir()) {
        let parsed = load_dir(&entry).expect("readable");
        assert!(
            parsed.errors.is_empty(),
            "{}: {:?}",
            entry.display(),
            parsed.errors
        );
        assert!(
            parsed.inventory.clients.len()
                + parsed.inventory.policies.len()
                + parsed.inventory.servers.len()
                + parsed.inventory.namespaces.len()
                > 0,
            "{} holds nothing",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files
}

/// The examples say in a comment which clients are non-compliant or audited on purpose;
/// the engine must agree with every one of those comments, and find no others.
#[test]
fn example_comments_tell_the_truth() {
    let loaded = examples();
    for evaluation in loaded.inventory.evaluate_all() {
        let origin = loaded
            .origin("AuthClient", &evaluation.client)
            .expect("origin");
        let text = std::fs::read_to_string(&origin.file).unwrap();
        let comment: String = text
            .split_inclusive('\n')
            .collect::<Vec<_>>()
            .split(|line| line.starts_with("---"))
            .nth(origin.document)
            .map(|lines| {
                lines
                    .iter()
                    .take_while(|l| l.starts_with('#'))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let expected = if comment.contains("NON-COMPLIANT on purpose") {
            Compliance::NonCompliant
        } else if comment.contains("AUDIT FINDING on purpose") {
            Compliance::AuditViolations
        } else {
            Compliance::Compliant
        };
        assert_eq!(
            evaluation.compliance, expected,
            "{}: {:?}",
            evaluation.client, evaluation.violations
        );
    }
}

/// Scenario 1: the developer's client complies with web-apps-policy and gets its settings.
#[test]
fn onboarding_my_webapp_is_compliant() {
    let evaluations = examples().inventory.evaluate_all();
    let webapp = evaluation(&evaluations, "my-app-dev", "my-webapp");
    assert_eq!(webapp.compliance, Compliance::Compliant);
    assert_eq!(
        webapp.server,
        ObjectRef::new("security", "production-server")
    );
    assert_eq!(
        webapp.governing,
        [ObjectRef::new("security", "web-apps-policy")]
    );
    let effective = webapp.effective.as_ref().expect("settings");
    assert_eq!(effective.scopes, ["openid", "profile", "email"]);
    assert_eq!(
        effective.redirect_uris,
        ["https://my-webapp.dev.example.com/callback"]
    );
    assert_eq!(
        effective.access_token_ttl.map(|t| t.to_string()).as_deref(),
        Some("15m")
    );
    assert_eq!(
        effective
            .refresh_token_ttl
            .map(|t| t.to_string())
            .as_deref(),
        Some("24h")
    );
    assert_eq!(
        effective.id_token_ttl.map(|t| t.to_string()).as_deref(),
        Some("5m")
    );
    assert!(effective.require_pkce);
    assert_eq!(effective.secret_name, "my-webapp-client-secret");
}

/// Scenario 2: 15m → 5m shows as a settings change for every compliant client the policy
/// governs, and nothing else.
#[test]
fn policy_update_changes_every_governed_clients_access_token_ttl() {
    let loaded = examples();
    let policy_ref = ObjectRef::new("security", "web-apps-policy");
    let origin = loaded.origin("AuthPolicy", &policy_ref).unwrap();
    let text = std::fs::read_to_string(&origin.file).unwrap();
    let edited = text.replace("accessTokenTTL: \"15m\"", "accessTokenTTL: \"5m\"");
    assert_ne!(text, edited);

    let planner = Planner::new(loaded.inventory.clone());
    let plan = planner
        .plan_text(Some(&policy_ref), &edited)
        .expect("valid edit");

    let governed_and_provisioned: Vec<&ObjectRef> = planner
        .current()
        .iter()
        .filter(|e| e.governing.contains(&policy_ref) && e.compliance.is_provisionable())
        .map(|e| &e.client)
        .collect();
    assert!(
        governed_and_provisioned.len() >= 4,
        "{governed_and_provisioned:?}"
    );
    let affected: Vec<&ObjectRef> = plan.clients.iter().map(|c| &c.client).collect();
    let mut expected = governed_and_provisioned.clone();
    expected.sort();
    assert_eq!(affected, expected);
    for impact in &plan.clients {
        assert_eq!(impact.kind, ImpactKind::Changes, "{}", impact.client);
        let settings: Vec<String> = impact.changes.iter().map(ToString::to_string).collect();
        assert_eq!(settings, ["accessTokenTTL 15m → 5m"], "{}", impact.client);
    }
    let total = loaded.inventory.clients.len();
    assert_eq!(
        plan.summary.to_string(),
        format!(
            "Plan: 0 clients become non-compliant, {} change settings, 0 become compliant, {} unaffected.",
            expected.len(),
            total - expected.len()
        )
    );
    assert!(!plan.breaks_any());
}

/// Scenario 3: a scope the policy does not allow is refused, with the exact reason.
#[test]
fn rejection_names_field_rule_and_policy() {
    let evaluations = examples().inventory.evaluate_all();
    let admin = evaluation(&evaluations, "my-app-dev", "my-webapp-admin");
    assert_eq!(admin.compliance, Compliance::NonCompliant);
    assert!(
        admin.effective.is_none(),
        "a non-compliant client gets no settings to provision"
    );
    assert_eq!(admin.violations.len(), 1);
    let violation = &admin.violations[0];
    assert_eq!(violation.field, "spec.scopes[2]");
    assert_eq!(violation.rule, "allowedScopes");
    assert_eq!(
        violation.policy.as_deref(),
        Some("security/web-apps-policy")
    );
    assert_eq!(
        violation.message,
        r#"scope "api:write" is not allowed by policy security/web-apps-policy (allowedScopes: openid, profile, email, api:read)"#
    );
}
