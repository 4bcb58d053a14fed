//! The webhook's certificates, made by the operator itself — no cert-manager.
//!
//! A self-signed CA signs one serving certificate for the names the API server calls; the
//! CA's key is then dropped, never stored, so whoever reads the Secret can serve as the
//! webhook but cannot mint anything else. The Secret (`kubernetes.io/tls`, in the
//! operator's namespace) holds `tls.crt`, `tls.key` and `ca.crt`, the bundle the API
//! server trusts: the current CA, then the previous one while a renewal rolls out, so a
//! replica still serving the old certificate is trusted until it reloads.
//!
//! Any replica creates the Secret when there is none (a create cannot race); only the
//! leader renews it — a month before it expires, or when the names it must cover change —
//! and then writes the new bundle into the webhook configuration. Every write is
//! guarded (create, or a patch carrying the `resourceVersion` read), so replicas never
//! undo each other.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use secrecy::{ExposeSecret, SecretString};

use super::WebhookError;
use crate::context::FIELD_MANAGER;

/// How long a certificate (and its CA) is valid.
pub const VALIDITY: SignedDuration = SignedDuration::from_hours(365 * 24);
/// How long before it expires the leader renews it.
pub const RENEW_BEFORE: SignedDuration = SignedDuration::from_hours(30 * 24);
/// The names the certificate covers, comma-separated.
pub const NAMES_ANNOTATION: &str = "nauthera.io/webhook-names";
/// When it expires (RFC 3339).
pub const NOT_AFTER_ANNOTATION: &str = "nauthera.io/webhook-not-after";

/// What the webhook serves with, as kept in its Secret.
pub struct Material {
    /// The PEM bundle the API server trusts.
    pub ca_bundle: String,
    pub certificate: String,
    pub key: SecretString,
    pub names: Vec<String>,
    pub not_after: Timestamp,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("names", &self.names)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Material {
    /// A new CA and a serving certificate for `names`, valid from an hour ago (clocks
    /// differ) for [`VALIDITY`]; the bundle keeps `previous_ca` after the new CA.
    pub fn generate(
        names: &[String],
        previous_ca: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, WebhookError> {
        let not_before = offset_date_time(now - SignedDuration::from_hours(1))?;
        let not_after_at = now + VALIDITY;
        let not_after = offset_date_time(not_after_at)?;

        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        let ca_key = KeyPair::generate()?;
        // Named after its key, so the current and the previous CA in a bundle never share a
        // subject: a verifier finds the one that signed by name.
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("nauthera-operator webhook CA {}", key_tag(&ca_key)),
        );
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = not_before;
        ca.not_after = not_after;
        let ca_certificate = ca.self_signed(&ca_key)?;
        // The CA signs this one certificate and is gone with this function.
        let issuer = Issuer::new(ca, ca_key);

        let mut serving = CertificateParams::new(names.to_vec())?;
        serving.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("nauthera-operator", String::as_str),
        );
        serving.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving.use_authority_key_identifier_extension = true;
        serving.not_before = not_before;
        serving.not_after = not_after;
        let key = KeyPair::generate()?;
        let certificate = serving.signed_by(&key, &issuer)?;

        let mut ca_bundle = ca_certificate.pem();
        if let Some(previous) = previous_ca {
            ca_bundle.push_str(previous);
        }
        Ok(Self {
            ca_bundle,
            certificate: certificate.pem(),
            key: SecretString::from(key.serialize_pem()),
            names: names.to_vec(),
            not_after: not_after_at,
        })
    }

