//! Reading manifests: a folder (a GitOps repository), a file, or YAML text. Nauthera's
//! kinds and `Namespace`s are kept; other kinds are counted and skipped. A bad document is
//! reported with its file, line and column and does not stop the others.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::inventory::Inventory;
use crate::resources::{API_VERSION, AuthClient, AuthPolicy, AuthServer, GROUP, ObjectRef};
use crate::yaml_location::locate;

/// One object read from a manifest.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // each is moved once, straight into the inventory
pub enum Manifest {
    Server(AuthServer),
    Policy(AuthPolicy),
    Client(AuthClient),
    Namespace {
        name: String,
        labels: BTreeMap<String, String>,
    },
}

impl Manifest {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Server(_) => "AuthServer",
            Self::Policy(_) => "AuthPolicy",
            Self::Client(_) => "AuthClient",
            Self::Namespace { .. } => "Namespace",
        }
    }

    fn reference(&self) -> ObjectRef {
        match self {
            Self::Server(server) => ObjectRef::of(server),
            Self::Policy(policy) => ObjectRef::of(policy),
            Self::Client(client) => ObjectRef::of(client),
            Self::Namespace { name, .. } => ObjectRef::new("", name.clone()),
        }
    }
}

/// Where an object was written: file, 1-based line of its document, and the document's
/// position in the file (0-based), so an edit can be written back in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub document: usize,
}

/// A document that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentError {
    pub file: PathBuf,
    /// 1-based line and column in the file.
    pub line: usize,
    pub column: usize,
    /// `Kind namespace/name`, when the document got far enough to say.
    pub object: Option<String>,
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Why a folder could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),
    #[error("{path}: cannot read: {source}", path = .0.display(), source = .1)]
    Unreadable(PathBuf, std::io::Error),
}

/// What a folder held.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub inventory: Inventory,
    /// Where each Nauthera object came from, by kind and identity.
    pub origins: HashMap<(&'static str, ObjectRef), Origin>,
    pub errors: Vec<DocumentError>,
    /// YAML files read.
    pub files: usize,
    /// Documents of other kinds, skipped.
    pub skipped: usize,
}

impl Loaded {
    /// Where an object of `kind` came from.
    pub fn origin(&self, kind: &'static str, reference: &ObjectRef) -> Option<&Origin> {
        self.origins.get(&(kind, reference.clone()))
    }

    fn add(&mut self, manifest: Manifest, origin: Origin) {
        let key = (manifest.kind(), manifest.reference());
        if let Some(first) = self.origins.get(&key) {
            self.errors.push(DocumentError {
                file: origin.file,
                line: origin.line,
                column: 1,
                object: Some(describe_key(&key)),
                message: format!(
                    "defined twice; first at {}:{}, this one is ignored",
                    first.file.display(),
                    first.line
                ),
            });
            return;
        }
        self.origins.insert(key, origin);
        let inventory = &mut self.inventory;
        match manifest {
            Manifest::Server(server) => inventory.servers.push(server),
            Manifest::Policy(policy) => inventory.policies.push(policy),
            Manifest::Client(client) => inventory.clients.push(client),
            Manifest::Namespace { name, labels } => {
                inventory.namespaces.insert(name, labels);
            }
        }
    }
}

fn describe_key((kind, reference): &(&'static str, ObjectRef)) -> String {
    if reference.namespace.is_empty() {
        format!("{kind} {}", reference.name)
    } else {
        format!("{kind} {reference}")
    }
}

/// Reads every `.yaml`/`.yml` file under `path` (or `path` itself if it is a file), in
/// name order, skipping hidden files and folders.
pub fn load_dir(path: &Path) -> Result<Loaded, LoadError> {
    let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound(path.to_owned()),
        _ => LoadError::Unreadable(path.to_owned(), error),
    })?;
    let mut loaded = Loaded::default();
    let files: Vec<PathBuf> = if metadata.is_file() {
        vec![path.to_owned()]
    } else {
        let mut files = Vec::new();
        let walker = walkdir::WalkDir::new(path)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| {
                entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.')
            });
        for entry in walker {
            let entry = entry.map_err(|error| {
                let at = error.path().unwrap_or(path).to_owned();
                LoadError::Unreadable(at, error.into())
            })?;
            let is_yaml = entry
                .path()
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            if entry.file_type().is_file() && is_yaml {
                files.push(entry.into_path());
            }
        }
        files
    };
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|error| LoadError::Unreadable(file.clone(), error))?;
        loaded.files += 1;
        let parsed = parse_documents(&text, &file);
        loaded.skipped += parsed.skipped;
        loaded.errors.extend(parsed.errors);
        for (manifest, origin) in parsed.manifests {
            loaded.add(manifest, origin);
        }
    }
    Ok(loaded)
}

