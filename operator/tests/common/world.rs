//! Stores filled with given objects, as the watches would fill them, and a context over
//! them: what reconciles and fan-out run against in the contract-level tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Lookup, store::Writer};
use kube::runtime::watcher;
use nauthera_operator::context::{Context, Settings, Stores};
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer};

pub const OPERATOR_NAMESPACE: &str = "nauthera-system";

fn listed<K>(writer: &mut Writer<K>, objects: Vec<K>)
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

pub fn namespace(name: &str, labels: &[(&str, &str)]) -> PartialObjectMeta<Namespace> {
    let mut namespace = PartialObjectMeta::<Namespace>::default();
    namespace.metadata.name = Some(name.to_owned());
    namespace.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    namespace
}

/// Stores holding exactly these objects, listed and ready.
pub fn stores(
    servers: Vec<AuthServer>,
    policies: Vec<AuthPolicy>,
    namespaces: Vec<PartialObjectMeta<Namespace>>,
    clients: Vec<AuthClient>,
) -> Stores {
    let (servers_store, mut servers_writer) = reflector::store();
    let (policies_store, mut policies_writer) = reflector::store();
    let (namespaces_store, mut namespaces_writer) = reflector::store();
    let (clients_store, mut clients_writer) = reflector::store();
    listed(&mut servers_writer, servers);
    listed(&mut policies_writer, policies);
    listed(&mut namespaces_writer, namespaces);
    listed(&mut clients_writer, clients);
    // The writers must outlive the test for the stores to stay ready.
    std::mem::forget((
        servers_writer,
        policies_writer,
        namespaces_writer,
        clients_writer,
    ));
    Stores::new(
        clients_store,
        servers_store,
        policies_store,
        namespaces_store,
    )
}

/// A context over `stores`, reading registrations again every `resync`.
pub fn context(kube: Client, stores: Stores, resync: Duration) -> Arc<Context> {
    context_journalled(kube, stores, resync, None)
}

/// The same, with a journal in `journal_dir`.
pub fn context_journalled(
    kube: Client,
    stores: Stores,
    resync: Duration,
    journal_dir: Option<std::path::PathBuf>,
) -> Arc<Context> {
    Arc::new(
        Context::new(
            kube,
            stores,
            Settings {
                operator_namespace: OPERATOR_NAMESPACE.to_owned(),
                resync,
                journal_dir,
            },
        )
        .expect("a context"),
    )
}
