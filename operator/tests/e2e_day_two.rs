//! Day-two capabilities end to end, against a real cluster named by
//! `NAUTHERA_E2E_KUBECONFIG` (skipped, saying so, when unset) and a real provider:
//!
//! - rotation on the policy's schedule (the last rotation back-dated, not waited for)
//!   and on demand: old and new credentials both work through the overlap window, the
//!   Secret switches in one in-place write, the old registration is gone after it, and a
//!   restarted operator keeps the schedule;
//! - `deletionPolicy: Orphan`: the registration and its Secret outlive the AuthClient;
//! - taking over an existing registration: nothing registered while its Secret is
//!   missing or its token refused, then the very same client_id managed;
//! - the Secret's shape: key names, labels, annotations, discovery URL and token
//!   endpoint; a renamed key updates the same Secret, leaves no stale copy, keeps what
//!   others added, and converges (no rewrite on the next reconcile).

mod common;

use std::time::Duration;

use common::cluster::{Operator, Scenario, decoded, eventually, within};
use common::{INITIAL_ACCESS_TOKEN, TestProvider};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use nauthera_shared::resources::{AuthClient, RotationStatus};
use serde_json::{Value, json};

fn rotation_of(client: &AuthClient) -> RotationStatus {
    client
        .status
        .as_ref()
        .and_then(|status| status.rotation.clone())
        .unwrap_or_default()
}

fn client_id_of(client: &AuthClient) -> String {
    client
        .status
        .as_ref()
        .and_then(|status| status.client_id.clone())
        .unwrap_or_default()
}

/// Patches the client's metadata, which reconciles it (an annotation is a trigger).
async fn annotate(scenario: &Scenario, name: &str, key: &str, value: &str) {
    scenario
        .clients()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {key: value}}})),
        )
        .await
        .unwrap();
}

/// Nudges `name` (an annotation) and waits until `operator` has reconciled since.
async fn nudge(scenario: &Scenario, operator: &Operator, name: &str, value: &str) {
    let reconciles = operator.metric("nauthera_reconciles_total").await;
    annotate(scenario, name, "e2e.nauthera.io/nudge", value).await;
    within(
        Duration::from_secs(60),
        "the nudge to be reconciled",
        || async {
            (operator.metric("nauthera_reconciles_total").await > reconciles).then_some(())
        },
    )
    .await;
}

/// Waits until the client holds credentials other than `old_id`'s, Ready.
async fn rotated_away_from(scenario: &Scenario, name: &str, old_id: &str) -> AuthClient {
    let clients = scenario.clients();
    eventually(&format!("{name} to rotate away from {old_id}"), || {
        let clients = clients.clone();
        async move {
            let client = clients.get(name).await.ok()?;
            let ready = common::cluster::condition(&client, "Ready")?.0 == "True";
            (ready && !client_id_of(&client).is_empty() && client_id_of(&client) != old_id)
                .then_some(client)
        }
    })
    .await
}

