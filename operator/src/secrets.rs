//! The two Secrets of a provisioned client:
//!
//! - the **credentials** Secret, in the client's namespace and owned by the AuthClient:
//!   `client_id`, `client_secret` (confidential clients), `issuer_url` — what the team's
//!   application mounts;
//! - the **registration** Secret, in the operator's namespace, where the client's team
//!   cannot read it: how to manage the registration (RFC 7592) — whoever holds the
//!   registration access token can rewrite the client — and a copy of the credentials so
//!   a deleted credentials Secret can be restored.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use nauthera_shared::resources::AuthClient;
use secrecy::{ExposeSecret, SecretString};

use crate::provider::Management;

pub const CLIENT_ID: &str = "client_id";
pub const CLIENT_SECRET: &str = "client_secret";
pub const ISSUER_URL: &str = "issuer_url";
const REGISTRATION_CLIENT_URI: &str = "registration_client_uri";
const REGISTRATION_ACCESS_TOKEN: &str = "registration_access_token";

/// Labels on the Secrets Nauthera writes.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "nauthera-operator");
pub const CLIENT_NAMESPACE_LABEL: &str = "auth.nauthera.io/client-namespace";
pub const CLIENT_NAME_LABEL: &str = "auth.nauthera.io/client-name";

/// What the operator remembers of a registration, between reconciles and restarts.
#[derive(Debug, Clone)]
pub struct StoredRegistration {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub issuer_url: String,
    pub management: Management,
}

/// The registration Secret's name: one per AuthClient object, by UID, so a client deleted
/// and created again under the same name never inherits the old registration.
pub fn registration_secret_name(uid: &str) -> String {
    format!("nauthera-registration-{uid}")
}

fn bytes(text: &str) -> ByteString {
    ByteString(text.as_bytes().to_vec())
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key)
        .and_then(|value| String::from_utf8(value.0.clone()).ok())
}

impl StoredRegistration {
    /// Reads a registration Secret; `None` when it does not hold a whole registration.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        Some(Self {
            client_id: text(data, CLIENT_ID)?,
            client_secret: text(data, CLIENT_SECRET).map(SecretString::from),
            issuer_url: text(data, ISSUER_URL).unwrap_or_default(),
            management: Management {
                registration_client_uri: text(data, REGISTRATION_CLIENT_URI)?,
                registration_access_token: SecretString::from(text(
                    data,
                    REGISTRATION_ACCESS_TOKEN,
                )?),
            },
        })
    }

    /// The registration Secret for `client`, in `namespace` (the operator's).
    pub fn to_secret(&self, client: &AuthClient, namespace: &str) -> Secret {
        let mut data = BTreeMap::from([
            (CLIENT_ID.to_owned(), bytes(&self.client_id)),
            (ISSUER_URL.to_owned(), bytes(&self.issuer_url)),
            (
                REGISTRATION_CLIENT_URI.to_owned(),
                bytes(&self.management.registration_client_uri),
            ),
            (
                REGISTRATION_ACCESS_TOKEN.to_owned(),
                bytes(self.management.registration_access_token.expose_secret()),
            ),
        ]);
        if let Some(secret) = &self.client_secret {
            data.insert(CLIENT_SECRET.to_owned(), bytes(secret.expose_secret()));
        }
        let meta = client.meta();
        Secret {
            metadata: ObjectMeta {
                name: Some(registration_secret_name(
                    meta.uid.as_deref().unwrap_or_default(),
                )),
                namespace: Some(namespace.to_owned()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                    (
                        CLIENT_NAMESPACE_LABEL.to_owned(),
                        meta.namespace.clone().unwrap_or_default(),
                    ),
                    (
                        CLIENT_NAME_LABEL.to_owned(),
                        meta.name.clone().unwrap_or_default(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }

    /// The credentials Secret the client's application mounts, owned by the client so it
    /// goes with it.
    pub fn credentials_secret(&self, client: &AuthClient, name: &str) -> Secret {
        let mut data = BTreeMap::from([
            (CLIENT_ID.to_owned(), bytes(&self.client_id)),
            (ISSUER_URL.to_owned(), bytes(&self.issuer_url)),
        ]);
        if let Some(secret) = &self.client_secret {
            data.insert(CLIENT_SECRET.to_owned(), bytes(secret.expose_secret()));
        }
        let meta = client.meta();
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: meta.namespace.clone(),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                    (
                        CLIENT_NAME_LABEL.to_owned(),
                        meta.name.clone().unwrap_or_default(),
                    ),
                ])),
                owner_references: owner(client).map(|owner| vec![owner]),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }
}

fn owner(client: &AuthClient) -> Option<OwnerReference> {
    client.controller_owner_ref(&())
}

/// Whether `existing` already holds exactly what `wanted` would write: then nothing is
/// written.
pub fn same_data(existing: Option<&Secret>, wanted: &Secret) -> bool {
    existing.is_some_and(|existing| {
        existing.data == wanted.data
            && existing.metadata.labels.as_ref().is_some_and(|labels| {
                wanted
                    .metadata
                    .labels
                    .iter()
                    .flatten()
                    .all(|(key, value)| labels.get(key) == Some(value))
            })
    })
}
