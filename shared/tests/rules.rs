//! Every rule of the policy engine and the exact sentence it reports.

use nauthera_shared::fixtures::{client, inventory, policy, server};
use nauthera_shared::policy::{Compliance, Evaluation, Standing, Violation};
use nauthera_shared::resources::{AuthClient, AuthPolicy, ClientAuthMethod, Enforcement};

/// Evaluates one client of `security/server` under these policies.
fn evaluate(policies: Vec<AuthPolicy>, subject: AuthClient) -> Evaluation {
    inventory(vec![server("server", "")], policies, vec![subject])
        .evaluate_all()
        .remove(0)
}

/// The violations of a client, as `field: message` lines.
fn violations(policies: Vec<AuthPolicy>, spec: &str) -> Vec<String> {
    evaluate(policies, client("team", "app", "", spec))
        .violations
        .iter()
        .map(Violation::to_string)
        .collect()
}

const WEB: &str = "redirectUris: [https://app.example.com/callback]";

fn open_policy() -> AuthPolicy {
    policy("open", "", "")
}

#[test]
fn a_client_within_every_rule_is_compliant() {
    let evaluation = evaluate(vec![open_policy()], client("team", "app", "", WEB));
    assert_eq!(evaluation.compliance, Compliance::Compliant);
    assert_eq!(evaluation.standing, Standing::Governed);
    assert!(evaluation.violations.is_empty());
    assert!(evaluation.effective.is_some());
}

#[test]
fn scopes_must_be_allowed_by_every_policy() {
    let web = policy(
        "web-apps-policy",
        "",
        "allowedScopes: [openid, profile, email, 'api:read']",
    );
    let found = violations(vec![web], &format!("{WEB}\nscopes: [openid, 'api:write']"));
    assert_eq!(
        found,
        [
            r#"spec.scopes[1]: scope "api:write" is not allowed by policy security/web-apps-policy (allowedScopes: openid, profile, email, api:read)"#
        ]
    );
    let narrow = policy("narrow", "", "allowedScopes: []");
    let found = violations(vec![narrow], &format!("{WEB}\nscopes: [openid]"));
    assert_eq!(
        found,
        [
            r#"spec.scopes[0]: scope "openid" is not allowed by policy security/narrow (allowedScopes: none)"#
        ]
    );
}

#[test]
fn scopes_must_be_scope_tokens() {
    let found = violations(
        vec![open_policy()],
        &format!("{WEB}\nscopes: ['has space']"),
    );
    assert_eq!(
        found,
        [
            r#"spec.scopes[0]: scope "has space" is not a scope token (printable ASCII without spaces, quotes or backslashes)"#
        ]
    );
}

#[test]
fn grant_types_must_be_allowed() {
    let web = policy(
        "web",
        "",
        "allowedGrantTypes: [authorization_code, refresh_token]",
    );
    let found = violations(vec![web], "grantTypes: [client_credentials]");
    assert_eq!(
        found,
        [
            r#"spec.grantTypes[0]: grant type "client_credentials" is not allowed by policy security/web (allowedGrantTypes: authorization_code, refresh_token)"#
        ]
    );
}

#[test]
fn grant_types_must_make_sense_together() {
    assert_eq!(
        violations(vec![open_policy()], "grantTypes: []"),
        ["spec.grantTypes: at least one grant type is required"]
    );
    assert_eq!(
        violations(vec![open_policy()], "grantTypes: [authorization_code]"),
        ["spec.redirectUris: grant type authorization_code needs at least one redirect URI"]
    );
    assert_eq!(
        violations(
            vec![open_policy()],
            "grantTypes: [refresh_token, client_credentials]"
        ),
        ["spec.grantTypes: grant type refresh_token needs authorization_code"]
    );
    assert_eq!(
        violations(
            vec![open_policy()],
            "grantTypes: [client_credentials]\nclientType: Public"
        ),
        [
            "spec.grantTypes: grant type client_credentials needs clientType Confidential (a public client cannot keep a secret)"
        ]
    );
}

#[test]
fn redirect_uris_follow_the_fixed_rules() {
    let cases = [
        (
            "https://*.example.com/cb",
            r#"redirect URI "https://*.example.com/cb" must not contain a wildcard ("*")"#,
        ),
        (
            "/callback",
            r#"redirect URI "/callback" is not an absolute URL: relative URL without a base"#,
        ),
        (
            "mailto:me@example.com",
            r#"redirect URI "mailto:me@example.com" has no host"#,
        ),
        (
            "https://app.example.com/cb#top",
            r##"redirect URI "https://app.example.com/cb#top" must not have a fragment ("#…")"##,
        ),
        (
            "http://app.example.com/cb",
            r#"redirect URI "http://app.example.com/cb" must use https (plain http only on a loopback address, for native apps)"#,
        ),
        (
            "myapp://host/cb",
            r#"redirect URI "myapp://host/cb" must use https (plain http only on a loopback address, for native apps)"#,
        ),
    ];
    for (uri, message) in cases {
        let found = violations(vec![open_policy()], &format!("redirectUris: ['{uri}']"));
        assert_eq!(found, [format!("spec.redirectUris[0]: {message}")], "{uri}");
        let found = violations(
            vec![open_policy()],
            &format!("{WEB}\npostLogoutRedirectUris: ['{uri}']"),
        );
        assert_eq!(
            found,
            [format!("spec.postLogoutRedirectUris[0]: {message}")],
            "{uri}"
        );
    }
}

