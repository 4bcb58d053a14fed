//! The policy editor: an AuthPolicy's YAML in a text area beside its blast radius,
//! re-planned on every edit by a worker (typing never waits for the engine), committed
//! only after an explicit confirmation. Nothing typed is ever lost: a failed commit leaves
//! the editor open with the text.

pub mod commit;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Local};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nauthera_shared::Inventory;
use nauthera_shared::impact::{Plan, Planner, ProposalError};
use nauthera_shared::resources::{AuthPolicy, ObjectRef};
use ratatui::style::{Modifier, Style};
use ratatui_textarea::TextArea;

use crate::app::Message;
use crate::model::{Reach, World};

/// Where a commit goes.
#[derive(Clone, Debug)]
pub enum CommitTarget {
    /// Back into the file the policy came from, in place of its document.
    Folder {
        file: PathBuf,
        document: usize,
        /// The document as it was when the editor opened: if the file no longer holds it,
        /// someone else changed it and the commit is refused.
        opened: String,
    },
    /// To the cluster, by a replace guarded by the resourceVersion of the policy as the
    /// preview saw it.
    Cluster {
        context: String,
        /// The policy as previewed: what the edit replaces.
        previewed: Box<AuthPolicy>,
    },
}

impl PartialEq for CommitTarget {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Folder {
                    file,
                    document,
                    opened,
                },
                Self::Folder {
                    file: other_file,
                    document: other_document,
                    opened: other_opened,
                },
            ) => (file, document, opened) == (other_file, other_document, other_opened),
            (
                Self::Cluster { context, previewed },
                Self::Cluster {
                    context: other_context,
                    previewed: other,
                },
            ) => {
                context == other_context
                    && previewed.metadata == other.metadata
                    && previewed.spec == other.spec
                    && previewed.status == other.status
            }
            _ => false,
        }
    }
}

impl CommitTarget {
    /// The resourceVersion that guards a cluster commit.
    pub fn resource_version(&self) -> Option<&str> {
        match self {
            Self::Cluster { previewed, .. } => previewed.metadata.resource_version.as_deref(),
            Self::Folder { .. } => None,
        }
    }
}

/// Which clients a preview covers.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every client the read holds (a folder).
    Read,
    /// On a cluster, the clients of every namespace the user may list are being read.
    Reading,
    /// On a cluster: every client the user may list, wherever the view is.
    Reached(Arc<Reach>),
    /// Reading them failed: the preview covers only the clients on screen.
    Unreached(String),
}

/// What a preview is planned against: a read of the source and the clients in scope. The
/// planner is set up on first use, by whichever thread plans first (the planner's worker).
#[derive(Debug)]
pub struct PlanBasis {
    pub world: Arc<World>,
    pub scope: Scope,
    planner: OnceLock<Planner>,
}

impl PlanBasis {
    pub fn new(world: Arc<World>, scope: Scope) -> Self {
        Self {
            world,
            scope,
            planner: OnceLock::new(),
        }
    }

    /// The objects planned against: the read's servers, policies and namespaces, and the
    /// clients in scope.
    pub fn inventory(&self) -> Inventory {
        let read = self.world.inventory();
        match &self.scope {
            Scope::Reached(reach) => Inventory {
                servers: read.servers.clone(),
                policies: read.policies.clone(),
                clients: reach.clients.clone(),
                namespaces: read.namespaces.clone(),
            },
            Scope::Read | Scope::Reading | Scope::Unreached(_) => read.clone(),
        }
    }

    pub fn planner(&self) -> &Planner {
        self.planner.get_or_init(|| Planner::new(self.inventory()))
    }

    /// The policy as this read has it.
    pub fn policy(&self, reference: &ObjectRef) -> Option<&AuthPolicy> {
        self.world
            .inventory()
            .policies
            .iter()
            .find(|policy| &ObjectRef::of(*policy) == reference)
    }

    /// What the preview covers, in a sentence, and whether it is a warning (some clients
    /// it may reach could not be seen). `None` for a folder: it covers the folder.
    pub fn coverage(&self) -> Option<(String, bool)> {
        match &self.scope {
            Scope::Read => None,
            Scope::Reading => Some((
                "Reading the clients of every namespace you may list…".to_owned(),
                false,
            )),
            Scope::Reached(reach) => Some((reach.describe(), reach.is_partial())),
            Scope::Unreached(problem) => Some((
                format!(
                    "Could not read the clients of every namespace ({problem}): planned against the clients on screen only."
                ),
                true,
            )),
        }
    }
}

/// What the worker is asked to plan.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    pub revision: u64,
    pub text: String,
    pub original: ObjectRef,
    pub basis: Arc<PlanBasis>,
}

/// Two requests are the same when they plan the same text of the same revision.
impl PartialEq for PlanRequest {
    fn eq(&self, other: &Self) -> bool {
        (self.revision, &self.text, &self.original)
            == (other.revision, &other.text, &other.original)
    }
}

impl Eq for PlanRequest {}

