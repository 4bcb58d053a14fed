//! One watch and one store per kind, each driven by its own task — never by a
//! controller's trigger streams, so the stores fill whether or not anything reconciles
//! yet, and a reconcile can wait for them without any chance of deadlock.
//!
//! Each task also turns the changes that matter into reconcile triggers, exactly:
//! a client's own spec, labels, annotations, finalizers or deletion (never its status,
//! which the operator writes itself); the clients a server, policy or namespace change
//! reaches; the owner of a credentials Secret that was deleted. Until this instance leads,
//! triggers are dropped: leading starts with a reconcile of every client.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef as StoreRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer, ObjectRef};
use tokio::sync::Notify;

use crate::context::Stores;
use crate::secrets::MANAGED_BY;

/// Where triggers go: the running controller's queue, or nowhere while not leading.
#[derive(Clone, Default)]
pub struct Triggers {
    sender: Arc<Mutex<Option<UnboundedSender<Arc<AuthClient>>>>>,
}

impl Triggers {
    /// Sends triggers to `sender` from now on.
    pub fn connect(&self, sender: UnboundedSender<Arc<AuthClient>>) {
        *self.lock() = Some(sender);
    }

    pub fn disconnect(&self) {
        *self.lock() = None;
    }

    fn send(&self, client: Arc<AuthClient>) {
        if let Some(sender) = self.lock().as_ref() {
            let _ = sender.unbounded_send(client);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<UnboundedSender<Arc<AuthClient>>>> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The watches' products: the stores (with their nudge for status summaries), and the
/// triggers.
pub struct Watches {
    pub stores: Stores,
    pub triggers: Triggers,
}

/// Starts every watch, each on its own task.
pub fn start(client: &Client) -> Watches {
    let (clients, clients_writer) = reflector::store::<AuthClient>();
    let (servers, servers_writer) = reflector::store::<AuthServer>();
    let (policies, policies_writer) = reflector::store::<AuthPolicy>();
    let (namespaces, namespaces_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
    let stores = Stores::new(clients, servers, policies, namespaces);
    let triggers = Triggers::default();
    let summaries = Arc::clone(&stores.summaries);
    let config = watcher::Config::default();

    let fan = Fanout {
        stores: stores.clone(),
        triggers: triggers.clone(),
        summaries: Arc::clone(&summaries),
    };
    let stream = watcher(Api::<AuthClient>::all(client.clone()), config.clone())
        .default_backoff()
        .reflect(clients_writer);
    spawn("AuthClient", stream, client_significance, {
        let fan = fan.clone();
        move |change| fan.client_changed(&change)
    });
    let stream = watcher(Api::<AuthServer>::all(client.clone()), config.clone())
        .default_backoff()
        .reflect(servers_writer);
    spawn("AuthServer", stream, spec_significance, {
        let fan = fan.clone();
        move |change| fan.server_changed(&change)
    });
    let stream = watcher(Api::<AuthPolicy>::all(client.clone()), config.clone())
        .default_backoff()
        .reflect(policies_writer);
    spawn("AuthPolicy", stream, spec_significance, {
        let fan = fan.clone();
        move |change| fan.policy_changed(&change)
    });
    let stream = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        config,
    )
    .default_backoff()
    .reflect(namespaces_writer);
    spawn("Namespace", stream, labels_significance, {
        let fan = fan.clone();
        move |change| fan.namespace_changed(&change)
    });
    // Only the Secrets the operator wrote, and only their metadata.
    let owned = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let stream =
        watcher(Api::<PartialObjectMeta<Secret>>::all(client.clone()), owned).default_backoff();
    spawn("Secret", stream, labels_significance, move |change| {
        fan.secret_changed(&change);
    });
    Watches { stores, triggers }
}

/// Where an object was: all that is left of it once deleted.
pub struct Name {
    pub namespace: Option<String>,
    pub name: String,
}

impl Name {
    fn of<K: Resource<DynamicType = ()>>(reference: &StoreRef<K>) -> Self {
        Self {
            namespace: reference.namespace.clone(),
            name: reference.name.clone(),
        }
    }

    fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(
            self.namespace.clone().unwrap_or_default(),
            self.name.clone(),
        )
    }
}

/// A change that matters, after the store has taken it in.
pub enum Change<'a, K> {
    /// Added, or changed in a way that matters (not on the first listing).
    Changed(&'a K),
    /// Deleted (seen, or missed while the watch was down and noticed on a new listing).
    Removed(Name),
    /// Anything else: a status, a resourceVersion. Summaries may still care.
    Touched,
}

/// Drives one watch stream until the process ends, reporting changes that matter.
fn spawn<K, S>(
    kind: &'static str,
    stream: S,
    significance: fn(&K) -> u64,
    mut on_change: impl FnMut(Change<'_, K>) + Send + 'static,
) where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tracker = Tracker::<K>::default();
        let mut stream = std::pin::pin!(stream);
        let mut failing = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if failing {
                        tracing::info!(kind, "watch restored");
                        failing = false;
                    }
                    tracker.take(&event, significance, &mut on_change);
                }
                Err(error) => {
                    // Logged once per outage; the watcher retries with backoff.
                    if !failing {
                        tracing::warn!(kind, %error, "watch failed; retrying");
                        failing = true;
                    }
                }
            }
        }
    });
}

