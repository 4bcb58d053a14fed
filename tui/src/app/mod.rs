//! The dashboard's state and how keys and new snapshots change it. Rendering reads this
//! and nothing else (see `ui`).

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::editor::{CommitRequest, Editor, PlanRequest};
use crate::filter::Filter;
use crate::keys::{Command, command_for};
use crate::model::{ObjectEvents, Snapshot, SourceKind, World};
use crate::tree::{self, Node, NodeId, Row, Target};
use crate::view::{self, Fingerprints, Prepared, ViewParams};
use k8s_openapi::jiff::Timestamp;
use nauthera_shared::resources::ObjectRef;

mod editing;

/// How long a changed node stays marked.
pub const CHANGE_MARK: Duration = Duration::from_secs(3);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a filter; the tree follows each keystroke.
    Filter {
        input: String,
        before: String,
    },
    /// Typing a `:` command.
    Command {
        input: String,
    },
    Help,
    Yaml {
        scroll: u16,
    },
    /// Editing a policy; the editor itself is in `App::editor`.
    Editor,
}

/// What the event loop must do beyond redrawing.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    None,
    Quit,
    /// Read another kubeconfig context.
    SwitchContext(String),
    /// Watch clients of one namespace (`None`: all).
    SwitchNamespace(Option<String>),
    /// Plan the editor's text, off the UI's thread.
    Plan(PlanRequest),
    /// Commit the editor's text, off the UI's thread.
    Commit(CommitRequest),
    /// Read every client the user may list on the cluster of `context` (a policy edit
    /// reaches them all, whatever namespace is on screen), then pass them to
    /// [`App::reach_read`] with `commit`. `hints`: where to look when namespaces cannot be
    /// listed.
    ReadReach {
        context: String,
        hints: Vec<String>,
        commit: Option<CommitRequest>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

pub struct App {
    pub source: SourceKind,
    /// `None` until the source has been read once.
    pub world: Option<Arc<World>>,
    nodes: Vec<Node>,
    pub rows: Vec<Row>,
    pub selected: usize,
    /// The first row on screen; kept by the renderer so scrolling is stable.
    pub offset: std::cell::Cell<usize>,
    collapsed: FxHashSet<NodeId>,
    pub filter: Filter,
    pub filter_text: String,
    /// Only clients of this namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    pub mode: Mode,
    pub message: Option<Message>,
    /// Nodes that changed in the last snapshot, until when they stay marked.
    pub changed: FxHashMap<NodeId, Instant>,
    fingerprints: Arc<Fingerprints>,
    /// Counts changes to how the tree is viewed (namespace, collapsed branches, filter),
    /// so rows flattened off the UI's thread with an older view are recognised.
    view_version: u64,
    /// Whether the terminal may use colour (`NO_COLOR` unset).
    pub color: bool,
    /// The policy editor, while it is open.
    pub editor: Option<Editor>,
    /// `--readonly`: browse and preview, never commit.
    pub readonly: bool,
    /// The Kubernetes Events of the selected client (a cluster only).
    pub events: Option<ObjectEvents>,
    /// The time ages are shown against; kept by the event loop's tick.
    pub now: Timestamp,
}

impl App {
    pub fn new(source: SourceKind, namespace: Option<String>) -> Self {
        Self {
            source,
            world: None,
            nodes: Vec::new(),
            rows: Vec::new(),
            selected: 0,
            offset: std::cell::Cell::new(0),
            collapsed: FxHashSet::default(),
            filter: Filter::default(),
            filter_text: String::new(),
            namespace,
            mode: Mode::Normal,
            message: None,
            changed: FxHashMap::default(),
            fingerprints: Arc::default(),
            view_version: 0,
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            editor: None,
            readonly: false,
            events: None,
            now: Timestamp::now(),
        }
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.rows.get(self.selected)
    }

    /// Takes in a new read of the source: rebuilds the tree, keeps the selection on the
    /// same object (wherever it moved), and marks what changed.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot, now: Instant) {
        self.apply_world(World::new(snapshot), now);
    }

    /// [`Self::apply_snapshot`] with the evaluation already done, off the UI's thread.
    pub fn apply_world(&mut self, world: World, now: Instant) {
        let prepared = view::prepare(self.view_request(world));
        drop(self.take_view(prepared, now));
    }

    /// What preparing `world` for the screen needs, for the view worker.
    pub fn view_request(&self, world: World) -> view::Request {
        view::Request {
            world,
            previous: self.world.clone(),
            previous_prints: Arc::clone(&self.fingerprints),
            params: ViewParams {
                namespace: self.namespace.clone(),
                collapsed: self.collapsed.clone(),
                filter: self.filter.clone(),
                version: self.view_version,
            },
        }
    }

    /// Takes in a prepared read: swaps it in, keeps the selection on the same object
    /// (wherever it moved), and marks what changed. Returns what the screen let go of, to
    /// be freed elsewhere. Rows prepared with an older view are flattened again.
    pub fn take_view(&mut self, prepared: Prepared, now: Instant) -> Box<dyn Send> {
        let selected = self.selected_row().map(|row| row.id.clone());
        // Marks mean "changed since you looked": a source's first read changes nothing.
        if prepared.world.snapshot.first {
            self.changed.clear();
        }
        let until = now + CHANGE_MARK;
        self.changed
            .extend(prepared.changed.into_iter().map(|id| (id, until)));
        let retired = Box::new((
            std::mem::replace(&mut self.nodes, prepared.nodes),
            std::mem::replace(&mut self.rows, prepared.rows),
            self.world.replace(prepared.world),
            std::mem::replace(&mut self.fingerprints, prepared.fingerprints),
        ));
        if prepared.params.namespace != self.namespace {
            self.rebuild();
        } else if prepared.params.version == self.view_version {
            self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        } else {
            self.reflatten();
        }
        if let Some(id) = selected {
            self.select(&id);
        }
        retired
    }

    /// The client whose Events the detail pane shows: the selected one, on a cluster.
    pub fn events_wanted(&self) -> Option<ObjectRef> {
        let SourceKind::Cluster { .. } = self.source else {
            return None;
        };
        match self.selected_row()?.target {
            Target::Client(index) => self
                .world
                .as_ref()
                .map(|world| world.evaluations[index].client.clone()),
            _ => None,
        }
    }

    /// Events arrived; kept if they are still about the selected client.
    pub fn events_read(&mut self, events: ObjectEvents) {
        if self.events_wanted().as_ref() == Some(&events.object) {
            self.events = Some(events);
        }
    }

    /// Moves the clock ages are shown against; returns whether a shown second changed.
    pub fn set_now(&mut self, now: Timestamp) -> bool {
        let changed = now.as_second() != self.now.as_second();
        self.now = now;
        changed
    }

    /// Forgets change marks that have had their time.
    pub fn expire_marks(&mut self, now: Instant) -> bool {
        let before = self.changed.len();
        self.changed.retain(|_, until| *until > now);
        before != self.changed.len()
    }

    /// Handles a key; returns what the event loop must do.
    pub fn handle_key(&mut self, key: KeyEvent) -> Effect {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Effect::Quit;
        }
        match &mut self.mode {
            Mode::Editor => return self.editor_key(key),
            Mode::Filter { .. } => self.filter_key(key),
            Mode::Command { .. } => return self.command_key(key),
            Mode::Help => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Char('?' | 'q')) {
                    self.mode = Mode::Normal;
                }
            }
            Mode::Yaml { scroll } => match key.code {
                KeyCode::Esc | KeyCode::Char('q' | 'y') => self.mode = Mode::Normal,
                KeyCode::Down | KeyCode::Char('j') => *scroll = scroll.saturating_add(1),
                KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
                KeyCode::PageDown | KeyCode::Char(' ') => *scroll = scroll.saturating_add(20),
                KeyCode::PageUp => *scroll = scroll.saturating_sub(20),
                KeyCode::Home | KeyCode::Char('g') => *scroll = 0,
                _ => {}
            },
            Mode::Normal => {
                if let Some(command) = command_for(key) {
                    return self.run(command);
                }
            }
        }
        Effect::None
    }

    /// Mouse wheel: moves the selection as the arrows do.
    pub fn scroll(&mut self, down: bool) {
        match &mut self.mode {
            Mode::Yaml { scroll } if down => *scroll = scroll.saturating_add(3),
            Mode::Yaml { scroll } => *scroll = scroll.saturating_sub(3),
            Mode::Normal if down => self.move_by(3),
            Mode::Normal => self.move_by(-3),
            _ => {}
        }
    }

    fn run(&mut self, command: Command) -> Effect {
        self.message = None;
        match command {
            Command::Up => self.move_by(-1),
            Command::Down => self.move_by(1),
            Command::PageUp => self.move_by(-20),
            Command::PageDown => self.move_by(20),
            Command::Top => self.selected = 0,
            Command::Bottom => self.selected = self.rows.len().saturating_sub(1),
            Command::Expand => self.set_expanded(true),
            Command::Collapse => self.collapse_or_go_up(),
            Command::Toggle => {
                let expanded = self.selected_row().is_some_and(|row| row.expanded);
                self.set_expanded(!expanded);
            }
            Command::Filter => {
                self.mode = Mode::Filter {
                    input: self.filter_text.clone(),
                    before: self.filter_text.clone(),
                };
            }
            Command::CommandLine => {
                self.mode = Mode::Command {
                    input: String::new(),
                };
            }
            Command::Yaml => {
                if self
                    .selected_row()
                    .is_some_and(|row| !matches!(row.target, Target::Group(_)))
                {
                    self.mode = Mode::Yaml { scroll: 0 };
                }
            }
            Command::Help => self.mode = Mode::Help,
            Command::Edit => return self.open_editor(),
            Command::Back => {
                if self.filter.is_active() {
                    self.set_filter(String::new());
                }
            }
            Command::Quit => return Effect::Quit,
        }
        Effect::None
    }

    fn filter_key(&mut self, key: KeyEvent) {
        let Mode::Filter { input, before } = &mut self.mode else {
            return;
        };
        match key.code {
            KeyCode::Esc => {
                let before = std::mem::take(before);
                self.mode = Mode::Normal;
                self.set_filter(before);
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                if let Err(error) = Filter::parse(&self.filter_text) {
                    self.message = Some(Message {
                        text: error,
                        error: true,
                    });
                }
            }
            KeyCode::Backspace => {
                input.pop();
                let text = input.clone();
                self.set_filter(text);
            }
            KeyCode::Char(c) => {
                input.push(c);
                let text = input.clone();
                self.set_filter(text);
            }
            _ => {}
        }
    }

    /// Applies a filter as typed; a word still being typed (`state:non`) keeps the last
    /// filter that parsed.
    fn set_filter(&mut self, text: String) {
        let selected = self.selected_row().map(|row| row.id.clone());
        match Filter::parse(&text) {
            Ok(filter) => {
                self.filter = filter;
                self.message = None;
            }
            Err(error) => {
                self.message = Some(Message {
                    text: error,
                    error: true,
                });
            }
        }
        self.filter_text = text;
        self.reflatten();
        match selected {
            Some(id) => self.select(&id),
            None => self.selected = 0,
        }
    }

    fn command_key(&mut self, key: KeyEvent) -> Effect {
        let Mode::Command { input } = &mut self.mode else {
            return Effect::None;
        };
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char(c) => input.push(c),
            KeyCode::Enter => {
                let line = std::mem::take(input);
                self.mode = Mode::Normal;
                return self.execute(&line);
            }
            _ => {}
        }
        Effect::None
    }

    /// Runs a `:` command line.
    fn execute(&mut self, line: &str) -> Effect {
        let words: Vec<&str> = line.split_whitespace().collect();
        let error = |text: String| Message { text, error: true };
        match words.as_slice() {
            [] => {}
            ["q" | "quit" | "q!"] => return Effect::Quit,
            ["help" | "h"] => self.mode = Mode::Help,
            ["ns" | "namespace", "all" | "-A"] | ["all"] => {
                self.switch_namespace(None);
                return Effect::SwitchNamespace(None);
            }
            ["ns" | "namespace", namespace] => {
                let namespace = (*namespace).to_owned();
                self.switch_namespace(Some(namespace.clone()));
                return Effect::SwitchNamespace(Some(namespace));
            }
            ["ctx" | "context", context] => {
                if let SourceKind::Folder(path) = &self.source {
                    self.message = Some(error(format!(
                        "no contexts here: reading the folder {} (start without --manifests to read a cluster)",
                        path.display()
                    )));
                } else {
                    return Effect::SwitchContext((*context).to_owned());
                }
            }
            _ => {
                self.message = Some(error(format!(
                    "unknown command :{line} (try: ns NAME, ns all, ctx NAME, help, q)"
                )));
            }
        }
        Effect::None
    }

    fn switch_namespace(&mut self, namespace: Option<String>) {
        let text = namespace.as_deref().map_or_else(
            || "all namespaces".to_owned(),
            |ns| format!("namespace {ns}"),
        );
        self.namespace = namespace;
        self.rebuild();
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        self.message = Some(Message {
            text: format!("showing {text}"),
            error: false,
        });
    }

    fn move_by(&mut self, delta: isize) {
        let last = self.rows.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    fn set_expanded(&mut self, expanded: bool) {
        let Some(row) = self.selected_row() else {
            return;
        };
        if !row.expandable {
            return;
        }
        let id = row.id.clone();
        if expanded {
            self.collapsed.remove(&id);
        } else {
            self.collapsed.insert(id);
        }
        self.reflatten();
    }

    fn collapse_or_go_up(&mut self) {
        let Some(row) = self.selected_row() else {
            return;
        };
        if row.expanded && !self.filter.is_active() {
            self.set_expanded(false);
            return;
        }
        let depth = row.depth;
        if let Some(parent) = self.rows[..self.selected]
            .iter()
            .rposition(|candidate| candidate.depth < depth)
        {
            self.selected = parent;
        }
    }

    fn rebuild(&mut self) {
        self.nodes = self
            .world
            .as_ref()
            .map(|world| tree::build(world, self.namespace.as_deref()))
            .unwrap_or_default();
        // Compared with the next read: the nodes of this namespace, not the last one's.
        self.fingerprints = Arc::new(view::fingerprint(&self.nodes));
        self.reflatten();
    }

    fn reflatten(&mut self) {
        self.view_version += 1;
        self.rows = match &self.world {
            Some(world) => tree::flatten(&self.nodes, &self.collapsed, &self.filter, world),
            None => Vec::new(),
        };
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// Selects the node `id`, or the same object wherever it now sits, expanding the
    /// branches that lead to it; else keeps the position.
    fn select(&mut self, id: &NodeId) {
        if let Some(index) = self.rows.iter().position(|row| &row.id == id) {
            self.selected = index;
            return;
        }
        let object = id.object();
        let mut path = Vec::new();
        if find_path(&self.nodes, &|node| node.id.object() == object, &mut path) {
            let target = path.pop();
            for ancestor in path {
                self.collapsed.remove(&ancestor);
            }
            self.reflatten();
            if let Some(index) = self
                .rows
                .iter()
                .position(|row| Some(&row.id) == target.as_ref())
            {
                self.selected = index;
            }
        }
    }
}

/// The ids from the top of the tree down to the first node `wanted` accepts.
fn find_path(nodes: &[Node], wanted: &dyn Fn(&Node) -> bool, path: &mut Vec<NodeId>) -> bool {
    for node in nodes {
        path.push(node.id.clone());
        if wanted(node) || find_path(&node.children, wanted, path) {
            return true;
        }
        path.pop();
    }
    false
}
