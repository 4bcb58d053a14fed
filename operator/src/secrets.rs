//! The two Secrets of a provisioned client:
//!
//! - the **registration record**, in the operator's namespace where the client's team
//!   cannot read it: the client id and secret, how to manage the registration (RFC 7592)
//!   — whoever holds the registration access token can rewrite the client —, and a
//!   registration being retired after a move. It is the operator's memory: written right
//!   after the provider answers, before anything else, and guarded by a finalizer. (What
//!   was last applied is the client's `status.effective`, written anyway.)
//! - the **credentials** Secret, in the client's namespace and owned by the AuthClient:
//!   `client_id`, `client_secret` (confidential clients), `issuer_url` — what the team's
//!   application mounts. The operator writes only a Secret it created for this AuthClient.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use nauthera_shared::resources::AuthClient;
use secrecy::{ExposeSecret, SecretString};

use crate::provider::Management;
use crate::template_keys::{TEMPLATE_KEYS, TemplateKeys};

pub const CLIENT_ID: &str = "client_id";
pub const CLIENT_SECRET: &str = "client_secret";
pub const ISSUER_URL: &str = "issuer_url";
const REGISTRATION_CLIENT_URI: &str = "registration_client_uri";
const REGISTRATION_ACCESS_TOKEN: &str = "registration_access_token";
const RETIRED: &str = "retired_";
const RETIRE_AFTER: &str = "retire_after";
const ROTATED_AT: &str = "rotated_at";
const ROTATION_REQUESTED: &str = "rotation_requested";
/// When a registration was begun, until the provider's answer is recorded: found later,
/// it says the operator stopped in between, and a registration may exist unrecorded.
const REGISTERING_SINCE: &str = "registering_since";

/// Keeps a registration record from being deleted by anyone but the operator (a deleted
/// namespace, a stray `kubectl delete`): without it, the registration could never be
/// managed again.
pub const RECORD_FINALIZER: &str = "auth.nauthera.io/registration-record";

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
    /// A registration at the provider the client left, deleted once the new one is in
    /// its credentials Secret.
    pub retired: Option<Retired>,
}

/// A registration that is no longer used and is to be deleted at its provider: at once
/// after a move, after the overlap window after a rotation.
#[derive(Debug, Clone)]
pub struct Retired {
    pub client_id: String,
    pub issuer_url: String,
    pub management: Management,
    /// When it may be deleted (RFC 3339); absent: now.
    pub after: Option<String>,
    /// The rotation that retired it: when, and the annotation value it answered. Kept
    /// with the registration it made, in the same write, so a status write lost after a
    /// rotation never makes it rotate twice.
    pub rotated: Option<Rotated>,
}

/// A rotation, as the record remembers it until its overlap is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// RFC 3339.
    pub at: String,
    pub requested: Option<String>,
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
        .filter(|value| !value.is_empty())
}

fn management(data: &BTreeMap<String, ByteString>, prefix: &str) -> Option<Management> {
    Some(Management {
        registration_client_uri: text(data, &format!("{prefix}{REGISTRATION_CLIENT_URI}"))?,
        registration_access_token: SecretString::from(text(
            data,
            &format!("{prefix}{REGISTRATION_ACCESS_TOKEN}"),
        )?),
    })
}