#[test]
fn loopback_http_needs_every_policy_to_allow_it() {
    let native = policy("native", "", "redirectUris: {allowLoopbackHttp: true}");
    let web = policy("web", "", "");
    for uri in [
        "http://127.0.0.1/cb",
        "http://127.0.0.2:8080/cb",
        "http://[::1]/cb",
        "http://localhost:3000/cb",
    ] {
        let spec = format!("redirectUris: ['{uri}']");
        assert_eq!(
            violations(vec![native.clone()], &spec),
            Vec::<String>::new(),
            "{uri}"
        );
        assert_eq!(
            violations(vec![native.clone(), web.clone()], &spec),
            [format!(
                r#"spec.redirectUris[0]: redirect URI "{uri}" uses loopback http, which policy security/web does not allow (redirectUris.allowLoopbackHttp: false)"#
            )]
        );
    }
}

#[test]
fn redirect_hosts_must_be_allowed() {
    let pci = policy(
        "pci",
        "",
        "redirectUris: {allowedHosts: ['*.pay.example.com', pay.example.com]}",
    );
    assert!(
        violations(
            vec![pci.clone()],
            "redirectUris: ['https://checkout.pay.example.com/cb']"
        )
        .is_empty()
    );
    assert!(
        violations(
            vec![pci.clone()],
            "redirectUris: ['https://PAY.example.com/cb']"
        )
        .is_empty()
    );
    assert_eq!(
        violations(vec![pci], "redirectUris: ['https://evil.example.com/cb']"),
        [
            r#"spec.redirectUris[0]: redirect URI host "evil.example.com" is not allowed by policy security/pci (redirectUris.allowedHosts: *.pay.example.com, pay.example.com)"#
        ]
    );
}

#[test]
fn authentication_method_must_suit_the_client() {
    let basic = policy(
        "basic",
        "",
        "clientAuthentication: {method: client_secret_basic}",
    );
    let none = policy("native", "", "clientAuthentication: {method: none}");
    let jwt = policy("jwt", "", "clientAuthentication: {method: private_key_jwt}");
    assert_eq!(
        violations(vec![basic], &format!("{WEB}\nclientType: Public")),
        [
            "spec.clientType: clientType Public cannot authenticate with client_secret_basic, which policy security/basic requires (clientAuthentication.method: client_secret_basic)"
        ]
    );
    assert_eq!(
        violations(vec![none.clone()], WEB),
        [
            "spec.clientType: clientType Confidential cannot use method none, which policy security/native requires (clientAuthentication.method: none); only a Public client can"
        ]
    );
    assert!(violations(vec![none], &format!("{WEB}\nclientType: Public")).is_empty());
    assert_eq!(
        violations(vec![jwt.clone()], WEB),
        [
            "spec.jwksUri: spec.jwksUri is needed for private_key_jwt, which policy security/jwt requires (clientAuthentication.method: private_key_jwt)"
        ]
    );
    assert!(
        violations(
            vec![jwt],
            &format!("{WEB}\njwksUri: https://app.example.com/jwks.json")
        )
        .is_empty()
    );
}

#[test]
fn policies_that_demand_different_methods_conflict() {
    let basic = policy(
        "a-basic",
        "",
        "clientAuthentication: {method: client_secret_basic}",
    );
    let post = policy(
        "b-post",
        "",
        "clientAuthentication: {method: client_secret_post}",
    );
    assert_eq!(
        violations(vec![basic, post], WEB),
        [
            "spec.clientType: policy security/b-post requires clientAuthentication.method client_secret_post but policy security/a-basic requires client_secret_basic; no client can satisfy both"
        ]
    );
}

