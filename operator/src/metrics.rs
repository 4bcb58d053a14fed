//! Prometheus metrics: reconciles, their failures and durations, provider calls.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderCallLabels {
    pub operation: String,
    pub outcome: String,
}

pub struct Metrics {
    pub reconciles: Counter,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub provider_calls: Family<ProviderCallLabels, Counter>,
    pub registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nauthera");
        let reconciles = Counter::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let provider_calls = Family::<ProviderCallLabels, Counter>::default();
        registry.register("reconciles", "AuthClient reconciles", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "AuthClient reconciles that failed, by error",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long an AuthClient reconcile took",
            duration.clone(),
        );
        registry.register(
            "provider_calls",
            "Calls to OIDC providers, by operation and outcome",
            provider_calls.clone(),
        );
        Self {
            reconciles,
            failures,
            duration,
            provider_calls,
            registry,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, took: Duration) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn failed(&self, error: &crate::Error) {
        self.failures
            .get_or_create(&ErrorLabels {
                error: error.kind().to_owned(),
            })
            .inc();
    }

    pub fn provider_call<T, E>(&self, operation: &str, result: &Result<T, E>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.provider_calls
            .get_or_create(&ProviderCallLabels {
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The text exposition format, for `/metrics`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
