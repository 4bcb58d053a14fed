//! The impact engine: what an edited policy does to each client, and how bad text is reported.

use nauthera_shared::fixtures::{client, inventory, server};
use nauthera_shared::impact::{
    ImpactKind, Planner, ProposalError, StatePlan, parse_proposed_policy, plan_states,
};
use nauthera_shared::resources::ObjectRef;

const WEB: &str = "redirectUris: [https://app.example.com/callback]";

fn web_policy_text(scopes: &str, ttl: &str) -> String {
    format!(
        "apiVersion: auth.nauthera.io/v1alpha1
kind: AuthPolicy
metadata:
  name: web
  namespace: security
spec:
  token:
    accessTokenTTL: {ttl}
  allowedScopes: [{scopes}]
"
    )
}

fn planner() -> Planner {
    let web = parse_proposed_policy(&web_policy_text("openid, email, 'api:read'", "15m")).unwrap();
    let clients = vec![
        client(
            "team",
            "reader",
            "",
            &format!("{WEB}\nscopes: [openid, 'api:read']"),
        ),
        client("team", "basic", "", &format!("{WEB}\nscopes: [openid]")),
        client(
            "team",
            "writer",
            "",
            &format!("{WEB}\nscopes: [openid, 'api:write']"),
        ),
        client(
            "other",
            "elsewhere",
            "",
            &format!("{WEB}\nauthServerRef: {{name: other, namespace: security}}"),
        ),
    ];
    let other = server("other", "policySelector: {matchLabels: {never: selected}}");
    Planner::new(inventory(
        vec![server("server", ""), other],
        vec![web],
        clients,
    ))
}

fn web_ref() -> ObjectRef {
    ObjectRef::new("security", "web")
}

#[test]
fn removing_a_used_scope_breaks_its_clients_with_the_reason() {
    let plan = planner()
        .plan_text(Some(&web_ref()), &web_policy_text("openid, email", "15m"))
        .unwrap();
    assert_eq!(plan.clients.len(), 2, "{plan:#?}");
    let reader = &plan.clients[0];
    assert_eq!(
        (
            reader.client.name.as_str(),
            reader.kind,
            reader.kind.symbol()
        ),
        ("reader", ImpactKind::Breaks, '-')
    );
    assert_eq!(
        reader.new_violations[0].to_string(),
        r#"spec.scopes[1]: scope "api:read" is not allowed by policy security/web (allowedScopes: openid, email)"#
    );
    // The writer was already refused; it stays refused, for a reason that now lists fewer scopes.
    let writer = &plan.clients[1];
    assert_eq!(
        (writer.client.name.as_str(), writer.kind),
        ("writer", ImpactKind::ReasonsChange)
    );
    assert_eq!(
        plan.summary.to_string(),
        "Plan: 1 client becomes non-compliant, 0 change settings, 0 become compliant, 1 stays non-compliant for new reasons, 2 unaffected."
    );
    assert!(plan.breaks_any());
}

#[test]
fn allowing_a_scope_fixes_the_clients_that_need_it() {
    let plan = planner()
        .plan_text(
            Some(&web_ref()),
            &web_policy_text("openid, email, 'api:read', 'api:write'", "15m"),
        )
        .unwrap();
    assert_eq!(plan.clients.len(), 1);
    let writer = &plan.clients[0];
    assert_eq!(
        (
            writer.client.name.as_str(),
            writer.kind,
            writer.kind.symbol()
        ),
        ("writer", ImpactKind::Fixes, '+')
    );
    assert_eq!(writer.resolved_violations.len(), 1);
    assert_eq!(
        plan.summary.to_string(),
        "Plan: 0 clients become non-compliant, 0 change settings, 1 becomes compliant, 3 unaffected."
    );
}