#[test]
fn jwks_uri_and_secret_name_are_checked() {
    assert_eq!(
        violations(
            vec![open_policy()],
            &format!("{WEB}\njwksUri: http://app.example.com/jwks")
        ),
        [r#"spec.jwksUri: jwksUri "http://app.example.com/jwks" must be an https URL"#]
    );
    let found = violations(
        vec![open_policy()],
        &format!("{WEB}\nsecretName: My_Secret"),
    );
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(r#"spec.secretName: "My_Secret" is not a valid Secret name"#),
        "{}",
        found[0]
    );
}

#[test]
fn an_invalid_policy_holds_its_clients() {
    let broken = policy("broken", "", "token: {accessTokenTTL: 15 minutes}");
    let found = violations(vec![broken], WEB);
    assert_eq!(
        found,
        [
            r#"spec.token.accessTokenTTL: policy security/broken is invalid: spec.token.accessTokenTTL: "15 minutes" has unknown unit " minutes": use h, m, s, ms, us or ns"#
        ]
    );
}

#[test]
fn audit_policies_report_but_do_not_block() {
    let audit = policy("audit", "", "enforcement: Audit\nallowedScopes: [openid]");
    let evaluation = evaluate(
        vec![audit],
        client(
            "team",
            "app",
            "",
            &format!("{WEB}\nscopes: [openid, groups]"),
        ),
    );
    assert_eq!(evaluation.compliance, Compliance::AuditViolations);
    assert_eq!(evaluation.violations[0].enforcement, Enforcement::Audit);
    assert!(
        evaluation.violations[0]
            .to_string()
            .ends_with("(audit only)")
    );
    assert!(
        evaluation.effective.is_some(),
        "an audited client is still provisioned"
    );
    assert_eq!(evaluation.enforced_violations().count(), 0);
}

#[test]
fn a_missing_server_is_named() {
    let evaluation = evaluate(
        vec![open_policy()],
        client(
            "team",
            "app",
            "",
            &format!("{WEB}\nauthServerRef: {{name: nope}}"),
        ),
    );
    assert_eq!(evaluation.standing, Standing::ServerNotFound);
    assert_eq!(
        evaluation.violations[0].to_string(),
        "spec.authServerRef: AuthServer team/nope does not exist"
    );
    assert_eq!(evaluation.compliance, Compliance::NonCompliant);
}

#[test]
fn an_invalid_server_is_named() {
    let plain_http = server("server", "issuerUrl: http://auth.example.com");
    let world = inventory(
        vec![plain_http],
        vec![open_policy()],
        vec![client("team", "app", "", WEB)],
    );
    let evaluation = world.evaluate_all().remove(0);
    assert_eq!(evaluation.standing, Standing::ServerInvalid);
    assert_eq!(
        evaluation.violations[0].to_string(),
        r#"spec.authServerRef: AuthServer security/server is invalid: spec.issuerUrl: "http://auth.example.com" must use https (plain http only on a loopback address)"#
    );
    let loopback = server("server", "issuerUrl: http://127.0.0.1:9090");
    let world = inventory(
        vec![loopback],
        vec![open_policy()],
        vec![client("team", "app", "", WEB)],
    );
    assert_eq!(world.evaluate_all()[0].compliance, Compliance::Compliant);
}

#[test]
fn servers_trust_namespaces_as_they_say() {
    let same = server("server", "allowedNamespaces: {from: Same}");
    let world = inventory(
        vec![same],
        vec![open_policy()],
        vec![
            client("team", "app", "", WEB),
            client("security", "own", "", WEB),
        ],
    );
    let evaluations = world.evaluate_all();
    assert_eq!(evaluations[0].standing, Standing::NamespaceNotTrusted);
    assert_eq!(
        evaluations[0].violations[0].to_string(),
        r#"spec.authServerRef: namespace "team" is not allowed to register clients on AuthServer security/server (allowedNamespaces: from Same)"#
    );
    assert_eq!(evaluations[1].compliance, Compliance::Compliant);

    let selector = server(
        "server",
        "allowedNamespaces: {from: Selector, selector: {matchLabels: {tenant: 'yes'}}}",
    );
    let mut world = inventory(
        vec![selector],
        vec![open_policy()],
        vec![
            client("team", "app", "", WEB),
            client("other", "app", "", WEB),
        ],
    );
    world.namespaces.insert(
        "team".into(),
        [("tenant".to_owned(), "yes".to_owned())].into(),
    );
    let evaluations = world.evaluate_all();
    assert_eq!(evaluations[0].compliance, Compliance::Compliant);
    assert_eq!(
        evaluations[1].violations[0].message,
        r#"namespace "other" is not allowed to register clients on AuthServer security/server (allowedNamespaces: from Selector, selector tenant=yes)"#
    );

    let no_selector = server("server", "allowedNamespaces: {from: Selector}");
    let world = inventory(
        vec![no_selector],
        vec![open_policy()],
        vec![client("team", "app", "", WEB)],
    );
    assert!(world.evaluate_all()[0].violations[0].message.contains(
        "spec.allowedNamespaces.selector: is required when allowedNamespaces.from is Selector"
    ));
}

#[test]
fn a_client_governed_by_no_policy_is_refused() {
    let no_selector = server("server", "policySelector: null");
    let world = inventory(
        vec![no_selector],
        vec![open_policy()],
        vec![client("team", "app", "", WEB)],
    );
    let evaluation = world.evaluate_all().remove(0);
    assert_eq!(evaluation.standing, Standing::NoGoverningPolicy);
    assert_eq!(
        evaluation.violations[0].message,
        "no AuthPolicy governs this client: AuthServer security/server has no policySelector"
    );

    let selective = server("server", "policySelector: {matchLabels: {env: prod}}");
    let world = inventory(
        vec![selective.clone()],
        vec![policy("staging", "env: staging", "")],
        vec![client("team", "app", "", WEB)],
    );
    assert_eq!(
        world.evaluate_all()[0].violations[0].message,
        "no AuthPolicy governs this client: no policy in namespace security matches the policySelector of AuthServer security/server (env=prod)"
    );

    let narrow = policy(
        "services",
        "env: prod",
        "clientSelector: {matchLabels: {type: service}}",
    );
    let world = inventory(
        vec![selective],
        vec![narrow],
        vec![
            client("team", "app", "", WEB),
            client("team", "svc", "type: service", WEB),
        ],
    );
    let evaluations = world.evaluate_all();
    assert_eq!(
        evaluations[0].violations[0].message,
        "no AuthPolicy governs this client: the only policy of AuthServer security/server (security/services) excludes it by clientSelector or namespaceSelector"
    );
    assert_eq!(evaluations[1].compliance, Compliance::Compliant);
}

#[test]
fn policies_in_other_namespaces_are_never_selected() {
    let mut elsewhere = open_policy();
    elsewhere.metadata.namespace = Some("team".into());
    let world = inventory(
        vec![server("server", "")],
        vec![elsewhere],
        vec![client("team", "app", "", WEB)],
    );
    assert_eq!(
        world.evaluate_all()[0].standing,
        Standing::NoGoverningPolicy
    );
}

#[test]
fn namespace_selectors_narrow_policies() {
    let pci = policy(
        "pci",
        "",
        "namespaceSelector: {matchLabels: {compliance: pci}}\nallowedScopes: [openid]",
    );
    let mut world = inventory(
        vec![server("server", "")],
        vec![open_policy(), pci],
        vec![
            client("payments", "app", "", &format!("{WEB}\nscopes: [email]")),
            client("shop", "app", "", &format!("{WEB}\nscopes: [email]")),
        ],
    );
    world.namespaces.insert(
        "payments".into(),
        [("compliance".to_owned(), "pci".to_owned())].into(),
    );
    let evaluations = world.evaluate_all();
    assert_eq!(evaluations[0].governing.len(), 2);
    assert_eq!(evaluations[0].compliance, Compliance::NonCompliant);
    assert_eq!(evaluations[1].governing.len(), 1);
    assert_eq!(evaluations[1].compliance, Compliance::Compliant);
}

#[test]
fn the_most_restrictive_value_wins() {
    let web = policy(
        "web",
        "",
        "token: {accessTokenTTL: 15m, refreshTokenTTL: 24h}\nenforcePKCE: false\nclientAuthentication: {secretRotation: {enabled: true, schedule: '0 0 * * 0'}}",
    );
    let strict = policy(
        "strict",
        "",
        "token: {accessTokenTTL: 5m, idTokenTTL: 2m}\nclientAuthentication: {method: client_secret_post, secretRotation: {enabled: true, schedule: '0 * * * *'}}",
    );
    let effective = evaluate(vec![web.clone(), strict], client("team", "app", "", WEB))
        .effective
        .unwrap();
    assert_eq!(
        effective.access_token_ttl.map(|t| t.to_string()).as_deref(),
        Some("5m")
    );
    assert_eq!(
        effective
            .refresh_token_ttl
            .map(|t| t.to_string())
            .as_deref(),
        Some("24h")
    );
    assert_eq!(
        effective.id_token_ttl.map(|t| t.to_string()).as_deref(),
        Some("2m")
    );
    assert!(
        effective.require_pkce,
        "PKCE stays on unless every policy turns it off"
    );
    assert_eq!(
        effective.token_endpoint_auth_method,
        ClientAuthMethod::ClientSecretPost
    );
    assert_eq!(
        effective.secret_rotation_schedule.as_deref(),
        Some("0 * * * *"),
        "the most frequent rotation"
    );
    assert_eq!(effective.secret_name, "app-client-secret");

    let alone = evaluate(vec![web.clone()], client("team", "app", "", WEB))
        .effective
        .unwrap();
    assert!(
        !alone.require_pkce,
        "every governing policy turned PKCE off"
    );
    assert_eq!(
        alone.token_endpoint_auth_method,
        ClientAuthMethod::ClientSecretBasic
    );
    let public = evaluate(
        vec![web],
        client("team", "app", "", &format!("{WEB}\nclientType: Public")),
    )
    .effective
    .unwrap();
    assert!(public.require_pkce, "public clients always use PKCE");
    assert_eq!(public.token_endpoint_auth_method, ClientAuthMethod::None);
    assert_eq!(
        public.secret_rotation_schedule, None,
        "a public client has no secret to rotate"
    );
}

#[test]
fn an_unrestricted_client_gets_secure_defaults() {
    let effective = evaluate(
        vec![open_policy()],
        client("team", "app", "", &format!("{WEB}\nsecretName: app-oidc")),
    )
    .effective
    .unwrap();
    assert!(effective.require_pkce);
    assert_eq!(effective.access_token_ttl, None, "the provider's default");
    assert_eq!(effective.secret_name, "app-oidc");
    let service = evaluate(
        vec![open_policy()],
        client("team", "svc", "", "grantTypes: [client_credentials]"),
    )
    .effective
    .unwrap();
    assert!(
        !service.require_pkce,
        "PKCE only concerns the authorization code flow"
    );
}

#[test]
fn only_an_enforced_rule_of_a_revoke_policy_revokes_a_registration() {
    let spec = format!("{WEB}\nscopes: [openid, 'api:write']");
    let revoking = policy(
        "strict",
        "",
        "violationResponse: Revoke\nallowedScopes: [openid]",
    );
    let keeping = policy("keeping", "", "allowedScopes: [openid]");
    let auditing = policy(
        "auditing",
        "",
        "enforcement: Audit\nviolationResponse: Revoke\nallowedScopes: [openid]",
    );
    let evaluation = evaluate(vec![revoking.clone()], client("team", "app", "", &spec));
    assert_eq!(
        evaluation.revoked_by,
        [nauthera_shared::resources::ObjectRef::new(
            "security", "strict"
        )]
    );
    for others in [vec![keeping], vec![auditing]] {
        let evaluation = evaluate(others, client("team", "app", "", &spec));
        assert!(evaluation.revoked_by.is_empty(), "{evaluation:?}");
    }
    // A compliant client is never revoked, even under a revoking policy.
    let evaluation = evaluate(vec![revoking], client("team", "app", "", WEB));
    assert!(evaluation.revoked_by.is_empty());
}

#[test]
fn a_broken_revoke_policy_revokes_nothing() {
    let broken = policy(
        "broken",
        "",
        "violationResponse: Revoke\ntoken: {accessTokenTTL: soon}",
    );
    let evaluation = evaluate(vec![broken], client("team", "app", "", WEB));
    assert_eq!(evaluation.compliance, Compliance::NonCompliant);
    assert!(evaluation.revoked_by.is_empty());
}

/// The compiled errors of a policy, as `field: message` lines.
fn policy_errors(spec: &str) -> Vec<String> {
    let compiled = nauthera_shared::policy::CompiledPolicy::compile(&policy("p", "", spec));
    compiled.errors.iter().map(ToString::to_string).collect()
}

const NATIVE: &str = "clientType: Public\nredirectUris: ['com.example.app:/callback']";

#[test]
fn a_policy_may_require_confidential_clients() {
    let strict = policy("strict", "", "requireConfidentialClients: true");
    assert!(violations(vec![strict.clone()], WEB).is_empty());
    let public = format!("{WEB}\nclientType: Public");
    assert_eq!(
        violations(vec![strict, open_policy()], &public),
        [
            "spec.clientType: clientType Public is not allowed by policy security/strict (requireConfidentialClients: true); only a Confidential client, which can keep a secret, may register"
        ]
    );
    // The one reason, not also the method the same policy would give.
    let basic = policy(
        "basic",
        "",
        "requireConfidentialClients: true\nclientAuthentication: {method: client_secret_basic}",
    );
    let found = violations(vec![basic], &public);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("(requireConfidentialClients: true)"));
    let audit = policy(
        "audit",
        "",
        "enforcement: Audit\nrequireConfidentialClients: true",
    );
    let evaluation = evaluate(vec![audit], client("team", "app", "", &public));
    assert_eq!(evaluation.compliance, Compliance::AuditViolations);
}

