//! The operator's promises under the accidents a platform lives with, end to end against
//! a real cluster named by `NAUTHERA_E2E_KUBECONFIG` (skipped, saying so, when unset) and
//! a real provider: each scenario checks the registrations at the provider (how many,
//! which client ids), the Secrets and the status.
//!
//! - a deleted policy, a namespace that lost its label, a broken policy edit, a client's
//!   own forbidden edit: the registration and its Secret stay exactly as they were;
//!   `violationResponse: Revoke` is the one way a policy removes one;
//! - the operator's namespace missing: a clear failure at start-up;
//! - a team's own Secret named by `secretName`: never written, owned or deleted;
//! - a provider that lost its clients: registered again at the next resync;
//! - a provider that keeps no unknown metadata: no write without a change;
//! - a provider that refuses management (403): never registered twice, deletion waits;
//! - SIGTERM: out within seconds, the lease released; two operators: one leads;
//! - twenty SIGKILLs under load: one registration per client, every client Ready.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::{Scenario, condition, decoded, eventually, within};
use common::{Flavour, TestProvider};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

/// Checks that `orders`' registration is the one it was: same id at the provider,
/// working credentials, the same Secret, the status saying so.
async fn still_as_it_was(scenario: &Scenario, id: &str, secret: &str, resource_version: &str) {
    let provider = &scenario.provider;
    assert_eq!(provider.clients().await, vec![id.to_owned()]);
    assert_eq!(
        provider.client_credentials(id, secret, "api:read").await,
        Ok(900),
        "the credentials keep working"
    );
    let stored = scenario
        .secrets(&scenario.team)
        .get("orders-client-secret")
        .await
        .unwrap();
    assert_eq!(
        stored.resource_version().as_deref(),
        Some(resource_version),
        "the Secret was not rewritten"
    );
    let client = scenario.clients().get("orders").await.unwrap();
    let status = client.status.unwrap();
    assert_eq!(status.client_id.as_deref(), Some(id));
    assert_eq!(condition_of(&status, "Provisioned"), "True");
}

