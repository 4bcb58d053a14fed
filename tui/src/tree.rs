//! The tree: servers ▸ the policies each selects ▸ the clients each policy governs, and
//! groups for clients that fall outside it. Built from a [`World`] by a pure function,
//! then flattened into the rows on screen.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;

use nauthera_shared::policy::Standing;
use nauthera_shared::resources::{ObjectRef, labels_of};

use crate::filter::Filter;
use crate::model::{Counts, State, World};

/// Clients (or policies) that do not fit under a server and a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    MissingServer,
    InvalidServer,
    UntrustedNamespace,
    NoPolicy,
    UnselectedPolicies,
}

impl Group {
    pub const fn title(self) -> &'static str {
        match self {
            Self::MissingServer => "Server not found",
            Self::InvalidServer => "Server invalid",
            Self::UntrustedNamespace => "Namespace not trusted",
            Self::NoPolicy => "No governing policy",
            Self::UnselectedPolicies => "Policies no server selects",
        }
    }

    pub const fn explanation(self) -> &'static str {
        match self {
            Self::MissingServer => "These clients name an AuthServer that does not exist.",
            Self::InvalidServer => "These clients name an AuthServer whose own spec is invalid.",
            Self::UntrustedNamespace => {
                "These clients live in a namespace their AuthServer does not trust (allowedNamespaces)."
            }
            Self::NoPolicy => {
                "No policy selected by their AuthServer governs these clients: they are refused."
            }
            Self::UnselectedPolicies => {
                "No AuthServer's policySelector selects these policies: they govern nothing."
            }
        }
    }
}

/// A node's identity, stable across snapshots: selection, collapsing and change marks
/// follow it. A client governed by two policies appears twice, with two identities.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeId {
    Server(ObjectRef),
    /// A policy under a server (or under the unselected group, with no server).
    Policy(Option<ObjectRef>, ObjectRef),
    Group(Group),
    Client(Box<NodeId>, ObjectRef),
}

