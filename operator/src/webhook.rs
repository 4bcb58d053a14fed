//! The validating admission webhook: `kubectl apply` refuses an AuthClient that breaks an
//! `Enforce` policy, with the engine's exact sentence, and prints an `Audit` policy's
//! findings as warnings. What is refused and what is only a warning is decided in
//! [`admission`]; every rule stays in the shared engine.
//!
//! - **Every replica serves it** (HTTPS on `--webhook-listen`) from its own stores, warm
//!   whether it leads or not, so the Service may route to any ready pod.
//! - **The operator makes its own certificates** ([`certificates`]): a self-signed CA and a
//!   serving certificate, kept in Secret `<name>-webhook-tls` in the operator's namespace
//!   so restarts and replicas share them. Each replica reads it again every few minutes and
//!   serves what it holds.
//! - **The leader writes the configuration** ([`configuration`]) with the CA bundle: when it
//!   starts leading, after a renewal, and hourly (to put back an edit or a deletion).
//! - **`failurePolicy: Ignore`**: an operator that is down or slow blocks nobody; the
//!   reconcile enforces the same rules in any case.

pub mod admission;
pub mod certificates;
pub mod configuration;
pub mod review;
pub mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::core::PartialObjectMeta;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::context::Context;
use certificates::Material;
use tls::{ServedCertificate, TlsListener};

/// How often each replica reads the certificates again (and the leader checks them).
const CHECK_EVERY: Duration = Duration::from_secs(5 * 60);
/// How often the leader writes the configuration even when nothing changed.
const REAPPLY_EVERY: Duration = Duration::from_secs(60 * 60);

/// Where the API server calls the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Service in the operator's namespace, on this port (in cluster).
    Service { name: String, port: u16 },
    /// A URL, such as `https://127.0.0.1:8443/validate` (out of cluster, tests).
    Url(url::Url),
}

#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Where to serve HTTPS.
    pub listen: SocketAddr,
    pub endpoint: Endpoint,
    /// The ValidatingWebhookConfiguration's name; the certificates are kept in Secret
    /// `<name>-webhook-tls` in the operator's namespace.
    pub name: String,
    /// Only AuthClients in namespaces with these labels are sent to the webhook; empty:
    /// every namespace.
    pub namespace_labels: BTreeMap<String, String>,
}

impl WebhookSettings {
    pub fn secret_name(&self) -> String {
        format!("{}-webhook-tls", self.name)
    }

    /// The names the serving certificate must cover: those the API server calls.
    pub fn names(&self, namespace: &str) -> Vec<String> {
        match &self.endpoint {
            Endpoint::Service { name, .. } => vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
            ],
            Endpoint::Url(url) => vec![
                url.host_str()
                    .unwrap_or("localhost")
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
            ],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Unusable(String),
}

/// Binds the webhook's address: a start-up that cannot serve what was asked fails.
pub async fn bind(settings: &WebhookSettings) -> std::io::Result<TcpListener> {
    TcpListener::bind(settings.listen).await
}

/// Serves the webhook on `tcp` and, while `leading` says so, keeps its configuration
/// written. Runs until the process ends.
pub async fn run(
    ctx: Arc<Context>,
    settings: WebhookSettings,
    tcp: TcpListener,
    mut leading: watch::Receiver<bool>,
) {
    let namespace = ctx.settings.operator_namespace.clone();
    let names = settings.names(&namespace);
    let secret = settings.secret_name();
    let mut retry = Duration::from_secs(1);
    let mut material = loop {
        let leader = *leading.borrow_and_update();
        match certificates::obtain(&ctx.client, &namespace, &secret, &names, leader).await {
            Ok(material) => break material,
            Err(error) => {
                tracing::warn!(%error, ?retry, "webhook: no certificates yet; retrying");
                wait(&mut leading, retry).await;
                retry = (retry * 2).min(Duration::from_secs(60));
            }
        }
    };
    let served = match material.certified_key() {
        Ok(key) => Arc::new(ServedCertificate::new(key)),
        Err(error) => {
            tracing::error!(%error, "webhook: the certificates cannot be served; not serving");
            return;
        }
    };
    if let Err(error) = serve(&ctx, &settings, tcp, Arc::clone(&served)) {
        tracing::error!(listen = %settings.listen, %error, "webhook: cannot serve");
        return;
    }

    // The bundle last written into the configuration, and when.
    let mut applied: Option<(String, Instant)> = None;
    loop {
        let leader = *leading.borrow_and_update();
        if !leader {
            applied = None;
        }
        match certificates::obtain(&ctx.client, &namespace, &secret, &names, leader).await {
            Ok(read) if read.certificate != material.certificate => match read.certified_key() {
                Ok(key) => {
                    served.replace(key);
                    tracing::info!(not_after = %read.not_after, "webhook: serving renewed certificates");
                    material = read;
                }
                Err(error) => tracing::warn!(%error, "webhook: renewed certificates unusable"),
            },
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "webhook: cannot read the certificates"),
        }
        let due = applied.as_ref().is_none_or(|(bundle, at)| {
            *bundle != material.ca_bundle || at.elapsed() >= REAPPLY_EVERY
        });
        let mut next = CHECK_EVERY;
        if leader && due {
            match write_configuration(&ctx, &settings, &material).await {
                Ok(()) => applied = Some((material.ca_bundle.clone(), Instant::now())),
                Err(error) => {
                    tracing::warn!(configuration = %settings.name, %error, "webhook: cannot write the configuration; retrying");
                    next = Duration::from_secs(10);
                }
            }
        }
        wait(&mut leading, next).await;
    }
}

/// Serves the webhook on `tcp`, on a task of its own.
fn serve(
    ctx: &Arc<Context>,
    settings: &WebhookSettings,
    tcp: TcpListener,
    served: Arc<ServedCertificate>,
) -> Result<(), WebhookError> {
    let config = tls::server_config(served)?;
    let listener = TlsListener::new(tcp, config)?;
    let address = axum::serve::Listener::local_addr(&listener).unwrap_or(settings.listen);
    tracing::info!(listen = %address, endpoint = ?settings.endpoint, "webhook: serving AdmissionReviews over HTTPS");
    let app = review::router(Arc::clone(ctx));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "webhook: the HTTPS server stopped");
        }
    });
    Ok(())
}

async fn write_configuration(
    ctx: &Context,
    settings: &WebhookSettings,
    material: &Material,
) -> Result<(), kube::Error> {
    let namespace = &ctx.settings.operator_namespace;
    let owner = ctx
        .stores
        .namespaces
        .get(&kube::runtime::reflector::ObjectRef::<
            PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>,
        >::new(namespace))
        .and_then(|found| found.metadata.uid.clone())
        .map(|uid| configuration::owned_by_namespace(namespace, &uid));
    let desired = configuration::desired(settings, namespace, &material.ca_bundle, owner);
    configuration::apply(&ctx.client, &desired).await?;
    tracing::info!(configuration = %settings.name, endpoint = ?settings.endpoint, "webhook: configuration written");
    Ok(())
}

/// Sleeps `duration`, or less if leadership changes.
async fn wait(leading: &mut watch::Receiver<bool>, duration: Duration) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        changed = leading.changed() => {
            if changed.is_err() {
                // Nobody will say again: just sleep.
                tokio::time::sleep(duration).await;
            }
        }
    }
}
