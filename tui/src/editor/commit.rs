//! Committing an edited policy: into the file it came from (every other byte of the file
//! kept), or to the cluster by a server-side dry run, then a server-side apply guarded by
//! the resourceVersion that was previewed.

use std::path::Path;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use nauthera_shared::impact::parse_proposed_policy;
use nauthera_shared::manifests::{document_text, replace_document};
use nauthera_shared::resources::{AuthPolicy, ObjectRef};

use super::{CommitRequest, CommitTarget};

/// The field manager of the TUI's server-side applies.
pub const FIELD_MANAGER: &str = "nauthera-tui";

#[derive(Debug, PartialEq, Eq)]
pub enum CommitError {
    /// The policy changed since it was previewed: re-plan, then confirm again.
    Conflict(String),
    /// Refused (invalid, forbidden, unreachable); the text is kept.
    Refused(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict(message) | Self::Refused(message) => f.write_str(message),
        }
    }
}

/// Writes the edit back to its file; returns what was done, in words.
pub fn to_folder(request: &CommitRequest) -> Result<String, CommitError> {
    let CommitTarget::Folder {
        file,
        document,
        opened,
    } = &request.target
    else {
        return Err(CommitError::Refused("not a folder commit".to_owned()));
    };
    let refused = |what: &str, error: std::io::Error| {
        CommitError::Refused(format!("{}: cannot {what}: {error}", file.display()))
    };
    let current = std::fs::read_to_string(file).map_err(|e| refused("read", e))?;
    if document_text(&current, *document) != Some(opened.as_str()) {
        return Err(CommitError::Conflict(format!(
            "{} changed on disk since the editor opened; your text is kept — re-planned against the file as it is now",
            file.display()
        )));
    }
    let updated = replace_document(&current, *document, &request.text)
        .ok_or_else(|| CommitError::Refused(format!("{}: the document is gone", file.display())))?;
    write_atomically(file, &updated).map_err(|e| refused("write", e))?;
    Ok(format!(
        "wrote {} to {} — review it with git diff, then commit",
        request.policy,
        file.display()
    ))
}

/// Replaces `file` in one step, so a crash never leaves half a file.
fn write_atomically(file: &Path, text: &str) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temporary, text.as_bytes())?;
    if let Ok(metadata) = std::fs::metadata(file) {
        temporary
            .as_file()
            .set_permissions(metadata.permissions())?;
    }
    temporary.persist(file).map_err(|error| error.error)?;
    Ok(())
}

/// Applies the edit to the cluster: a server-side dry run first (the API server's own
/// validation, admission included), then the apply, both guarded by `resourceVersion`.
pub async fn to_cluster(client: Client, request: &CommitRequest) -> Result<String, CommitError> {
    let CommitTarget::Cluster {
        resource_version, ..
    } = &request.target
    else {
        return Err(CommitError::Refused("not a cluster commit".to_owned()));
    };
    let mut policy: AuthPolicy = parse_proposed_policy(&request.text).map_err(|errors| {
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        CommitError::Refused(format!("the text is not a valid AuthPolicy: {first}"))
    })?;
    let reference = ObjectRef::of(&policy);
    if reference != request.policy {
        return Err(CommitError::Refused(format!(
            "the text names {reference}, not {}: renaming a policy is a new policy, create it with kubectl",
            request.policy
        )));
    }
    policy
        .metadata
        .resource_version
        .clone_from(resource_version);
    policy.metadata.managed_fields = None;
    policy.status = None;
    let api: Api<AuthPolicy> = Api::namespaced(client, &reference.namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&policy);
    let dry_run = params.clone().dry_run();
    api.patch(&reference.name, &dry_run, &patch)
        .await
        .map_err(|error| explain(&reference, "the dry run", &error))?;
    let applied = api
        .patch(&reference.name, &params, &patch)
        .await
        .map_err(|error| explain(&reference, "the apply", &error))?;
    Ok(format!(
        "applied {reference} (resourceVersion {})",
        applied.metadata.resource_version.unwrap_or_default()
    ))
}

fn explain(policy: &ObjectRef, step: &str, error: &kube::Error) -> CommitError {
    match error {
        kube::Error::Api(response) if response.code == 409 => CommitError::Conflict(format!(
            "{policy} changed on the cluster since it was previewed; your text is kept — re-planned against the cluster as it is now"
        )),
        kube::Error::Api(response) => CommitError::Refused(format!(
            "the API server refused {step} of {policy}: {} ({})",
            response.message, response.reason
        )),
        other => CommitError::Refused(format!("{step} of {policy} failed: {other}")),
    }
}