/// What was last seen of each object, to tell changes that matter from the rest.
struct Tracker<K: Resource<DynamicType = ()>> {
    seen: HashMap<StoreRef<K>, u64>,
    /// Objects listed so far in a listing that is under way.
    listing: Option<HashSet<StoreRef<K>>>,
    /// Whether a first complete listing happened: its objects are not changes.
    listed_once: bool,
}

impl<K: Resource<DynamicType = ()>> Default for Tracker<K> {
    fn default() -> Self {
        Self {
            seen: HashMap::new(),
            listing: None,
            listed_once: false,
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone> Tracker<K> {
    fn take(
        &mut self,
        event: &watcher::Event<K>,
        significance: fn(&K) -> u64,
        on_change: &mut impl FnMut(Change<'_, K>),
    ) {
        match event {
            watcher::Event::Init => self.listing = Some(HashSet::new()),
            watcher::Event::InitApply(object) | watcher::Event::Apply(object) => {
                let reference = StoreRef::from_obj(object);
                if let Some(listing) = &mut self.listing {
                    listing.insert(reference.clone());
                }
                let hash = significance(object);
                let before = self.seen.insert(reference, hash);
                let first_listing = self.listing.is_some() && !self.listed_once;
                if before != Some(hash) && !first_listing {
                    on_change(Change::Changed(object));
                } else {
                    on_change(Change::Touched);
                }
            }
            watcher::Event::Delete(object) => {
                let reference = StoreRef::from_obj(object);
                self.seen.remove(&reference);
                on_change(Change::Removed(Name::of(&reference)));
            }
            watcher::Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let gone: Vec<StoreRef<K>> = self
                    .seen
                    .keys()
                    .filter(|reference| !listed.contains(*reference))
                    .cloned()
                    .collect();
                for reference in gone {
                    self.seen.remove(&reference);
                    on_change(Change::Removed(Name::of(&reference)));
                }
                self.listed_once = true;
                on_change(Change::Touched);
            }
        }
    }
}

fn hash_of(value: &impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// What makes a client worth reconciling: not its status, which the operator writes.
fn client_significance(client: &AuthClient) -> u64 {
    let meta = client.meta();
    hash_of(&(
        meta.generation,
        meta.deletion_timestamp.is_some(),
        &meta.finalizers,
        &meta.labels,
        &meta.annotations,
    ))
}

/// Servers and policies: their spec (generation) and labels (policies are selected by
/// them); not their status, which the operator writes.
fn spec_significance<K: Resource>(object: &K) -> u64 {
    let meta = object.meta();
    hash_of(&(meta.generation, &meta.labels))
}

fn labels_significance<K: Resource>(object: &K) -> u64 {
    hash_of(&object.meta().labels)
}

/// Turns changes into triggers and nudges.
#[derive(Clone)]
struct Fanout {
    stores: Stores,
    triggers: Triggers,
    summaries: Arc<Notify>,
}

impl Fanout {
    fn client_changed(&self, change: &Change<'_, AuthClient>) {
        if let Change::Changed(client) = change
            && let Some(stored) = self.stores.clients.get(&StoreRef::from_obj(client))
        {
            self.triggers.send(stored);
        }
        // Any client event (its status included) may change a summary.
        self.summaries.notify_one();
    }

    fn server_changed(&self, change: &Change<'_, AuthServer>) {
        let server = match change {
            Change::Changed(server) => ObjectRef::of(*server),
            Change::Removed(name) => name.object_ref(),
            Change::Touched => return self.summaries.notify_one(),
        };
        self.stores.changes.fetch_add(1, Ordering::AcqRel);
        self.send_all(clients_of_server(&self.stores.clients, &server));
    }

    fn policy_changed(&self, change: &Change<'_, AuthPolicy>) {
        let policy = match change {
            Change::Changed(policy) => ObjectRef::of(*policy),
            Change::Removed(name) => name.object_ref(),
            Change::Touched => return self.summaries.notify_one(),
        };
        self.stores.changes.fetch_add(1, Ordering::AcqRel);
        self.send_all(clients_of_policy(&self.stores, &policy));
    }

    fn namespace_changed(&self, change: &Change<'_, PartialObjectMeta<Namespace>>) {
        let namespace = match change {
            Change::Changed(namespace) => namespace.name_any(),
            Change::Removed(name) => name.name.clone(),
            Change::Touched => return,
        };
        self.stores.changes.fetch_add(1, Ordering::AcqRel);
        self.send_all(clients_in_namespace(&self.stores.clients, &namespace));
    }

    /// A Secret the operator wrote was deleted: its client restores it.
    fn secret_changed(&self, change: &Change<'_, PartialObjectMeta<Secret>>) {
        let Change::Removed(reference) = change else {
            return;
        };
        let namespace = reference.namespace.clone().unwrap_or_default();
        let clients: Vec<StoreRef<AuthClient>> = self
            .stores
            .clients
            .state()
            .iter()
            .filter(|client| {
                client.meta().namespace.as_deref() == Some(namespace.as_str())
                    && client.meta().deletion_timestamp.is_none()
                    && owns_secret_named(client, &reference.name)
            })
            .map(|client| StoreRef::from_obj(client.as_ref()))
            .collect();
        self.send_all(clients);
    }

    fn send_all(&self, clients: Vec<StoreRef<AuthClient>>) {
        for reference in clients {
            if let Some(client) = self.stores.clients.get(&reference) {
                self.triggers.send(client);
            }
        }
        self.summaries.notify_one();
    }
}

/// Whether `client`'s credentials are (or should be) in a Secret of this name.
fn owns_secret_named(client: &AuthClient, name: &str) -> bool {
    let recorded = client
        .status
        .as_ref()
        .and_then(|status| status.client_secret_ref.as_ref())
        .is_some_and(|secret| secret.name == name);
    let wanted = client.spec.secret_name.as_deref().map_or_else(
        || nauthera_shared::policy::default_secret_name(&client.name_any()) == name,
        |secret| secret == name,
    );
    recorded || wanted
}

fn server_of(client: &AuthClient) -> ObjectRef {
    let reference = &client.spec.auth_server_ref;
    let namespace = reference
        .namespace
        .clone()
        .or_else(|| client.meta().namespace.clone())
        .unwrap_or_default();
    ObjectRef::new(namespace, reference.name.clone())
}

/// The clients that name `server`.
pub fn clients_of_server(
    clients: &Store<AuthClient>,
    server: &ObjectRef,
) -> Vec<StoreRef<AuthClient>> {
    clients
        .state()
        .iter()
        .filter(|client| &server_of(client) == server)
        .map(|client| StoreRef::from_obj(client.as_ref()))
        .collect()
}

/// The clients a policy may now govern (their server selects it) and those it governed
/// (recorded in their status): a narrowed or deleted policy must release clients too.
pub fn clients_of_policy(stores: &Stores, policy: &ObjectRef) -> Vec<StoreRef<AuthClient>> {
    let evaluator = stores.evaluator();
    let servers: Vec<ObjectRef> = evaluator.servers_selecting(policy).cloned().collect();
    let name = policy.to_string();
    stores
        .clients
        .state()
        .iter()
        .filter(|client| {
            servers.contains(&server_of(client))
                || client
                    .status
                    .as_ref()
                    .is_some_and(|status| status.applied_policies.contains(&name))
        })
        .map(|client| StoreRef::from_obj(client.as_ref()))
        .collect()
}

/// The clients of a namespace whose labels changed: trust and selectors may differ now.
pub fn clients_in_namespace(
    clients: &Store<AuthClient>,
    namespace: &str,
) -> Vec<StoreRef<AuthClient>> {
    clients
        .state()
        .iter()
        .filter(|client| client.meta().namespace.as_deref() == Some(namespace))
        .map(|client| StoreRef::from_obj(client.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    //! Events in, triggers out: how many reconciles each kind of change causes.

    use super::*;
    use futures::channel::mpsc::{UnboundedReceiver, unbounded};
    use kube::runtime::reflector::store::Writer;
    use nauthera_shared::resources::AuthPolicyStatus;
    use serde_json::json;

    struct Harness {
        clients: Writer<AuthClient>,
        policies: Writer<AuthPolicy>,
        namespaces: Writer<PartialObjectMeta<Namespace>>,
        client_tracker: Tracker<AuthClient>,
        policy_tracker: Tracker<AuthPolicy>,
        namespace_tracker: Tracker<PartialObjectMeta<Namespace>>,
        fan: Fanout,
        queue: UnboundedReceiver<Arc<AuthClient>>,
    }

    fn client(name: &str, generation: i64) -> AuthClient {
        serde_json::from_value(json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
            "metadata": {"name": name, "namespace": "shop", "generation": generation, "resourceVersion": "1"},
            "spec": {"displayName": name, "authServerRef": {"name": "server", "namespace": "security"}},
            "status": {"appliedPolicies": ["security/policy"]}
        }))
        .unwrap()
    }

    fn policy(generation: i64) -> AuthPolicy {
        serde_json::from_value(json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthPolicy",
            "metadata": {"name": "policy", "namespace": "security", "generation": generation, "labels": {"env": "prod"}},
            "spec": {}
        }))
        .unwrap()
    }

    fn server() -> AuthServer {
        serde_json::from_value(json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthServer",
            "metadata": {"name": "server", "namespace": "security", "generation": 1},
            "spec": {"issuerUrl": "https://auth.example.com", "provider": {"type": "DynamicClientRegistration"},
                     "policySelector": {"matchLabels": {"env": "prod"}}, "allowedNamespaces": {"from": "All"}}
        }))
        .unwrap()
    }