#[test]
fn a_ttl_edit_changes_settings_only() {
    let plan = planner()
        .plan_text(
            Some(&web_ref()),
            &web_policy_text("openid, email, 'api:read'", "1h30m"),
        )
        .unwrap();
    let changed: Vec<(&str, char, Vec<String>)> = plan
        .clients
        .iter()
        .map(|c| {
            (
                c.client.name.as_str(),
                c.kind.symbol(),
                c.changes.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            ("basic", '~', vec!["accessTokenTTL 15m → 1h30m".to_owned()]),
            ("reader", '~', vec!["accessTokenTTL 15m → 1h30m".to_owned()])
        ]
    );
    assert_eq!(
        plan.summary.to_string(),
        "Plan: 0 clients become non-compliant, 2 change settings, 0 become compliant, 2 unaffected."
    );
}

#[test]
fn an_unchanged_policy_changes_nothing() {
    let plan = planner()
        .plan_text(
            Some(&web_ref()),
            &web_policy_text("openid, email, 'api:read'", "15m"),
        )
        .unwrap();
    assert!(plan.clients.is_empty());
    assert_eq!(plan.summary.unaffected, 4);
}

#[test]
fn a_new_policy_that_governs_more_clients_shows_up() {
    let strict = "apiVersion: auth.nauthera.io/v1alpha1\nkind: AuthPolicy\nmetadata: {name: strict, namespace: security}\nspec:\n  token: {accessTokenTTL: 5m}\n  allowedScopes: [openid]\n";
    let plan = planner().plan_text(None, strict).unwrap();
    let basic = plan
        .clients
        .iter()
        .find(|c| c.client.name == "basic")
        .unwrap();
    let changes: Vec<String> = basic.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        changes,
        [
            "policies security/web → security/strict, security/web",
            "accessTokenTTL 15m → 5m"
        ]
    );
    let reader = plan
        .clients
        .iter()
        .find(|c| c.client.name == "reader")
        .unwrap();
    assert_eq!(reader.kind, ImpactKind::Breaks);
    assert_eq!(plan.policy, ObjectRef::new("security", "strict"));
}

#[test]
fn deleting_the_only_policy_breaks_every_client() {
    let plan = planner().plan(Some(&web_ref()), None);
    assert_eq!(plan.summary.breaks, 2);
    let reader = &plan.clients[0];
    assert!(
        reader.new_violations[0]
            .message
            .starts_with("no AuthPolicy governs this client"),
        "{reader:?}"
    );
}

#[test]
fn narrowing_a_selector_releases_the_clients_it_no_longer_governs() {
    let mut text = web_policy_text("openid, email, 'api:read'", "15m");
    text.push_str("  clientSelector: {matchLabels: {tier: gold}}\n");
    let plan = planner().plan_text(Some(&web_ref()), &text).unwrap();
    assert_eq!(plan.summary.breaks, 2, "{plan:#?}");
    assert_eq!(plan.summary.reasons_change, 1);
}

#[test]
fn yaml_errors_come_back_with_line_and_column() {
    let broken = "apiVersion: auth.nauthera.io/v1alpha1\nkind: AuthPolicy\nmetadata:\n  name: web\n  namespace: security\nspec:\n  allowedScopes: [openid\n";
    let errors = planner().plan_text(Some(&web_ref()), broken).unwrap_err();
    assert_eq!(errors[0].line, 8);
    assert!(errors[0].message.contains("flow sequence"), "{}", errors[0]);
}

#[test]
fn schema_errors_come_back_with_line_and_column() {
    let text = web_policy_text("openid", "15m")
        .replace("  allowedScopes: [openid]\n", "  enforcement: Sometimes\n");
    let errors = parse_proposed_policy(&text).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].column), (9, 16));
    assert!(
        errors[0]
            .message
            .starts_with("spec.enforcement: unknown variant `Sometimes`"),
        "{}",
        errors[0]
    );

    let typo = web_policy_text("openid", "15m").replace("allowedScopes", "allowedScope");
    let errors = parse_proposed_policy(&typo).unwrap_err();
    assert_eq!(
        errors,
        [ProposalError {
            line: 9,
            column: 3,
            message: "unknown field spec.allowedScope".into()
        }]
    );
}