fn condition_of(status: &nauthera_shared::resources::AuthClientStatus, type_: &str) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: accident after accident, each undone
async fn accidents_keep_live_registrations_and_only_revoke_removes_one() {
    let Some(mut scenario) = Scenario::new("accidents", TestProvider::start()).await else {
        return;
    };
    scenario.start_operator(&[]);
    scenario
        .apply_client("orders", scenario.service("orders"))
        .await;
    scenario.ready("orders").await;
    let (id, secret) = scenario.credentials("orders-client-secret").await;
    let version = scenario
        .secrets(&scenario.team)
        .get("orders-client-secret")
        .await
        .unwrap()
        .resource_version()
        .unwrap();

    // 1. The governing policy is deleted, then restored.
    scenario
        .policies()
        .delete("web-apps-policy", &DeleteParams::default())
        .await
        .unwrap();
    scenario
        .wait_condition("orders", "Ready", "False", Some("NoGoverningPolicy"))
        .await;
    still_as_it_was(&scenario, &id, &secret, &version).await;
    assert!(scenario.has_event("orders", "NoGoverningPolicy").await);
    scenario.apply_policy(scenario.policy("15m")).await;
    scenario.ready("orders").await;
    still_as_it_was(&scenario, &id, &secret, &version).await;

    // 2. The team's namespace loses the label its server trusts, then gets it back.
    let namespaces: Api<Namespace> = Api::all(scenario.client.clone());
    let label =
        |value: Option<&str>| json!({"metadata": {"labels": {"nauthera.io/tenant": value}}});
    namespaces
        .patch(
            &scenario.team,
            &PatchParams::default(),
            &Patch::Merge(&label(None)),
        )
        .await
        .unwrap();
    scenario
        .wait_condition("orders", "Ready", "False", Some("NamespaceNotTrusted"))
        .await;
    still_as_it_was(&scenario, &id, &secret, &version).await;
    namespaces
        .patch(
            &scenario.team,
            &PatchParams::default(),
            &Patch::Merge(&label(Some("true"))),
        )
        .await
        .unwrap();
    scenario.ready("orders").await;

    // 3. A policy edit the engine cannot read.
    let mut broken = scenario.policy("15m");
    broken["spec"]["clientAuthentication"]["secretRotation"] =
        json!({"enabled": true, "schedule": "every day"});
    scenario.apply_policy(broken).await;
    let refused = scenario
        .wait_condition("orders", "Ready", "False", Some("PolicyViolation"))
        .await;
    assert!(
        condition(&refused, "Ready")
            .unwrap()
            .2
            .contains("secretRotation.schedule"),
        "{:?}",
        condition(&refused, "Ready")
    );
    still_as_it_was(&scenario, &id, &secret, &version).await;
    scenario.apply_policy(scenario.policy("15m")).await;
    scenario.ready("orders").await;

    // 4. The client's own forbidden edit: the registration keeps what was allowed.
    let mut forbidden = scenario.service("orders");
    forbidden["scopes"] = json!(["api:read", "api:write"]);
    scenario.apply_client("orders", forbidden.clone()).await;
    scenario
        .wait_condition("orders", "Ready", "False", Some("PolicyViolation"))
        .await;
    still_as_it_was(&scenario, &id, &secret, &version).await;
    assert_eq!(
        scenario
            .provider
            .client_credentials(&id, &secret, "api:write")
            .await,
        Err("invalid_scope".to_owned()),
        "the forbidden scope was never given to the provider"
    );
    assert_eq!(
        scenario.provider.requests().await.writes(),
        1,
        "one registration, no rewrite, through every accident"
    );

    // 5. The security team opts in to revocation: now, and only now, it goes.
    let mut revoking = scenario.policy("15m");
    revoking["spec"]["violationResponse"] = json!("Revoke");
    scenario.apply_policy(revoking).await;
    eventually("the registration to be revoked", || async {
        scenario.provider.clients().await.is_empty().then_some(())
    })
    .await;
    eventually("the credentials Secret to be deleted", || async {
        scenario
            .secrets(&scenario.team)
            .get_opt("orders-client-secret")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let revoked = scenario
        .wait_condition("orders", "Provisioned", "False", None)
        .await;
    assert_eq!(revoked.status.unwrap().client_id, None);
    assert!(scenario.has_event("orders", "Revoked").await);
    scenario.finish().await;
}

/// Starts an operator with `args` that must stop at once: its log, once it exited
/// unsuccessfully.
async fn failed_start(scenario: &mut Scenario, args: &[&str]) -> String {
    let mut operator = scenario.spawn_operator(args);
    let status = within(Duration::from_secs(30), "the operator to exit", || {
        let exited = operator.child.try_wait().ok().flatten();
        async move { exited }
    })
    .await;
    assert!(!status.success());
    std::fs::read_to_string(&operator.log).unwrap()
}

#[tokio::test]
async fn without_its_namespace_the_operator_stops_at_once_and_says_why() {
    let Some(mut scenario) = Scenario::new("no-namespace", TestProvider::start()).await else {
        return;
    };
    let log = failed_start(&mut scenario, &["--namespace", "nauthera-nowhere"]).await;
    assert!(
        log.contains("\"nauthera-nowhere\" does not exist"),
        "the reason is said: {log}"
    );
    // `kubectl logs` is no terminal: one plain line, no colours, no backtrace section.
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("\"nauthera-nowhere\" does not exist"),
        "the last line says why: {log}"
    );
    assert!(
        !log.contains('\x1b') && !log.contains("BACKTRACE") && !log.contains("Location:"),
        "plain text only: {log}"
    );
    // As deploy/ runs it: the same sentence as one JSON line.
    let log = failed_start(
        &mut scenario,
        &["--namespace", "nauthera-nowhere", "--log-format", "json"],
    )
    .await;
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap_or_default())
        .unwrap_or_else(|error| panic!("the last line is JSON ({error}): {log}"));
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(
        last["fields"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("\"nauthera-nowhere\" does not exist")),
        "{last}"
    );
    assert!(scenario.provider.clients().await.is_empty());
    scenario.start_operator(&[]);
    scenario.finish().await;
}

