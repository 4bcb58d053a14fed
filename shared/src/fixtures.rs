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

/// The web apps policy of the synthetic organisation, as text an editor would hold.
pub const SYNTHETIC_WEB_POLICY: &str = "apiVersion: auth.nauthera.io/v1alpha1
kind: AuthPolicy
metadata:
  name: web-apps-policy
  namespace: security
  labels: {env: prod}
spec:
  clientSelector:
    matchExpressions: [{key: app-type, operator: NotIn, values: [native, service]}]
  token: {accessTokenTTL: 15m, refreshTokenTTL: 24h, idTokenTTL: 5m}
  allowedGrantTypes: [authorization_code, refresh_token]
  allowedScopes: [openid, profile, email, 'api:read']
";

/// A synthetic organisation for benchmarks: two servers, five policies like those in
/// `examples/`, and `clients` clients spread over 50 namespaces, about one in ten of them
/// non-compliant.
pub fn organisation(clients: usize) -> Inventory {
    let servers = vec![
        server("production", "policySelector: {matchLabels: {env: prod}}"),
        server("staging", "policySelector: {matchLabels: {env: staging}}"),
    ];
    let policies = vec![
        serde_yaml_ng::from_str(SYNTHETIC_WEB_POLICY).expect("valid policy"),
        policy(
            "native-apps-policy",
            "env: prod",
            "clientSelector: {matchLabels: {app-type: native}}\ntoken: {accessTokenTTL: 10m}\nallowedScopes: [openid, profile, offline_access]\nclientAuthentication: {method: none}\nredirectUris: {allowLoopbackHttp: true}",
        ),
        policy(
            "backend-services-policy",
            "env: prod",
            "clientSelector: {matchLabels: {app-type: service}}\nallowedGrantTypes: [client_credentials]\nallowedScopes: ['api:read', 'api:write']",
        ),
        policy(
            "pci-strict-policy",
            "env: prod",
            "clientSelector: {matchLabels: {pci: 'true'}}\ntoken: {refreshTokenTTL: 1h}\nredirectUris: {allowedHosts: ['*.pay.example.com']}",
        ),
        policy(
            "staging-audit-policy",
            "env: staging",
            "enforcement: Audit\nallowedScopes: [openid, profile, email]",
        ),
    ];
    let clients = (0..clients)
        .map(|index| {
            let namespace = format!("team-{}", index % 50);
            let name = format!("app-{index}");
            let server = if index % 7 == 0 { "staging" } else { "production" };
            let reference = format!("authServerRef: {{name: {server}, namespace: security}}");
            let (labels, spec) = match index % 10 {
                0..=4 => ("", format!("{reference}\nredirectUris: [https://{name}.example.com/cb]\nscopes: [openid, profile, email]")),
                5 => ("app-type: native", format!("{reference}\nclientType: Public\nredirectUris: ['http://127.0.0.1/cb']\nscopes: [openid, offline_access]")),
                6 | 7 => ("app-type: service", format!("{reference}\ngrantTypes: [client_credentials]\nscopes: ['api:read']")),
                8 => ("pci: 'true'", format!("{reference}\nredirectUris: [https://{name}.pay.example.com/cb]\nscopes: [openid]")),
                _ => ("", format!("{reference}\nredirectUris: [https://{name}.example.com/cb]\nscopes: [openid, 'api:write']")),
            };
            client(&namespace, &name, labels, &spec)
        })
        .collect();
    inventory(servers, policies, clients)
}