#[test]
fn bad_field_values_come_back_with_line_and_column() {
    let errors = parse_proposed_policy(&web_policy_text("openid", "15")).unwrap_err();
    assert_eq!(
        errors,
        [ProposalError {
            line: 8,
            column: 5,
            message: r#"spec.token.accessTokenTTL: "15" is not a duration: expected numbers with units h, m, s, ms, us or ns, such as "15m" or "1h30m""#.into()
        }]
    );
}

#[test]
fn text_that_is_not_one_policy_is_refused() {
    let errors = parse_proposed_policy("").unwrap_err();
    assert_eq!(
        errors[0].message,
        "no AuthPolicy here: expected apiVersion auth.nauthera.io/v1alpha1, kind AuthPolicy"
    );
    let two = format!(
        "{}---\n{}",
        web_policy_text("openid", "15m"),
        web_policy_text("openid", "5m").replace("name: web", "name: web2")
    );
    let errors = parse_proposed_policy(&two).unwrap_err();
    assert_eq!(
        (errors[0].line, errors[0].message.as_str()),
        (11, "only one AuthPolicy can be proposed at a time")
    );
}

#[test]
fn a_leading_document_shifts_field_locations() {
    let text = format!("# a comment\n---\n{}", web_policy_text("openid", "1d"));
    let errors = parse_proposed_policy(&text).unwrap_err();
    assert_eq!((errors[0].line, errors[0].column), (10, 5), "{}", errors[0]);
}

/// The current world of [`planner`], as a whole state.
fn current_state() -> nauthera_shared::Inventory {
    planner().inventory().clone()
}

fn impacts(plan: &StatePlan) -> Vec<(String, ImpactKind)> {
    plan.clients
        .iter()
        .map(|c| (c.client.to_string(), c.kind))
        .collect()
}

#[test]
fn a_whole_state_with_a_server_selecting_a_policy_moves_its_clients() {
    // The other server starts selecting the web policy: its client is governed, and
    // compliant, for the first time.
    let current = current_state();
    let mut proposed = current.clone();
    proposed.servers[1] = server("other", "");
    let plan = plan_states(&current, &proposed);
    assert_eq!(
        plan.changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["~ AuthServer security/other"]
    );
    assert_eq!(
        impacts(&plan),
        [("other/elsewhere".to_owned(), ImpactKind::Fixes)]
    );
    assert_eq!(plan.summary.unaffected, 3);
    assert!(!plan.refuses_any());
}

#[test]
fn a_whole_state_that_narrows_trust_breaks_the_clients_of_the_namespaces_left_out() {
    let current = current_state();
    let mut proposed = current.clone();
    proposed.servers[0] = server("server", "allowedNamespaces: {from: Same}");
    let plan = plan_states(&current, &proposed);
    assert_eq!(
        impacts(&plan),
        [
            ("team/basic".to_owned(), ImpactKind::Breaks),
            ("team/reader".to_owned(), ImpactKind::Breaks),
            ("team/writer".to_owned(), ImpactKind::ReasonsChange),
        ]
    );
    assert!(
        plan.clients[0].new_violations[0].message.starts_with(
            "namespace \"team\" is not allowed to register clients on AuthServer security/server"
        ),
        "{:?}",
        plan.clients[0].new_violations
    );
    assert!(plan.refuses_any());
}

#[test]
fn a_whole_state_judges_new_clients_and_lists_removed_ones() {
    let current = current_state();
    let mut proposed = current.clone();
    proposed
        .clients
        .retain(|c| c.metadata.name.as_deref() != Some("basic"));
    proposed.clients.push(client(
        "team",
        "new-reader",
        "",
        &format!("{WEB}\nscopes: [openid, 'api:read']"),
    ));
    proposed.clients.push(client(
        "team",
        "new-admin",
        "",
        &format!("{WEB}\nscopes: [openid, 'api:admin']"),
    ));
    let plan = plan_states(&current, &proposed);
    assert_eq!(
        impacts(&plan),
        [
            ("team/new-admin".to_owned(), ImpactKind::AddedRefused),
            ("team/new-reader".to_owned(), ImpactKind::Added),
        ]
    );
    assert_eq!(
        plan.clients[0].new_violations[0].to_string(),
        r#"spec.scopes[1]: scope "api:admin" is not allowed by policy security/web (allowedScopes: openid, email, api:read)"#
    );
    assert_eq!(
        plan.changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "- AuthClient team/basic",
            "+ AuthClient team/new-admin",
            "+ AuthClient team/new-reader"
        ]
    );
    assert_eq!(
        plan.summary.to_string(),
        "Plan: 0 clients become non-compliant, 0 change settings, 0 become compliant, 2 new clients (1 refused), 3 unaffected."
    );
    assert!(
        plan.refuses_any(),
        "a new client that would be refused fails the gate"
    );
}

