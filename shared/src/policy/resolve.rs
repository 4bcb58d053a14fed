//! Resolution: from a client to its server, the server's trust in the client's namespace,
//! and the policies that govern it; then evaluation against the rules.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

use url::Url;

use super::compiled::{CompiledPolicy, CompiledSelector, FieldError};
use crate::resources::{AuthPolicy, AuthServer, LabelSelector, NamespacesFrom, ObjectRef};

pub(crate) type Labels = BTreeMap<String, String>;

/// Which namespaces a server trusts.
#[derive(Clone, Debug)]
enum Trust {
    Same,
    All,
    Selector(CompiledSelector, String),
}

/// A server made ready for evaluation.
#[derive(Clone, Debug)]
pub struct CompiledServer {
    pub reference: ObjectRef,
    pub issuer_url: String,
    /// What is wrong with the server's own spec.
    pub errors: Vec<FieldError>,
    /// `None`: the server has no policy selector and so selects no policy.
    policy_selector: Option<(CompiledSelector, String)>,
    trust: Trust,
    /// The policies the server selects, ordered by name.
    pub(super) policies: Vec<Arc<CompiledPolicy>>,
}

impl CompiledServer {
    fn compile(server: &AuthServer) -> Self {
        let spec = &server.spec;
        let mut errors = Vec::new();
        if let Err(message) = check_endpoint_url(&spec.issuer_url) {
            errors.push(FieldError {
                field: "spec.issuerUrl".into(),
                message,
            });
        }
        if let Some(Err(message)) = spec
            .provider
            .registration_endpoint
            .as_deref()
            .map(check_endpoint_url)
        {
            errors.push(FieldError {
                field: "spec.provider.registrationEndpoint".into(),
                message,
            });
        }
        let policy_selector = spec.policy_selector.as_ref().map(|selector| {
            (
                CompiledSelector::compile(Some(selector), "spec.policySelector", &mut errors),
                describe(selector),
            )
        });
        let trust = match spec.allowed_namespaces.from {
            NamespacesFrom::Same => Trust::Same,
            NamespacesFrom::All => Trust::All,
            NamespacesFrom::Selector => {
                let selector = spec.allowed_namespaces.selector.as_ref();
                if selector.is_none() {
                    errors.push(FieldError {
                        field: "spec.allowedNamespaces.selector".into(),
                        message: "is required when allowedNamespaces.from is Selector".into(),
                    });
                }
                let compiled = CompiledSelector::compile(
                    selector,
                    "spec.allowedNamespaces.selector",
                    &mut errors,
                );
                Trust::Selector(compiled, selector.map(describe).unwrap_or_default())
            }
        };
        Self {
            reference: ObjectRef::of(server),
            issuer_url: spec.issuer_url.clone(),
            errors,
            policy_selector,
            trust,
            policies: Vec::new(),
        }
    }

    /// The policies this server selects.
    pub fn policies(&self) -> &[Arc<CompiledPolicy>] {
        &self.policies
    }

    fn selects(&self, policy: &CompiledPolicy) -> bool {
        policy.reference.namespace == self.reference.namespace
            && self
                .policy_selector
                .as_ref()
                .is_some_and(|(selector, _)| selector.matches(&policy.labels))
    }

    /// `Err` holds the sentence explaining why `namespace` is refused.
    pub fn trusts(&self, namespace: &str, namespace_labels: &Labels) -> Result<(), String> {
        let refused = |rule: String| {
            Err(format!(
                "namespace {namespace:?} is not allowed to register clients on AuthServer {} (allowedNamespaces: {rule})",
                self.reference
            ))
        };
        match &self.trust {
            Trust::All => Ok(()),
            Trust::Same if namespace == self.reference.namespace => Ok(()),
            Trust::Same => refused("from Same".into()),
            Trust::Selector(selector, _) if selector.matches(namespace_labels) => Ok(()),
            Trust::Selector(_, shown) => refused(format!("from Selector, selector {shown}")),
        }
    }
}

