//! Committing an edited policy: into the file it came from (every other byte of the file
//! kept), or to the cluster by a dry run, then a replace guarded by the resourceVersion
//! that was previewed, then a read back that checks the cluster holds the text.

use std::path::Path;

use kube::api::PostParams;
use kube::{Api, Client};
use nauthera_shared::impact::parse_proposed_policy;
use nauthera_shared::manifests::{document_text, replace_document};
use nauthera_shared::resources::{AuthPolicy, ObjectRef};
use serde_json::{Value, json};

use super::{CommitRequest, CommitTarget};

/// The field manager the TUI's writes are recorded under.
pub const FIELD_MANAGER: &str = "nauthera-tui";

#[derive(Debug, PartialEq, Eq)]
pub enum CommitError {
    /// The policy changed since it was previewed: re-plan, then confirm again.
    Conflict(String),
    /// Refused (invalid, forbidden, unreachable); the text is kept.
    Refused(String),
    /// Committed, but the object read back is not the text (an admission webhook or
    /// another writer changed it); the text is kept so it can be compared.
    Differs(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict(message) | Self::Refused(message) | Self::Differs(message) => {
                f.write_str(message)
            }
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

/// Replaces the policy on the cluster with the edited text: a dry run first (the API
/// server's own validation, admission included), then a replace (PUT) guarded by the
/// previewed `resourceVersion`, then a read back. A conflict where only the policy's status
/// moved (the operator's write) is no change to what was previewed: the replace is tried
/// again on the new version; any other change is a conflict.
///
/// A replace, not an apply: a server-side apply under our own field manager leaves alone
/// the fields other managers own (`kubectl apply`, Argo CD, Flux), so a field removed in
/// the editor could survive the commit. A replace makes the object the text, whoever owned
/// what, and the resourceVersion makes sure it replaces the object that was previewed.
pub async fn to_cluster(client: Client, request: &CommitRequest) -> Result<String, CommitError> {
    let CommitTarget::Cluster { previewed, .. } = &request.target else {
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
    let Some(mut guard) = previewed.metadata.resource_version.clone() else {
        return Err(CommitError::Refused(format!(
            "{reference}: no resourceVersion was previewed, so the replace cannot be guarded"
        )));
    };
    policy.metadata.managed_fields = None;
    policy.status = None;
    let api: Api<AuthPolicy> = Api::namespaced(client, &reference.namespace);
    let mut retries = 0;
    let replaced = loop {
        policy.metadata.resource_version = Some(guard.clone());
        match dry_run_then_replace(&api, &policy).await {
            Ok(replaced) => break replaced,
            // The operator writes a policy's status, which moves its resourceVersion: that
            // is no change to what was previewed, so replace the new version.
            Err((_, kube::Error::Api(response)))
                if response.code == 409 && retries < STATUS_RETRIES =>
            {
                retries += 1;
                let current = api
                    .get(&reference.name)
                    .await
                    .map_err(|error| explain(&reference, "reading the policy again", &error))?;
                if !differences(previewed, &current).is_empty() {
                    return Err(conflict(&reference));
                }
                guard = current.metadata.resource_version.unwrap_or_default();
            }
            Err((step, error)) => return Err(explain(&reference, step, &error)),
        }
    };
    let version = replaced.metadata.resource_version.unwrap_or_default();
    let read_back = api.get(&reference.name).await.map_err(|error| {
        CommitError::Differs(format!(
            "replaced {reference} (resourceVersion {version}), but reading it back failed: {}",
            describe_error(&error)
        ))
    })?;
    let differences = differences(&policy, &read_back);
    if differences.is_empty() {
        return Ok(format!(
            "replaced {reference} (resourceVersion {version}); read back, the cluster holds exactly your text"
        ));
    }
    let shown: Vec<String> = differences.iter().map(ToString::to_string).collect();
    Err(CommitError::Differs(format!(
        "replaced {reference} (resourceVersion {version}), but read back it differs from your text: {} — an admission webhook or another writer changed it",
        shown.join("; ")
    )))
}

/// How many times a replace is tried again when only the policy's status moved.
const STATUS_RETRIES: usize = 3;

/// The dry run, then the replace; an error names the step it came from.
async fn dry_run_then_replace(
    api: &Api<AuthPolicy>,
    policy: &AuthPolicy,
) -> Result<AuthPolicy, (&'static str, kube::Error)> {
    let name = policy.metadata.name.as_deref().unwrap_or_default();
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    };
    let dry_run = PostParams {
        dry_run: true,
        ..params.clone()
    };
    api.replace(name, &dry_run, policy)
        .await
        .map_err(|error| ("the dry run", error))?;
    api.replace(name, &params, policy)
        .await
        .map_err(|error| ("the replace", error))
}

fn conflict(policy: &ObjectRef) -> CommitError {
    CommitError::Conflict(format!(
        "{policy} changed on the cluster since it was previewed; your text is kept — re-planned against the cluster as it is now"
    ))
}

/// A field whose value on the cluster is not the one in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// `spec.token.idTokenTTL`.
    pub field: String,
    /// What the text says, as JSON (`null`: absent).
    pub text: String,
    /// What the cluster holds, as JSON (`null`: absent).
    pub cluster: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {} on the cluster, {} in the text",
            self.field, self.cluster, self.text
        )
    }
}

/// Where two policies differ, apart from what the API server sets itself (uid,
/// resourceVersion, generation, timestamps, managed fields, status). Both sides go
/// through the typed AuthPolicy, so a default the server filled in is no difference.
pub fn differences(text: &AuthPolicy, cluster: &AuthPolicy) -> Vec<Difference> {
    let mut found = Vec::new();
    compare("", &user_set(text), &user_set(cluster), &mut found);
    found
}

/// The parts of a policy its author writes.
fn user_set(policy: &AuthPolicy) -> Value {
    let meta = &policy.metadata;
    json!({
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            "labels": meta.labels.clone().unwrap_or_default(),
            "annotations": meta.annotations.clone().unwrap_or_default(),
            "finalizers": meta.finalizers.clone().unwrap_or_default(),
            "ownerReferences": meta.owner_references.clone().unwrap_or_default(),
        },
        "spec": policy.spec,
    })
}

fn compare(path: &str, text: &Value, cluster: &Value, found: &mut Vec<Difference>) {
    if let (Value::Object(text), Value::Object(cluster)) = (text, cluster) {
        let keys: std::collections::BTreeSet<&String> = text.keys().chain(cluster.keys()).collect();
        for key in keys {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let absent = Value::Null;
            compare(
                &field,
                text.get(key).unwrap_or(&absent),
                cluster.get(key).unwrap_or(&absent),
                found,
            );
        }
    } else if text != cluster {
        found.push(Difference {
            field: path.to_owned(),
            text: text.to_string(),
            cluster: cluster.to_string(),
        });
    }
}

fn explain(policy: &ObjectRef, step: &str, error: &kube::Error) -> CommitError {
    match error {
        kube::Error::Api(response) if response.code == 409 => conflict(policy),
        kube::Error::Api(response) => CommitError::Refused(format!(
            "the API server refused {step} of {policy}: {} ({})",
            response.message, response.reason
        )),
        other => CommitError::Refused(format!("{step} of {policy} failed: {other}")),
    }
}

fn describe_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(response) => format!("{} ({})", response.message, response.reason),
        other => other.to_string(),
    }
}
