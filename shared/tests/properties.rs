//! Properties of the engines over generated worlds of servers, policies and clients.

use std::collections::BTreeMap;

use nauthera_shared::Inventory;
use nauthera_shared::impact::{ImpactKind, Planner, compare, parse_proposed_policy, plan_states};
use nauthera_shared::manifests::parse_documents;
use nauthera_shared::policy::{Compliance, Standing};
use nauthera_shared::resources::{
    AllowedNamespaces, AuthClient, AuthClientSpec, AuthPolicy, AuthPolicySpec, AuthServer,
    AuthServerRef, AuthServerSpec, ClientAuthMethod, ClientAuthentication, ClientType,
    DeletionPolicy, Enforcement, GrantType, LabelSelector, NamespacesFrom, ObjectRef, ProviderSpec,
    ProviderType, RedirectUriRules, TokenLifetimes, ViolationResponse,
};
use proptest::prelude::*;
use proptest::sample::subsequence;

const SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "api:read",
    "api:write",
    "offline_access",
];
const GRANTS: [GrantType; 3] = [
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
    GrantType::ClientCredentials,
];
const HOSTS: [&str; 3] = ["*.example.com", "app.example.com", "*.other.org"];
const SCHEMES: [&str; 2] = ["com.example.app", "org.other.app"];
const METHODS: [ClientAuthMethod; 4] = [
    ClientAuthMethod::ClientSecretBasic,
    ClientAuthMethod::ClientSecretPost,
    ClientAuthMethod::PrivateKeyJwt,
    ClientAuthMethod::None,
];
const REDIRECTS: [&str; 9] = [
    "https://app.example.com/cb",
    "https://x.other.org/cb",
    "http://127.0.0.1/cb",
    "http://evil.example.net/cb",
    "https://a.example.com/cb#frag",
    "https://deep.app.example.com/cb",
    "com.example.app:/cb",
    "org.other.app://cb",
    "myapp:/cb",
];
const NAMESPACES: [&str; 3] = ["security", "team-a", "team-b"];
const TTLS: [&str; 5] = ["30s", "5m", "15m", "1h30m", "24h"];

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(pairs)),
        match_expressions: None,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn policy_strategy(index: usize) -> impl Strategy<Value = AuthPolicy> {
    let rules = (
        prop::option::of(subsequence(SCOPES.to_vec(), 0..=SCOPES.len())),
        prop::option::of(subsequence(GRANTS.to_vec(), 0..=GRANTS.len())),
        prop::option::of(prop::sample::select(TTLS.to_vec())),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::sample::select(METHODS.to_vec())),
    );
    let more_rules = (
        prop::option::of(subsequence(METHODS.to_vec(), 0..=METHODS.len())),
        prop::option::of(0u32..5),
        prop::bool::weighted(0.2),
        subsequence(SCHEMES.to_vec(), 0..=SCHEMES.len()),
    );
    let scope = (
        any::<bool>(),
        prop::option::of(subsequence(HOSTS.to_vec(), 0..=HOSTS.len())),
        prop::bool::weighted(0.2),
        prop::option::of(prop::sample::select(vec!["gold", "silver"])),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.3),
    );
    (rules, more_rules, scope).prop_map(
        move |(
            (scopes, grants, ttl, pkce, method),
            (allowed_methods, max_scopes, confidential, schemes),
            (loopback, hosts, audit, tier, production, revoke),
        )| {
            let spec = AuthPolicySpec {
                enforcement: if audit {
                    Enforcement::Audit
                } else {
                    Enforcement::Enforce
                },
                violation_response: if revoke {
                    ViolationResponse::Revoke
                } else {
                    ViolationResponse::Keep
                },
                client_selector: tier.map(|tier| selector(&[("tier", tier)])),
                namespace_selector: None,
                token: ttl.map(|ttl| TokenLifetimes {
                    access_token_ttl: Some(ttl.to_owned()),
                    ..TokenLifetimes::default()
                }),
                allowed_grant_types: grants,
                enforce_pkce: pkce,
                allowed_scopes: scopes.map(|s| strings(&s)),
                max_scopes,
                require_confidential_clients: confidential,
                client_authentication: (method.is_some() || allowed_methods.is_some()).then_some(
                    ClientAuthentication {
                        method,
                        allowed_methods,
                        secret_rotation: None,
                    },
                ),
                redirect_uris: Some(RedirectUriRules {
                    allowed_hosts: hosts.map(|h| strings(&h)),
                    allow_loopback_http: loopback,
                    allowed_schemes: strings(&schemes),
                }),
            };
            let mut policy = AuthPolicy::new(&format!("policy-{index}"), spec);
            policy.metadata.namespace = Some("security".into());
            policy.metadata.labels = Some(labels(&[(
                "env",
                if production { "prod" } else { "staging" },
            )]));
            policy
        },
    )
}