    fn namespace(labels: &[(&str, &str)]) -> PartialObjectMeta<Namespace> {
        let mut namespace = PartialObjectMeta::<Namespace>::default();
        namespace.metadata.name = Some("shop".to_owned());
        namespace.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        namespace
    }

    fn listing<K: Clone>(objects: Vec<K>) -> Vec<watcher::Event<K>> {
        let mut events = vec![watcher::Event::Init];
        events.extend(objects.into_iter().map(watcher::Event::InitApply));
        events.push(watcher::Event::InitDone);
        events
    }

    impl Harness {
        /// Three clients of one server, one policy, all listed once: the state a leader
        /// starts from.
        fn new() -> Self {
            let (clients_store, clients) = reflector::store();
            let (servers_store, mut servers) = reflector::store();
            let (policies_store, policies) = reflector::store();
            let (namespaces_store, namespaces) = reflector::store();
            for event in listing(vec![server()]) {
                servers.apply_watcher_event(&event);
            }
            std::mem::forget(servers);
            let stores = Stores::new(
                clients_store,
                servers_store,
                policies_store,
                namespaces_store,
            );
            let triggers = Triggers::default();
            let (sender, queue) = unbounded();
            triggers.connect(sender);
            let mut harness = Self {
                clients,
                policies,
                namespaces,
                client_tracker: Tracker::default(),
                policy_tracker: Tracker::default(),
                namespace_tracker: Tracker::default(),
                fan: Fanout {
                    stores,
                    triggers,
                    summaries: Arc::new(Notify::new()),
                },
                queue,
            };
            for event in listing(vec![client("a", 1), client("b", 1), client("c", 1)]) {
                harness.client(&event);
            }
            for event in listing(vec![policy(1)]) {
                harness.policy(&event);
            }
            for event in listing(vec![namespace(&[])]) {
                harness.namespace(&event);
            }
            harness
        }