impl NodeId {
    /// The object this node shows, whatever branch it sits under: a client moved from one
    /// policy to another is still the same client.
    pub fn object(&self) -> ObjectKey {
        match self {
            Self::Server(server) => ObjectKey::Server(server.clone()),
            Self::Policy(_, policy) => ObjectKey::Policy(policy.clone()),
            Self::Group(group) => ObjectKey::Group(*group),
            Self::Client(_, client) => ObjectKey::Client(client.clone()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKey {
    Server(ObjectRef),
    Policy(ObjectRef),
    Group(Group),
    Client(ObjectRef),
}

/// What a node stands for, as an index into the world's inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Server(usize),
    Policy(usize),
    Client(usize),
    Group(Group),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub id: NodeId,
    pub target: Target,
    pub label: String,
    pub state: State,
    /// The clients of this branch (a client's own is just itself).
    pub counts: Counts,
    pub children: Vec<Node>,
}

impl Node {
    fn client(parent: &NodeId, index: usize, world: &World) -> Self {
        let reference = &world.evaluations[index].client;
        let state = world.client_state(index);
        let mut counts = Counts::default();
        counts.add(state);
        Self {
            id: NodeId::Client(Box::new(parent.clone()), reference.clone()),
            target: Target::Client(index),
            label: reference.to_string(),
            state,
            counts,
            children: Vec::new(),
        }
    }

    fn branch(id: NodeId, target: Target, label: String, children: Vec<Self>) -> Self {
        let mut counts = Counts::default();
        for child in &children {
            if let Target::Client(_) = child.target {
                counts.add(child.state);
            }
        }
        Self {
            id,
            target,
            label,
            state: counts.worst().unwrap_or(State::Compliant),
            counts,
            children,
        }
    }
}

/// Builds the tree of `world`, showing only clients in `namespace` when one is given.
pub fn build(world: &World, namespace: Option<&str>) -> Vec<Node> {
    let inventory = world.inventory();
    let in_scope =
        |index: usize| namespace.is_none_or(|ns| world.evaluations[index].client.namespace == ns);

    // One pass over the clients: which (server, policy) governs whom, and the groups.
    let mut governed: BTreeMap<(&ObjectRef, &ObjectRef), Vec<usize>> = BTreeMap::new();
    let mut grouped: BTreeMap<Group, Vec<usize>> = BTreeMap::new();
    let mut order: Vec<usize> = (0..world.evaluations.len())
        .filter(|&i| in_scope(i))
        .collect();
    order.sort_by(|&a, &b| {
        world.evaluations[a]
            .client
            .cmp(&world.evaluations[b].client)
    });
    for index in order {
        let evaluation = &world.evaluations[index];
        let group = match evaluation.standing {
            Standing::Governed => {
                for policy in &evaluation.governing {
                    governed
                        .entry((&evaluation.server, policy))
                        .or_default()
                        .push(index);
                }
                continue;
            }
            Standing::ServerNotFound => Group::MissingServer,
            Standing::ServerInvalid => Group::InvalidServer,
            Standing::NamespaceNotTrusted => Group::UntrustedNamespace,
            Standing::NoGoverningPolicy => Group::NoPolicy,
        };
        grouped.entry(group).or_default().push(index);
    }

    let policy_index = |reference: &ObjectRef| {
        inventory
            .policies
            .iter()
            .position(|p| &ObjectRef::of(p) == reference)
    };
    let mut servers: Vec<(ObjectRef, usize)> = inventory
        .servers
        .iter()
        .enumerate()
        .map(|(index, server)| (ObjectRef::of(server), index))
        .collect();
    servers.sort();
    let mut selected_policies = HashSet::new();
    let mut nodes = Vec::new();
    for (server_ref, server_index) in servers {
        let server_id = NodeId::Server(server_ref.clone());
        let compiled = world.evaluator.server(&server_ref);
        let mut policies = Vec::new();
        for policy in compiled
            .map(nauthera_shared::policy::CompiledServer::policies)
            .unwrap_or_default()
        {
            let reference = &policy.reference;
            selected_policies.insert(reference.clone());
            let Some(index) = policy_index(reference) else {
                continue;
            };
            let policy_id = NodeId::Policy(Some(server_ref.clone()), reference.clone());
            let clients = governed
                .get(&(&server_ref, reference))
                .map(|clients| {
                    clients
                        .iter()
                        .map(|&client| Node::client(&policy_id, client, world))
                        .collect()
                })
                .unwrap_or_default();
            policies.push(Node::branch(
                policy_id,
                Target::Policy(index),
                reference.name.clone(),
                clients,
            ));
        }
        nodes.push(server_node(
            server_id,
            server_index,
            &server_ref,
            policies,
            world,
        ));
    }
    for (group, clients) in grouped {
        let id = NodeId::Group(group);
        let children = clients
            .iter()
            .map(|&client| Node::client(&id, client, world))
            .collect();
        nodes.push(Node::branch(
            id,
            Target::Group(group),
            group.title().to_owned(),
            children,
        ));
    }
    nodes.extend(unselected_policies(world, &selected_policies));
    nodes
}

/// Policies no server selects, in a group of their own (if any).
fn unselected_policies(world: &World, selected: &HashSet<ObjectRef>) -> Option<Node> {
    let unselected: Vec<Node> = world
        .inventory()
        .policies
        .iter()
        .enumerate()
        .map(|(index, policy)| (ObjectRef::of(policy), index))
        .filter(|(reference, _)| !selected.contains(reference))
        .map(|(reference, index)| {
            Node::branch(
                NodeId::Policy(None, reference.clone()),
                Target::Policy(index),
                reference.to_string(),
                Vec::new(),
            )
        })
        .collect();
    let group = Group::UnselectedPolicies;
    (!unselected.is_empty()).then(|| {
        Node::branch(
            NodeId::Group(group),
            Target::Group(group),
            group.title().to_owned(),
            unselected,
        )
    })
}

/// A server's clients are counted once, however many of its policies govern them.
fn server_node(
    id: NodeId,
    index: usize,
    reference: &ObjectRef,
    policies: Vec<Node>,
    world: &World,
) -> Node {
    let mut seen = HashSet::new();
    let mut counts = Counts::default();
    for policy in &policies {
        for client in &policy.children {
            if let Target::Client(client_index) = client.target
                && seen.insert(client_index)
            {
                counts.add(client.state);
            }
        }
    }
    let invalid = world
        .evaluator
        .server(reference)
        .is_some_and(|server| !server.errors.is_empty());
    let state = if invalid {
        State::Error
    } else {
        counts.worst().unwrap_or(State::Compliant)
    };
    Node {
        id,
        target: Target::Server(index),
        label: reference.to_string(),
        state,
        counts,
        children: policies,
    }
}

/// One line of the tree on screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub depth: usize,
    pub id: NodeId,
    pub target: Target,
    pub label: String,
    pub state: State,
    /// For branches: what they hold.
    pub counts: Option<Counts>,
    pub expandable: bool,
    pub expanded: bool,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.state.symbol(), self.label)
    }
}