#[test]
fn a_policy_that_refuses_every_client_is_invalid() {
    assert_eq!(
        policy_errors("requireConfidentialClients: true\nclientAuthentication: {method: none}"),
        [
            "spec.requireConfidentialClients: refuses Public clients, but clientAuthentication leaves Confidential clients no method (none is for Public clients only): no client could comply"
        ]
    );
    assert_eq!(
        policy_errors(
            "requireConfidentialClients: true\nclientAuthentication: {allowedMethods: [none]}"
        )
        .len(),
        1
    );
    assert!(
        policy_errors(
            "requireConfidentialClients: true\nclientAuthentication: {allowedMethods: [none, private_key_jwt]}"
        )
        .is_empty()
    );
}

#[test]
fn scopes_are_capped_by_the_smallest_max_scopes() {
    let loose = policy("loose", "", "maxScopes: 5");
    let tight = policy("tight", "", "maxScopes: 2");
    let spec = format!("{WEB}\nscopes: [openid, profile, email]");
    assert!(violations(vec![loose.clone()], &spec).is_empty());
    assert_eq!(
        violations(vec![loose, tight.clone()], &spec),
        [
            "spec.scopes: 3 scopes requested, but policy security/tight allows at most 2 (maxScopes: 2)"
        ]
    );
    assert!(
        violations(
            vec![tight],
            &format!("{WEB}\nscopes: [openid, profile, openid]")
        )
        .is_empty(),
        "a scope asked for twice counts once"
    );
    let none = policy("none", "", "maxScopes: 0");
    assert_eq!(
        violations(vec![none], &format!("{WEB}\nscopes: [openid]")),
        [
            "spec.scopes: 1 scope requested, but policy security/none allows at most 0 (maxScopes: 0)"
        ]
    );
}

