//! The admission webhook on a real API server named by `NAUTHERA_E2E_KUBECONFIG` (skipped,
//! saying so, when unset). The operator runs on this machine and registers its webhook by
//! `url` on loopback, narrowed by a namespaceSelector to this run's team namespace, under a
//! configuration name of this run's own: other operators sharing the cluster are neither
//! judged by it nor disturbed.
//!
//! - the operator writes the configuration with the CA bundle of the Secret it made;
//! - `Enforce`: a create and an edit that break the policy are refused with the engine's
//!   exact sentence, the object never stored (through the API, and through `kubectl` when
//!   `NAUTHERA_E2E_KUBECTL` names one, or one is on `PATH`);
//! - `Audit`: admitted, the finding in the `Warning` header (and on `kubectl`'s stderr),
//!   and the client provisioned;
//! - the operator stopped: creates are admitted (`failurePolicy: Ignore`), and its
//!   successor withholds the forbidden client in status — and serves the same certificate;
//! - deleting the operator's namespace removes the configuration.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::TestProvider;
use common::cluster::{MANAGER, Scenario, condition, decoded, eventually, free_port};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const WEBHOOK: &str = "authclients.auth.nauthera.io";

/// The answer of the API server to a create: status, `Warning` headers, body.
struct Answer {
    status: u16,
    warnings: Vec<String>,
    body: Value,
}

/// Creates `object` in `namespace` through the API, keeping what `kube::Api` hides: the
/// `Warning` headers.
async fn create(client: &Client, namespace: &str, object: &Value, dry_run: bool) -> Answer {
    let mut path = format!(
        "/apis/auth.nauthera.io/v1alpha1/namespaces/{namespace}/authclients?fieldManager={MANAGER}"
    );
    if dry_run {
        path.push_str("&dryRun=All");
    }
    send(
        client,
        http::Method::POST,
        &path,
        "application/json",
        object,
    )
    .await
}

/// Merge-patches AuthClient `name` in `namespace`, keeping the `Warning` headers.
async fn merge(client: &Client, namespace: &str, name: &str, patch: &Value) -> Answer {
    let uri = format!(
        "/apis/auth.nauthera.io/v1alpha1/namespaces/{namespace}/authclients/{name}?fieldManager={MANAGER}"
    );
    send(
        client,
        http::Method::PATCH,
        &uri,
        "application/merge-patch+json",
        patch,
    )
    .await
}

