//! The `ValidatingWebhookConfiguration` the leader keeps, by server-side apply: AuthClient
//! creates and updates go to the webhook, which the API server trusts through the CA
//! bundle; `failurePolicy: Ignore`, so an operator that is down or slow blocks nobody (the
//! reconcile still enforces every policy).
//!
//! It is owned by the operator's namespace: deleting the operator's namespace
//! (`kubectl delete -f deploy/operator.yaml`) lets the garbage collector remove it too.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client, Resource};
use nauthera_shared::resources::AuthClient;

use super::{Endpoint, WebhookSettings};
use crate::context::FIELD_MANAGER;

/// The webhook's name in the configuration (what `kubectl` names when it refuses).
pub const WEBHOOK_NAME: &str = "authclients.auth.nauthera.io";
/// Where the webhook answers.
pub const PATH: &str = "/validate";
/// How long the API server waits for an answer before it ignores the webhook.
pub const TIMEOUT_SECONDS: i32 = 5;

/// The configuration for `settings`, trusting `ca_bundle`, owned by `owner` (the operator's
/// namespace) when known.
pub fn desired(
    settings: &WebhookSettings,
    namespace: &str,
    ca_bundle: &str,
    owner: Option<OwnerReference>,
) -> ValidatingWebhookConfiguration {
    let (service, url) = match &settings.endpoint {
        Endpoint::Service { name, port } => (
            Some(ServiceReference {
                namespace: namespace.to_owned(),
                name: name.clone(),
                path: Some(PATH.to_owned()),
                port: Some(i32::from(*port)),
            }),
            None,
        ),
        Endpoint::Url(url) => (None, Some(url.to_string())),
    };
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(settings.name.clone()),
            labels: Some(
                [(
                    "app.kubernetes.io/name".to_owned(),
                    "nauthera-operator".to_owned(),
                )]
                .into(),
            ),
            owner_references: owner.map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: WEBHOOK_NAME.to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            side_effects: "None".to_owned(),
            failure_policy: Some("Ignore".to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![AuthClient::group(&()).into_owned()]),
                api_versions: Some(vec![AuthClient::version(&()).into_owned()]),
                resources: Some(vec![AuthClient::plural(&()).into_owned()]),
                operations: Some(vec!["CREATE".to_owned(), "UPDATE".to_owned()]),
                scope: Some("Namespaced".to_owned()),
            }]),
            client_config: WebhookClientConfig {
                ca_bundle: Some(ByteString(ca_bundle.as_bytes().to_vec())),
                service,
                url,
            },
            // Always written, `{}` included: server-side apply then takes back a selector
            // that was removed from the flags.
            namespace_selector: Some(LabelSelector {
                match_labels: (!settings.namespace_labels.is_empty())
                    .then(|| settings.namespace_labels.clone()),
                match_expressions: None,
            }),
            ..ValidatingWebhook::default()
        }]),
    }
}

/// Writes the configuration (server-side apply, as the operator's field manager).
pub async fn apply(
    client: &Client,
    configuration: &ValidatingWebhookConfiguration,
) -> Result<(), kube::Error> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let name = configuration.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(configuration),
    )
    .await?;
    Ok(())
}

/// The operator's namespace as the owner of the configuration.
pub fn owned_by_namespace(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        ..OwnerReference::default()
    }
}