#[test]
fn a_client_may_ask_for_any_method_the_policies_allow() {
    let either = policy(
        "either",
        "",
        "clientAuthentication: {method: client_secret_basic, allowedMethods: [client_secret_basic, private_key_jwt]}",
    );
    let jwt = format!(
        "{WEB}\ntokenEndpointAuthMethod: private_key_jwt\njwksUri: https://app.example.com/jwks.json"
    );
    let evaluation = evaluate(vec![either.clone()], client("team", "app", "", &jwt));
    assert!(
        evaluation.violations.is_empty(),
        "{:?}",
        evaluation.violations
    );
    assert_eq!(
        evaluation.effective.unwrap().token_endpoint_auth_method,
        ClientAuthMethod::PrivateKeyJwt
    );
    let default = evaluate(vec![either.clone()], client("team", "app", "", WEB));
    assert_eq!(
        default.effective.unwrap().token_endpoint_auth_method,
        ClientAuthMethod::ClientSecretBasic,
        "a client that names no method gets the policy's"
    );
    assert_eq!(
        violations(
            vec![either],
            &format!("{WEB}\ntokenEndpointAuthMethod: client_secret_post")
        ),
        [
            r#"spec.tokenEndpointAuthMethod: authentication method "client_secret_post" is not allowed by policy security/either (clientAuthentication.allowedMethods: client_secret_basic, private_key_jwt)"#
        ]
    );
    // A policy with one method and no list requires it, as before.
    let basic = policy(
        "basic",
        "",
        "clientAuthentication: {method: client_secret_basic}",
    );
    assert_eq!(
        violations(
            vec![basic],
            &format!("{WEB}\ntokenEndpointAuthMethod: client_secret_post")
        ),
        [
            r#"spec.tokenEndpointAuthMethod: authentication method "client_secret_post" is not allowed by policy security/basic, which requires client_secret_basic (clientAuthentication.method: client_secret_basic)"#
        ]
    );
}

