//! What every reconcile shares: the Kubernetes client, the stores of servers, policies and
//! namespaces the engine needs, events, metrics, and the operator's own namespace (where
//! registration Secrets live).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use nauthera_shared::Inventory;
use nauthera_shared::policy::Evaluator;
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer, ObjectRef};
use secrecy::SecretString;

use crate::Error;
use crate::metrics::Metrics;
use crate::provider::dcr::DcrDriver;

pub const FIELD_MANAGER: &str = "nauthera-operator";

pub struct Context {
    pub client: Client,
    pub servers: Store<AuthServer>,
    pub policies: Store<AuthPolicy>,
    pub namespaces: Store<Namespace>,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// Where registration Secrets are kept, out of the teams' reach.
    pub operator_namespace: String,
    /// Consecutive failures per client, for backoff.
    failures: Mutex<HashMap<ObjectRef, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        servers: Store<AuthServer>,
        policies: Store<AuthPolicy>,
        namespaces: Store<Namespace>,
        operator_namespace: String,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            servers,
            policies,
            namespaces,
            metrics: Metrics::default(),
            operator_namespace,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until servers, policies and namespaces have been listed once: judging a
    /// client against half-filled stores would withhold clients that comply.
    pub async fn wait_for_stores(&self) {
        let _ = self.servers.wait_until_ready().await;
        let _ = self.policies.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
    }

    /// The engine over the servers, policies and namespaces as the stores hold them now.
    pub fn evaluator(&self) -> Evaluator {
        let servers: Vec<AuthServer> = self.servers.state().iter().map(|s| (**s).clone()).collect();
        let policies: Vec<AuthPolicy> = self
            .policies
            .state()
            .iter()
            .map(|p| (**p).clone())
            .collect();
        let inventory = Inventory {
            servers,
            policies,
            clients: Vec::new(),
            namespaces: self
                .namespaces
                .state()
                .iter()
                .filter_map(|ns| {
                    Some((
                        ns.metadata.name.clone()?,
                        ns.metadata.labels.clone().unwrap_or_default(),
                    ))
                })
                .collect(),
        };
        inventory.evaluator()
    }

    pub fn server(&self, reference: &ObjectRef) -> Option<AuthServer> {
        self.servers
            .state()
            .iter()
            .find(|server| &ObjectRef::of(server.as_ref()) == reference)
            .map(|server| (**server).clone())
    }

    /// A driver that can register new clients at `server`'s provider: its registration
    /// endpoint, and its initial access token read from the Secret the server names.
    pub async fn registering_driver(&self, server: &AuthServer) -> Result<DcrDriver, Error> {
        let provider = &server.spec.provider;
        let token = match &provider.initial_access_token_secret_ref {
            None => None,
            Some(reference) => {
                let namespace = server.meta().namespace.clone().unwrap_or_default();
                let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
                let secret = secrets.get_opt(&reference.name).await?.ok_or_else(|| {
                    Error::InitialAccessToken(format!(
                        "Secret {namespace}/{} (spec.provider.initialAccessTokenSecretRef of AuthServer {}) does not exist",
                        reference.name,
                        ObjectRef::of(server)
                    ))
                })?;
                let value = secret
                    .data
                    .as_ref()
                    .and_then(|data| data.get(&reference.key))
                    .and_then(|value| String::from_utf8(value.0.clone()).ok())
                    .ok_or_else(|| {
                        Error::InitialAccessToken(format!(
                            "Secret {namespace}/{} has no key {:?} (spec.provider.initialAccessTokenSecretRef.key)",
                            reference.name, reference.key
                        ))
                    })?;
                Some(SecretString::from(value.trim().to_owned()))
            }
        };
        Ok(DcrDriver::for_issuer(
            &server.spec.issuer_url,
            provider.registration_endpoint.as_deref(),
            token,
        )
        .await?)
    }

    /// Records an event on `client`; an event that cannot be written is logged, never fatal.
    pub async fn event(&self, client: &AuthClient, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &client.object_ref(&())).await {
            tracing::warn!(client = %ObjectRef::of(client), %error, "cannot record an event");
        }
    }

    /// Backoff after a failure: 5 s, doubling per consecutive failure, at most 5 minutes.
    pub fn backoff(&self, client: &ObjectRef) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(client.clone()).or_insert(0);
        *count = count.saturating_add(1);
        Duration::from_secs(5u64.saturating_mul(1 << (*count - 1).min(6)).min(300))
    }

    pub fn succeeded(&self, client: &ObjectRef) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(client);
    }
}