#[tokio::test]
async fn a_teams_own_secret_is_never_written_owned_or_deleted() {
    let Some(mut scenario) = Scenario::new("precious", TestProvider::start()).await else {
        return;
    };
    scenario.start_operator(&[]);
    let secrets = scenario.secrets(&scenario.team);
    common::cluster::apply(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "precious", "namespace": scenario.team},
               "stringData": {"password": "hunter2"}}),
    )
    .await;
    let before = secrets.get("precious").await.unwrap();
    let mut spec = scenario.service("thief");
    spec["secretName"] = json!("precious");
    scenario.apply_client("thief", spec).await;
    let refused = scenario
        .wait_condition("thief", "Ready", "False", Some("SecretConflict"))
        .await;
    assert!(
        condition(&refused, "Ready")
            .unwrap()
            .2
            .contains("left untouched")
    );
    assert!(scenario.has_event("thief", "SecretConflict").await);
    scenario
        .clients()
        .delete("thief", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the client to be gone", || async {
        scenario
            .clients()
            .get_opt("thief")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let after = secrets.get("precious").await.unwrap();
    assert_eq!(after.resource_version(), before.resource_version());
    assert_eq!(decoded(&after, "password"), "hunter2");
    assert!(after.owner_references().is_empty());
    assert!(scenario.provider.clients().await.is_empty());
    scenario.finish().await;
}

#[tokio::test]
async fn a_provider_that_lost_its_clients_gets_them_back_at_the_next_resync() {
    let Some(mut scenario) = Scenario::new("lost", TestProvider::start()).await else {
        return;
    };
    scenario.start_operator(&["--resync", "2s"]);
    let names = ["alpha", "beta", "gamma"];
    for name in names {
        scenario.apply_client(name, scenario.service(name)).await;
    }
    let mut before = BTreeSet::new();
    for name in names {
        scenario.ready(name).await;
        before.insert(
            scenario
                .credentials(&format!("{name}-client-secret"))
                .await
                .0,
        );
    }
    scenario.provider.restart_empty();
    for name in names {
        let (id, secret) = eventually(&format!("{name} to be registered again"), || async {
            let credentials = scenario.credentials(&format!("{name}-client-secret")).await;
            (!before.contains(&credentials.0)).then_some(credentials)
        })
        .await;
        assert_eq!(
            scenario
                .provider
                .client_credentials(&id, &secret, "api:read")
                .await,
            Ok(900)
        );
        assert!(scenario.has_event(name, "RegistrationLost").await);
    }
    assert_eq!(scenario.provider.clients().await.len(), 3);
    let operator = &scenario.operators[0];
    assert_eq!(
        operator.metric("nauthera_registrations_lost_total").await,
        3
    );
    scenario.finish().await;
}