impl StoredRegistration {
    /// Reads a registration Secret; `None` when it does not hold a whole registration.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let retired = management(data, RETIRED).map(|management| Retired {
            client_id: text(data, &format!("{RETIRED}{CLIENT_ID}")).unwrap_or_default(),
            issuer_url: text(data, &format!("{RETIRED}{ISSUER_URL}")).unwrap_or_default(),
            management,
            after: text(data, RETIRE_AFTER),
            rotated: text(data, ROTATED_AT).map(|at| Rotated {
                at,
                requested: text(data, ROTATION_REQUESTED),
            }),
        });
        Some(Self {
            client_id: text(data, CLIENT_ID)?,
            client_secret: text(data, CLIENT_SECRET).map(SecretString::from),
            issuer_url: text(data, ISSUER_URL).unwrap_or_default(),
            management: management(data, "")?,
            retired,
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
        if let Some(retired) = &self.retired {
            for (key, value) in [
                (CLIENT_ID, retired.client_id.as_str()),
                (ISSUER_URL, retired.issuer_url.as_str()),
                (
                    REGISTRATION_CLIENT_URI,
                    retired.management.registration_client_uri.as_str(),
                ),
                (
                    REGISTRATION_ACCESS_TOKEN,
                    retired.management.registration_access_token.expose_secret(),
                ),
            ] {
                data.insert(format!("{RETIRED}{key}"), bytes(value));
            }
            if let Some(after) = &retired.after {
                data.insert(RETIRE_AFTER.to_owned(), bytes(after));
            }
            if let Some(rotated) = &retired.rotated {
                data.insert(ROTATED_AT.to_owned(), bytes(&rotated.at));
                if let Some(requested) = &rotated.requested {
                    data.insert(ROTATION_REQUESTED.to_owned(), bytes(requested));
                }
            }
        }
        record_secret(client, namespace, data)
    }

    /// The credentials Secret the client's application mounts, owned by the client so it
    /// goes with it.
    /// The credentials Secret the client's application mounts, shaped as its
    /// `secretTemplate` says, owned by the client so it goes with it. `token_endpoint`
    /// comes from the provider's discovery document, when known.
    pub fn credentials_secret(
        &self,
        client: &AuthClient,
        name: &str,
        token_endpoint: Option<&str>,
    ) -> Secret {
        let template = client.spec.secret_template.clone().unwrap_or_default();
        let keys = &template.keys;
        let issuer = self.issuer_url.trim_end_matches('/');
        let mut data = BTreeMap::from([
            (keys.client_id.clone(), bytes(&self.client_id)),
            (keys.issuer_url.clone(), bytes(&self.issuer_url)),
            (
                keys.discovery_url.clone(),
                bytes(&format!("{issuer}/.well-known/openid-configuration")),
            ),
        ]);
        if let Some(secret) = &self.client_secret {
            data.insert(keys.client_secret.clone(), bytes(secret.expose_secret()));
        }
        if let Some(endpoint) = token_endpoint {
            data.insert(keys.token_endpoint.clone(), bytes(endpoint));
        }
        let meta = client.meta();
        // The template's labels first: Nauthera's own, which say whose Secret this is,
        // always win.
        let remembered = TemplateKeys::of(
            &template.labels,
            &template.annotations,
            &nauthera_shared::policy::RESERVED_LABELS,
        );
        let mut annotations = template.annotations;
        // Only ever Nauthera's value (a template that sets it breaks a rule, and Audit
        // provisions anyway).
        annotations.remove(TEMPLATE_KEYS);
        if let Some(keys) = remembered.annotation() {
            annotations.insert(TEMPLATE_KEYS.to_owned(), keys);
        }
        let mut labels = template.labels;
        labels.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned());
        labels.insert(
            CLIENT_NAME_LABEL.to_owned(),
            meta.name.clone().unwrap_or_default(),
        );
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: meta.namespace.clone(),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                owner_references: client.controller_owner_ref(&()).map(|owner| vec![owner]),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }
}

/// The intent to register, recorded before asking the provider: the record as it is
/// (if any), and when the registration began.
pub fn intent_secret(
    client: &AuthClient,
    namespace: &str,
    existing: Option<&StoredRegistration>,
    since: &str,
) -> Secret {
    let mut secret = existing.map_or_else(
        || record_secret(client, namespace, BTreeMap::new()),
        |record| record.to_secret(client, namespace),
    );
    secret
        .data
        .get_or_insert_with(BTreeMap::new)
        .insert(REGISTERING_SINCE.to_owned(), bytes(since));
    secret
}

/// When a registration recorded as begun was begun, if its answer never was recorded.
pub fn registering_since(secret: &Secret) -> Option<String> {
    text(secret.data.as_ref()?, REGISTERING_SINCE)
}

/// The registration record Secret for `client` in `namespace`, holding `data`.
fn record_secret(
    client: &AuthClient,
    namespace: &str,
    data: BTreeMap<String, ByteString>,
) -> Secret {
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
            finalizers: Some(vec![RECORD_FINALIZER.to_owned()]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// Whether `secret` is one the operator created for `client`: owned by this very
/// AuthClient object (by UID). Anything else — a team's own Secret, one left by an
/// earlier AuthClient of the same name — is never written, owned or deleted.
pub fn is_ours(secret: &Secret, client_uid: &str) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.uid == client_uid)
}

/// Whether `existing` already holds exactly what `wanted` would write, and nothing an
/// earlier template set that `wanted` no longer does: then nothing is written.
pub fn same_data(existing: &Secret, wanted: &Secret) -> bool {
    let holds = |have: Option<&BTreeMap<String, String>>,
                 want: Option<&BTreeMap<String, String>>| {
        want.iter()
            .flat_map(|want| want.iter())
            .all(|(key, value)| have.and_then(|have| have.get(key)) == Some(value))
    };
    existing.data == wanted.data
        && holds(
            existing.metadata.labels.as_ref(),
            wanted.metadata.labels.as_ref(),
        )
        && holds(
            existing.metadata.annotations.as_ref(),
            wanted.metadata.annotations.as_ref(),
        )
        && crate::template_keys::dropped(existing, wanted).is_empty()
}
