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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `admitted`, `warned`, `refused`, or `unreadable` (not an AdmissionReview).
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeCallLabels {
    /// `get`, `watch`, `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// The resource: `secrets`, `authclients`, `events`, `leases`, …
    pub resource: String,
}

/// Every request the operator makes to the Kubernetes API, by verb: one family for the
/// process, since the client exists before anything else.
static KUBE_CALLS: std::sync::LazyLock<Family<KubeCallLabels, Counter>> =
    std::sync::LazyLock::new(Family::default);

pub struct Metrics {
    pub reconciles: Counter,
    pub registrations_lost: Counter,
    pub drift_repaired: Counter,
    pub discovery_fetches: Counter,
    pub possible_orphans: Counter,
    pub rotations: Counter,
    pub leader: prometheus_client::metrics::gauge::Gauge,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub provider_calls: Family<ProviderCallLabels, Counter>,
    pub admissions: Family<AdmissionLabels, Counter>,
    pub registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nauthera");
        let reconciles = Counter::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let provider_calls = Family::<ProviderCallLabels, Counter>::default();
        let registrations_lost = Counter::default();
        let drift_repaired = Counter::default();
        let discovery_fetches = Counter::default();
        let possible_orphans = Counter::default();
        let rotations = Counter::default();
        registry.register(
            "rotations",
            "Client credentials rotated (a new registration; the old one retired after the overlap)",
            rotations.clone(),
        );
        registry.register(
            "possible_orphans",
            "Registrations begun whose answer was never recorded: one may exist unrecorded at the provider",
            possible_orphans.clone(),
        );
        registry.register(
            "discovery_fetches",
            "OpenID discovery documents fetched (cached per issuer)",
            discovery_fetches.clone(),
        );
        let leader = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "registrations_lost",
            "Registrations a provider no longer knew, registered again",
            registrations_lost.clone(),
        );
        registry.register(
            "drift_repaired",
            "Registrations whose settings were changed at the provider and put back",
            drift_repaired.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance holds the leader lease and reconciles",
            leader.clone(),
        );
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
            "kube_calls",
            "Requests to the Kubernetes API, by verb",
            KUBE_CALLS.clone(),
        );
        registry.register(
            "provider_calls",
            "Calls to OIDC providers, by operation and outcome",
            provider_calls.clone(),
        );
        let admissions = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_reviews",
            "AuthClient writes the admission webhook judged, by verdict",
            admissions.clone(),
        );
        Self {
            reconciles,
            registrations_lost,
            drift_repaired,
            discovery_fetches,
            possible_orphans,
            rotations,
            leader,
            failures,
            duration,
            provider_calls,
            admissions,
            registry,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, took: Duration) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn registration_lost(&self) {
        self.registrations_lost.inc();
    }

    pub fn rotated(&self) {
        self.rotations.inc();
    }

    pub fn possible_orphan(&self) {
        self.possible_orphans.inc();
    }

    pub fn drift_repaired(&self) {
        self.drift_repaired.inc();
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

    /// The admission webhook judged a write.
    pub fn admission(&self, verdict: &str) {
        self.admissions
            .get_or_create(&AdmissionLabels {
                verdict: verdict.to_owned(),
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

/// A layer for the Kubernetes client that counts its requests by verb.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountKubeCalls;

impl<S> tower::Layer<S> for CountKubeCalls {
    type Service = CountedKubeCalls<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountedKubeCalls { inner }
    }
}

#[derive(Clone, Debug)]
pub struct CountedKubeCalls<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for CountedKubeCalls<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let query = request.uri().query().unwrap_or_default();
        let verb = match *request.method() {
            http::Method::GET if query.contains("watch=true") => "watch",
            http::Method::GET => "get",
            http::Method::POST => "create",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE => "delete",
            _ => "other",
        };
        KUBE_CALLS
            .get_or_create(&KubeCallLabels {
                verb: verb.to_owned(),
                resource: resource_of(request.uri().path()).to_owned(),
            })
            .inc();
        self.inner.call(request)
    }
}

/// The resource a Kubernetes API path names: the segment after the namespace (or the
/// group and version), before the object's name and any subresource.
fn resource_of(path: &str) -> &str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let start = match segments.first() {
        Some(&"api") => 2,
        Some(&"apis") => 3,
        _ => return "other",
    };
    let rest = &segments[start.min(segments.len())..];
    match rest {
        ["namespaces", _, resource, ..] | [resource, ..] => resource,
        [] => "other",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_names_its_resource() {
        for (path, resource) in [
            ("/api/v1/namespaces/shop/secrets/x", "secrets"),
            ("/api/v1/namespaces", "namespaces"),
            (
                "/apis/coordination.k8s.io/v1/namespaces/sys/leases/op",
                "leases",
            ),
            (
                "/apis/auth.nauthera.io/v1alpha1/namespaces/shop/authclients/a/status",
                "authclients",
            ),
            ("/apis/auth.nauthera.io/v1alpha1/authclients", "authclients"),
        ] {
            assert_eq!(super::resource_of(path), resource, "{path}");
        }
    }
}