#[tokio::test]
async fn a_provider_that_keeps_no_unknown_metadata_is_written_once_per_real_change() {
    let provider = TestProvider::start_with(Flavour::DropsUnknown, 0);
    let Some(mut scenario) = Scenario::new("drops", provider).await else {
        return;
    };
    scenario.start_operator(&["--resync", "1s"]);
    scenario
        .apply_client("orders", scenario.service("orders"))
        .await;
    scenario.ready("orders").await;
    // A no-op touch: a label. Then several resyncs.
    let clients = scenario.clients();
    clients
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let requests = scenario.provider.requests().await;
    assert_eq!((requests.post, requests.put), (1, 0), "{requests:?}");
    assert!(requests.get >= 2, "read at every resync: {requests:?}");
    // A real change: exactly one write.
    scenario.apply_policy(scenario.policy("5m")).await;
    eventually("the status to show 5m", || async {
        let client = clients.get("orders").await.ok()?;
        let ttl = client.status?.effective?.access_token_ttl?;
        (ttl.to_string() == "5m").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scenario.provider.requests().await.put, 1);
    let server: nauthera_shared::resources::AuthServer =
        scenario.servers().get("production-server").await.unwrap();
    eventually(
        "the server to say what its provider does not keep",
        || async {
            let server = scenario.servers().get("production-server").await.ok()?;
            let unsupported = server.status?.unsupported_settings;
            unsupported
                .contains(&"nauthera_access_token_ttl".to_owned())
                .then_some(())
        },
    )
    .await;
    drop(server);
    scenario.finish().await;
}

#[tokio::test]
async fn a_provider_that_refuses_management_is_never_registered_twice_and_deletion_waits() {
    let Some(mut scenario) = Scenario::new("refused", TestProvider::start()).await else {
        return;
    };
    scenario.start_operator(&["--resync", "1s"]);
    scenario
        .apply_client("orders", scenario.service("orders"))
        .await;
    scenario.ready("orders").await;
    scenario.provider.refuse_management(403).await;
    scenario
        .wait_condition("orders", "Ready", "False", Some("ProviderForbidden"))
        .await;
    let deletes_before = scenario.provider.requests().await.delete;
    scenario
        .clients()
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    let message = eventually("the status to say the deletion waits", || async {
        let waiting = scenario.clients().get_opt("orders").await.ok()?;
        let (_, reason, message) = condition(&waiting.expect("still there"), "Ready")?;
        (reason == "ProviderForbidden" && message.starts_with("deletion waits")).then_some(message)
    })
    .await;
    // Retried with backoff, never let go: refused a second time, and still there after.
    eventually("the deletion to be tried again", || async {
        let deletes = scenario.provider.requests().await.delete;
        (deletes >= deletes_before + 2).then_some(())
    })
    .await;
    let waiting = scenario.clients().get("orders").await.expect("still there");
    assert!(
        waiting
            .finalizers()
            .iter()
            .any(|f| f == "auth.nauthera.io/cleanup"),
        "the finalizer holds the client: {:?}",
        waiting.finalizers()
    );
    let (_, reason, _) = condition(&waiting, "Ready").unwrap();
    assert_eq!(reason, "ProviderForbidden", "{message}");
    assert_eq!(
        scenario.provider.requests().await.post,
        1,
        "never registered twice"
    );
    scenario.provider.refuse_management(0).await;
    scenario.finish().await;
}

#[tokio::test]
async fn sigterm_stops_within_seconds_and_two_operators_never_both_lead() {
    let Some(mut scenario) = Scenario::new("leaders", TestProvider::start()).await else {
        return;
    };
    scenario.start_operator(&[]);
    scenario.start_operator(&[]);
    let names: Vec<String> = (0..20).map(|i| format!("svc-{i:02}")).collect();
    for name in &names {
        scenario.apply_client(name, scenario.service(name)).await;
    }
    for name in &names {
        scenario.ready(name).await;
    }
    assert_eq!(scenario.provider.clients().await.len(), 20);
    let mut leading = Vec::new();
    for operator in &scenario.operators {
        leading.push(operator.metric("nauthera_leader").await);
    }
    leading.sort_unstable();
    assert_eq!(leading, [0, 1], "exactly one leads");
    let leader = usize::from(scenario.operators[1].metric("nauthera_leader").await == 1);

    // SIGTERM to the leader: out within seconds, the lease handed over.
    let (took, code) = scenario.operators[leader].terminate().await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    let leases: Api<Lease> = Api::namespaced(scenario.client.clone(), &scenario.system);
    let follower = 1 - leader;
    within(
        Duration::from_secs(30),
        "the other operator to lead",
        || async {
            (scenario.operators[follower].metric("nauthera_leader").await == 1).then_some(())
        },
    )
    .await;
    let lease = leases.get("nauthera-operator").await.unwrap();
    assert!(lease.spec.unwrap().holder_identity.is_some());
    scenario
        .apply_client("svc-late", scenario.service("svc-late"))
        .await;
    scenario.ready("svc-late").await;
    assert_eq!(scenario.provider.clients().await.len(), 21);
    assert_eq!(scenario.provider.requests().await.post, 21);
    scenario.finish().await;
}

#[tokio::test]
async fn twenty_kills_under_load_leave_one_registration_per_client_and_all_ready() {
    let Some(mut scenario) = Scenario::new("kills", TestProvider::start()).await else {
        return;
    };
    // As in a pod: the same identity after a container restart, and the journal in an
    // emptyDir that outlives the container.
    let journal = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("../e2e-journal/{}", scenario.system));
    let journal = journal.to_string_lossy().into_owned();
    let identity = [
        "--identity",
        "nauthera-e2e-kills",
        "--journal-dir",
        journal.as_str(),
    ];
    scenario.start_operator(&identity);
    let mut created = 0;
    let mut seed = 0x9e37_79b9_u64;
    for cycle in 0..20 {
        // Load: five new clients and a policy change each cycle, racing the kill.
        for _ in 0..5 {
            let name = format!("svc-{created:03}");
            scenario.apply_client(&name, scenario.service(&name)).await;
            created += 1;
        }
        let ttl = if cycle % 2 == 0 { "10m" } else { "15m" };
        scenario.apply_policy(scenario.policy(ttl)).await;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(200 + seed % 1300)).await;
        scenario.operators[0].kill();
        scenario.operators[0] = scenario.spawn_operator(&identity);
    }
    let names: Vec<String> = (0..created).map(|i| format!("svc-{i:03}")).collect();
    let mut recorded = BTreeSet::new();
    let mut uids = std::collections::BTreeMap::new();
    for name in &names {
        let client = scenario.ready(name).await;
        uids.insert(client.uid().unwrap(), name.clone());
        let id = client.status.unwrap().client_id.unwrap();
        let (secret_id, _) = scenario.credentials(&format!("{name}-client-secret")).await;
        assert_eq!(
            secret_id, id,
            "{name}: the Secret holds the registration the status names"
        );
        recorded.insert(id);
    }
    assert_eq!(
        recorded.len(),
        created,
        "one recorded registration per client"
    );
    assert_eq!(scenario.records().await.len(), created);
    // Pure DCR has no lookup: a kill between the provider's answer and its record can
    // leave one registration unrecorded. Each such one must carry its client's
    // software_id and have been reported on that client.
    let held = scenario.provider.registrations().await;
    let mut unrecorded = 0;
    for registration in &held {
        if recorded.contains(&registration.client_id) {
            continue;
        }
        unrecorded += 1;
        let owner = registration
            .software_id
            .as_ref()
            .and_then(|uid| uids.get(uid))
            .unwrap_or_else(|| panic!("an unrecorded registration nobody owns: {registration:?}"));
        assert!(
            scenario.has_event(owner, "PossibleOrphan").await,
            "{owner}: an unrecorded registration that was never reported"
        );
    }
    assert!(unrecorded <= 20, "at most one per kill: {unrecorded}");
    eprintln!(
        "20 kills under load: {created} clients, {} registrations at the provider, {unrecorded} begun before a kill and reported",
        held.len()
    );
    // The test's own clean-up: what was reported is deleted at the provider by hand.
    for registration in held {
        if !recorded.contains(&registration.client_id) {
            scenario.provider.forget(&registration.client_id).await;
        }
    }
    scenario.finish().await;
}