/// Issuers and endpoints are https URLs, except on loopback for local development; an
/// issuer has no query or fragment (OpenID Connect Discovery, section 3).
fn check_endpoint_url(text: &str) -> Result<(), String> {
    let url =
        Url::parse(text).map_err(|error| format!("{text:?} is not an absolute URL: {error}"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "{text:?} must use https (plain http only on a loopback address)"
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    Ok(())
}

/// A label selector as `kubectl` would print it.
fn describe(selector: &LabelSelector) -> String {
    match kube::core::Selector::try_from(selector.clone()) {
        Ok(compiled) if compiled.selects_all() => "{} (everything)".to_owned(),
        Ok(compiled) => compiled.to_string(),
        Err(_) => "(invalid)".to_owned(),
    }
}

/// The current servers, policies and namespace labels, made ready to evaluate clients.
/// Cheap to derive a variant of with one policy changed, which is what previews need.
#[derive(Clone, Debug, Default)]
pub struct Evaluator {
    pub(super) servers: FxHashMap<ObjectRef, Arc<CompiledServer>>,
    policies: BTreeMap<ObjectRef, Arc<CompiledPolicy>>,
    namespace_labels: Arc<FxHashMap<String, Labels>>,
}

impl Evaluator {
    pub fn new<'a>(
        servers: impl IntoIterator<Item = &'a AuthServer>,
        policies: impl IntoIterator<Item = &'a AuthPolicy>,
        namespace_labels: &BTreeMap<String, Labels>,
    ) -> Self {
        let policies = policies
            .into_iter()
            .map(|p| (ObjectRef::of(p), Arc::new(CompiledPolicy::compile(p))))
            .collect();
        let servers: Vec<CompiledServer> =
            servers.into_iter().map(CompiledServer::compile).collect();
        let namespace_labels = Arc::new(
            namespace_labels
                .iter()
                .map(|(ns, labels)| (ns.clone(), labels.clone()))
                .collect(),
        );
        Self::assemble(servers, policies, namespace_labels)
    }

    fn assemble(
        servers: impl IntoIterator<Item = CompiledServer>,
        policies: BTreeMap<ObjectRef, Arc<CompiledPolicy>>,
        namespace_labels: Arc<FxHashMap<String, Labels>>,
    ) -> Self {
        let servers = servers
            .into_iter()
            .map(|mut server| {
                server.policies = policies
                    .values()
                    .filter(|policy| server.selects(policy))
                    .cloned()
                    .collect();
                (server.reference.clone(), Arc::new(server))
            })
            .collect();
        Self {
            servers,
            policies,
            namespace_labels,
        }
    }

    /// The same world with one policy replaced: `original` removed (if given) and
    /// `replacement` added (if given). This is how an edit or a deletion is previewed.
    #[must_use]
    pub fn with_policy_replaced(
        &self,
        original: Option<&ObjectRef>,
        replacement: Option<&AuthPolicy>,
    ) -> Self {
        let mut policies = self.policies.clone();
        if let Some(original) = original {
            policies.remove(original);
        }
        if let Some(policy) = replacement {
            policies.insert(
                ObjectRef::of(policy),
                Arc::new(CompiledPolicy::compile(policy)),
            );
        }
        let servers = self.servers.values().map(|server| CompiledServer {
            policies: Vec::new(),
            ..(**server).clone()
        });
        Self::assemble(servers, policies, self.namespace_labels.clone())
    }

    pub fn server(&self, reference: &ObjectRef) -> Option<&CompiledServer> {
        self.servers.get(reference).map(AsRef::as_ref)
    }

    pub fn servers(&self) -> impl Iterator<Item = &CompiledServer> {
        self.servers.values().map(AsRef::as_ref)
    }

    pub fn policy(&self, reference: &ObjectRef) -> Option<&CompiledPolicy> {
        self.policies.get(reference).map(AsRef::as_ref)
    }

    pub fn policies(&self) -> impl Iterator<Item = &CompiledPolicy> {
        self.policies.values().map(AsRef::as_ref)
    }

    /// The servers that select `policy`.
    pub fn servers_selecting<'a>(
        &'a self,
        policy: &'a ObjectRef,
    ) -> impl Iterator<Item = &'a ObjectRef> + 'a {
        self.servers
            .values()
            .filter(move |server| server.policies.iter().any(|p| &p.reference == policy))
            .map(|server| &server.reference)
    }

    /// The labels of a namespace; a namespace we know nothing of has none.
    pub fn namespace_labels(&self, namespace: &str) -> &Labels {
        static NONE: Labels = Labels::new();
        self.namespace_labels.get(namespace).unwrap_or(&NONE)
    }
}

pub(super) fn no_policy_message(server: &CompiledServer) -> String {
    let server_ref = &server.reference;
    match (&server.policy_selector, server.policies.len()) {
        (None, _) => format!(
            "no AuthPolicy governs this client: AuthServer {server_ref} has no policySelector"
        ),
        (Some((_, shown)), 0) => format!(
            "no AuthPolicy governs this client: no policy in namespace {} matches the policySelector of AuthServer {server_ref} ({shown})",
            server_ref.namespace
        ),
        (Some(_), count) => {
            let names: Vec<String> = server
                .policies
                .iter()
                .map(|p| p.reference.to_string())
                .collect();
            let (which, verb) = if count == 1 {
                ("the only policy".to_owned(), "excludes")
            } else {
                (format!("all {count} policies"), "exclude")
            };
            format!(
                "no AuthPolicy governs this client: {which} of AuthServer {server_ref} ({}) {verb} it by clientSelector or namespaceSelector",
                names.join(", ")
            )
        }
    }
}