#[test]
fn a_whole_state_with_a_namespace_label_changed_names_it() {
    let mut current = current_state();
    current.namespaces.insert(
        "team".to_owned(),
        [("tier".to_owned(), "a".to_owned())].into(),
    );
    let mut proposed = current.clone();
    proposed.namespaces.insert(
        "team".to_owned(),
        [("tier".to_owned(), "b".to_owned())].into(),
    );
    let plan = plan_states(&current, &proposed);
    assert_eq!(
        plan.changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["~ Namespace team"]
    );
    assert!(plan.clients.is_empty(), "no selector reads that label");
}

/// An apps policy with the rules of issue 12 (scope cap, confidential clients, methods,
/// private-use schemes), written out as an editor would hold it.
fn apps_policy_text(rules: &str) -> String {
    format!(
        "apiVersion: auth.nauthera.io/v1alpha1
kind: AuthPolicy
metadata:
  name: apps
  namespace: security
spec:
{rules}"
    )
}

const APPS_RULES: &str = "  maxScopes: 3
  clientAuthentication:
    method: client_secret_basic
    allowedMethods: [none, client_secret_basic, private_key_jwt]
  redirectUris:
    allowLoopbackHttp: true
    allowedSchemes: [com.example.app]
";

fn apps_planner() -> Planner {
    let apps = parse_proposed_policy(&apps_policy_text(APPS_RULES)).unwrap();
    let clients = vec![
        client(
            "team",
            "mobile",
            "",
            "clientType: Public\nredirectUris: ['com.example.app:/callback']\nscopes: [openid, profile, offline_access]",
        ),
        client(
            "team",
            "desktop",
            "",
            "clientType: Public\nredirectUris: ['http://127.0.0.1/callback']\nscopes: [openid]",
        ),
        client(
            "team",
            "web",
            "",
            &format!("{WEB}\nscopes: [openid, profile]"),
        ),
        client(
            "team",
            "service",
            "",
            "grantTypes: [client_credentials]\ntokenEndpointAuthMethod: private_key_jwt\njwksUri: https://svc.example.com/jwks.json",
        ),
    ];
    Planner::new(inventory(vec![server("server", "")], vec![apps], clients))
}

fn apps_ref() -> ObjectRef {
    ObjectRef::new("security", "apps")
}

/// Each affected client as `symbol name: the first new violation, or the changes`.
fn outline(plan: &nauthera_shared::impact::Plan) -> Vec<String> {
    plan.clients
        .iter()
        .map(|c| {
            let detail = c.new_violations.first().map_or_else(
                || {
                    c.changes
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                },
                ToString::to_string,
            );
            format!("{} {}: {detail}", c.kind.symbol(), c.client.name)
        })
        .collect()
}

#[test]
fn every_client_of_the_apps_policy_complies_to_begin_with() {
    for evaluation in apps_planner().current() {
        assert!(evaluation.violations.is_empty(), "{evaluation:?}");
    }
}

#[test]
fn lowering_the_scope_cap_breaks_the_clients_above_it() {
    let text = apps_policy_text(&APPS_RULES.replace("maxScopes: 3", "maxScopes: 2"));
    let plan = apps_planner().plan_text(Some(&apps_ref()), &text).unwrap();
    assert_eq!(
        outline(&plan),
        [
            "- mobile: spec.scopes: 3 scopes requested, but policy security/apps allows at most 2 (maxScopes: 2)"
        ]
    );
    let text = apps_policy_text(&APPS_RULES.replace("  maxScopes: 3\n", ""));
    let plan = apps_planner().plan_text(Some(&apps_ref()), &text).unwrap();
    assert!(
        plan.clients.is_empty(),
        "dropping the cap changes nothing here"
    );
}