impl PlanRequest {
    pub fn plan(&self) -> PlanResult {
        PlanResult {
            revision: self.revision,
            outcome: self
                .basis
                .planner()
                .plan_text(Some(&self.original), &self.text),
        }
    }
}

pub struct PlanResult {
    pub revision: u64,
    pub outcome: Result<Plan, Vec<ProposalError>>,
}

/// What is asked to be committed.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitRequest {
    pub policy: ObjectRef,
    pub text: String,
    pub target: CommitTarget,
}

/// The preview beside the text.
#[derive(Clone, Debug, Default)]
pub struct Preview {
    /// The last plan computed from text that parsed.
    pub plan: Option<Plan>,
    /// What is wrong with the current text, each at a line and column.
    pub errors: Vec<ProposalError>,
    /// Whether `plan` is older than the text (an error since, or planning under way).
    pub stale: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Unsaved edits: leave anyway?
    Leave,
    /// Commit, with this summary?
    Commit,
    Search(String),
}

/// What the app must do after a key in the editor.
pub enum EditorEffect {
    None,
    /// The text changed: plan it.
    Plan(PlanRequest),
    Commit(CommitRequest),
    Close,
}

pub struct Editor {
    pub policy: ObjectRef,
    pub target: CommitTarget,
    pub textarea: TextArea<'static>,
    opened_text: String,
    /// What the preview is planned against.
    pub basis: Arc<PlanBasis>,
    /// The source, for the banner.
    pub source: String,
    pub preview: Preview,
    /// The affected client whose reasons or settings are shown.
    pub selected: usize,
    pub prompt: Option<Prompt>,
    pub message: Option<Message>,
    pub readonly: bool,
    revision: u64,
}

impl Editor {
    pub fn new(
        policy: ObjectRef,
        text: &str,
        target: CommitTarget,
        basis: PlanBasis,
        source: String,
    ) -> Self {
        let mut textarea = TextArea::new(text.lines().map(str::to_owned).collect());
        textarea.set_tab_length(2);
        textarea.set_hard_tab_indent(false);
        textarea.set_line_number_style(Style::new().add_modifier(Modifier::DIM));
        textarea.set_cursor_line_style(Style::new());
        textarea.set_search_style(Style::new().add_modifier(Modifier::REVERSED));
        Self {
            policy,
            target,
            textarea,
            opened_text: text.to_owned(),
            basis: Arc::new(basis),
            source,
            preview: Preview {
                stale: true,
                ..Preview::default()
            },
            selected: 0,
            prompt: None,
            message: None,
            readonly: false,
            revision: 0,
        }
    }

    /// The text as typed, with a final newline as files have.
    pub fn text(&self) -> String {
        let mut text = self.textarea.lines().join("\n");
        text.push('\n');
        text
    }

    pub fn is_modified(&self) -> bool {
        self.text().trim_end() != self.opened_text.trim_end()
    }

    /// A request to plan the current text.
    pub fn plan_request(&self) -> PlanRequest {
        PlanRequest {
            revision: self.revision,
            text: self.text(),
            original: self.policy.clone(),
            basis: Arc::clone(&self.basis),
        }
    }

    /// When the objects the preview is based on were read.
    pub fn read_at(&self) -> DateTime<Local> {
        self.basis.world.snapshot.read_at
    }

    /// Plans here and now (tests, and the first preview when the editor opens).
    pub fn plan_now(&mut self) {
        let result = self.plan_request().plan();
        self.apply_plan(result);
    }

    /// Takes a plan from the worker. An error keeps the last good plan, marked stale.
    pub fn apply_plan(&mut self, result: PlanResult) {
        let current = result.revision == self.revision;
        match result.outcome {
            Ok(plan) => {
                if current {
                    self.preview.errors.clear();
                }
                self.preview.plan = Some(plan);
                self.preview.stale = !current;
            }
            Err(errors) => {
                if current {
                    self.preview.errors = errors;
                    self.preview.stale = true;
                }
            }
        }
        let affected = self
            .preview
            .plan
            .as_ref()
            .map_or(0, |plan| plan.clients.len());
        self.selected = self.selected.min(affected.saturating_sub(1));
    }

    /// Replaces what the preview is planned against (the source changed while editing, or
    /// every namespace was read), and asks for a new plan. On a cluster, the commit's guard
    /// moves to the policy in the new read, so what is committed replaces what was
    /// previewed; returns whether someone else changed the policy meanwhile (its spec,
    /// labels or annotations: a status the operator wrote is no change to the policy).
    pub fn rebase(&mut self, basis: PlanBasis) -> (PlanRequest, bool) {
        let mut changed_by_others = false;
        if let (CommitTarget::Cluster { previewed, .. }, Some(current)) =
            (&mut self.target, basis.policy(&self.policy))
        {
            changed_by_others = !commit::differences(previewed, current).is_empty();
            **previewed = current.clone();
        }
        self.basis = Arc::new(basis);
        (self.changed(), changed_by_others)
    }