#[test]
fn the_method_a_client_asks_for_must_suit_it() {
    assert_eq!(
        violations(
            vec![open_policy()],
            &format!("{WEB}\nclientType: Public\ntokenEndpointAuthMethod: client_secret_basic")
        ),
        [
            "spec.tokenEndpointAuthMethod: clientType Public cannot authenticate with client_secret_basic: a Public client keeps no secret or key, so its method is none"
        ]
    );
    assert_eq!(
        violations(
            vec![open_policy()],
            &format!("{WEB}\ntokenEndpointAuthMethod: none")
        ),
        [
            "spec.tokenEndpointAuthMethod: clientType Confidential cannot use method none; only a Public client can"
        ]
    );
    assert_eq!(
        violations(
            vec![open_policy()],
            &format!("{WEB}\ntokenEndpointAuthMethod: private_key_jwt")
        ),
        ["spec.jwksUri: spec.jwksUri is needed for tokenEndpointAuthMethod private_key_jwt"]
    );
    assert!(
        violations(
            vec![open_policy()],
            &format!("{WEB}\nclientType: Public\ntokenEndpointAuthMethod: none")
        )
        .is_empty()
    );
}

#[test]
fn the_default_method_must_be_allowed_too() {
    let keys_only = policy(
        "keys-only",
        "",
        "clientAuthentication: {allowedMethods: [private_key_jwt]}",
    );
    assert_eq!(
        violations(vec![keys_only.clone()], WEB),
        [
            "spec.tokenEndpointAuthMethod: the default method client_secret_basic is not allowed by policy security/keys-only (clientAuthentication.allowedMethods: private_key_jwt); name one it allows in spec.tokenEndpointAuthMethod"
        ]
    );
    let post = policy(
        "a-post",
        "",
        "clientAuthentication: {method: client_secret_post}",
    );
    assert_eq!(
        violations(vec![post, keys_only.clone()], WEB),
        [
            "spec.tokenEndpointAuthMethod: the default method client_secret_post (clientAuthentication.method of policy security/a-post) is not allowed by policy security/keys-only (clientAuthentication.allowedMethods: private_key_jwt); name one it allows in spec.tokenEndpointAuthMethod"
        ]
    );
    assert_eq!(
        violations(vec![keys_only], &format!("{WEB}\nclientType: Public")),
        [
            "spec.clientType: clientType Public authenticates with none, which policy security/keys-only does not allow (clientAuthentication.allowedMethods: private_key_jwt)"
        ]
    );
    let native = policy(
        "native",
        "",
        "clientAuthentication: {method: none, allowedMethods: [none, private_key_jwt]}",
    );
    assert!(violations(vec![native.clone()], &format!("{WEB}\nclientType: Public")).is_empty());
    assert_eq!(
        violations(vec![native], WEB),
        [
            "spec.clientType: clientType Confidential cannot use method none, which policy security/native gives by default (clientAuthentication.method: none); only a Public client can, or name one of private_key_jwt in spec.tokenEndpointAuthMethod"
        ]
    );
    assert_eq!(
        policy_errors(
            "clientAuthentication: {method: client_secret_post, allowedMethods: [client_secret_basic, private_key_jwt]}"
        ),
        [
            "spec.clientAuthentication.method: client_secret_post is not one of clientAuthentication.allowedMethods (client_secret_basic, private_key_jwt): the default must be a method clients may use"
        ]
    );
}

