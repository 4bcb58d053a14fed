//! A cluster as a source: one watch per kind, kept in reflector stores, and a snapshot
//! sent whenever something changed — no polling. A kind the user may not watch, or a
//! cluster that cannot be reached, becomes a problem on screen and is retried.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config, Resource};
use nauthera_shared::Inventory;
use nauthera_shared::resources::{AuthClient, AuthPolicy, AuthServer, ObjectRef};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::SourceEvent;
use crate::model::{Reach, Snapshot};

/// Changes are gathered for this long before a snapshot is sent, so a burst of events
/// (the initial list, an operator updating many statuses) costs one redraw.
const COALESCE: Duration = Duration::from_millis(100);

/// A cluster to read: the client, and the context's name and default namespace.
pub struct Connection {
    pub client: Client,
    pub context: String,
    pub default_namespace: String,
}

/// Connects through the kubeconfig (`KUBECONFIG` or `~/.kube/config`, or the in-cluster
/// service account), with `context` or the current one.
pub async fn connect(context: Option<&str>) -> Result<Connection, String> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match Config::from_kubeconfig(&options).await {
        Ok(config) => config,
        Err(kubeconfig_error) if context.is_none() => Config::incluster().map_err(|_| {
            format!(
                "no usable kubeconfig ({kubeconfig_error}); use --manifests DIR to read a folder"
            )
        })?,
        Err(error) => return Err(format!("kubeconfig context {context:?}: {error}")),
    };
    let context = context.map_or_else(
        || {
            Kubeconfig::read()
                .ok()
                .and_then(|config| config.current_context)
                .unwrap_or_else(|| "in-cluster".to_owned())
        },
        str::to_owned,
    );
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|error| format!("cannot connect: {error}"))?;
    Ok(Connection {
        client,
        context,
        default_namespace,
    })
}

/// Which watch reported what.
enum Update {
    Changed,
    /// The watch has listed every object once (its store is whole).
    Listed(&'static str),
    Failed(&'static str, String),
    Recovered(&'static str),
}

/// The kinds watched; the first read waits until each is listed or has failed.
const KINDS: usize = 4;

/// Watches servers, policies, namespaces (cluster-wide: they decide every client's fate)
/// and clients (in `namespace`, or everywhere), sending a snapshot on every change.
///
/// The first snapshot waits until every watch has listed its objects (or failed): a read
/// sent halfway through the initial lists would make the rest look new in the next one.
/// It is marked [`Snapshot::first`], so nothing in it is marked as changed.
pub fn watch(
    client: Client,
    namespace: Option<String>,
    snapshots: UnboundedSender<SourceEvent>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (servers, servers_stream) =
            reflect::<AuthServer>(Api::all(client.clone()), "authservers");
        let (policies, policies_stream) =
            reflect::<AuthPolicy>(Api::all(client.clone()), "authpolicies");
        let client_api = match &namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (clients, clients_stream) = reflect::<AuthClient>(client_api, "authclients");
        let (namespaces, namespaces_stream) = reflect::<Namespace>(Api::all(client), "namespaces");
        let mut updates = stream::select_all([
            servers_stream,
            policies_stream,
            clients_stream,
            namespaces_stream,
        ]);
        let mut problems: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut settled: BTreeSet<&'static str> = BTreeSet::default();
        let mut first = true;
        let mut dirty = false;
        let mut tick = tokio::time::interval(COALESCE);
        loop {
            tokio::select! {
                update = updates.next() => match update {
                    Some(Update::Changed) => dirty = true,
                    Some(Update::Listed(kind)) => {
                        settled.insert(kind);
                        dirty = true;
                    }
                    Some(Update::Failed(kind, message)) => {
                        settled.insert(kind);
                        dirty |= problems.insert(kind, message.clone()).as_ref() != Some(&message);
                    }
                    Some(Update::Recovered(kind)) => dirty |= problems.remove(kind).is_some(),
                    None => return,
                },
                _ = tick.tick() => {
                    if dirty && (!first || settled.len() == KINDS) {
                        dirty = false;
                        let mut snapshot = snapshot_of(&servers, &policies, &clients, &namespaces, &problems);
                        snapshot.first = std::mem::take(&mut first);
                        let event = tokio::task::spawn_blocking(move || SourceEvent::read(snapshot)).await;
                        let sent = event.is_ok_and(|event| snapshots.send(event).is_ok());
                        if !sent {
                            return;
                        }
                    }
                }
            }
        }
    })
}

fn reflect<K>(api: Api<K>, plural: &'static str) -> (Store<K>, stream::BoxStream<'static, Update>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let mut failing = false;
    let updates = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .map(move |event| match event {
            Ok(_) if failing => {
                failing = false;
                Update::Recovered(plural)
            }
            Ok(watcher::Event::InitDone) => Update::Listed(plural),
            Ok(_) => Update::Changed,
            Err(error) => {
                failing = true;
                Update::Failed(plural, describe(plural, &error))
            }
        })
        .boxed();
    (store, updates)
}

/// A watch error in the words a user can act on.
pub(crate) fn describe(plural: &str, error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(error) | watcher::Error::WatchStartFailed(error) => {
            let text = describe_api(plural, "watch", error);
            if matches!(error, kube::Error::Service(_) | kube::Error::HyperError(_)) {
                format!("{text} (retrying)")
            } else {
                text
            }
        }
        _ => format!("cannot watch {plural}: {error} (retrying)"),
    }
}