    fn changed(&mut self) -> PlanRequest {
        self.revision += 1;
        self.preview.stale = true;
        self.plan_request()
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> EditorEffect {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if let Some(prompt) = self.prompt.clone() {
            return self.prompt_key(prompt, key);
        }
        self.message = None;
        match (key.code, ctrl) {
            (KeyCode::Esc, _) => {
                if self.is_modified() {
                    self.prompt = Some(Prompt::Leave);
                    return EditorEffect::None;
                }
                return EditorEffect::Close;
            }
            (KeyCode::Char('s'), true) => self.ask_to_commit(),
            (KeyCode::Char('f'), true) => self.prompt = Some(Prompt::Search(String::new())),
            (KeyCode::Char('g'), true) => {
                self.textarea.search_forward(false);
            }
            (KeyCode::Char('n') | KeyCode::Down, true) => self.move_selection(1),
            (KeyCode::Char('p') | KeyCode::Up, true) => self.move_selection(-1),
            (KeyCode::Char('z'), true) => return self.edited(TextArea::undo),
            (KeyCode::Enter, false) => return self.edited(newline_with_indent),
            _ => return self.edited(|textarea| textarea.input(key)),
        }
        EditorEffect::None
    }

    /// Runs an edit; plans when it changed the text.
    fn edited(&mut self, edit: impl FnOnce(&mut TextArea<'static>) -> bool) -> EditorEffect {
        if edit(&mut self.textarea) {
            EditorEffect::Plan(self.changed())
        } else {
            EditorEffect::None
        }
    }

    fn move_selection(&mut self, delta: isize) {
        let affected = self
            .preview
            .plan
            .as_ref()
            .map_or(0, |plan| plan.clients.len());
        self.selected = self
            .selected
            .saturating_add_signed(delta)
            .min(affected.saturating_sub(1));
    }

    fn ask_to_commit(&mut self) {
        let error = |text: String| Some(Message { text, error: true });
        if self.readonly {
            self.message = error(
                "read-only mode (--readonly): commits are refused; the preview still works"
                    .to_owned(),
            );
        } else if let Some(first) = self.preview.errors.first() {
            self.message = error(format!("fix the text before committing: {first}"));
        } else if self.preview.stale
            || self.preview.plan.is_none()
            || matches!(self.basis.scope, Scope::Reading)
        {
            self.message =
                error("the preview is being computed; commit once it is current".to_owned());
        } else if !self.is_modified() {
            self.message = error("nothing to commit: the text is as it was opened".to_owned());
        } else {
            self.prompt = Some(Prompt::Commit);
        }
    }

    fn prompt_key(&mut self, prompt: Prompt, key: KeyEvent) -> EditorEffect {
        match prompt {
            Prompt::Leave => {
                self.prompt = None;
                if key.code == KeyCode::Char('y') {
                    return EditorEffect::Close;
                }
            }
            Prompt::Commit => {
                self.prompt = None;
                if key.code == KeyCode::Char('y') {
                    return EditorEffect::Commit(CommitRequest {
                        policy: self.policy.clone(),
                        text: self.text(),
                        target: self.target.clone(),
                    });
                }
            }
            Prompt::Search(mut query) => match key.code {
                KeyCode::Esc => self.prompt = None,
                KeyCode::Enter => {
                    self.prompt = None;
                    match self.textarea.set_search_pattern(&query) {
                        Ok(()) => {
                            if !self.textarea.search_forward(true) {
                                self.message = Some(Message {
                                    text: format!("{query:?} not found"),
                                    error: true,
                                });
                            }
                        }
                        Err(error) => {
                            self.message = Some(Message {
                                text: format!("bad search pattern: {error}"),
                                error: true,
                            });
                        }
                    }
                }
                KeyCode::Backspace => {
                    query.pop();
                    self.prompt = Some(Prompt::Search(query));
                }
                KeyCode::Char(c) => {
                    query.push(c);
                    self.prompt = Some(Prompt::Search(query));
                }
                _ => {}
            },
        }
        EditorEffect::None
    }

    /// After a failed commit: the text stays, the reason is shown.
    pub fn commit_failed(&mut self, reason: String) {
        self.message = Some(Message {
            text: reason,
            error: true,
        });
    }
}

/// YAML-friendly Enter: the new line starts at the indentation of the one above, one
/// level deeper after a `key:` that opens a block.
fn newline_with_indent(textarea: &mut TextArea<'static>) -> bool {
    let ratatui_textarea::DataCursor(row, column) = textarea.cursor();
    let line = textarea.lines()[row].clone();
    let before = &line[..line
        .char_indices()
        .nth(column)
        .map_or(line.len(), |(i, _)| i)];
    let mut indent: String = before.chars().take_while(|c| *c == ' ').collect();
    let trimmed = before.trim_end();
    if trimmed.ends_with(':') {
        indent.push_str("  ");
    } else if let Some(item) = trimmed.trim_start().strip_prefix("- ") {
        // Inside a list item's mapping, continue at the item's content.
        if item.contains(": ") || item.ends_with(':') {
            indent.push_str("  ");
        }
    }
    textarea.insert_newline();
    textarea.insert_str(indent);
    true
}
