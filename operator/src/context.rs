//! What every reconcile shares: the Kubernetes client, one shared store per kind, the
//! policy engine built once per change of servers, policies or namespaces, one HTTP
//! client and discovery cache for every provider, events, metrics, and what the operator
//! remembers of each client between reconciles (failures, when its registration was last
//! read, a registration it could not record yet).

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use nauthera_shared::Inventory;
use nauthera_shared::policy::Evaluator;
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer, ObjectRef};
use secrecy::SecretString;

use crate::Error;
use crate::metrics::Metrics;
use crate::provider::ProviderError;
use crate::provider::discovery::DiscoveryCache;
use crate::secrets::StoredRegistration;

pub const FIELD_MANAGER: &str = "nauthera-operator";

/// One store per kind, shared by every controller and task, and the policy engine over
/// them.
#[derive(Clone)]
pub struct Stores {
    pub clients: Store<AuthClient>,
    pub servers: Store<AuthServer>,
    pub policies: Store<AuthPolicy>,
    /// Labels are all the engine needs of a namespace.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Bumped whenever servers, policies or namespace labels change: the engine is
    /// rebuilt on the next evaluation, and only then.
    pub changes: Arc<AtomicU64>,
    /// Nudged whenever something a server's or policy's status reports may have changed.
    pub summaries: Arc<tokio::sync::Notify>,
    engine: Arc<Mutex<Option<Built>>>,
}

/// An engine, and the count of changes it was built after.
type Built = (u64, Arc<Evaluator>);

impl Stores {
    pub fn new(
        clients: Store<AuthClient>,
        servers: Store<AuthServer>,
        policies: Store<AuthPolicy>,
        namespaces: Store<PartialObjectMeta<Namespace>>,
    ) -> Self {
        Self {
            clients,
            servers,
            policies,
            namespaces,
            changes: Arc::new(AtomicU64::new(0)),
            summaries: Arc::new(tokio::sync::Notify::new()),
            engine: Arc::new(Mutex::new(None)),
        }
    }

    /// Waits until every store has been listed once.
    pub async fn ready(&self) {
        let _ = self.clients.wait_until_ready().await;
        let _ = self.servers.wait_until_ready().await;
        let _ = self.policies.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
    }

    /// The kinds whose store has not been listed yet.
    pub fn pending(&self) -> Vec<&'static str> {
        [
            ("AuthClient", listed(&self.clients)),
            ("AuthServer", listed(&self.servers)),
            ("AuthPolicy", listed(&self.policies)),
            ("Namespace", listed(&self.namespaces)),
        ]
        .into_iter()
        .filter(|(_, ready)| !ready)
        .map(|(kind, _)| kind)
        .collect()
    }

    /// The engine over the servers, policies and namespaces as the stores hold them,
    /// built again only after one of them changed.
    pub fn evaluator(&self) -> Arc<Evaluator> {
        let changes = self.changes.load(Ordering::Acquire);
        let mut engine = lock(&self.engine);
        if let Some((built_at, evaluator)) = engine.as_ref()
            && *built_at == changes
        {
            return Arc::clone(evaluator);
        }
        let evaluator = Arc::new(self.inventory().evaluator());
        *engine = Some((changes, Arc::clone(&evaluator)));
        evaluator
    }

    fn inventory(&self) -> Inventory {
        fn cloned<K: Clone + kube::runtime::reflector::Lookup>(store: &Store<K>) -> Vec<K>
        where
            K::DynamicType: Eq + Hash + Clone,
        {
            store
                .state()
                .iter()
                .map(|object| (**object).clone())
                .collect()
        }
        Inventory {
            servers: cloned(&self.servers),
            policies: cloned(&self.policies),
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
        }
    }
}

/// How the operator runs: its namespace, how often registrations are read again, and
/// where registrations are journalled between the provider's answer and their record.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where registration records are kept, out of the teams' reach.
    pub operator_namespace: String,
    /// How often each registration is read at its provider, to notice drift.
    pub resync: Duration,
    /// A local directory for the journal (see [`crate::journal`]); none: no journal.
    pub journal_dir: Option<std::path::PathBuf>,
}

/// What the operator remembers of one client (by UID) between reconciles.
#[derive(Default)]
struct Memory {
    /// Consecutive failures, for backoff.
    failures: u32,
    /// When its registration was last read, registered or updated.
    verified: Option<Instant>,
    /// A registration made but not yet recorded (its record could not be written and the
    /// provider would not take it back): recorded before anything is registered again.
    unrecorded: Option<StoredRegistration>,
    /// Drift put back once: if the provider shows the same again, it is not rewritten.
    repaired: Vec<&'static str>,
    /// Its deletion is done: a reconcile racing the finalizer's removal has nothing to do.
    released: bool,
    /// A registration this operator deleted (revoked) while the client stays: a reconcile
    /// that still sees it in a status not yet updated must not take it for lost.
    deleted: Option<String>,
}