/// An API error in the words a user can act on: forbidden, not installed, or as it came.
fn describe_api(plural: &str, verb: &str, error: &kube::Error) -> String {
    match error {
        kube::Error::Api(response) if response.code == 403 => {
            format!("cannot {verb} {plural}: forbidden ({})", response.message)
        }
        kube::Error::Api(response) if response.code == 404 => format!(
            "cannot {verb} {plural}: the resource is not served (are the Nauthera CRDs installed? kubectl apply -f crds/)"
        ),
        // The connection itself failed: one message for every kind, not four.
        kube::Error::Service(_) | kube::Error::HyperError(_) => {
            format!("cannot reach the cluster: {error}")
        }
        other => format!("cannot {verb} {plural}: {other}"),
    }
}

/// At most this many namespaces are listed at once when clients cannot be listed
/// cluster-wide.
const PARALLEL_LISTS: usize = 8;

/// Lists every client the user may see, wherever it lives: cluster-wide when allowed, else
/// namespace by namespace, naming the namespaces RBAC hides. `hints` are namespaces to try
/// when namespaces themselves cannot be listed (the one on screen, the servers' and
/// policies').
pub async fn read_reach(client: Client, hints: &[String]) -> Result<Reach, String> {
    let read_at = chrono::Local::now();
    let everywhere: Api<AuthClient> = Api::all(client.clone());
    match everywhere.list(&ListParams::default()).await {
        Ok(list) => {
            return Ok(Reach {
                clients: list.items,
                cluster_wide: true,
                read_at,
                ..Reach::default()
            });
        }
        Err(kube::Error::Api(response)) if response.code == 403 => {}
        Err(error) => return Err(describe_api("authclients", "list", &error)),
    }
    let (namespaces, namespaces_unknown) = match list_all::<Namespace>(&client, "namespaces").await
    {
        Ok(namespaces) => (
            namespaces
                .into_iter()
                .filter_map(|namespace| namespace.metadata.name)
                .collect::<BTreeSet<String>>(),
            false,
        ),
        Err(_) => (hints.iter().cloned().collect(), true),
    };
    let lists = stream::iter(namespaces)
        .map(|namespace| {
            let api: Api<AuthClient> = Api::namespaced(client.clone(), &namespace);
            async move {
                let listed = api.list(&ListParams::default()).await;
                (namespace, listed)
            }
        })
        .buffer_unordered(PARALLEL_LISTS)
        .collect::<Vec<_>>()
        .await;
    let mut reach = Reach {
        namespaces_unknown,
        read_at,
        ..Reach::default()
    };
    for (namespace, listed) in lists {
        match listed {
            Ok(list) => {
                reach.clients.extend(list.items);
                reach.listed.push(namespace);
            }
            Err(kube::Error::Api(response)) if response.code == 403 => {
                reach.hidden.push(namespace);
            }
            Err(error) => return Err(describe_api("authclients", "list", &error)),
        }
    }
    reach.listed.sort();
    reach.hidden.sort();
    Ok(reach)
}

async fn list_all<K>(client: &Client, plural: &str) -> Result<Vec<K>, String>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|error| describe_api(plural, "list", &error))
}

/// Reads every server, policy, namespace and the clients the user may see once, for a
/// preview. Namespaces the user may not list, or whose clients are hidden, are warnings
/// (the preview says what it could not see); the rest an error.
pub async fn list_inventory(client: Client) -> Result<(Inventory, Reach, Vec<String>), String> {
    let mut warnings = Vec::new();
    let namespaces = match list_all::<Namespace>(&client, "namespaces").await {
        Ok(namespaces) => namespaces
            .into_iter()
            .filter_map(|ns| Some((ns.metadata.name?, ns.metadata.labels.unwrap_or_default())))
            .collect(),
        Err(problem) => {
            warnings.push(format!(
                "{problem}; servers that trust namespaces by label will refuse every client"
            ));
            BTreeMap::new()
        }
    };
    let servers: Vec<AuthServer> = list_all(&client, "authservers").await?;
    let policies: Vec<AuthPolicy> = list_all(&client, "authpolicies").await?;
    let hints: Vec<String> = servers
        .iter()
        .map(|server| ObjectRef::of(server).namespace)
        .chain(
            policies
                .iter()
                .map(|policy| ObjectRef::of(policy).namespace),
        )
        .collect();
    let mut reach = read_reach(client, &hints).await?;
    if reach.is_partial() {
        warnings.push(reach.describe());
    }
    let inventory = Inventory {
        servers,
        policies,
        clients: std::mem::take(&mut reach.clients),
        namespaces,
    };
    Ok((inventory, reach, warnings))
}

fn snapshot_of(
    servers: &Store<AuthServer>,
    policies: &Store<AuthPolicy>,
    clients: &Store<AuthClient>,
    namespaces: &Store<Namespace>,
    problems: &BTreeMap<&'static str, String>,
) -> Snapshot {
    let inventory = Inventory {
        servers: owned(servers),
        policies: owned(policies),
        clients: owned(clients),
        namespaces: namespaces
            .state()
            .iter()
            .filter_map(|ns| {
                let name = ns.metadata.name.clone()?;
                Some((name, ns.metadata.labels.clone().unwrap_or_default()))
            })
            .collect(),
    };
    let mut snapshot = Snapshot::new(inventory, true);
    let mut unique: Vec<String> = problems.values().cloned().collect();
    unique.sort();
    unique.dedup();
    snapshot.problems = unique;
    snapshot
}

fn owned<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>) -> Vec<K> {
    store.state().iter().map(|item| K::clone(item)).collect()
}