#[test]
fn policies_with_different_defaults_make_the_client_choose() {
    let basic = policy(
        "a-basic",
        "",
        "clientAuthentication: {method: client_secret_basic, allowedMethods: [client_secret_basic, private_key_jwt]}",
    );
    let jwt = policy(
        "b-jwt",
        "",
        "clientAuthentication: {method: private_key_jwt, allowedMethods: [private_key_jwt, client_secret_post]}",
    );
    let keys = "jwksUri: https://app.example.com/jwks.json";
    assert_eq!(
        violations(vec![basic.clone(), jwt.clone()], &format!("{WEB}\n{keys}")),
        [
            "spec.tokenEndpointAuthMethod: policy security/b-jwt gives clientAuthentication.method private_key_jwt by default but policy security/a-basic gives client_secret_basic; name one both allow in spec.tokenEndpointAuthMethod (private_key_jwt)"
        ]
    );
    let chosen = format!("{WEB}\n{keys}\ntokenEndpointAuthMethod: private_key_jwt");
    let evaluation = evaluate(
        vec![basic.clone(), jwt.clone()],
        client("team", "app", "", &chosen),
    );
    assert!(
        evaluation.violations.is_empty(),
        "{:?}",
        evaluation.violations
    );
    assert_eq!(
        evaluation.effective.unwrap().token_endpoint_auth_method,
        ClientAuthMethod::PrivateKeyJwt
    );
    assert_eq!(
        violations(
            vec![basic, jwt],
            &format!("{WEB}\ntokenEndpointAuthMethod: client_secret_basic")
        ),
        [
            r#"spec.tokenEndpointAuthMethod: authentication method "client_secret_basic" is not allowed by policy security/b-jwt (clientAuthentication.allowedMethods: private_key_jwt, client_secret_post)"#
        ]
    );
    let post_only = policy(
        "c-post",
        "",
        "clientAuthentication: {method: client_secret_post, allowedMethods: [client_secret_post]}",
    );
    let basic_only = policy(
        "a-basic",
        "",
        "clientAuthentication: {method: client_secret_basic, allowedMethods: [client_secret_basic]}",
    );
    assert_eq!(
        violations(vec![basic_only, post_only], WEB),
        [
            "spec.tokenEndpointAuthMethod: policy security/c-post gives clientAuthentication.method client_secret_post by default but policy security/a-basic gives client_secret_basic; no method is allowed by both, so no client can satisfy both"
        ]
    );
}

#[test]
fn native_apps_may_redirect_to_a_private_use_scheme_a_policy_allows() {
    let native = policy(
        "native",
        "",
        "redirectUris: {allowedSchemes: [com.example.app]}",
    );
    let evaluation = evaluate(vec![native.clone()], client("team", "app", "", NATIVE));
    assert!(
        evaluation.violations.is_empty(),
        "{:?}",
        evaluation.violations
    );
    let effective = evaluation.effective.unwrap();
    assert_eq!(effective.redirect_uris, ["com.example.app:/callback"]);
    assert!(effective.require_pkce, "a public client always uses PKCE");
    for uri in ["com.example.app://callback", "COM.Example.App:/callback"] {
        let spec = format!("clientType: Public\nredirectUris: ['{uri}']");
        assert!(violations(vec![native.clone()], &spec).is_empty(), "{uri}");
    }
    assert_eq!(
        violations(vec![native.clone(), policy("web", "", "")], NATIVE),
        [
            r#"spec.redirectUris[0]: redirect URI "com.example.app:/callback" uses the private-use scheme "com.example.app", which policy security/web does not allow (redirectUris.allowedSchemes: none)"#
        ]
    );
    assert_eq!(
        violations(
            vec![native.clone()],
            "clientType: Public\nredirectUris: ['org.other.app:/callback']"
        ),
        [
            r#"spec.redirectUris[0]: redirect URI "org.other.app:/callback" uses the private-use scheme "org.other.app", which policy security/native does not allow (redirectUris.allowedSchemes: com.example.app)"#
        ]
    );
    assert_eq!(
        violations(
            vec![native.clone()],
            &format!("{NATIVE}\npostLogoutRedirectUris: ['org.other.app:/bye']")
        ),
        [
            r#"spec.postLogoutRedirectUris[0]: redirect URI "org.other.app:/bye" uses the private-use scheme "org.other.app", which policy security/native does not allow (redirectUris.allowedSchemes: com.example.app)"#
        ]
    );
}

