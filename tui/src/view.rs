//! Taking in a new read, off the UI's thread: the tree built, its rows flattened and every
//! node compared with the last read, by a pure function a worker runs. The UI then only
//! swaps the result in, so a read of 10,000 clients never holds up a frame.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::filter::Filter;
use crate::model::{Counts, State, World};
use crate::tree::{self, Node, NodeId, ObjectKey, Row};
use nauthera_shared::resources::{ObjectRef, labels_of};

/// What each node shows at a glance: a node is marked when this changes.
pub type Fingerprints = FxHashMap<NodeId, (State, Counts)>;

/// How the user looks at the tree: the namespace shown, the branches collapsed, the
/// filter. `version` counts the user's changes to it, so a result prepared with an older
/// view is recognised.
#[derive(Clone, Debug, Default)]
pub struct ViewParams {
    pub namespace: Option<String>,
    pub collapsed: FxHashSet<NodeId>,
    pub filter: Filter,
    pub version: u64,
}

/// A read to take in, with what it is compared with.
pub struct Request {
    pub world: World,
    /// The read on screen now (`None` before the first).
    pub previous: Option<Arc<World>>,
    /// The nodes on screen now, at a glance.
    pub previous_prints: Arc<Fingerprints>,
    pub params: ViewParams,
}

/// A read made ready for the screen.
pub struct Prepared {
    pub world: Arc<World>,
    pub nodes: Vec<Node>,
    pub rows: Vec<Row>,
    pub fingerprints: Arc<Fingerprints>,
    /// Nodes that changed since the previous read; empty for a source's first read.
    pub changed: Vec<NodeId>,
    /// The view the rows were flattened with.
    pub params: ViewParams,
}

/// Builds, flattens and compares: everything taking in a read costs but the swap.
pub fn prepare(request: Request) -> Prepared {
    let Request {
        world,
        previous,
        previous_prints,
        params,
    } = request;
    let nodes = tree::build(&world, params.namespace.as_deref());
    let rows = tree::flatten(&nodes, &params.collapsed, &params.filter, &world);
    let fingerprints = fingerprint(&nodes);
    let changed = match previous {
        Some(before) if !world.snapshot.first => {
            let edited = edited_objects(&before, &world);
            fingerprints
                .iter()
                .filter(|(id, print)| {
                    edited.contains(&id.object()) || previous_prints.get(*id) != Some(*print)
                })
                .map(|(id, _)| id.clone())
                .collect()
        }
        _ => Vec::new(),
    };
    Prepared {
        world: Arc::new(world),
        nodes,
        rows,
        fingerprints: Arc::new(fingerprints),
        changed,
        params,
    }
}

/// Every node of the tree, at a glance.
pub fn fingerprint(nodes: &[Node]) -> Fingerprints {
    let mut prints = FxHashMap::default();
    let mut stack: Vec<&Node> = nodes.iter().collect();
    while let Some(node) = stack.pop() {
        prints.insert(node.id.clone(), (node.state, node.counts));
        stack.extend(&node.children);
    }
    prints
}

/// Objects that differ between two worlds, new ones included: clients by spec, status or
/// evaluation; servers and policies by what their authors write (spec, labels). What the
/// operator reports of a server or policy shows in its state and counts.
fn edited_objects(before: &World, after: &World) -> FxHashSet<ObjectKey> {
    let earlier: FxHashMap<&ObjectRef, usize> = before
        .evaluations
        .iter()
        .enumerate()
        .map(|(index, evaluation)| (&evaluation.client, index))
        .collect();
    let clients = &after.inventory().clients;
    let mut edited: FxHashSet<ObjectKey> = after
        .evaluations
        .iter()
        .enumerate()
        .filter(|(index, evaluation)| {
            earlier.get(&evaluation.client).is_none_or(|&old| {
                let (old_client, new_client) = (&before.inventory().clients[old], &clients[*index]);
                old_client.spec != new_client.spec
                    || old_client.status != new_client.status
                    || before.evaluations[old] != **evaluation
            })
        })
        .map(|(_, evaluation)| ObjectKey::Client(evaluation.client.clone()))
        .collect();
    let (old, new) = (before.inventory(), after.inventory());
    edited.extend(
        edited_of(&old.servers, &new.servers, |a, b| a.spec == b.spec).map(ObjectKey::Server),
    );
    edited.extend(
        edited_of(&old.policies, &new.policies, |a, b| {
            a.spec == b.spec && labels_of(a) == labels_of(b)
        })
        .map(ObjectKey::Policy),
    );
    edited
}

/// The objects of `after` that are new or not `same` as in `before`.
fn edited_of<'a, K: kube::Resource>(
    before: &'a [K],
    after: &'a [K],
    same: impl Fn(&K, &K) -> bool + 'a,
) -> impl Iterator<Item = ObjectRef> + 'a {
    let earlier: FxHashMap<ObjectRef, &K> = before
        .iter()
        .map(|object| (ObjectRef::of(object), object))
        .collect();
    after.iter().filter_map(move |object| {
        let reference = ObjectRef::of(object);
        let unchanged = earlier.get(&reference).is_some_and(|old| same(old, object));
        (!unchanged).then_some(reference)
    })
}

/// What the worker is given.
pub enum Job {
    Prepare(Box<Request>),
    /// What the screen no longer shows, to be freed here rather than on the UI's thread.
    Retire(Box<dyn Send>),
}

/// A thread that prepares reads, the newest first (a burst costs one), and frees what the
/// UI let go of.
pub fn worker() -> (std::sync::mpsc::Sender<Job>, UnboundedReceiver<Prepared>) {
    let (jobs, incoming) = std::sync::mpsc::channel::<Job>();
    let (results, outgoing): (UnboundedSender<Prepared>, _) = unbounded_channel();
    std::thread::Builder::new()
        .name("view".to_owned())
        .spawn(move || {
            while let Ok(job) = incoming.recv() {
                let mut newest = None;
                for job in std::iter::once(job).chain(incoming.try_iter()) {
                    match job {
                        Job::Prepare(request) => newest = Some(request),
                        Job::Retire(retired) => drop(retired),
                    }
                }
                if let Some(request) = newest
                    && results.send(prepare(*request)).is_err()
                {
                    return;
                }
            }
        })
        .expect("a thread for the view");
    (jobs, outgoing)
}
