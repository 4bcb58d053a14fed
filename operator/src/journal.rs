//! A local journal of registrations between the provider's answer and their record.
//!
//! Pure Dynamic Client Registration offers no way to look a client up: if the operator
//! dies after the provider answered and before the record is written, the registration
//! is orphaned. Writing the answer to a local file first (milliseconds, no network)
//! shrinks that window to almost nothing; on the next start (a container restart keeps
//! the pod's `emptyDir`), each entry is either recorded — its client has no record of a
//! newer one — or deleted at the provider with its own token. Entries hold credentials:
//! files are private to the operator's user, and the directory is best kept in memory
//! (`emptyDir: {medium: Memory}`).

use std::io::Write as _;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::provider::Management;
use crate::secrets::StoredRegistration;

/// A registration asked for, its answer not yet journalled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begun {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub issuer: String,
    pub since: String,
}

/// One registration made and not yet known to be recorded.
#[derive(Debug)]
pub struct Entry {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub record: StoredRegistration,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    uid: String,
    namespace: String,
    name: String,
    client_id: String,
    client_secret: Option<String>,
    issuer_url: String,
    registration_client_uri: String,
    registration_access_token: String,
}

/// The journal in `dir`, or none (every write a no-op) when no directory is given.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    dir: Option<PathBuf>,
}

impl Journal {
    pub fn new(dir: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self { dir })
    }

    fn path(&self, uid: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(format!("{uid}.json")))
    }

    /// Writes an entry durably (written, synced, then renamed into place).
    pub fn write(&self, entry: &Entry) -> std::io::Result<()> {
        let Some(path) = self.path(&entry.uid) else {
            return Ok(());
        };
        let record = &entry.record;
        let on_disk = OnDisk {
            uid: entry.uid.clone(),
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
            client_id: record.client_id.clone(),
            client_secret: record
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            issuer_url: record.issuer_url.clone(),
            registration_client_uri: record.management.registration_client_uri.clone(),
            registration_access_token: record
                .management
                .registration_access_token
                .expose_secret()
                .to_owned(),
        };
        let bytes = serde_json::to_vec(&on_disk).map_err(std::io::Error::other)?;
        let dir = self.dir.as_ref().map_or_else(PathBuf::new, Clone::clone);
        write_durably(&dir, &path, &bytes)
    }

    /// Whether entries are kept at all.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// Notes, durably, that a registration is about to be asked for: found without an
    /// answer on the next start, it says the operator stopped while the provider was
    /// answering. (The cheap, local form of the record's `registering_since`.)
    pub fn begin(&self, entry: &Begun) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        write_durably(dir, &dir.join(format!("{}.begun", entry.uid)), &bytes)
    }

    /// A registration of this client begun and never answered (the answer was lost while
    /// this run went on).
    pub fn begun_for(&self, uid: &str) -> Option<Begun> {
        let dir = self.dir.as_ref()?;
        let bytes = std::fs::read(dir.join(format!("{uid}.begun"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The registration is recorded, or was never made: its entries go.
    pub fn remove(&self, uid: &str) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(format!("{uid}.json")));
            let _ = std::fs::remove_file(dir.join(format!("{uid}.begun")));
        }
    }

    /// Registrations begun by an earlier run and never answered.
    pub fn begun(&self) -> Vec<Begun> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let Ok(files) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        files
            .flatten()
            .filter(|file| file.path().extension().is_some_and(|e| e == "begun"))
            .filter(|file| !file.path().with_extension("json").exists())
            .filter_map(|file| serde_json::from_slice(&std::fs::read(file.path()).ok()?).ok())
            .collect()
    }

    /// Every entry left by an earlier run.
    pub fn entries(&self) -> Vec<Entry> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let Ok(files) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        files
            .flatten()
            .filter(|file| file.path().extension().is_some_and(|e| e == "json"))
            .filter_map(|file| {
                let text = std::fs::read(file.path()).ok()?;
                let on_disk: OnDisk = serde_json::from_slice(&text).ok()?;
                Some(Entry {
                    uid: on_disk.uid,
                    namespace: on_disk.namespace,
                    name: on_disk.name,
                    record: StoredRegistration {
                        client_id: on_disk.client_id,
                        client_secret: on_disk.client_secret.map(SecretString::from),
                        issuer_url: on_disk.issuer_url,
                        management: Management {
                            registration_client_uri: on_disk.registration_client_uri,
                            registration_access_token: SecretString::from(
                                on_disk.registration_access_token,
                            ),
                        },
                        retired: None,
                    },
                })
            })
            .collect()
    }
}

/// Writes `bytes` to `path` so that it survives a crash: written privately, synced,
/// renamed into place, the directory synced.
fn write_durably(
    dir: &std::path::Path,
    path: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&partial, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uid: &str) -> Entry {
        Entry {
            uid: uid.to_owned(),
            namespace: "shop".to_owned(),
            name: "orders".to_owned(),
            record: StoredRegistration {
                client_id: "abc".to_owned(),
                client_secret: Some(SecretString::from("s3cr3t")),
                issuer_url: "https://auth.example.com".to_owned(),
                management: Management {
                    registration_client_uri: "https://auth.example.com/reg/abc".to_owned(),
                    registration_access_token: SecretString::from("t0k3n"),
                },
                retired: None,
            },
        }
    }

    #[test]
    fn an_entry_survives_until_removed_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(Some(dir.path().to_owned())).unwrap();
        journal.write(&entry("u1")).unwrap();
        journal.write(&entry("u2")).unwrap();
        journal.remove("u1");
        let entries = Journal::new(Some(dir.path().to_owned())).unwrap().entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].uid, "u2");
        assert_eq!(
            entries[0]
                .record
                .management
                .registration_access_token
                .expose_secret(),
            "t0k3n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("u2.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_registration_begun_and_never_answered_is_found_once_answered_it_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(Some(dir.path().to_owned())).unwrap();
        let begun = |uid: &str| Begun {
            uid: uid.to_owned(),
            namespace: "shop".to_owned(),
            name: "orders".to_owned(),
            issuer: "https://auth.example.com".to_owned(),
            since: "2026-11-23T10:00:00Z".to_owned(),
        };
        journal.begin(&begun("u1")).unwrap();
        journal.begin(&begun("u2")).unwrap();
        journal.write(&entry("u2")).unwrap();
        assert_eq!(journal.begun(), [begun("u1")]);
        journal.remove("u1");
        journal.remove("u2");
        assert!(journal.begun().is_empty() && journal.entries().is_empty());
    }

    #[test]
    fn without_a_directory_nothing_is_kept() {
        let journal = Journal::new(None).unwrap();
        journal.write(&entry("u1")).unwrap();
        assert!(journal.entries().is_empty());
    }
}