async fn send(
    client: &Client,
    method: http::Method,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Answer {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let response = client.send(request).await.expect("the API server answers");
    let status = response.status().as_u16();
    // `299 - "text"`: what kubectl prints as `Warning: text`.
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(|value| {
            value
                .strip_prefix("299 - \"")
                .and_then(|text| text.strip_suffix('"'))
                .unwrap_or(value)
                .replace("\\\"", "\"")
        })
        .collect();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    Answer {
        status,
        warnings,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn authclient(namespace: &str, name: &str, security: &str, scopes: &[&str]) -> Value {
    json!({
        "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "displayName": name,
            "authServerRef": {"name": "production-server", "namespace": security},
            "redirectUris": [format!("https://{name}.dev.example.com/callback")],
            "scopes": scopes
        }
    })
}

/// `kubectl`, when the machine has one: `NAUTHERA_E2E_KUBECTL`, else `kubectl` on `PATH`.
fn kubectl() -> Option<String> {
    if let Some(path) = std::env::var_os("NAUTHERA_E2E_KUBECTL") {
        return Some(path.to_string_lossy().into_owned());
    }
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|_| "kubectl".to_owned())
}

/// `kubectl apply -f -` of `object`: whether it succeeded, and its stderr.
fn kubectl_apply(kubectl: &str, object: &Value) -> (bool, String) {
    let kubeconfig = common::cluster::kubeconfig().unwrap();
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(object).unwrap())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story, told in the order an operator lives it
async fn the_webhook_on_a_real_api_server() {
    let Some(mut scenario) = Scenario::new("webhook", TestProvider::start()).await else {
        return;
    };
    let kubectl = kubectl();
    if kubectl.is_none() {
        common::skip(
            "no kubectl (set NAUTHERA_E2E_KUBECTL or put one on PATH): the kubectl apply steps; checking through the API only",
        );
    }
    let run = format!("{:x}", std::process::id());
    let configuration_name = format!("nauthera-e2e-{run}");
    let selector = format!("nauthera.io/e2e-webhook={run}");
    // Only this run's team namespace is sent to this run's webhook.
    Api::<Namespace>::all(scenario.client.clone())
        .patch(
            &scenario.team,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"nauthera.io/e2e-webhook": run}}})),
        )
        .await
        .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("https://127.0.0.1:{port}/validate");
    let flags = [
        "--webhook-listen",
        &listen,
        "--webhook-url",
        &url,
        "--webhook-name",
        &configuration_name,
        "--webhook-namespace-selector",
        &selector,
    ];
    scenario.start_operator(&flags);

    // The configuration, written by the operator with the CA of the Secret it made.
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(scenario.client.clone());
    let tls_secret = format!("{configuration_name}-webhook-tls");
    let (configuration, secret) = eventually("the webhook's configuration", || {
        let (configurations, secrets) =
            (configurations.clone(), scenario.secrets(&scenario.system));
        let (name, tls_secret) = (configuration_name.clone(), tls_secret.clone());
        async move {
            let configuration = configurations.get_opt(&name).await.ok()??;
            let secret = secrets.get_opt(&tls_secret).await.ok()??;
            Some((configuration, secret))
        }
    })
    .await;
    let webhook = &configuration.webhooks.as_ref().unwrap()[0];
    assert_eq!(webhook.name, WEBHOOK);
    assert_eq!(webhook.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(webhook.client_config.url.as_deref(), Some(url.as_str()));
    assert_eq!(
        String::from_utf8(webhook.client_config.ca_bundle.clone().unwrap().0).unwrap(),
        decoded(&secret, "ca.crt"),
        "the bundle is the CA of the operator's Secret"
    );
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));

    // Enforce: refused at the door, with the engine's sentence; nothing stored.
    let reason = format!(
        "spec.scopes[2]: scope \"api:write\" is not allowed by policy {}/web-apps-policy (allowedScopes: openid, profile, email, api:read)",
        scenario.security
    );
    let forbidden = authclient(
        &scenario.team,
        "my-webapp-admin",
        &scenario.security,
        &["openid", "profile", "api:write"],
    );
    // The API server takes up a new configuration within moments: until then, Ignore.
    let refused = eventually("the API server to call the webhook", || {
        let (client, team, forbidden) =
            (scenario.client.clone(), scenario.team.clone(), &forbidden);
        async move {
            let answer = create(&client, &team, forbidden, true).await;
            (answer.status == 403).then_some(answer)
        }
    })
    .await;
    assert_eq!(
        refused.body["message"],
        format!("admission webhook \"{WEBHOOK}\" denied the request: {reason}")
    );
    let refused = create(&scenario.client, &scenario.team, &forbidden, false).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["reason"], "Forbidden");
    assert_eq!(
        refused.body["message"],
        format!("admission webhook \"{WEBHOOK}\" denied the request: {reason}")
    );
    if let Some(kubectl) = &kubectl {
        let (applied, stderr) = kubectl_apply(kubectl, &forbidden);
        assert!(!applied, "kubectl apply fails");
        assert!(
            stderr.contains(&format!(
                "admission webhook \"{WEBHOOK}\" denied the request: {reason}"
            )),
            "kubectl says why: {stderr}"
        );
    }
    assert!(
        scenario
            .clients()
            .get_opt("my-webapp-admin")
            .await
            .unwrap()
            .is_none(),
        "never stored"
    );
    assert!(
        scenario.operators[0]
            .metrics()
            .await
            .lines()
            .any(|line| line.starts_with("nauthera_admission_reviews_total{verdict=\"refused\"}")),
        "counted"
    );

    // Audit: admitted, the finding as a warning, and provisioned all the same.
    scenario
        .apply_policy(json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
            "metadata": {"name": "audit-scopes", "namespace": scenario.security,
                         "labels": {"nauthera.io/environment": "production"}},
            "spec": {"enforcement": "Audit", "allowedScopes": ["openid", "profile"]}
        }))
        .await;
    let audited = authclient(
        &scenario.team,
        "my-webapp",
        &scenario.security,
        &["openid", "profile", "email"],
    );
    let warning = format!(
        "spec.scopes[2]: scope \"email\" is not allowed by policy {}/audit-scopes (allowedScopes: openid, profile) (audit only)",
        scenario.security
    );
    // The operator's stores take the new policy up within moments.
    let admitted = eventually("the Audit policy's finding as a warning", || {
        let (client, team, audited) = (scenario.client.clone(), scenario.team.clone(), &audited);
        async move {
            let answer = create(&client, &team, audited, true).await;
            (!answer.warnings.is_empty()).then_some(answer)
        }
    })
    .await;
    assert_eq!(admitted.status, 201);
    assert_eq!(admitted.warnings, std::slice::from_ref(&warning));
    if let Some(kubectl) = &kubectl {
        let (applied, stderr) = kubectl_apply(kubectl, &audited);
        assert!(applied, "kubectl apply succeeds: {stderr}");
        assert!(
            stderr.contains(&format!("Warning: {warning}")),
            "kubectl prints the warning: {stderr}"
        );
    } else {
        let admitted = create(&scenario.client, &scenario.team, &audited, false).await;
        assert_eq!((admitted.status, admitted.warnings), (201, vec![warning]));
    }
    let provisioned = scenario.ready("my-webapp").await;
    assert_eq!(
        condition(&provisioned, "PolicyCompliant").unwrap().0,
        "True",
        "Audit findings do not withhold"
    );

    // An edit that breaks the Enforce policy is refused as well; the client stays as it was.
    let mut edited = audited.clone();
    edited["spec"]["scopes"] = json!(["openid", "profile", "api:write"]);
    let refused = scenario
        .clients()
        .patch(
            "my-webapp",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&edited),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(refused) = refused else {
        panic!("refused by the API server: {refused}")
    };
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        format!("admission webhook \"{WEBHOOK}\" denied the request: {reason}")
    );
    assert_eq!(
        scenario
            .clients()
            .get("my-webapp")
            .await
            .unwrap()
            .spec
            .scopes,
        ["openid", "profile", "email"]
    );

    // The operator down: nobody is blocked (failurePolicy Ignore)...
    let certificate = decoded(&secret, "tls.crt");
    scenario.operators[0].kill();
    let admitted = create(&scenario.client, &scenario.team, &forbidden, false).await;
    assert_eq!(admitted.status, 201, "admitted: {}", admitted.body);
    // ...and its successor, serving the same certificate, withholds the forbidden client.
    scenario.start_operator(&flags);
    let withheld = scenario
        .wait_condition(
            "my-webapp-admin",
            "PolicyCompliant",
            "False",
            Some("PolicyViolation"),
        )
        .await;
    assert_eq!(
        condition(&withheld, "PolicyCompliant").unwrap().2,
        reason.split_once(": ").unwrap().1
    );
    assert!(
        scenario
            .secrets(&scenario.team)
            .get_opt("my-webapp-admin-client-secret")
            .await
            .unwrap()
            .is_none(),
        "never provisioned"
    );
    let secret = scenario
        .secrets(&scenario.system)
        .get(&tls_secret)
        .await
        .unwrap();
    assert_eq!(
        decoded(&secret, "tls.crt"),
        certificate,
        "restarts share one certificate"
    );
    // The successor serves: the door is shut again.
    eventually("the restarted webhook to refuse", || {
        let (client, team) = (scenario.client.clone(), scenario.team.clone());
        let mut again = forbidden.clone();
        again["metadata"]["name"] = json!("my-webapp-admin-2");
        async move { (create(&client, &team, &again, true).await.status == 403).then_some(()) }
    })
    .await;
    // An edit that changes nothing the policy judges (a label) goes through on a client that
    // breaks it already — so does the operator's own finalizer — with a warning.
    let labelled = merge(
        &scenario.client,
        &scenario.team,
        "my-webapp-admin",
        &json!({"metadata": {"labels": {"team": "web"}}}),
    )
    .await;
    assert_eq!(labelled.status, 200, "{}", labelled.body);
    assert_eq!(
        labelled.warnings,
        [
            format!(
                "{reason} (already so before this change; the operator withholds the client until it is fixed)"
            ),
            format!(
                "spec.scopes[2]: scope \"api:write\" is not allowed by policy {}/audit-scopes (allowedScopes: openid, profile) (audit only)",
                scenario.security
            )
        ]
    );

    // Deletion of the operator's namespace takes the configuration with it.
    scenario.finish().await;
    eventually("the configuration to be garbage-collected", || {
        let (configurations, name) = (configurations.clone(), configuration_name.clone());
        async move {
            configurations
                .get_opt(&name)
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
}
