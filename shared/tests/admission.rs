//! Which findings refuse a write at admission and which only warn: the verdict, over
//! plain objects (the operator's webhook tests carry it through AdmissionReviews).

use nauthera_shared::fixtures::{client, inventory, policy, server};
use nauthera_shared::policy::admission::{Judged, Verdict, verdict};
use nauthera_shared::resources::{AuthClient, AuthPolicy};

const WEB: &str = "redirectUris: [https://app.example.com/callback]";

/// The verdict on `new` (over `old`, for an update) under these policies of
/// `security/server`.
fn judge(policies: Vec<AuthPolicy>, new: &AuthClient, old: Option<&AuthClient>) -> Verdict {
    let evaluator = inventory(vec![server("server", "")], policies, Vec::new()).evaluator();
    let old = old.map(|old| Judged::new(&evaluator, old));
    verdict(&Judged::new(&evaluator, new), old.as_ref())
}

fn scoped(scopes: &str) -> AuthClient {
    client("team", "app", "", &format!("{WEB}\nscopes: [{scopes}]"))
}

fn only_openid(enforcement: &str) -> AuthPolicy {
    policy(
        "narrow",
        "",
        &format!("enforcement: {enforcement}\nallowedScopes: [openid]"),
    )
}

/// Whether a violation naming `about` was let through as one the object already had.
fn kept_as_warning(verdict: &Verdict, about: &str) -> bool {
    verdict
        .warnings
        .iter()
        .any(|w| w.contains(about) && w.contains("already so before this change"))
}

/// `client` with one more label: an unrelated edit.
fn labelled(client: &AuthClient, key: &str, value: &str) -> AuthClient {
    let mut edited = client.clone();
    edited
        .metadata
        .labels
        .get_or_insert_default()
        .insert(key.to_owned(), value.to_owned());
    edited
}

fn rules(verdict: &Verdict) -> Vec<&str> {
    verdict.refused.iter().map(|v| v.rule.as_str()).collect()
}

#[test]
fn a_compliant_client_is_admitted_without_a_word() {
    let verdict = judge(vec![only_openid("Enforce")], &scoped("openid"), None);
    assert_eq!(verdict, Verdict::default());
    assert!(verdict.admitted());
    assert_eq!(verdict.message(), None);
}

#[test]
fn an_enforced_violation_refuses_with_the_engines_sentence_first() {
    let bad = client(
        "team",
        "app",
        "",
        "redirectUris: ['http://app.example.com/cb#x']\nscopes: [openid, groups]",
    );
    let verdict = judge(vec![only_openid("Enforce")], &bad, None);
    assert!(!verdict.admitted());
    assert_eq!(
        rules(&verdict),
        [
            "redirectUris.noFragment",
            "redirectUris.https",
            "allowedScopes"
        ]
    );
    let message = verdict.message().unwrap();
    assert!(
        message.starts_with("spec.redirectUris[0]: "),
        "the first violation leads: {message}"
    );
    assert_eq!(message.matches("; ").count(), 2, "{message}");
}

#[test]
fn an_audit_policy_only_warns() {
    let verdict = judge(vec![only_openid("Audit")], &scoped("openid, groups"), None);
    assert!(verdict.admitted());
    assert_eq!(verdict.warnings.len(), 1);
    assert!(verdict.warnings[0].ends_with("(audit only)"), "{verdict:?}");
}

#[test]
fn an_update_is_refused_only_for_what_it_introduces() {
    let policies = || vec![only_openid("Enforce")];
    let before = scoped("openid, groups");
    // An edit that keeps the old violation (and moves it to another index) is admitted.
    let relabelled = scoped("email, groups");
    let verdict = judge(policies(), &relabelled, Some(&before));
    assert_eq!(
        rules(&verdict),
        ["allowedScopes"],
        "email is new: {verdict:?}"
    );
    assert!(verdict.refused[0].message.contains("email"));
    assert!(kept_as_warning(&verdict, "groups"), "{verdict:?}");
    let reordered = client(
        "team",
        "app",
        "",
        &format!("{WEB}\nscopes: [groups, openid]"),
    );
    let verdict = judge(policies(), &reordered, Some(&before));
    assert!(verdict.admitted(), "{verdict:?}");
    // The same edit as a create is refused.
    assert!(!judge(policies(), &reordered, None).admitted());
}

#[test]
fn what_is_not_the_clients_own_doing_only_warns() {
    // A server that does not exist yet (GitOps may apply the client first).
    let elsewhere = client(
        "team",
        "app",
        "",
        &format!("{WEB}\nauthServerRef: {{name: later, namespace: security}}"),
    );
    let verdict = judge(vec![only_openid("Enforce")], &elsewhere, None);
    assert!(verdict.admitted(), "{verdict:?}");
    assert!(
        verdict.warnings[0].ends_with("the operator provisions nothing until this is resolved"),
        "{verdict:?}"
    );
    // A governing policy that is itself invalid.
    let broken = policy("broken", "", "token: {accessTokenTTL: soon}");
    let verdict = judge(vec![broken], &scoped("openid"), None);
    assert!(verdict.admitted(), "{verdict:?}");
    assert!(
        verdict
            .warnings
            .iter()
            .any(|w| w.ends_with("the operator withholds this client until the policy is fixed")),
        "{verdict:?}"
    );
}

#[test]
fn without_a_governing_policy_only_the_fixed_rules_refuse() {
    let bad = client(
        "team",
        "app",
        "",
        "redirectUris: ['http://app.example.com/cb']\nscopes: [anything]",
    );
    let verdict = judge(Vec::new(), &bad, None);
    assert_eq!(rules(&verdict), ["redirectUris.https"], "{verdict:?}");
}

#[test]
fn an_ungoverned_client_keeping_a_fixed_violation_it_had_only_warns() {
    let before = client(
        "team",
        "app",
        "",
        "redirectUris: ['http://app.example.com/cb']",
    );
    let relabelled = labelled(&before, "touched", "yes");
    let verdict = judge(Vec::new(), &relabelled, Some(&before));
    assert!(verdict.admitted(), "{verdict:?}");
    assert!(kept_as_warning(&verdict, "redirectUris"), "{verdict:?}");
}

#[test]
fn a_policy_newly_governing_refuses_even_under_a_rule_already_broken() {
    // Before, only `narrow` governed the client; now `strict` (same rule, same sentence
    // but its own) governs it too: its finding is new, and refuses.
    let strict = || {
        policy(
            "strict",
            "tier: strict",
            "enforcement: Enforce\nallowedScopes: [openid]\nclientSelector: {matchLabels: {tier: strict}}",
        )
    };
    let before = scoped("openid, groups");
    let now = labelled(&before, "tier", "strict");
    let verdict = judge(vec![only_openid("Enforce"), strict()], &now, Some(&before));
    assert_eq!(rules(&verdict), ["allowedScopes"], "{verdict:?}");
    assert_eq!(
        verdict.refused[0].policy.as_deref(),
        Some("security/strict")
    );
    assert!(verdict.refused[0].message.contains("groups"));
    assert!(
        kept_as_warning(&verdict, "groups"),
        "narrow's finding is old: {verdict:?}"
    );
}