/// The rows on screen: expanded branches show their children; a filter shows the clients
/// it matches and the branches that lead to them, expanded whatever their setting.
pub fn flatten<S: BuildHasher>(
    nodes: &[Node],
    collapsed: &HashSet<NodeId, S>,
    filter: &Filter,
    world: &World,
) -> Vec<Row> {
    let mut walk = Walk {
        collapsed,
        filter,
        world,
        ancestors: Vec::new(),
        rows: Vec::new(),
    };
    for node in nodes {
        walk.push(node, 0);
    }
    walk.rows
}

struct Walk<'a, S> {
    collapsed: &'a HashSet<NodeId, S>,
    filter: &'a Filter,
    world: &'a World,
    /// Labels of the branches above the node being walked: a filter term matches a client
    /// when it matches the client or any branch it sits under.
    ancestors: Vec<&'a str>,
    rows: Vec<Row>,
}

impl<'a, S: BuildHasher> Walk<'a, S> {
    /// Adds `node`'s rows; returns whether any were added.
    fn push(&mut self, node: &'a Node, depth: usize) -> bool {
        if let Target::Client(index) = node.target {
            let client = &self.world.inventory().clients[index];
            let reference = &self.world.evaluations[index].client;
            let shown = self.filter.matches_client(
                reference,
                labels_of(client),
                node.state,
                &self.ancestors,
            );
            if shown {
                self.rows.push(Row::of(node, depth, None, false));
            }
            return shown;
        }
        let filtering = self.filter.is_active();
        let expandable = !node.children.is_empty();
        // A branch with nothing under it leads to no match: it stays only if it matches.
        if filtering && !expandable && !self.filter.matches_branch(&node.label, &self.ancestors) {
            return false;
        }
        let expanded = expandable && (filtering || !self.collapsed.contains(&node.id));
        self.rows
            .push(Row::of(node, depth, Some(node.counts), expanded));
        let mark = self.rows.len();
        if !expanded {
            return true;
        }
        self.ancestors.push(&node.label);
        let mut any_child = false;
        for child in &node.children {
            any_child |= self.push(child, depth + 1);
        }
        self.ancestors.pop();
        // A branch stays when it leads to a match or matches itself (a server or policy
        // searched for by name).
        if filtering && !any_child && !self.filter.matches_branch(&node.label, &self.ancestors) {
            self.rows.truncate(mark - 1);
            return false;
        }
        true
    }
}

impl Row {
    fn of(node: &Node, depth: usize, counts: Option<Counts>, expanded: bool) -> Self {
        Self {
            depth,
            id: node.id.clone(),
            target: node.target,
            label: node.label.clone(),
            state: node.state,
            counts,
            expandable: !node.children.is_empty(),
            expanded,
        }
    }
}