#[test]
fn requiring_confidential_clients_breaks_the_public_ones() {
    let text = apps_policy_text(&format!("  requireConfidentialClients: true\n{APPS_RULES}"));
    let plan = apps_planner().plan_text(Some(&apps_ref()), &text).unwrap();
    assert_eq!(
        outline(&plan),
        [
            "- desktop: spec.clientType: clientType Public is not allowed by policy security/apps (requireConfidentialClients: true); only a Confidential client, which can keep a secret, may register",
            "- mobile: spec.clientType: clientType Public is not allowed by policy security/apps (requireConfidentialClients: true); only a Confidential client, which can keep a secret, may register",
        ]
    );
    assert_eq!(
        plan.summary.to_string(),
        "Plan: 2 clients become non-compliant, 0 change settings, 0 become compliant, 2 unaffected."
    );
}

#[test]
fn a_new_default_method_changes_the_settings_of_clients_that_name_none() {
    let text = apps_policy_text(&APPS_RULES.replace(
        "method: client_secret_basic\n    allowedMethods: [none, client_secret_basic, private_key_jwt]",
        "method: client_secret_post\n    allowedMethods: [none, client_secret_basic, client_secret_post, private_key_jwt]",
    ));
    let plan = apps_planner().plan_text(Some(&apps_ref()), &text).unwrap();
    assert_eq!(
        outline(&plan),
        ["~ web: tokenEndpointAuthMethod client_secret_basic → client_secret_post"],
        "the service named its own method, and public clients use none"
    );
}

#[test]
fn narrowing_the_allowed_methods_breaks_the_clients_that_use_the_others() {
    let text = apps_policy_text(&APPS_RULES.replace(
        "allowedMethods: [none, client_secret_basic, private_key_jwt]",
        "allowedMethods: [none, client_secret_basic]",
    ));
    let plan = apps_planner().plan_text(Some(&apps_ref()), &text).unwrap();
    assert_eq!(
        outline(&plan),
        [
            r#"- service: spec.tokenEndpointAuthMethod: authentication method "private_key_jwt" is not allowed by policy security/apps (clientAuthentication.allowedMethods: none, client_secret_basic)"#
        ]
    );
}

#[test]
fn removing_a_private_use_scheme_breaks_the_native_apps_that_use_it() {
    let text = apps_policy_text(&APPS_RULES.replace("    allowedSchemes: [com.example.app]\n", ""));
    let plan = apps_planner().plan_text(Some(&apps_ref()), &text).unwrap();
    assert_eq!(
        outline(&plan),
        [
            r#"- mobile: spec.redirectUris[0]: redirect URI "com.example.app:/callback" uses the private-use scheme "com.example.app", which policy security/apps does not allow (redirectUris.allowedSchemes: none)"#
        ]
    );
}

#[test]
fn bad_values_of_the_new_fields_come_back_with_line_and_column() {
    let text =
        apps_policy_text(&APPS_RULES.replace("[com.example.app]", "[com.example.app, myapp]"));
    let errors = parse_proposed_policy(&text).unwrap_err();
    assert_eq!(
        errors,
        [ProposalError {
            line: 13,
            column: 5,
            message: r#"spec.redirectUris.allowedSchemes[1]: "myapp" is not a private-use URI scheme: use a reverse domain name such as "com.example.app" (RFC 8252, section 7.1)"#.into()
        }]
    );
    let text = apps_policy_text(
        &APPS_RULES.replace("method: client_secret_basic", "method: client_secret_post"),
    );
    let errors = parse_proposed_policy(&text).unwrap_err();
    assert_eq!((errors[0].line, errors[0].column), (9, 5), "{}", errors[0]);
    let errors = parse_proposed_policy(&apps_policy_text("  maxScopes: -1\n")).unwrap_err();
    assert_eq!(errors[0].line, 7, "{}", errors[0]);
}
