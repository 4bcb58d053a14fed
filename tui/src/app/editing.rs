//! The app's side of the policy editor: opening it on a policy, passing keys, plans and
//! commit results, and re-planning when the objects changed since the preview.
//!
//! On a cluster the preview covers every client the user may list, not only the namespace
//! on screen: opening the editor reads them all (off the UI's thread), and so does a
//! commit, first, so that what is committed is what was previewed.

use std::sync::Arc;

use crossterm::event::KeyEvent;
use nauthera_shared::resources::ObjectRef;

use super::{App, Effect, Message, Mode};
use crate::editor::commit::CommitError;
use crate::editor::{
    CommitRequest, CommitTarget, Editor, EditorEffect, PlanBasis, PlanResult, Scope,
};
use crate::model::{Reach, SourceKind, World};
use crate::tree::Target;

impl App {
    /// Opens the editor on the selected policy and asks for its first preview: on a
    /// cluster, once the clients of every namespace are read.
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
                let effect = match self.read_reach(None) {
                    Effect::None => Effect::Plan(editor.plan_request()),
                    read => read,
                };
                self.editor = Some(editor);
                self.mode = Mode::Editor;
                effect
            }
            Err(text) => {
                self.message = Some(Message { text, error: true });
                Effect::None
            }
        }
    }

    /// On a cluster: read every client the user may list, then carry on (`commit`).
    fn read_reach(&self, commit: Option<CommitRequest>) -> Effect {
        let (SourceKind::Cluster { context }, Some(world)) = (&self.source, &self.world) else {
            return Effect::None;
        };
        // Where to look when namespaces cannot be listed: the namespace on screen and
        // those of the servers, policies and clients read.
        let inventory = world.inventory();
        let mut hints: Vec<String> = inventory
            .servers
            .iter()
            .map(|server| ObjectRef::of(server).namespace)
            .chain(
                inventory
                    .policies
                    .iter()
                    .map(|p| ObjectRef::of(p).namespace),
            )
            .chain(world.evaluations.iter().map(|e| e.client.namespace.clone()))
            .chain(self.namespace.clone())
            .collect();
        hints.sort();
        hints.dedup();
        Effect::ReadReach {
            context: context.clone(),
            hints,
            commit,
        }
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

    /// Commits only what was previewed: on a cluster, every namespace is read again
    /// first; in a folder, a newer read is planned against. If the plan changed, it is
    /// shown and the user asked again.
    fn confirm_commit(&mut self, request: CommitRequest) -> Effect {
        if let CommitTarget::Cluster { .. } = request.target {
            if let Some(editor) = &mut self.editor {
                editor.message = Some(Message {
                    text: "reading every namespace again before committing…".to_owned(),
                    error: false,
                });
            }
            return self.read_reach(Some(request));
        }
        let scope = self.editor.as_ref().map(|e| e.basis.scope.clone());
        if let Some(scope) = scope
            && self.replan(scope)
        {
            return Effect::None;
        }
        Effect::Commit(request)
    }

    /// The clients of every namespace, read for the editor (`commit`: then commit, unless
    /// the plan changed).
    pub fn reach_read(
        &mut self,
        reach: Result<Reach, String>,
        commit: Option<CommitRequest>,
    ) -> Effect {
        let scope = match reach {
            Ok(reach) => Scope::Reached(Arc::new(reach)),
            Err(problem) => Scope::Unreached(problem),
        };
        match commit {
            None => {
                let (Some(editor), Some(world)) = (&mut self.editor, &self.world) else {
                    return Effect::None;
                };
                let (request, _) = editor.rebase(PlanBasis::new(Arc::clone(world), scope));
                Effect::Plan(request)
            }
            Some(mut request) => {
                if self.replan(scope) {
                    return Effect::None;
                }
                let Some(editor) = &mut self.editor else {
                    return Effect::None;
                };
                editor.message = None;
                request.target = editor.target.clone();
                Effect::Commit(request)
            }
        }
    }

    /// Re-plans against the current read and `scope`, here and now; returns whether the
    /// affected clients, or the policy being replaced, changed since the preview (and says
    /// so).
    fn replan(&mut self, scope: Scope) -> bool {
        let (Some(editor), Some(world)) = (&mut self.editor, &self.world) else {
            return false;
        };
        let unchanged_read = Arc::ptr_eq(&editor.basis.world, world);
        if unchanged_read && !matches!(scope, Scope::Reached(_) | Scope::Unreached(_)) {
            return false;
        }
        // What the commit does is the affected clients; a client it leaves alone appearing
        // or going elsewhere on the cluster changes only the count of unaffected ones.
        let affected = |editor: &crate::editor::Editor| {
            editor
                .preview
                .plan
                .as_ref()
                .map(|plan| plan.clients.clone())
        };
        let previous = affected(editor);
        let (_, moved) = editor.rebase(PlanBasis::new(Arc::clone(world), scope));
        editor.plan_now();
        let text = if moved {
            format!(
                "{} changed on the cluster since the preview: your text would replace that version — re-planned; review it, then ctrl-s again",
                editor.policy
            )
        } else if affected(editor) != previous {
            "the objects changed since the preview: re-planned — review it, then ctrl-s again"
                .to_owned()
        } else {
            return false;
        };
        editor.message = Some(Message { text, error: true });
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
                // Re-plan against what is there now, whatever its time says.
                if let (Some(editor), Some(world)) = (&mut self.editor, &self.world) {
                    let scope = editor.basis.scope.clone();
                    editor.rebase(PlanBasis::new(Arc::clone(world), scope));
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
fn editor_for(world: &Arc<World>, index: usize, source: &SourceKind) -> Result<Editor, String> {
    let policy = &world.inventory().policies[index];
    let reference = ObjectRef::of(policy);
    let (text, target, scope) = match source {
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
            (document, target, Scope::Read)
        }
        SourceKind::Cluster { context } => {
            let mut object = policy.clone();
            object.metadata.resource_version = None;
            object.metadata.managed_fields = None;
            object.metadata.uid = None;
            object.metadata.creation_timestamp = None;
            object.metadata.generation = None;
            object.status = None;
            let text = serde_yaml_ng::to_string(&object).map_err(|error| error.to_string())?;
            let target = CommitTarget::Cluster {
                context: context.clone(),
                previewed: Box::new(policy.clone()),
            };
            (text, target, Scope::Reading)
        }
    };
    Ok(Editor::new(
        reference,
        &text,
        target,
        PlanBasis::new(Arc::clone(world), scope),
        source.to_string(),
    ))
}