fn server_strategy(index: usize) -> impl Strategy<Value = AuthServer> {
    let selector_choice = prop::sample::select(vec![
        None,
        Some(selector(&[])),
        Some(selector(&[("env", "prod")])),
    ]);
    let trust = prop::sample::select(vec![
        NamespacesFrom::Same,
        NamespacesFrom::All,
        NamespacesFrom::Selector,
    ]);
    (selector_choice, trust).prop_map(move |(policy_selector, from)| {
        let spec = AuthServerSpec {
            issuer_url: "https://auth.example.com".into(),
            provider: ProviderSpec {
                provider_type: ProviderType::DynamicClientRegistration,
                registration_endpoint: None,
                initial_access_token_secret_ref: None,
            },
            policy_selector,
            allowed_namespaces: AllowedNamespaces {
                from,
                selector: (from == NamespacesFrom::Selector)
                    .then(|| selector(&[("tenant", "true")])),
            },
        };
        let mut server = AuthServer::new(&format!("server-{index}"), spec);
        server.metadata.namespace = Some("security".into());
        server
    })
}

fn client_strategy(index: usize) -> impl Strategy<Value = AuthClient> {
    (
        prop::sample::select(NAMESPACES.to_vec()),
        prop::sample::select(vec!["server-0", "server-1", "missing"]),
        subsequence(SCOPES.to_vec(), 0..=SCOPES.len()),
        subsequence(GRANTS.to_vec(), 1..=GRANTS.len()),
        subsequence(REDIRECTS.to_vec(), 0..=2),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["gold", "silver"])),
        prop::option::weighted(0.3, prop::sample::select(METHODS.to_vec())),
        any::<bool>(),
    )
        .prop_map(
            move |(namespace, server, scopes, grants, redirects, public, tier, method, jwks)| {
                let spec = AuthClientSpec {
                    display_name: format!("Client {index}"),
                    auth_server_ref: AuthServerRef {
                        name: server.into(),
                        namespace: Some("security".into()),
                    },
                    redirect_uris: strings(&redirects),
                    post_logout_redirect_uris: Vec::new(),
                    scopes: strings(&scopes),
                    grant_types: grants,
                    client_type: if public {
                        ClientType::Public
                    } else {
                        ClientType::Confidential
                    },
                    secret_name: None,
                    jwks_uri: jwks.then(|| "https://app.example.com/jwks.json".to_owned()),
                    token_endpoint_auth_method: method,
                    deletion_policy: DeletionPolicy::default(),
                    secret_template: None,
                    existing_registration: None,
                };
                let mut client = AuthClient::new(&format!("client-{index}"), spec);
                client.metadata.namespace = Some(namespace.into());
                client.metadata.labels = tier.map(|tier| labels(&[("tier", tier)]));
                client
            },
        )
}

fn world() -> impl Strategy<Value = Inventory> {
    let policies = (1..4usize).prop_flat_map(|n| (0..n).map(policy_strategy).collect::<Vec<_>>());
    let servers = (1..3usize).prop_flat_map(|n| (0..n).map(server_strategy).collect::<Vec<_>>());
    let clients = (0..12usize).prop_flat_map(|n| (0..n).map(client_strategy).collect::<Vec<_>>());
    (servers, policies, clients, any::<bool>()).prop_map(
        |(servers, policies, clients, team_a_is_tenant)| {
            let mut namespaces = BTreeMap::new();
            if team_a_is_tenant {
                namespaces.insert(
                    "team-a".to_owned(),
                    [("tenant".to_owned(), "true".to_owned())].into(),
                );
            }
            Inventory {
                servers,
                policies,
                clients,
                namespaces,
            }
        },
    )
}