    /// What a Secret holds, checked: the certificate and key parse and belong together.
    pub fn from_secret(secret: &Secret) -> Result<Self, String> {
        let text = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|data| data.get(key))
                .and_then(|value| String::from_utf8(value.0.clone()).ok())
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| format!("no {key}"))
        };
        let annotation = |key: &str| {
            secret
                .annotations()
                .get(key)
                .cloned()
                .ok_or_else(|| format!("no annotation {key}"))
        };
        let material = Self {
            ca_bundle: text("ca.crt")?,
            certificate: text("tls.crt")?,
            key: SecretString::from(text("tls.key")?),
            names: annotation(NAMES_ANNOTATION)?
                .split(',')
                .map(str::to_owned)
                .collect(),
            not_after: annotation(NOT_AFTER_ANNOTATION)?
                .parse()
                .map_err(|error| format!("{NOT_AFTER_ANNOTATION}: {error}"))?,
        };
        material
            .certified_key()
            .map_err(|error| error.to_string())?;
        Ok(material)
    }

    /// The Secret `name` in `namespace` that keeps this.
    pub fn to_secret(&self, namespace: &str, name: &str) -> Secret {
        let bytes = |text: &str| ByteString(text.as_bytes().to_vec());
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(BTreeMap::from([
                    (
                        "app.kubernetes.io/name".to_owned(),
                        "nauthera-operator".to_owned(),
                    ),
                    (
                        "app.kubernetes.io/component".to_owned(),
                        "webhook".to_owned(),
                    ),
                ])),
                annotations: Some(BTreeMap::from([
                    (NAMES_ANNOTATION.to_owned(), self.names.join(",")),
                    (NOT_AFTER_ANNOTATION.to_owned(), self.not_after.to_string()),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(BTreeMap::from([
                ("ca.crt".to_owned(), bytes(&self.ca_bundle)),
                ("tls.crt".to_owned(), bytes(&self.certificate)),
                ("tls.key".to_owned(), bytes(self.key.expose_secret())),
            ])),
            ..Secret::default()
        }
    }

    /// The certificate and key as rustls serves them.
    pub fn certified_key(&self) -> Result<CertifiedKey, WebhookError> {
        let unreadable = |what: &str, error: &dyn std::fmt::Display| {
            WebhookError::Unusable(format!("{what}: {error}"))
        };
        let chain = CertificateDer::pem_slice_iter(self.certificate.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| unreadable("tls.crt", &error))?;
        if chain.is_empty() {
            return Err(WebhookError::Unusable(
                "tls.crt holds no certificate".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key.expose_secret().as_bytes())
            .map_err(|error| unreadable("tls.key", &error))?;
        CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
            .map_err(|error| unreadable("tls.crt and tls.key", &error))
    }

    /// The CA the serving certificate comes from: the bundle's first certificate.
    pub fn current_ca(&self) -> &str {
        const END: &str = "-----END CERTIFICATE-----";
        self.ca_bundle.find(END).map_or(&self.ca_bundle, |at| {
            let end = at + END.len();
            let end = end + usize::from(self.ca_bundle[end..].starts_with('\n'));
            &self.ca_bundle[..end]
        })
    }

    /// Why it must be renewed at `now` to cover `names`, if it must.
    pub fn renewal_due(&self, names: &[String], now: Timestamp) -> Option<String> {
        if let Some(missing) = names.iter().find(|name| !self.names.contains(name)) {
            return Some(format!("it does not cover {missing}"));
        }
        (now + RENEW_BEFORE >= self.not_after).then(|| format!("it expires at {}", self.not_after))
    }
}

/// A short tag of a key's public half, to tell CAs apart by name.
fn key_tag(key: &KeyPair) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.public_key_raw().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn offset_date_time(at: Timestamp) -> Result<time::OffsetDateTime, WebhookError> {
    time::OffsetDateTime::from_unix_timestamp(at.as_second())
        .map_err(|error| WebhookError::Unusable(format!("time out of range: {error}")))
}

/// The webhook's certificates from Secret `name` in `namespace`: created there when
/// missing; renewed when due if `may_renew` (the leader), else served as they are.
pub async fn obtain(
    client: &Client,
    namespace: &str,
    name: &str,
    names: &[String],
    may_renew: bool,
) -> Result<Material, WebhookError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    // A conflict means another replica wrote first: read what it wrote.
    for _ in 0..3 {
        let now = Timestamp::now();
        let Some(existing) = secrets.get_opt(name).await? else {
            let material = Material::generate(names, None, now)?;
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            };
            match secrets
                .create(&params, &material.to_secret(namespace, name))
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %format!("{namespace}/{name}"), names = ?names, not_after = %material.not_after, "created the webhook's certificates");
                    return Ok(material);
                }
                Err(kube::Error::Api(response)) if response.code == 409 => continue,
                Err(error) => return Err(error.into()),
            }
        };
        let why = match Material::from_secret(&existing) {
            Ok(material) => match material.renewal_due(names, now) {
                None => return Ok(material),
                Some(_) if !may_renew => return Ok(material),
                Some(why) => (why, Some(material)),
            },
            Err(problem) if !may_renew => {
                return Err(WebhookError::Unusable(format!(
                    "Secret {namespace}/{name} is unusable ({problem}); the leader replaces it"
                )));
            }
            Err(problem) => (format!("it is unusable ({problem})"), None),
        };
        let (why, previous) = why;
        let material = Material::generate(names, previous.as_ref().map(Material::current_ca), now)?;
        let mut replacement = material.to_secret(namespace, name);
        replacement.metadata.resource_version = existing.resource_version();
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match secrets
            .patch(name, &params, &Patch::Merge(&replacement))
            .await
        {
            Ok(_) => {
                tracing::info!(secret = %format!("{namespace}/{name}"), reason = %why, not_after = %material.not_after, "renewed the webhook's certificates");
                return Ok(material);
            }
            Err(kube::Error::Api(response)) if response.code == 409 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(WebhookError::Unusable(format!(
        "Secret {namespace}/{name} keeps changing while it is written"
    )))
}