/// What one file's text held.
#[derive(Debug, Default)]
pub struct Parsed {
    pub manifests: Vec<(Manifest, Origin)>,
    pub errors: Vec<DocumentError>,
    pub skipped: usize,
}

/// Reads multi-document YAML text; `file` is only used to say where things are.
pub fn parse_documents(text: &str, file: &Path) -> Parsed {
    let mut parsed = Parsed::default();
    for (document, (first_line, chunk)) in split_documents(text).into_iter().enumerate() {
        let origin = Origin {
            file: file.to_owned(),
            line: first_line,
            document,
        };
        let error_at = |location: Option<(usize, usize)>,
                        object: Option<String>,
                        message: String| DocumentError {
            file: file.to_owned(),
            line: first_line + location.map_or(0, |(line, _)| line - 1),
            column: location.map_or(1, |(_, column)| column),
            object,
            message,
        };
        let header: serde_yaml_ng::Value = match serde_yaml_ng::from_str(chunk) {
            Ok(value) => value,
            Err(error) => {
                parsed.errors.push(error_at(
                    yaml_error_location(&error),
                    None,
                    yaml_error_message(&error, first_line),
                ));
                continue;
            }
        };
        if header.is_null() {
            continue; // an empty document, or only comments
        }
        match read_object(chunk, &header, first_line) {
            Ok(Some(manifest)) => parsed.manifests.push((manifest, origin)),
            Ok(None) => parsed.skipped += 1,
            Err(ObjectError {
                object,
                location,
                message,
            }) => parsed.errors.push(error_at(location, object, message)),
        }
    }
    parsed
}

/// Splits a YAML stream at `---` lines. Returns each document's 1-based first line (the
/// line after the marker) and its text.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    document_ranges(text)
        .into_iter()
        .map(|(line, range)| (line, &text[range]))
        .collect()
}

/// Each document's first line and byte range, numbered as [`Origin::document`] numbers them.
fn document_ranges(text: &str) -> Vec<(usize, std::ops::Range<usize>)> {
    let mut documents = Vec::new();
    let mut start_offset = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let is_marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if is_marker {
            documents.push((start_line, start_offset..offset));
            start_offset = offset + line.len();
            start_line = index + 2;
        }
        offset += line.len();
    }
    documents.push((start_line, start_offset..text.len()));
    documents
}

/// The text of document `index` of a file, comments included, as the loader numbered it.
pub fn document_text(text: &str, index: usize) -> Option<&str> {
    document_ranges(text)
        .get(index)
        .map(|(_, range)| &text[range.clone()])
}

/// `text` with document `index` replaced by `replacement`, every other byte (other
/// documents, their comments, the markers) kept as it was.
pub fn replace_document(text: &str, index: usize, replacement: &str) -> Option<String> {
    let ranges = document_ranges(text);
    let (_, range) = ranges.get(index)?;
    let mut replacement = replacement.to_owned();
    // A document followed by a marker must end its last line before it.
    if index + 1 < ranges.len() && !replacement.ends_with('\n') {
        replacement.push('\n');
    }
    let mut result = String::with_capacity(text.len() + replacement.len());
    result.push_str(&text[..range.start]);
    result.push_str(&replacement);
    result.push_str(&text[range.end..]);
    Some(result)
}

/// An object-level failure, with the location inside its document when known.
struct ObjectError {
    object: Option<String>,
    location: Option<(usize, usize)>,
    message: String,
}

fn read_object(
    chunk: &str,
    header: &serde_yaml_ng::Value,
    first_line: usize,
) -> Result<Option<Manifest>, ObjectError> {
    let text_of = |key: &str| {
        header
            .get(key)
            .and_then(serde_yaml_ng::Value::as_str)
            .unwrap_or_default()
    };
    let (api_version, kind) = (text_of("apiVersion"), text_of("kind"));
    let metadata = header.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(serde_yaml_ng::Value::as_str)
        .unwrap_or_default();
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(serde_yaml_ng::Value::as_str);
    let object = Some(match namespace {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    });
    let fail = |field: &str, message: String| ObjectError {
        object: object.clone(),
        location: locate(chunk, field).map(|l| (l.line, l.column)),
        message,
    };
    let ours = api_version.split('/').next() == Some(GROUP);
    if ours && api_version != API_VERSION {
        return Err(fail(
            "apiVersion",
            format!("apiVersion {api_version:?} is not served; use {API_VERSION}"),
        ));
    }
    if ours && name.is_empty() {
        return Err(fail("metadata", "metadata.name is required".to_owned()));
    }
    match (ours, kind, api_version) {
        (true, "AuthServer", _) => {
            typed(chunk, object.as_ref(), first_line).map(|server| Some(Manifest::Server(server)))
        }
        (true, "AuthPolicy", _) => {
            typed(chunk, object.as_ref(), first_line).map(|policy| Some(Manifest::Policy(policy)))
        }
        (true, "AuthClient", _) => {
            typed(chunk, object.as_ref(), first_line).map(|client| Some(Manifest::Client(client)))
        }
        (true, other, _) => Err(fail(
            "kind",
            format!(
                "kind {other:?} is not a kind of {GROUP}; expected AuthServer, AuthPolicy or AuthClient"
            ),
        )),
        (false, "Namespace", "v1") => {
            let labels: BTreeMap<String, String> = metadata
                .and_then(|m| m.get("labels"))
                .map(|labels| serde_yaml_ng::from_value(labels.clone()))
                .transpose()
                .map_err(|error| {
                    fail(
                        "metadata.labels",
                        format!(
                            "metadata.labels: {}",
                            yaml_error_message(&error, first_line)
                        ),
                    )
                })?
                .unwrap_or_default();
            // The API server labels every namespace with its own name; do the same.
            let mut labels = labels;
            labels.insert("kubernetes.io/metadata.name".to_owned(), name.to_owned());
            Ok(Some(Manifest::Namespace {
                name: name.to_owned(),
                labels,
            }))
        }
        _ => Ok(None),
    }
}