/// Checks one rotation from `old` to the client's current credentials: both work now,
/// the Secret (the same object) switched, the status says when and what retires; then
/// after the overlap only the new ones work.
async fn check_rotation(scenario: &Scenario, rotated: &AuthClient, old: &(String, String)) {
    let provider = &scenario.provider;
    let new = scenario.credentials("orders-client-secret").await;
    assert_eq!(
        new.0,
        client_id_of(rotated),
        "the Secret holds the new client"
    );
    assert!(
        provider.authenticates(&new.0, &new.1).await,
        "the new credentials work at once"
    );
    assert!(
        provider.authenticates(&old.0, &old.1).await,
        "the old credentials keep working through the overlap"
    );
    let rotation = rotation_of(rotated);
    let last = rotation
        .last_rotation
        .as_ref()
        .expect("the status says when it rotated")
        .0;
    assert!(
        Timestamp::now().duration_since(last) < SignedDuration::from_secs(120),
        "rotated just now: {last}"
    );
    let retiring = rotation.retiring.expect("the status says what retires");
    assert_eq!(retiring.client_id, old.0);
    let overlap = retiring.until.0.duration_since(last);
    assert!(
        (SignedDuration::from_secs(15)..=SignedDuration::from_secs(25)).contains(&overlap),
        "the policy's 20s overlap: {overlap}"
    );
    assert!(scenario.has_event("orders", "Rotated").await);

    within(
        Duration::from_secs(90),
        "the old registration to retire",
        || async { (provider.clients().await == vec![new.0.clone()]).then_some(()) },
    )
    .await;
    assert!(
        !provider.authenticates(&old.0, &old.1).await,
        "the old credentials stop working after the overlap"
    );
    assert!(provider.authenticates(&new.0, &new.1).await);
    let clients = scenario.clients();
    eventually("the status to stop showing the retired client", || {
        let clients = clients.clone();
        async move {
            let client = clients.get("orders").await.ok()?;
            rotation_of(&client).retiring.is_none().then_some(())
        }
    })
    .await;
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: scheduled, restarted, requested
async fn rotation_keeps_old_and_new_credentials_working_through_the_overlap() {
    let Some(mut scenario) = Scenario::new("rotation", TestProvider::start()).await else {
        return;
    };
    let mut policy = scenario.policy("15m");
    policy["spec"]["clientAuthentication"]["secretRotation"] =
        json!({"enabled": true, "schedule": "0 0 * * *", "overlap": "20s"});
    scenario.apply_policy(policy).await;
    scenario.start_operator(&[]);
    scenario
        .apply_client("orders", scenario.service("orders"))
        .await;
    let ready = scenario.ready("orders").await;
    let scheduled = rotation_of(&ready);
    let next = scheduled
        .next_rotation
        .expect("the status shows the next rotation")
        .0;
    assert!(next > Timestamp::now() && scheduled.last_rotation.is_none());
    let first = scenario.credentials("orders-client-secret").await;
    let secret_uid = scenario
        .secrets(&scenario.team)
        .get("orders-client-secret")
        .await
        .unwrap()
        .uid();

    // The schedule fell due: the last rotation was three days ago.
    let three_days_ago = Timestamp::now() - SignedDuration::from_hours(72);
    scenario
        .clients()
        .patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"rotation": {"lastRotation": three_days_ago.to_string()}}}),
            ),
        )
        .await
        .unwrap();
    annotate(&scenario, "orders", "e2e.nauthera.io/nudge", "1").await;
    let rotated = rotated_away_from(&scenario, "orders", &first.0).await;
    check_rotation(&scenario, &rotated, &first).await;
    let stored = scenario
        .secrets(&scenario.team)
        .get("orders-client-secret")
        .await
        .unwrap();
    assert_eq!(
        stored.uid(),
        secret_uid,
        "the same Secret, updated in place"
    );
    assert_eq!(
        scenario.operators[0]
            .metric("nauthera_rotations_total")
            .await,
        1
    );
    let next = rotation_of(&scenario.clients().get("orders").await.unwrap())
        .next_rotation
        .unwrap()
        .0;
    assert!(
        next > Timestamp::now(),
        "the next one is in the future: {next}"
    );

    // A restarted operator keeps the schedule: nothing rotates. (With the last rotation
    // forgotten, the schedule would count from the provisioning, back-dated here.)
    let mut conditions = scenario
        .clients()
        .get("orders")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions;
    for condition in &mut conditions {
        condition.last_transition_time.0 = three_days_ago;
    }
    scenario
        .clients()
        .patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": conditions}})),
        )
        .await
        .unwrap();
    let (_, code) = scenario.operators[0].terminate().await;
    assert_eq!(code, Some(0));
    let restarted = scenario.start_operator(&[]);
    within(
        Duration::from_secs(60),
        "the restarted operator to reconcile",
        || async { (restarted.metric("nauthera_reconciles_total").await >= 1).then_some(()) },
    )
    .await;
    let second = scenario.credentials("orders-client-secret").await;
    assert_eq!(second.0, client_id_of(&rotated), "no rotation on restart");
    let after_restart = scenario.clients().get("orders").await.unwrap();
    assert_eq!(
        rotation_of(&after_restart)
            .next_rotation
            .map(|t| t.0.as_second()),
        Some(next.as_second()),
        "the schedule survived the restart"
    );

    // On demand: a new value of the annotation rotates once.
    annotate(&scenario, "orders", "auth.nauthera.io/rotate", "e2e-1").await;
    let rotated = rotated_away_from(&scenario, "orders", &second.0).await;
    assert_eq!(rotation_of(&rotated).requested.as_deref(), Some("e2e-1"));
    check_rotation(&scenario, &rotated, &second).await;
    let operator = scenario.operators.last().unwrap();
    assert_eq!(operator.metric("nauthera_rotations_total").await, 1);
    let third = scenario.credentials("orders-client-secret").await;
    nudge(&scenario, operator, "orders", "2").await;
    assert_eq!(
        scenario.credentials("orders-client-secret").await,
        third,
        "the same annotation value does not rotate again"
    );
    scenario.finish().await;
}