pub struct Context {
    pub client: Client,
    pub stores: Stores,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub discovery: DiscoveryCache,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub journal: crate::journal::Journal,
    memory: Mutex<HashMap<String, Memory>>,
    /// Per issuer, the settings its provider does not keep (for the server's status).
    unheld: Mutex<HashMap<String, BTreeSet<&'static str>>>,
    /// Initial access tokens read recently, by Secret and key: a burst of registrations
    /// reads each once.
    tokens: Mutex<HashMap<TokenSource, (Instant, SecretString)>>,
}

/// Where an initial access token is read from: namespace, Secret, key.
type TokenSource = (String, String, String);

/// How long an initial access token read from its Secret is used before reading again.
const TOKEN_KEPT_FOR: Duration = Duration::from_secs(30);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Context {
    pub fn new(client: Client, stores: Stores, settings: Settings) -> Result<Self, Error> {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let metrics = Metrics::default();
        let journal =
            crate::journal::Journal::new(settings.journal_dir.clone()).map_err(|error| {
                Error::Unrecorded(format!(
                    "cannot use the journal directory {:?}: {error}",
                    settings.journal_dir
                ))
            })?;
        Ok(Self {
            journal,
            recorder: Recorder::new(client.clone(), reporter),
            client,
            stores,
            settings,
            http: crate::provider::dcr::http_client()?,
            discovery: DiscoveryCache::counting(metrics.discovery_fetches.clone()),
            metrics,
            memory: Mutex::new(HashMap::new()),
            unheld: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn evaluator(&self) -> Arc<Evaluator> {
        self.stores.evaluator()
    }

    pub fn server(&self, reference: &ObjectRef) -> Option<Arc<AuthServer>> {
        self.stores.servers.get(
            &kube::runtime::reflector::ObjectRef::new(&reference.name).within(&reference.namespace),
        )
    }

    /// Whether the operator's own namespace exists, so registrations can be recorded.
    pub fn can_record(&self) -> bool {
        self.stores
            .namespaces
            .get(&kube::runtime::reflector::ObjectRef::new(
                &self.settings.operator_namespace,
            ))
            .is_some_and(|namespace| namespace.metadata.deletion_timestamp.is_none())
    }

    /// Where `server`'s provider takes registrations, and the initial access token from
    /// the Secret the server names.
    pub async fn registration_endpoint(
        &self,
        server: &AuthServer,
    ) -> Result<(String, Option<SecretString>), Error> {
        let provider = &server.spec.provider;
        let endpoint = if let Some(endpoint) = &provider.registration_endpoint {
            endpoint.clone()
        } else {
            let discovered = self
                .discovery
                .get(&self.http, &server.spec.issuer_url)
                .await?;
            discovered.document.registration_endpoint.clone().ok_or_else(|| {
                ProviderError::Protocol(format!(
                    "{} offers no registration_endpoint: dynamic client registration is not enabled there",
                    server.spec.issuer_url
                ))
            })?
        };
        let Some(reference) = &provider.initial_access_token_secret_ref else {
            return Ok((endpoint, None));
        };
        let namespace = server.meta().namespace.clone().unwrap_or_default();
        let key = (
            namespace.clone(),
            reference.name.clone(),
            reference.key.clone(),
        );
        if let Some((read, token)) = lock(&self.tokens).get(&key)
            && read.elapsed() < TOKEN_KEPT_FOR
        {
            return Ok((endpoint, Some(token.clone())));
        }
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let missing = |what: String| Error::InitialAccessToken(what);
        let secret = secrets.get_opt(&reference.name).await?.ok_or_else(|| {
            missing(format!(
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
                missing(format!(
                    "Secret {namespace}/{} has no key {:?} (spec.provider.initialAccessTokenSecretRef.key)",
                    reference.name, reference.key
                ))
            })?;
        let token = SecretString::from(value.trim().to_owned());
        lock(&self.tokens).insert(key, (Instant::now(), token.clone()));
        Ok((endpoint, Some(token)))
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

    fn memory(&self) -> MutexGuard<'_, HashMap<String, Memory>> {
        lock(&self.memory)
    }

    /// Backoff after a failure: 5 s, doubling per consecutive failure, at most 5 minutes.
    pub fn backoff(&self, uid: &str) -> Duration {
        let mut memory = self.memory();
        let entry = memory.entry(uid.to_owned()).or_default();
        entry.failures = entry.failures.saturating_add(1);
        Duration::from_secs(
            5u64.saturating_mul(1 << (entry.failures - 1).min(6))
                .min(300),
        )
    }

    pub fn succeeded(&self, uid: &str) {
        if let Some(entry) = self.memory().get_mut(uid) {
            entry.failures = 0;
        }
    }

    /// How long until the registration is due to be read again; zero when it is due.
    /// A client not seen since the operator started is given a due time spread over the
    /// interval, so a restart does not read every registration at once.
    pub fn read_due_in(&self, uid: &str) -> Duration {
        let resync = self.settings.resync;
        let mut memory = self.memory();
        let entry = memory.entry(uid.to_owned()).or_default();
        let verified = *entry.verified.get_or_insert_with(|| {
            let now = Instant::now();
            now.checked_sub(spread(uid, resync)).unwrap_or(now)
        });
        resync.saturating_sub(verified.elapsed())
    }

    /// The registration was just read, registered or updated.
    pub fn verified(&self, uid: &str) {
        self.memory().entry(uid.to_owned()).or_default().verified = Some(Instant::now());
    }

    pub fn keep_unrecorded(&self, uid: &str, registration: StoredRegistration) {
        self.memory().entry(uid.to_owned()).or_default().unrecorded = Some(registration);
    }

    pub fn take_unrecorded(&self, uid: &str) -> Option<StoredRegistration> {
        self.memory().get_mut(uid)?.unrecorded.take()
    }

    /// Whether this drift was already put back once, and came back: the provider does
    /// not keep these values as sent, and rewriting them forever helps nobody.
    pub fn drift_returned(&self, uid: &str, drifted: &[&'static str]) -> bool {
        let mut memory = self.memory();
        let entry = memory.entry(uid.to_owned()).or_default();
        if entry.repaired == drifted {
            return true;
        }
        entry.repaired = drifted.to_vec();
        false
    }

    /// The provider holds what was applied: drift, if it comes back, is new drift.
    pub fn in_sync(&self, uid: &str) {
        if let Some(entry) = self.memory().get_mut(uid) {
            entry.repaired.clear();
        }
    }

    /// The client's deletion is complete: forget it, but remember that much, so a
    /// reconcile queued before the object disappeared does not look for what is gone.
    pub fn released(&self, uid: &str) {
        self.memory().insert(
            uid.to_owned(),
            Memory {
                released: true,
                ..Memory::default()
            },
        );
    }

    /// The registration `client_id` of this client was deleted here on purpose.
    pub fn deleted_registration(&self, uid: &str, client_id: &str) {
        self.memory().entry(uid.to_owned()).or_default().deleted = Some(client_id.to_owned());
    }

    /// Whether `client_id` is the registration deleted here on purpose.
    pub fn was_deleted_here(&self, uid: &str, client_id: &str) -> bool {
        self.memory()
            .get(uid)
            .is_some_and(|entry| entry.deleted.as_deref() == Some(client_id))
    }

    pub fn is_released(&self, uid: &str) -> bool {
        self.memory().get(uid).is_some_and(|entry| entry.released)
    }

    /// Forgets every client that is no longer in the store.
    pub fn forget_gone(&self) {
        let present: std::collections::HashSet<String> = self
            .stores
            .clients
            .state()
            .iter()
            .filter_map(|client| client.metadata.uid.clone())
            .collect();
        self.memory().retain(|uid, _| present.contains(uid));
    }

    /// Notes which settings `issuer`'s provider does not keep.
    pub fn note_unheld(&self, issuer: &str, unheld: &[&'static str]) {
        let mut all = lock(&self.unheld);
        let known = all
            .entry(issuer.trim_end_matches('/').to_owned())
            .or_default();
        known.extend(unheld.iter().copied());
    }

    pub fn unheld(&self, issuer: &str) -> BTreeSet<&'static str> {
        lock(&self.unheld)
            .get(issuer.trim_end_matches('/'))
            .cloned()
            .unwrap_or_default()
    }
}

fn listed<K: Clone + kube::runtime::reflector::Lookup>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + Hash + Clone,
{
    use futures::FutureExt;
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|ready| ready.is_ok())
}

/// A stable offset in (0, `interval`] for `uid`.
fn spread(uid: &str, interval: Duration) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut hasher);
    let millis = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(1 + hasher.finish() % millis)
}