/// Reads a typed object, refusing unknown fields (a typo must not silently weaken a policy).
fn typed<T: DeserializeOwned>(
    chunk: &str,
    object: Option<&String>,
    first_line: usize,
) -> Result<T, ObjectError> {
    let mut unknown = Vec::new();
    let deserializer = serde_yaml_ng::Deserializer::from_str(chunk);
    // The typed objects take apiVersion and kind from their type, so those are "ignored".
    let value = serde_ignored::deserialize(deserializer, |path| {
        let path = path.to_string();
        if path != "apiVersion" && path != "kind" {
            unknown.push(path);
        }
    })
    .map_err(|error| ObjectError {
        object: object.cloned(),
        location: yaml_error_location(&error),
        message: yaml_error_message(&error, first_line),
    })?;
    if let Some(field) = unknown.first() {
        return Err(ObjectError {
            object: object.cloned(),
            location: locate(chunk, field).map(|l| (l.line, l.column)),
            message: format!("unknown field {field}"),
        });
    }
    Ok(value)
}

fn yaml_error_location(error: &serde_yaml_ng::Error) -> Option<(usize, usize)> {
    error
        .location()
        .map(|location| (location.line(), location.column()))
}

/// The error's text without its own "at line L column C", which we report ourselves;
/// any further position in it (where a block began) is made relative to the file.
pub(crate) fn yaml_error_message(error: &serde_yaml_ng::Error, first_line: usize) -> String {
    const AT_LINE: &str = " at line ";
    let message = error.to_string();
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    let mut first = true;
    while let Some(start) = rest.find(AT_LINE) {
        out.push_str(&rest[..start]);
        let after = &rest[start + AT_LINE.len()..];
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let line: usize = after[..digits].parse().unwrap_or(0);
        let mut tail = &after[digits..];
        let column = tail.strip_prefix(" column ").map(|t| {
            let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            tail = &t[digits..];
            &t[..digits]
        });
        if !first {
            let _ = write!(out, "{AT_LINE}{}", line + first_line - 1);
            if let Some(column) = column {
                let _ = write!(out, " column {column}");
            }
        }
        first = false;
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE_DOCUMENTS: &str = "# the team's clients\napiVersion: v1\nkind: A # first\n---\n# second, with a comment\nkind: B\n--- # a marker with a comment\nkind: C\n";

    #[test]
    fn documents_are_read_back_as_written() {
        assert_eq!(
            document_text(THREE_DOCUMENTS, 0),
            Some("# the team's clients\napiVersion: v1\nkind: A # first\n")
        );
        assert_eq!(
            document_text(THREE_DOCUMENTS, 1),
            Some("# second, with a comment\nkind: B\n")
        );
        assert_eq!(document_text(THREE_DOCUMENTS, 2), Some("kind: C\n"));
        assert_eq!(document_text(THREE_DOCUMENTS, 3), None);
    }

    #[test]
    fn replacing_a_document_keeps_every_other_byte() {
        let replaced = replace_document(THREE_DOCUMENTS, 1, "# edited\nkind: B2").unwrap();
        assert_eq!(
            replaced,
            "# the team's clients\napiVersion: v1\nkind: A # first\n---\n# edited\nkind: B2\n--- # a marker with a comment\nkind: C\n"
        );
        let last = replace_document(THREE_DOCUMENTS, 2, "kind: C2\n").unwrap();
        assert!(last.ends_with("--- # a marker with a comment\nkind: C2\n"));
        assert_eq!(replace_document(THREE_DOCUMENTS, 5, "x"), None);
    }

    #[test]
    fn splits_documents_and_keeps_line_numbers() {
        let text = "a: 1\n---\nb: 2\n--- # note\nc: 3\n";
        let documents = split_documents(text);
        assert_eq!(documents, vec![(1, "a: 1\n"), (3, "b: 2\n"), (5, "c: 3\n")]);
    }

    #[test]
    fn reads_kinds_and_skips_others() {
        let text = "\
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {tenant: 'true'}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
# only a comment
---
apiVersion: auth.nauthera.io/v1alpha1
kind: AuthPolicy
metadata: {name: p, namespace: security}
spec: {allowedScopes: [openid]}
";
        let parsed = parse_documents(text, Path::new("x.yaml"));
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.skipped, 1);
        let kinds: Vec<_> = parsed
            .manifests
            .iter()
            .map(|(m, o)| (m.kind(), o.line, o.document))
            .collect();
        assert_eq!(kinds, [("Namespace", 1, 0), ("AuthPolicy", 11, 3)]);
        let Manifest::Namespace { labels, .. } = &parsed.manifests[0].0 else {
            panic!("not a namespace")
        };
        assert_eq!(labels.get("tenant").map(String::as_str), Some("true"));
        assert_eq!(
            labels
                .get("kubernetes.io/metadata.name")
                .map(String::as_str),
            Some("team-a")
        );
    }

    #[test]
    fn a_bad_document_is_reported_with_file_and_line_and_the_rest_still_load() {
        let text = "\
apiVersion: auth.nauthera.io/v1alpha1
kind: AuthClient
metadata: {name: ok, namespace: team}
spec: {displayName: OK, authServerRef: {name: s}}
---
apiVersion: auth.nauthera.io/v1alpha1
kind: AuthClient
metadata:
  name: broken
  namespace: team
spec:
  displayName: Broken
  authServerRef: {name: s}
  grantTypes: [implicit]
---
apiVersion: auth.nauthera.io/v1alpha1
kind: AuthPolicy
metadata: {name: typo, namespace: security}
spec:
  allowedScope: [openid]
---
key: [unclosed
";
        let parsed = parse_documents(text, Path::new("team/clients.yaml"));
        assert_eq!(parsed.manifests.len(), 1);
        let errors: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors[0].starts_with("team/clients.yaml:14:16: AuthClient team/broken: spec.grantTypes[0]: unknown variant `implicit`"),
            "{}",
            errors[0]
        );
        assert_eq!(
            errors[1],
            "team/clients.yaml:20:3: AuthPolicy security/typo: unknown field spec.allowedScope"
        );
        assert_eq!(
            errors[2],
            "team/clients.yaml:23:1: did not find expected ',' or ']', while parsing a flow sequence at line 22 column 6"
        );
    }

    #[test]
    fn wrong_version_and_kind_are_named() {
        let text = "apiVersion: auth.nauthera.io/v1\nkind: AuthClient\nmetadata: {name: a}\n---\napiVersion: auth.nauthera.io/v1alpha1\nkind: AuthThing\nmetadata: {name: b}\n";
        let parsed = parse_documents(text, Path::new("f.yaml"));
        let errors: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "f.yaml:1:1: AuthClient a: apiVersion \"auth.nauthera.io/v1\" is not served; use auth.nauthera.io/v1alpha1",
                "f.yaml:6:1: AuthThing b: kind \"AuthThing\" is not a kind of auth.nauthera.io; expected AuthServer, AuthPolicy or AuthClient",
            ]
        );
    }

    #[test]
    fn missing_folder_is_a_load_error() {
        let error = load_dir(Path::new("/no/such/folder")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/no/such/folder: no such file or directory"
        );
    }

    #[test]
    fn duplicates_are_reported_and_the_first_kept() {
        let dir = tempfile::tempdir().unwrap();
        let client = "apiVersion: auth.nauthera.io/v1alpha1\nkind: AuthClient\nmetadata: {name: a, namespace: t}\nspec: {displayName: A, authServerRef: {name: s}}\n";
        std::fs::write(dir.path().join("a.yaml"), client).unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(dir.path().join("nested/b.yml"), client).unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/c.yaml"), "not: [yaml").unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        assert_eq!(loaded.files, 2);
        assert_eq!(loaded.inventory.clients.len(), 1);
        assert_eq!(loaded.errors.len(), 1);
        assert!(
            loaded.errors[0]
                .message
                .starts_with("defined twice; first at "),
            "{}",
            loaded.errors[0]
        );
        assert_eq!(
            loaded
                .origin("AuthClient", &ObjectRef::new("t", "a"))
                .map(|o| o.line),
            Some(1)
        );
    }
}
