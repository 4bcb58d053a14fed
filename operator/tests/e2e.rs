//! End to end, against a real cluster named by `NAUTHERA_E2E_KUBECONFIG` (skipped, saying
//! so, when it is not set): installs `crds/`, starts the real test provider and the
//! operator binary, applies the seed manifests in namespaces of its own, and checks the
//! three seed scenarios — working credentials, 5m tokens after the policy edit with no
//! client touched, rejection with the exact reason — then that deletion removes every
//! registration from the provider, without relying on the garbage collector.
//!
//! The operator runs on this machine (with the kubeconfig), so the provider on loopback
//! is reachable from it; the cluster only stores objects.

mod common;

use common::TestProvider;
use common::cluster::{Scenario, condition, eventually};
use serde_json::json;

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story, told in the order a user lives it
async fn the_seed_scenarios_on_a_real_cluster() {
    let Some(mut scenario) = Scenario::new("seeds", TestProvider::start()).await else {
        return;
    };
    scenario.start_operator(&[]);

    // Scenario 1, onboarding: the seed web app, and a service to fetch real tokens with.
    let server_ref = json!({"name": "production-server", "namespace": scenario.security});
    scenario
        .apply_client(
            "my-webapp",
            json!({"displayName": "My Awesome Web App", "authServerRef": server_ref,
                   "redirectUris": ["https://my-webapp.dev.example.com/callback"], "scopes": ["openid", "profile", "email"]}),
        )
        .await;
    scenario
        .apply_client("reporting-job", scenario.service("Reporting job"))
        .await;
    let webapp = scenario.ready("my-webapp").await;
    assert_eq!(
        webapp
            .status
            .as_ref()
            .unwrap()
            .client_secret_ref
            .as_ref()
            .unwrap()
            .name,
        "my-webapp-client-secret"
    );
    scenario.ready("reporting-job").await;
    let (id, secret) = scenario.credentials("reporting-job-client-secret").await;
    let provider = &scenario.provider;
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Ok(900),
        "working credentials, 15m tokens"
    );
    let (web_id, web_secret) = scenario.credentials("my-webapp-client-secret").await;
    assert!(
        provider.authenticates(&web_id, &web_secret).await,
        "the web app's credentials authenticate at the provider"
    );

    // Scenario 2, the policy edit: 15m → 5m reaches every governed client, none touched.
    let clients = scenario.clients();
    let generations = [
        clients.get("my-webapp").await.unwrap().metadata.generation,
        clients
            .get("reporting-job")
            .await
            .unwrap()
            .metadata
            .generation,
    ];
    let writes_before = provider.requests().await.put;
    scenario.apply_policy(scenario.policy("5m")).await;
    eventually("5m tokens for the reporting job", || {
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            (provider.client_credentials(&id, &secret, "api:read").await == Ok(300)).then_some(())
        }
    })
    .await;
    for (name, generation) in ["my-webapp", "reporting-job"].into_iter().zip(generations) {
        let object = eventually(&format!("{name}'s status to show 5m"), || {
            let clients = clients.clone();
            async move {
                let object = clients.get(name).await.ok()?;
                let ttl = object
                    .status
                    .as_ref()?
                    .effective
                    .as_ref()?
                    .access_token_ttl?;
                (ttl.to_string() == "5m").then_some(object)
            }
        })
        .await;
        assert_eq!(
            object.metadata.generation, generation,
            "{name} was not edited"
        );
    }
    assert_eq!(
        provider.requests().await.put - writes_before,
        2,
        "exactly one provider write per governed client"
    );

    // Scenario 3, the forbidden scope: rejected with the exact reason, never provisioned.
    scenario
        .apply_client(
            "my-webapp-admin",
            json!({"displayName": "Admin", "authServerRef": server_ref,
                   "redirectUris": ["https://admin.my-webapp.dev.example.com/callback"], "scopes": ["openid", "profile", "api:write"]}),
        )
        .await;
    let refused = scenario
        .wait_condition(
            "my-webapp-admin",
            "PolicyCompliant",
            "False",
            Some("PolicyViolation"),
        )
        .await;
    assert_eq!(
        condition(&refused, "PolicyCompliant").unwrap().2,
        format!(
            "scope \"api:write\" is not allowed by policy {}/web-apps-policy (allowedScopes: openid, profile, email, api:read)",
            scenario.security
        )
    );
    assert!(
        scenario
            .secrets(&scenario.team)
            .get_opt("my-webapp-admin-client-secret")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        provider.clients().await.len(),
        2,
        "the admin client was never registered"
    );

    // Deletion: the registrations leave the provider, the Secrets go with the clients.
    scenario.finish().await;
}

/// The same promises at a second, independent provider (Glewlwyd): working credentials,
/// then a policy change — which at Glewlwyd issues a new secret and kills the old one —
/// followed into the Secret; no update while nothing changes; deletion.
#[tokio::test]
async fn a_client_at_glewlwyd_end_to_end() {
    let Some(glewlwyd) = common::glewlwyd::Glewlwyd::start() else {
        return;
    };
    let token = glewlwyd.initial_access_token().await;
    let Some(mut scenario) =
        Scenario::at("glewlwyd", TestProvider::start(), &glewlwyd.issuer, &token).await
    else {
        return;
    };
    scenario.start_operator(&["--resync", "2s"]);
    let mut spec = scenario.service("reporting");
    // Glewlwyd wants a redirect URI whatever the grant.
    spec["redirectUris"] = json!(["https://reporting.example.com/callback"]);
    scenario.apply_client("reporting", spec).await;
    scenario.ready("reporting").await;
    let (id, first) = scenario.credentials("reporting-client-secret").await;
    assert_eq!(glewlwyd.client_credentials(&id, &first).await, Ok(3600));

    // Several resyncs: nothing changes, so nothing is written (an update would rotate).
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(
        scenario.credentials("reporting-client-secret").await,
        (id.clone(), first.clone())
    );
    assert_eq!(glewlwyd.client_credentials(&id, &first).await, Ok(3600));
    eventually("the server to say what Glewlwyd does not keep", || async {
        let server = scenario.servers().get("production-server").await.ok()?;
        let unsupported = server.status?.unsupported_settings;
        (unsupported.contains(&"scope".to_owned())
            && unsupported.contains(&"nauthera_access_token_ttl".to_owned()))
        .then_some(())
    })
    .await;

    // A policy change: Glewlwyd's new secret reaches the Secret in the same reconcile.
    scenario.apply_policy(scenario.policy("5m")).await;
    let (same, second) = eventually("the new secret in the Secret", || async {
        let credentials = scenario.credentials("reporting-client-secret").await;
        (credentials.1 != first).then_some(credentials)
    })
    .await;
    assert_eq!(same, id);
    assert_eq!(glewlwyd.client_credentials(&id, &second).await, Ok(3600));
    assert!(glewlwyd.client_credentials(&id, &first).await.is_err());
    assert_eq!(glewlwyd.clients(), vec![id.clone()]);

    scenario
        .clients()
        .delete("reporting", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    eventually("the registration to leave Glewlwyd", || async {
        glewlwyd.clients().is_empty().then_some(())
    })
    .await;
    scenario.finish().await;
}
