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

use common::cluster::{Operator, apply, cluster, condition, decoded, eventually, install_crds};

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use common::{INITIAL_ACCESS_TOKEN, TestProvider};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer};
use serde_json::json;

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story, told in the order a user lives it
async fn the_seed_scenarios_on_a_real_cluster() {
    let Some(client) = cluster().await else {
        return;
    };
    install_crds(&client).await;
    let provider = TestProvider::start();
    let run = format!("{:x}", std::process::id());
    let (security, team, system) = (
        format!("e2e-{run}-security"),
        format!("e2e-{run}-team"),
        format!("e2e-{run}-system"),
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in [&security, &team, &system] {
        let labels = BTreeMap::from([("nauthera.io/tenant".to_owned(), "true".to_owned())]);
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("a namespace of our own");
    }

    let secrets_security: Api<Secret> = Api::namespaced(client.clone(), &security);
    apply(&secrets_security, json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dcr-initial-token", "namespace": security},
        "stringData": {"token": INITIAL_ACCESS_TOKEN}
    })).await;
    let servers: Api<AuthServer> = Api::namespaced(client.clone(), &security);
    apply(&servers, json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
        "metadata": {"name": "production-server", "namespace": security},
        "spec": {
            "issuerUrl": provider.issuer,
            "provider": {"type": "DynamicClientRegistration", "initialAccessTokenSecretRef": {"name": "dcr-initial-token", "key": "token"}},
            "policySelector": {"matchLabels": {"nauthera.io/environment": "production"}},
            "allowedNamespaces": {"from": "Selector", "selector": {"matchLabels": {"nauthera.io/tenant": "true"}}}
        }
    })).await;
    let policies: Api<AuthPolicy> = Api::namespaced(client.clone(), &security);
    let policy = |ttl: &str| {
        json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
            "metadata": {"name": "web-apps-policy", "namespace": security, "labels": {"nauthera.io/environment": "production"}},
            "spec": {
                "token": {"accessTokenTTL": ttl, "refreshTokenTTL": "24h", "idTokenTTL": "5m"},
                "allowedGrantTypes": ["authorization_code", "refresh_token", "client_credentials"],
                "enforcePKCE": true,
                "allowedScopes": ["openid", "profile", "email", "api:read"],
                "clientAuthentication": {"method": "client_secret_basic"}
            }
        })
    };
    apply(&policies, policy("15m")).await;

    let operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_nauthera-operator"))
            .args(["run", "--namespace", &system, "--listen", "127.0.0.1:0"])
            .env(
                "KUBECONFIG",
                std::env::var_os("NAUTHERA_E2E_KUBECONFIG").unwrap(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the operator starts"),
    );

    // Scenario 1, onboarding: the seed web app, and a service to fetch real tokens with.
    let clients: Api<AuthClient> = Api::namespaced(client.clone(), &team);
    let server_ref = json!({"name": "production-server", "namespace": security});
    apply(&clients, json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": "my-webapp", "namespace": team},
        "spec": {"displayName": "My Awesome Web App", "authServerRef": server_ref,
                 "redirectUris": ["https://my-webapp.dev.example.com/callback"], "scopes": ["openid", "profile", "email"]}
    })).await;
    apply(
        &clients,
        json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
            "metadata": {"name": "reporting-job", "namespace": team},
            "spec": {"displayName": "Reporting job", "authServerRef": server_ref,
                     "grantTypes": ["client_credentials"], "scopes": ["api:read"]}
        }),
    )
    .await;
    let secrets_team: Api<Secret> = Api::namespaced(client.clone(), &team);
    for name in ["my-webapp", "reporting-job"] {
        eventually(&format!("{name} to be Ready"), || {
            let clients = clients.clone();
            async move {
                let object = clients.get(name).await.ok()?;
                (condition(&object, "Ready")?.0 == "True").then_some(())
            }
        })
        .await;
    }
    let job_secret = secrets_team
        .get("reporting-job-client-secret")
        .await
        .expect("the credentials Secret");
    let (id, secret) = (
        decoded(&job_secret, "client_id"),
        decoded(&job_secret, "client_secret"),
    );
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Ok(900),
        "working credentials, 15m tokens"
    );
    let web_secret = secrets_team
        .get("my-webapp-client-secret")
        .await
        .expect("the web app's Secret");
    assert!(
        provider
            .authenticates(
                &decoded(&web_secret, "client_id"),
                &decoded(&web_secret, "client_secret")
            )
            .await,
        "the web app's credentials authenticate at the provider"
    );

    // Scenario 2, the policy edit: 15m → 5m reaches every governed client, none touched.
    let generations: Vec<Option<i64>> =
        futures::future::join_all(["my-webapp", "reporting-job"].map(|name| {
            let clients = clients.clone();
            async move { clients.get(name).await.unwrap().metadata.generation }
        }))
        .await;
    apply(&policies, policy("5m")).await;
    eventually("5m tokens for the reporting job", || {
        let (provider, id, secret) = (&provider, id.clone(), secret.clone());
        async move {
            (provider.client_credentials(&id, &secret, "api:read").await == Ok(300)).then_some(())
        }
    })
    .await;
    for (name, generation) in ["my-webapp", "reporting-job"].into_iter().zip(generations) {
        let object = clients.get(name).await.unwrap();
        assert_eq!(
            object.metadata.generation, generation,
            "{name} was not edited"
        );
        let ttl = object
            .status
            .and_then(|s| s.effective)
            .and_then(|e| e.access_token_ttl)
            .map(|t| t.to_string());
        assert_eq!(
            ttl.as_deref(),
            Some("5m"),
            "{name}'s status shows the new lifetime"
        );
    }

    // Scenario 3, the forbidden scope: rejected with the exact reason, never provisioned.
    apply(&clients, json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": "my-webapp-admin", "namespace": team},
        "spec": {"displayName": "Admin", "authServerRef": server_ref,
                 "redirectUris": ["https://admin.my-webapp.dev.example.com/callback"], "scopes": ["openid", "profile", "api:write"]}
    })).await;
    let reason = eventually("the admin client to be refused", || {
        let clients = clients.clone();
        async move {
            condition(
                &clients.get("my-webapp-admin").await.ok()?,
                "PolicyCompliant",
            )
            .filter(|c| c.0 == "False")
        }
    })
    .await;
    assert_eq!(reason.1, "PolicyViolation");
    assert_eq!(
        reason.2,
        format!(
            "scope \"api:write\" is not allowed by policy {security}/web-apps-policy (allowedScopes: openid, profile, email, api:read)"
        )
    );
    assert!(
        secrets_team
            .get_opt("my-webapp-admin-client-secret")
            .await
            .unwrap()
            .is_none()
    );

    // Deletion: the registrations leave the provider, the Secrets go with the clients.
    for name in ["my-webapp", "reporting-job", "my-webapp-admin"] {
        clients
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["my-webapp", "reporting-job", "my-webapp-admin"] {
        eventually(&format!("{name} to be gone"), || {
            let clients = clients.clone();
            async move { clients.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Err("invalid_client".to_owned())
    );
    let registrations: Api<Secret> = Api::namespaced(client.clone(), &system);
    let left = registrations
        .list(
            &kube::api::ListParams::default()
                .labels("app.kubernetes.io/managed-by=nauthera-operator"),
        )
        .await
        .unwrap();
    assert!(left.items.is_empty(), "registration Secrets left behind");
    assert!(
        secrets_team
            .get_opt("reporting-job-client-secret")
            .await
            .unwrap()
            .is_none(),
        "deleted by the operator itself"
    );

    drop(operator);
    for name in [&team, &security, &system] {
        let _ = namespaces.delete(name, &DeleteParams::default()).await;
    }
}