        fn client(&mut self, event: &watcher::Event<AuthClient>) {
            self.clients.apply_watcher_event(event);
            let fan = self.fan.clone();
            self.client_tracker
                .take(event, client_significance, &mut |change| {
                    fan.client_changed(&change);
                });
        }

        fn policy(&mut self, event: &watcher::Event<AuthPolicy>) {
            self.policies.apply_watcher_event(event);
            let fan = self.fan.clone();
            self.policy_tracker
                .take(event, spec_significance, &mut |change| {
                    fan.policy_changed(&change);
                });
        }

        fn namespace(&mut self, event: &watcher::Event<PartialObjectMeta<Namespace>>) {
            self.namespaces.apply_watcher_event(event);
            let fan = self.fan.clone();
            self.namespace_tracker
                .take(event, labels_significance, &mut |change| {
                    fan.namespace_changed(&change);
                });
        }

        /// The names of the clients triggered since the last call.
        fn triggered(&mut self) -> Vec<String> {
            let mut names = Vec::new();
            while let Ok(client) = self.queue.try_recv() {
                names.push(client.name_any());
            }
            names.sort();
            names
        }
    }

    #[test]
    fn the_first_listing_triggers_nothing_leading_reconciles_everything_anyway() {
        let mut harness = Harness::new();
        assert!(harness.triggered().is_empty());
    }

