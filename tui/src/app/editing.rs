//! The app's side of the policy editor: opening it on a policy, passing keys, plans and
//! commit results, and re-planning when the objects changed since the preview.

use crossterm::event::KeyEvent;
use nauthera_shared::impact::Planner;
use nauthera_shared::resources::ObjectRef;

use super::{App, Effect, Message, Mode};
use crate::editor::commit::CommitError;
use crate::editor::{CommitRequest, CommitTarget, Editor, EditorEffect, PlanResult};
use crate::model::{SourceKind, World};
use crate::tree::Target;

impl App {
    /// Opens the editor on the selected policy, with a first preview.
    pub(super) fn open_editor(&mut self) -> Effect {
        let (Some(world), Some(row)) = (&self.world, self.selected_row()) else {
            return Effect::None;
        };
        let Target::Policy(index) = row.target else {
            self.message = Some(Message {
                text: "select a policy to edit it (e)".to_owned(),
                error: true,
            });
            return Effect::None;
        };
        match editor_for(world, index, &self.source) {
            Ok(mut editor) => {
                editor.readonly = self.readonly;
                editor.plan_now();
                self.editor = Some(editor);
                self.mode = Mode::Editor;
            }
            Err(text) => self.message = Some(Message { text, error: true }),
        }
        Effect::None
    }

    pub(super) fn editor_key(&mut self, key: KeyEvent) -> Effect {
        let Some(editor) = &mut self.editor else {
            self.mode = Mode::Normal;
            return Effect::None;
        };
        match editor.handle_key(key) {
            EditorEffect::None => Effect::None,
            EditorEffect::Plan(request) => Effect::Plan(request),
            EditorEffect::Close => {
                self.editor = None;
                self.mode = Mode::Normal;
                Effect::None
            }
            EditorEffect::Commit(request) => self.confirm_commit(request),
        }
    }

    /// Commits only what was previewed: if the objects changed since the preview, re-plan
    /// against them and ask again.
    fn confirm_commit(&mut self, request: CommitRequest) -> Effect {
        if self.replan_if_changed() {
            return Effect::None;
        }
        Effect::Commit(request)
    }

    /// Re-plans against the current objects when they are newer than the editor's
    /// preview; returns whether the plan changed (and says so).
    fn replan_if_changed(&mut self) -> bool {
        let (Some(editor), Some(world)) = (&mut self.editor, &self.world) else {
            return false;
        };
        if world.snapshot.read_at <= editor.read_at {
            return false;
        }
        let previous = editor.preview.plan.clone();
        editor.rebase(
            Planner::new(world.inventory().clone()),
            world.snapshot.read_at,
        );
        editor.plan_now();
        if editor.preview.plan == previous {
            return false;
        }
        editor.message = Some(Message {
            text:
                "the objects changed since the preview: re-planned — review it, then ctrl-s again"
                    .to_owned(),
            error: true,
        });
        true
    }

    /// A plan from the worker.
    pub fn plan_ready(&mut self, result: PlanResult) {
        if let Some(editor) = &mut self.editor {
            editor.apply_plan(result);
        }
    }

    /// A commit came back: done (close, say where it went), or not (keep the text).
    pub fn commit_finished(&mut self, result: Result<String, CommitError>) {
        match result {
            Ok(text) => {
                self.editor = None;
                self.mode = Mode::Normal;
                self.message = Some(Message { text, error: false });
            }
            Err(CommitError::Conflict(text)) => {
                // Force a re-plan against what is there now, whatever its time says.
                if let (Some(editor), Some(world)) = (&mut self.editor, &self.world) {
                    editor.rebase(
                        Planner::new(world.inventory().clone()),
                        world.snapshot.read_at,
                    );
                    editor.plan_now();
                    editor.commit_failed(text);
                }
            }
            Err(CommitError::Refused(text) | CommitError::Differs(text)) => {
                if let Some(editor) = &mut self.editor {
                    editor.commit_failed(text);
                }
            }
        }
    }
}

/// An editor on policy `index` of `world`: the document as written in its file (comments
/// included), or the object as the cluster has it.
fn editor_for(world: &World, index: usize, source: &SourceKind) -> Result<Editor, String> {
    let policy = &world.inventory().policies[index];
    let reference = ObjectRef::of(policy);
    let (text, target) = match source {
        SourceKind::Folder(_) => {
            let origin = world
                .snapshot
                .origins
                .get(&("AuthPolicy", reference.clone()))
                .ok_or_else(|| format!("{reference}: the file it came from is unknown"))?;
            let file_text = std::fs::read_to_string(&origin.file)
                .map_err(|error| format!("{}: cannot read: {error}", origin.file.display()))?;
            let document = nauthera_shared::manifests::document_text(&file_text, origin.document)
                .ok_or_else(|| format!("{}: the policy's document is gone", origin.file.display()))?
                .to_owned();
            let target = CommitTarget::Folder {
                file: origin.file.clone(),
                document: origin.document,
                opened: document.clone(),
            };
            (document, target)
        }
        SourceKind::Cluster { context } => {
            let mut object = policy.clone();
            let resource_version = object.metadata.resource_version.take();
            object.metadata.managed_fields = None;
            object.metadata.uid = None;
            object.metadata.creation_timestamp = None;
            object.metadata.generation = None;
            object.status = None;
            let text = serde_yaml_ng::to_string(&object).map_err(|error| error.to_string())?;
            let target = CommitTarget::Cluster {
                context: context.clone(),
                resource_version,
            };
            (text, target)
        }
    };
    Ok(Editor::new(
        reference,
        &text,
        target,
        Planner::new(world.inventory().clone()),
        source.to_string(),
        world.snapshot.read_at,
    ))
}