#[test]
fn private_use_schemes_keep_the_fixed_rules() {
    let native = policy(
        "native",
        "",
        "redirectUris: {allowedSchemes: [com.example.app]}",
    );
    let cases = [
        (
            "Confidential",
            "com.example.app:/callback",
            r#"redirect URI "com.example.app:/callback" uses a private-use scheme, which only a native app (clientType Public) may use"#,
        ),
        (
            "Public",
            "com.example.app:/callback#state",
            r##"redirect URI "com.example.app:/callback#state" must not have a fragment ("#…")"##,
        ),
        (
            "Public",
            "com.example.app:/*",
            r#"redirect URI "com.example.app:/*" must not contain a wildcard ("*")"#,
        ),
        // Not a reverse domain name: not a private-use scheme at all.
        (
            "Public",
            "myapp:/callback",
            r#"redirect URI "myapp:/callback" has no host"#,
        ),
    ];
    for (client_type, uri, message) in cases {
        let spec = format!("clientType: {client_type}\nredirectUris: ['{uri}']");
        assert_eq!(
            violations(vec![native.clone()], &spec),
            [format!("spec.redirectUris[0]: {message}")],
            "{uri}"
        );
    }
    assert_eq!(
        policy_errors("redirectUris: {allowedSchemes: [com.example.app, myapp, 'https']}"),
        [
            r#"spec.redirectUris.allowedSchemes[1]: "myapp" is not a private-use URI scheme: use a reverse domain name such as "com.example.app" (RFC 8252, section 7.1)"#,
            r#"spec.redirectUris.allowedSchemes[2]: "https" is not a private-use URI scheme: use a reverse domain name such as "com.example.app" (RFC 8252, section 7.1)"#,
        ]
    );
}

#[test]
fn only_a_client_that_authenticates_with_its_secret_has_it_rotated() {
    let rotating = policy(
        "rotating",
        "",
        "clientAuthentication: {allowedMethods: [client_secret_basic, client_secret_post, private_key_jwt], secretRotation: {enabled: true, schedule: '0 0 * * *'}}",
    );
    let rotation = |spec: &str| {
        evaluate(vec![rotating.clone()], client("team", "app", "", spec))
            .effective
            .unwrap()
            .secret_rotation_schedule
    };
    assert_eq!(rotation(WEB).as_deref(), Some("0 0 * * *"));
    assert_eq!(
        rotation(&format!(
            "{WEB}\ntokenEndpointAuthMethod: client_secret_post"
        ))
        .as_deref(),
        Some("0 0 * * *")
    );
    assert_eq!(
        rotation(&format!(
            "{WEB}\ntokenEndpointAuthMethod: private_key_jwt\njwksUri: https://app.example.com/jwks.json"
        )),
        None,
        "a client that signs with its own key uses no secret"
    );
}

#[test]
fn the_credentials_secret_template_needs_distinct_valid_keys_and_leaves_our_labels_and_annotation_alone()
 {
    let spec = format!(
        "{WEB}\nsecretTemplate:\n  labels: {{app.kubernetes.io/managed-by: argo, team: shop}}\n  annotations: {{reloader.stakater.com/match: 'true', auth.nauthera.io/template-keys: forged}}\n  keys: {{clientId: CLIENT_ID, clientSecret: CLIENT_ID, issuerUrl: 'issuer url'}}"
    );
    let found = violations(vec![open_policy()], &spec);
    assert_eq!(
        found,
        [
            r#"spec.secretTemplate.keys.clientSecret: key "CLIENT_ID" is already the key of clientId: each value needs a key of its own"#,
            r#"spec.secretTemplate.keys.issuerUrl: "issuer url" is not a Secret key (letters, digits, '-', '_' and '.')"#,
            r#"spec.secretTemplate.labels[app.kubernetes.io/managed-by]: label "app.kubernetes.io/managed-by" is Nauthera's own: it says whose Secret this is"#,
            r#"spec.secretTemplate.annotations[auth.nauthera.io/template-keys]: annotation "auth.nauthera.io/template-keys" is Nauthera's own: it remembers what the template set"#,
        ]
    );
    let rules: Vec<String> = evaluate(vec![open_policy()], client("team", "app", "", &spec))
        .violations
        .into_iter()
        .map(|violation| violation.rule)
        .collect();
    assert_eq!(
        rules,
        [
            "secretTemplate.keys",
            "secretTemplate.keys",
            "secretTemplate.labels",
            "secretTemplate.annotations"
        ]
    );
    let fine = format!(
        "{WEB}\nsecretTemplate:\n  labels: {{team: shop}}\n  keys: {{clientId: CLIENT_ID, clientSecret: CLIENT_SECRET}}"
    );
    assert!(violations(vec![open_policy()], &fine).is_empty());
}