    #[test]
    fn a_clients_own_status_write_triggers_nothing_its_spec_and_finalizers_do() {
        let mut harness = Harness::new();
        let mut status_only = client("a", 1);
        status_only.metadata.resource_version = Some("2".to_owned());
        status_only.status.as_mut().unwrap().client_id = Some("x".to_owned());
        harness.client(&watcher::Event::Apply(status_only.clone()));
        assert!(
            harness.triggered().is_empty(),
            "status is the operator's own write"
        );

        let mut with_finalizer = status_only.clone();
        with_finalizer.metadata.finalizers = Some(vec!["auth.nauthera.io/cleanup".to_owned()]);
        harness.client(&watcher::Event::Apply(with_finalizer.clone()));
        assert_eq!(harness.triggered(), ["a"]);

        let mut edited = with_finalizer;
        edited.metadata.generation = Some(2);
        harness.client(&watcher::Event::Apply(edited));
        assert_eq!(harness.triggered(), ["a"], "one reconcile per spec change");
    }

    #[test]
    fn a_policy_status_write_triggers_nothing_a_spec_change_reaches_each_client_once() {
        let mut harness = Harness::new();
        let mut status_only = policy(1);
        status_only.status = Some(AuthPolicyStatus::default());
        harness.policy(&watcher::Event::Apply(status_only));
        assert!(harness.triggered().is_empty());

        harness.policy(&watcher::Event::Apply(policy(2)));
        assert_eq!(harness.triggered(), ["a", "b", "c"]);

        harness.policy(&watcher::Event::Delete(policy(2)));
        assert_eq!(
            harness.triggered(),
            ["a", "b", "c"],
            "a deleted policy reaches the clients it governed"
        );
    }

    #[test]
    fn a_policy_deleted_while_the_watch_was_down_is_noticed_on_the_next_listing() {
        let mut harness = Harness::new();
        for event in listing(Vec::new()) {
            harness.policy(&event);
        }
        assert_eq!(harness.triggered(), ["a", "b", "c"]);
    }

    #[test]
    fn a_namespace_label_change_reaches_its_clients_other_updates_nothing() {
        let mut harness = Harness::new();
        let mut annotated = namespace(&[]);
        annotated.metadata.annotations = Some([("note".to_owned(), "x".to_owned())].into());
        harness.namespace(&watcher::Event::Apply(annotated));
        assert!(harness.triggered().is_empty());
        harness.namespace(&watcher::Event::Apply(namespace(&[("tenant", "true")])));
        assert_eq!(harness.triggered(), ["a", "b", "c"]);
    }
}
