//! OpenID Connect discovery documents, fetched once per issuer and kept for a while: a
//! thousand registrations at one provider need one discovery request, not a thousand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::ProviderError;
use super::dcr::{read_json, send};

/// How long a discovery document is trusted before it is fetched again.
const KEEP_FOR: Duration = Duration::from_secs(300);

/// The part of the discovery document the operator needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub registration_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// A fetched document and how long its fetch took (the provider's latency, for status).
#[derive(Debug, Clone)]
pub struct Discovered {
    pub document: Arc<Discovery>,
    pub latency: Duration,
}

#[derive(Default)]
pub struct DiscoveryCache {
    documents: Mutex<HashMap<String, (Instant, Discovered)>>,
    /// One fetch at a time: a thousand clients of a new issuer wait for the first fetch
    /// instead of each making their own.
    fetching: tokio::sync::Mutex<()>,
    /// How many documents were actually fetched (a metric).
    fetches: prometheus_client::metrics::counter::Counter,
}

impl DiscoveryCache {
    /// `issuer`'s discovery document, from the cache while it is fresh.
    /// A cache that counts its fetches on `fetches`.
    pub fn counting(fetches: prometheus_client::metrics::counter::Counter) -> Self {
        Self {
            documents: Mutex::default(),
            fetching: tokio::sync::Mutex::default(),
            fetches,
        }
    }

    pub async fn get(
        &self,
        http: &reqwest::Client,
        issuer: &str,
    ) -> Result<Discovered, ProviderError> {
        let key = issuer.trim_end_matches('/').to_owned();
        let fresh = || {
            self.lock()
                .get(&key)
                .filter(|(fetched, _)| fetched.elapsed() < KEEP_FOR)
                .map(|(_, discovered)| discovered.clone())
        };
        if let Some(discovered) = fresh() {
            return Ok(discovered);
        }
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(discovered) = fresh() {
            return Ok(discovered);
        }
        self.refresh(http, issuer).await
    }

    /// Fetches `issuer`'s document now, whatever the cache holds; a failure empties it.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        issuer: &str,
    ) -> Result<Discovered, ProviderError> {
        let key = issuer.trim_end_matches('/').to_owned();
        self.fetches.inc();
        let started = Instant::now();
        match discover(http, issuer).await {
            Ok(document) => {
                let discovered = Discovered {
                    document: Arc::new(document),
                    latency: started.elapsed(),
                };
                self.lock()
                    .insert(key, (Instant::now(), discovered.clone()));
                Ok(discovered)
            }
            Err(error) => {
                self.lock().remove(&key);
                Err(error)
            }
        }
    }

    pub fn fetches(&self) -> u64 {
        self.fetches.get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Discovered)>> {
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads `issuer`'s discovery document and checks it names the same issuer (OpenID
/// Connect Discovery §4.3).
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery, ProviderError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let response = send(http.get(&url)).await?;
    let discovery: Discovery = read_json(response, &url).await?;
    if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(ProviderError::Protocol(format!(
            "the discovery document at {url} names issuer {:?}, not {issuer:?}",
            discovery.issuer
        )));
    }
    Ok(discovery)
}