/// Ways to allow more: every one only widens what a policy accepts.
#[derive(Clone, Debug)]
enum Widening {
    Scope(&'static str),
    Grant(GrantType),
    Host(&'static str),
    Loopback,
    DropScopeRestriction,
    Method(ClientAuthMethod),
    Scheme(&'static str),
    RaiseScopeCap,
    DropScopeCap,
    DropConfidentialRequirement,
}

fn widen(policy: &mut AuthPolicy, widening: &Widening) {
    let spec = &mut policy.spec;
    match widening {
        Widening::Scope(scope) => {
            if let Some(scopes) = &mut spec.allowed_scopes {
                scopes.push((*scope).to_owned());
            }
        }
        Widening::Grant(grant) => {
            if let Some(grants) = &mut spec.allowed_grant_types {
                grants.push(*grant);
            }
        }
        Widening::Host(host) => {
            if let Some(hosts) = spec
                .redirect_uris
                .as_mut()
                .and_then(|rules| rules.allowed_hosts.as_mut())
            {
                hosts.push((*host).to_owned());
            }
        }
        Widening::Loopback => {
            spec.redirect_uris
                .get_or_insert_with(Default::default)
                .allow_loopback_http = true;
        }
        Widening::DropScopeRestriction => spec.allowed_scopes = None,
        Widening::Method(method) => {
            if let Some(methods) = spec
                .client_authentication
                .as_mut()
                .and_then(|authentication| authentication.allowed_methods.as_mut())
            {
                methods.push(*method);
            }
        }
        Widening::Scheme(scheme) => spec
            .redirect_uris
            .get_or_insert_with(Default::default)
            .allowed_schemes
            .push((*scheme).to_owned()),
        Widening::RaiseScopeCap => spec.max_scopes = spec.max_scopes.map(|cap| cap + 1),
        Widening::DropScopeCap => spec.max_scopes = None,
        Widening::DropConfidentialRequirement => spec.require_confidential_clients = false,
    }
}

fn widening_strategy() -> impl Strategy<Value = Widening> {
    prop_oneof![
        prop::sample::select(SCOPES.to_vec()).prop_map(Widening::Scope),
        prop::sample::select(GRANTS.to_vec()).prop_map(Widening::Grant),
        prop::sample::select(HOSTS.to_vec()).prop_map(Widening::Host),
        Just(Widening::Loopback),
        Just(Widening::DropScopeRestriction),
        prop::sample::select(METHODS.to_vec()).prop_map(Widening::Method),
        prop::sample::select(SCHEMES.to_vec()).prop_map(Widening::Scheme),
        Just(Widening::RaiseScopeCap),
        Just(Widening::DropScopeCap),
        Just(Widening::DropConfidentialRequirement),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn allowing_more_never_makes_a_client_less_compliant(world in world(), which in any::<prop::sample::Index>(), widening in widening_strategy()) {
        let before = world.evaluate_all();
        let mut widened = world.clone();
        let index = which.index(widened.policies.len());
        widen(&mut widened.policies[index], &widening);
        let after = widened.evaluate_all();
        for (old, new) in before.iter().zip(&after) {
            prop_assert!(new.compliance <= old.compliance, "{}: {:?} → {:?} after {widening:?}: {:?}", old.client, old.compliance, new.compliance, new.violations);
            prop_assert!(new.violations.len() <= old.violations.len(), "{}: more violations after {widening:?}", old.client);
        }
    }

    #[test]
    fn changing_only_lifetimes_never_changes_compliance(world in world(), ttls in prop::collection::vec(prop::sample::select(TTLS.to_vec()), 3)) {
        let before = world.evaluate_all();
        let mut retimed = world.clone();
        for (policy, ttl) in retimed.policies.iter_mut().zip(&ttls) {
            policy.spec.token = Some(TokenLifetimes {
                access_token_ttl: Some((*ttl).to_owned()),
                refresh_token_ttl: Some((*ttl).to_owned()),
                id_token_ttl: Some((*ttl).to_owned()),
            });
        }
        let after = retimed.evaluate_all();
        for (old, new) in before.iter().zip(&after) {
            prop_assert_eq!(old.compliance, new.compliance, "{}", old.client);
            prop_assert_eq!(&old.violations, &new.violations);
        }
    }

    /// The planner only re-evaluates clients of servers that select the edited policy; it
    /// must agree with evaluating the whole edited world from scratch.
    #[test]
    fn the_plan_agrees_with_evaluating_everything_again(world in world(), which in any::<prop::sample::Index>(), replacement in policy_strategy(0)) {
        let planner = Planner::new(world.clone());
        let index = which.index(world.policies.len());
        let original = ObjectRef::of(&world.policies[index]);
        let mut proposed = replacement;
        proposed.metadata.name = Some(original.name.clone());
        let plan = planner.plan(Some(&original), Some(&proposed));

        let mut edited = world.clone();
        edited.policies[index] = proposed;
        let before = world.evaluate_all();
        let after = edited.evaluate_all();
        let summary = plan.summary;
        prop_assert_eq!(summary.breaks + summary.fixes + summary.changes + summary.reasons_change + summary.unaffected, world.clients.len());
        for (old, new) in before.iter().zip(&after) {
            let planned = plan.clients.iter().find(|c| c.client == old.client).map_or(ImpactKind::Unaffected, |c| c.kind);
            let expected = match (old.compliance.is_provisionable(), new.compliance.is_provisionable()) {
                (true, false) => ImpactKind::Breaks,
                (false, true) => ImpactKind::Fixes,
                // A refused client that stays refused for the same reasons is unaffected,
                // even if another policy now governs it too.
                (false, false) if old.violations == new.violations => ImpactKind::Unaffected,
                (false, false) => ImpactKind::ReasonsChange,
                (true, true) if old.effective == new.effective && old.governing == new.governing && old.violations == new.violations => ImpactKind::Unaffected,
                (true, true) => ImpactKind::Changes,
            };
            prop_assert_eq!(planned, expected, "{}: {:?} → {:?}", old.client, old.compliance, new.compliance);
            // The planner's shortcuts must say exactly what a full comparison says.
            if let Some(impact) = plan.clients.iter().find(|c| c.client == old.client) {
                prop_assert_eq!(impact, &compare(old, new));
            }
        }
        let order: Vec<_> = plan.clients.iter().map(|c| (c.kind, c.client.clone())).collect();
        let mut sorted = order.clone();
        sorted.sort();
        prop_assert_eq!(order, sorted, "a plan reads kind by kind, clients by name");
    }

    /// A whole proposed state that differs by one policy plans exactly what the planner
    /// plans for that one edit.
    #[test]
    fn a_whole_state_plan_agrees_with_the_planner_on_one_policy(world in world(), which in any::<prop::sample::Index>(), replacement in policy_strategy(0)) {
        let index = which.index(world.policies.len());
        let original = ObjectRef::of(&world.policies[index]);
        let mut proposed = replacement;
        proposed.metadata.name = Some(original.name.clone());
        let plan = Planner::new(world.clone()).plan(Some(&original), Some(&proposed));
        let mut edited = world.clone();
        edited.policies[index] = proposed;
        let whole = plan_states(&world, &edited);
        prop_assert_eq!(whole.summary, plan.summary);
        let mut expected = plan.clients.clone();
        expected.sort_by(|a, b| (a.kind, &a.client).cmp(&(b.kind, &b.client)));
        prop_assert_eq!(whole.clients, expected);
        prop_assert!(whole.changes.len() <= 1);
    }

    #[test]
    fn an_identical_proposal_affects_no_client(world in world(), which in any::<prop::sample::Index>()) {
        let planner = Planner::new(world.clone());
        let policy = &world.policies[which.index(world.policies.len())];
        let plan = planner.plan(Some(&ObjectRef::of(policy)), Some(policy));
        prop_assert!(plan.clients.is_empty());
    }

    #[test]
    fn no_text_makes_the_parsers_panic(text in "\\PC{0,200}") {
        let _ = parse_proposed_policy(&text);
        let _ = parse_documents(&text, std::path::Path::new("fuzz.yaml"));
    }

    #[test]
    fn no_edit_of_a_valid_policy_makes_the_planner_panic(world in world(), cut in 0usize..400, insert in "[ -~\\n]{0,8}") {
        let text = "apiVersion: auth.nauthera.io/v1alpha1\nkind: AuthPolicy\nmetadata:\n  name: policy-0\n  namespace: security\n  labels: {env: prod}\nspec:\n  token: {accessTokenTTL: 15m}\n  allowedScopes: [openid, profile]\n  redirectUris:\n    allowedHosts: ['*.example.com']\n";
        let cut = cut.min(text.len());
        let edited = format!("{}{insert}{}", &text[..cut], &text[cut..]);
        let planner = Planner::new(world);
        if let Ok(plan) = planner.plan_text(Some(&ObjectRef::new("security", "policy-0")), &edited) {
            prop_assert!(plan.summary.unaffected <= planner.inventory().clients.len());
        }
    }

    #[test]
    fn every_client_is_evaluated_once_and_only_provisionable_ones_get_settings(world in world()) {
        let evaluations = world.evaluate_all();
        prop_assert_eq!(evaluations.len(), world.clients.len());
        for evaluation in &evaluations {
            prop_assert_eq!(evaluation.effective.is_some(), evaluation.compliance.is_provisionable());
            prop_assert_eq!(evaluation.compliance == Compliance::Compliant, evaluation.violations.is_empty());
        }
    }

    #[test]
    fn only_a_revoke_policy_whose_enforced_rule_is_broken_revokes(world in world()) {
        for evaluation in world.evaluate_all() {
            for policy in &evaluation.revoked_by {
                let spec = &world.policies.iter().find(|p| &ObjectRef::of(*p) == policy).unwrap().spec;
                prop_assert_eq!(spec.violation_response, ViolationResponse::Revoke);
                prop_assert_eq!(evaluation.standing, Standing::Governed);
                prop_assert_eq!(evaluation.compliance, Compliance::NonCompliant);
                let name = policy.to_string();
                prop_assert!(evaluation.violations.iter().any(|v| v.is_enforced() && v.policy.as_deref() == Some(name.as_str())));
            }
        }
    }

    #[test]
    fn losing_a_policy_or_trust_never_revokes(world in world(), which in any::<prop::sample::Index>()) {
        let mut world = world;
        if !world.policies.is_empty() {
            world.policies.remove(which.index(world.policies.len()));
        }
        world.namespaces.clear();
        for evaluation in world.evaluate_all() {
            if evaluation.standing != Standing::Governed {
                prop_assert!(evaluation.revoked_by.is_empty());
            }
        }
    }
}
