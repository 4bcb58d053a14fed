//! Small builders for tests, here and in the binaries: objects written as the YAML a
//! user would write, so a test reads like the manifest it is about.

use std::fmt::Write as _;

use crate::inventory::Inventory;
use crate::resources::{AuthClient, AuthPolicy, AuthServer};

fn from_yaml<T: serde::de::DeserializeOwned>(
    kind: &str,
    namespace: &str,
    name: &str,
    labels: &str,
    spec: &str,
) -> T {
    let indented: String = spec.lines().fold(String::new(), |mut text, line| {
        let _ = writeln!(text, "  {line}");
        text
    });
    let text = format!(
        "apiVersion: auth.nauthera.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{{labels}}}\nspec:\n{indented}"
    );
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|error| panic!("fixture {kind} {namespace}/{name}: {error}\n{text}"))
}

/// An AuthServer in `security` that selects every policy there and trusts every namespace,
/// unless `spec` says otherwise (its lines replace the defaults they name).
pub fn server(name: &str, spec: &str) -> AuthServer {
    let mut lines = [
        ("issuerUrl", "issuerUrl: https://auth.example.com"),
        ("provider", "provider: {type: DynamicClientRegistration}"),
        ("policySelector", "policySelector: {}"),
        ("allowedNamespaces", "allowedNamespaces: {from: All}"),
    ];
    let mut extra = Vec::new();
    for line in spec.lines().filter(|line| !line.trim().is_empty()) {
        let key = line.split(':').next().unwrap_or_default().trim();
        match lines.iter_mut().find(|(name, _)| *name == key) {
            Some(slot) => slot.1 = line,
            None => extra.push(line),
        }
    }
    let spec: Vec<&str> = lines.iter().map(|(_, line)| *line).chain(extra).collect();
    from_yaml("AuthServer", "security", name, "", &spec.join("\n"))
}

/// An AuthPolicy in `security` with these labels (`key: value, …`) and spec.
pub fn policy(name: &str, labels: &str, spec: &str) -> AuthPolicy {
    from_yaml(
        "AuthPolicy",
        "security",
        name,
        labels,
        if spec.trim().is_empty() { "{}" } else { spec },
    )
}

/// An AuthClient (of server `security/server` unless `spec` names another) with these
/// labels and spec lines.
pub fn client(namespace: &str, name: &str, labels: &str, spec: &str) -> AuthClient {
    let mut base = String::new();
    if !spec.contains("displayName:") {
        let _ = writeln!(base, "displayName: {name}");
    }
    if !spec.contains("authServerRef:") {
        base.push_str("authServerRef: {name: server, namespace: security}\n");
    }
    base.push_str(spec);
    from_yaml("AuthClient", namespace, name, labels, &base)
}

/// A world of these objects, with no namespace labels.
pub fn inventory(
    servers: Vec<AuthServer>,
    policies: Vec<AuthPolicy>,
    clients: Vec<AuthClient>,
) -> Inventory {
    Inventory {
        servers,
        policies,
        clients,
        namespaces: std::collections::BTreeMap::default(),
    }
}