#[tokio::test]
async fn deletion_policy_orphan_leaves_the_registration_and_its_secret() {
    let Some(mut scenario) = Scenario::new("orphan", TestProvider::start()).await else {
        return;
    };
    scenario.start_operator(&[]);
    let mut spec = scenario.service("orders");
    spec["deletionPolicy"] = json!("Orphan");
    let orders = scenario.apply_client("orders", spec).await;
    scenario.ready("orders").await;
    let (id, secret) = scenario.credentials("orders-client-secret").await;
    // A canary only the garbage collector removes, once it has acted on the client's
    // deletion (it promises no order among dependents, so this shows only that it has had
    // its turn): a Secret still owned would go too, or soon after.
    let owner = orders.owner_ref(&()).unwrap();
    let canaries: Api<ConfigMap> = Api::namespaced(scenario.client.clone(), &scenario.team);
    let canary = ConfigMap {
        metadata: ObjectMeta {
            name: Some("orders-canary".to_owned()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    canaries
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();

    let clients = scenario.clients();
    clients
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the AuthClient to be gone", || {
        let clients = clients.clone();
        async move {
            clients
                .get_opt("orders")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(scenario.has_event("orders", "Orphaned").await);
    assert!(scenario.records().await.is_empty(), "the record is gone");
    eventually("the garbage collector to take the canary", || {
        let canaries = canaries.clone();
        async move {
            let canary = canaries.get_opt("orders-canary").await.ok()?;
            canary.is_none().then_some(())
        }
    })
    .await;
    let left = scenario
        .secrets(&scenario.team)
        .get("orders-client-secret")
        .await
        .expect("the credentials Secret stays");
    assert!(left.owner_references().is_empty(), "no longer owned");
    assert!(
        left.annotations()
            .contains_key("auth.nauthera.io/orphaned-from")
    );
    assert_eq!(scenario.provider.clients().await, vec![id.clone()]);
    assert!(
        scenario.provider.authenticates(&id, &secret).await,
        "the orphaned credentials keep working"
    );

    scenario.provider.forget(&id).await;
    scenario.finish().await;
}

/// Registers a client at the provider directly, as an earlier tool would have: its
/// answer (client_id, client_secret, registration_client_uri, registration_access_token).
async fn register_directly(provider: &TestProvider) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/reg", provider.issuer))
        .bearer_auth(INITIAL_ACCESS_TOKEN)
        .json(&json!({
            "client_name": "legacy orders",
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "api:read"
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    response.json().await.unwrap()
}

fn registration_secret(answer: &Value, token: &str) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "legacy-registration"},
        "stringData": {
            "client_id": answer["client_id"],
            "client_secret": answer["client_secret"],
            "registration_client_uri": answer["registration_client_uri"],
            "registration_access_token": token,
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn an_existing_registration_is_taken_over_never_replaced() {
    let Some(mut scenario) = Scenario::new("adopt", TestProvider::start()).await else {
        return;
    };
    let legacy = register_directly(&scenario.provider).await;
    let legacy_id = legacy["client_id"].as_str().unwrap().to_owned();
    scenario.start_operator(&[]);
    let mut spec = scenario.service("orders");
    spec["existingRegistration"] = json!({"secretName": "legacy-registration"});
    scenario.apply_client("orders", spec).await;

    // Its Secret is missing: nothing is registered in its place.
    scenario
        .wait_condition(
            "orders",
            "Ready",
            "False",
            Some("ExistingRegistrationMissing"),
        )
        .await;
    assert_eq!(scenario.provider.clients().await, vec![legacy_id.clone()]);

    // Its token does not work: refused, still nothing new.
    let secrets = scenario.secrets(&scenario.team);
    secrets
        .create(
            &PostParams::default(),
            &registration_secret(&legacy, "not-the-token"),
        )
        .await
        .unwrap();
    scenario
        .wait_condition(
            "orders",
            "Ready",
            "False",
            Some("ExistingRegistrationRefused"),
        )
        .await;
    assert_eq!(scenario.provider.clients().await, vec![legacy_id.clone()]);

    // The right token: the very same client is taken over and brought in line.
    let token = legacy["registration_access_token"].as_str().unwrap();
    secrets
        .replace(
            "legacy-registration",
            &PostParams::default(),
            &registration_secret(&legacy, token),
        )
        .await
        .unwrap();
    let ready = scenario.ready("orders").await;
    assert_eq!(client_id_of(&ready), legacy_id);
    assert!(scenario.has_event("orders", "Adopted").await);
    let (id, secret) = scenario.credentials("orders-client-secret").await;
    assert_eq!(id, legacy_id);
    assert_eq!(
        scenario
            .provider
            .client_credentials(&id, &secret, "api:read")
            .await,
        Ok(900),
        "working credentials, with the policy's 15m tokens"
    );
    let held = scenario.provider.registrations().await;
    assert_eq!(held.len(), 1, "never a second registration");
    assert_eq!(held[0].client_name.as_deref(), Some("orders"));

    // A second AuthClient naming the same Secret is refused: one registration, one owner.
    let mut copycat = scenario.service("copycat");
    copycat["existingRegistration"] = json!({"secretName": "legacy-registration"});
    scenario.apply_client("copycat", copycat).await;
    let refused = scenario
        .wait_condition(
            "copycat",
            "Ready",
            "False",
            Some("ExistingRegistrationRefused"),
        )
        .await;
    let (_, _, message) = common::cluster::condition(&refused, "Ready").unwrap();
    assert!(
        message.contains("another AuthClient already manages"),
        "{message}"
    );
    assert_eq!(scenario.provider.clients().await, vec![legacy_id.clone()]);

    // Taken over means managed: deleting the AuthClient deletes it (checked by finish).
    scenario.finish().await;
}

/// Converged: a reconcile of `name` does not write its credentials Secret again.
async fn assert_no_rewrite_on_the_next_reconcile(scenario: &Scenario, name: &str) {
    let secrets = scenario.secrets(&scenario.team);
    let secret = format!("{name}-client-secret");
    let version = secrets.get(&secret).await.unwrap().resource_version();
    let operator = scenario.operators.last().unwrap();
    nudge(scenario, operator, name, "1").await;
    assert_eq!(
        secrets.get(&secret).await.unwrap().resource_version(),
        version,
        "no rewrite without a change"
    );
}

/// A Secret whose template no longer sets a label or an annotation: both gone, with the
/// annotation that remembered them; Nauthera's own label stays.
fn assert_only_what_the_template_sets(secret: &Secret) {
    assert!(
        !secret.labels().contains_key("app.kubernetes.io/part-of"),
        "the label the template no longer sets is gone: {:?}",
        secret.labels()
    );
    assert_eq!(
        secret.labels()["app.kubernetes.io/managed-by"],
        "nauthera-operator"
    );
    for gone in [
        "reloader.stakater.com/match",
        nauthera_operator::template_keys::TEMPLATE_KEYS,
    ] {
        assert!(
            !secret.annotations().contains_key(gone),
            "{gone} is gone: {:?}",
            secret.annotations()
        );
    }
}

#[tokio::test]
async fn the_secret_takes_the_shape_asked_and_is_updated_in_place() {
    let Some(mut scenario) = Scenario::new("shape", TestProvider::start()).await else {
        return;
    };
    scenario.start_operator(&[]);
    let mut spec = scenario.service("orders");
    spec["secretTemplate"] = json!({
        "labels": {"app.kubernetes.io/part-of": "shop"},
        "annotations": {"reloader.stakater.com/match": "true"},
        "keys": {"clientId": "CLIENT_ID", "clientSecret": "CLIENT_SECRET", "issuerUrl": "ISSUER",
                 "discoveryUrl": "DISCOVERY_URL", "tokenEndpoint": "TOKEN_URL"}
    });
    scenario.apply_client("orders", spec.clone()).await;
    scenario.ready("orders").await;
    let secrets = scenario.secrets(&scenario.team);
    let shaped = secrets.get("orders-client-secret").await.unwrap();
    let keys: Vec<_> = shaped.data.as_ref().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "CLIENT_ID",
            "CLIENT_SECRET",
            "DISCOVERY_URL",
            "ISSUER",
            "TOKEN_URL"
        ]
    );
    let issuer = &scenario.provider.issuer;
    assert_eq!(decoded(&shaped, "ISSUER"), *issuer);
    assert_eq!(
        decoded(&shaped, "DISCOVERY_URL"),
        format!("{issuer}/.well-known/openid-configuration")
    );
    assert_eq!(decoded(&shaped, "TOKEN_URL"), format!("{issuer}/token"));
    assert_eq!(shaped.labels()["app.kubernetes.io/part-of"], "shop");
    assert_eq!(
        shaped.labels()["app.kubernetes.io/managed-by"],
        "nauthera-operator"
    );
    assert_eq!(shaped.annotations()["reloader.stakater.com/match"], "true");
    let (id, secret) = (
        decoded(&shaped, "CLIENT_ID"),
        decoded(&shaped, "CLIENT_SECRET"),
    );
    assert!(scenario.provider.authenticates(&id, &secret).await);

    // Another tool annotates the Secret; then the team drops the template's label and
    // annotation (nothing else changes); then renames a key.
    secrets
        .patch(
            "orders-client-secret",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/seen": "yes"}}})),
        )
        .await
        .unwrap();
    let template = spec["secretTemplate"].as_object_mut().unwrap();
    template.remove("labels");
    template.remove("annotations");
    scenario.apply_client("orders", spec.clone()).await;
    let dropped = eventually("the template's label to be taken off", || {
        let secrets = secrets.clone();
        async move {
            let secret = secrets.get("orders-client-secret").await.ok()?;
            (!secret.labels().contains_key("app.kubernetes.io/part-of")).then_some(secret)
        }
    })
    .await;
    assert_only_what_the_template_sets(&dropped);
    assert_eq!(dropped.annotations()["example.com/seen"], "yes", "kept");
    assert_eq!(dropped.uid(), shaped.uid(), "the same Secret");
    spec["secretTemplate"]["keys"]["clientId"] = json!("OIDC_CLIENT_ID");
    scenario.apply_client("orders", spec).await;
    let renamed = eventually("the key to be renamed", || {
        let secrets = secrets.clone();
        async move {
            let secret = secrets.get("orders-client-secret").await.ok()?;
            secret
                .data
                .as_ref()?
                .contains_key("OIDC_CLIENT_ID")
                .then_some(secret)
        }
    })
    .await;
    assert_eq!(
        renamed.uid(),
        shaped.uid(),
        "the same Secret, never recreated"
    );
    assert!(
        !renamed.data.as_ref().unwrap().contains_key("CLIENT_ID"),
        "no stale copy under the old name"
    );
    assert_eq!(decoded(&renamed, "OIDC_CLIENT_ID"), id);
    assert_eq!(renamed.annotations()["example.com/seen"], "yes", "kept");
    assert_only_what_the_template_sets(&renamed);
    scenario.ready("orders").await;

    assert_no_rewrite_on_the_next_reconcile(&scenario, "orders").await;
    scenario.finish().await;
}
