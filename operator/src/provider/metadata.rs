//! Client metadata both ways: what Nauthera sends ([`ClientMetadata`], RFC 7591 §2 plus
//! the documented `nauthera_*` extensions) and what a provider says it holds
//! ([`HeldMetadata`], read liberally), and how the two compare.
//!
//! Providers differ in what they keep and how they spell it: a list may come back as a
//! string, an unset field as `""`, defaults may be added, unknown metadata dropped. So a
//! comparison only looks at what the provider actually holds: a field it does not keep
//! is reported as *unheld* (a capability it lacks), never as drift to be rewritten.

use std::collections::{BTreeMap, BTreeSet};

use nauthera_shared::policy::EffectiveSettings;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What is registered for a client: the effective settings, in RFC 7591 terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    /// Space-separated, as RFC 7591 §2 has it.
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nauthera_access_token_ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nauthera_refresh_token_ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nauthera_id_token_ttl: Option<u64>,
    #[serde(default)]
    pub nauthera_require_pkce: bool,
}

impl ClientMetadata {
    /// The registration of a client with these effective settings.
    pub fn from_settings(client_name: &str, settings: &EffectiveSettings) -> Self {
        let grant_types: Vec<String> = settings
            .grant_types
            .iter()
            .map(|grant| grant.as_str().to_owned())
            .collect();
        let response_types = if grant_types.iter().any(|g| g == "authorization_code") {
            vec!["code".to_owned()]
        } else {
            Vec::new()
        };
        let seconds = |lifetime: Option<nauthera_shared::duration::Lifetime>| {
            lifetime.map(|l| l.as_secs().max(1))
        };
        Self {
            client_name: client_name.to_owned(),
            redirect_uris: settings.redirect_uris.clone(),
            post_logout_redirect_uris: settings.post_logout_redirect_uris.clone(),
            grant_types,
            response_types,
            token_endpoint_auth_method: settings.token_endpoint_auth_method.as_str().to_owned(),
            scope: settings.scopes.join(" "),
            jwks_uri: settings.jwks_uri.clone(),
            nauthera_access_token_ttl: seconds(settings.access_token_ttl),
            nauthera_refresh_token_ttl: seconds(settings.refresh_token_ttl),
            nauthera_id_token_ttl: seconds(settings.id_token_ttl),
            nauthera_require_pkce: settings.require_pkce,
        }
    }

    /// Whether `other` says the same, order of lists and scopes aside: a change of intent
    /// is a change of these, not of their order.
    pub fn same_as(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }

    fn normalized(&self) -> Self {
        let mut copy = self.clone();
        for list in [
            &mut copy.redirect_uris,
            &mut copy.post_logout_redirect_uris,
            &mut copy.grant_types,
            &mut copy.response_types,
        ] {
            list.sort();
            list.dedup();
        }
        let scopes: BTreeSet<&str> = self.scope.split_whitespace().collect();
        copy.scope = scopes.into_iter().collect::<Vec<_>>().join(" ");
        copy
    }

    /// The fields as [`Held`] values, for comparison with what a provider holds; a field
    /// with nothing to say (empty, unset, `false`) is left out.
    fn fields(&self) -> BTreeMap<&'static str, Held> {
        let mut fields = BTreeMap::new();
        let mut put = |name: &'static str, value: Option<Held>| {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                fields.insert(name, value);
            }
        };
        put("client_name", Some(Held::Text(self.client_name.clone())));
        put("redirect_uris", Some(Held::set(&self.redirect_uris)));
        put(
            "post_logout_redirect_uris",
            Some(Held::set(&self.post_logout_redirect_uris)),
        );
        put("grant_types", Some(Held::set(&self.grant_types)));
        put("response_types", Some(Held::set(&self.response_types)));
        put(
            "token_endpoint_auth_method",
            Some(Held::Text(self.token_endpoint_auth_method.clone())),
        );
        put(
            "scope",
            Some(Held::set(self.scope.split_whitespace().map(str::to_owned))),
        );
        put("jwks_uri", self.jwks_uri.clone().map(Held::Text));
        put(
            "nauthera_access_token_ttl",
            self.nauthera_access_token_ttl.map(Held::Number),
        );
        put(
            "nauthera_refresh_token_ttl",
            self.nauthera_refresh_token_ttl.map(Held::Number),
        );
        put(
            "nauthera_id_token_ttl",
            self.nauthera_id_token_ttl.map(Held::Number),
        );
        put(
            "nauthera_require_pkce",
            self.nauthera_require_pkce.then_some(Held::Flag(true)),
        );
        fields
    }

    /// How the provider's view differs from this, field by field.
    pub fn compare(&self, held: &HeldMetadata) -> Comparison {
        let mut comparison = Comparison::default();
        for (name, wanted) in self.fields() {
            match held.fields.get(name) {
                None => comparison.unheld.push(name),
                Some(value) if !agrees(name, &wanted, value) => comparison.drifted.push(name),
                Some(_) => {}
            }
        }
        // Redirect URIs the provider added on its own are a way in: they count as drift
        // even when Nauthera registered none.
        for name in ["redirect_uris", "post_logout_redirect_uris"] {
            let wanted_none = match name {
                "redirect_uris" => self.redirect_uris.is_empty(),
                _ => self.post_logout_redirect_uris.is_empty(),
            };
            if wanted_none && held.fields.contains_key(name) {
                comparison.drifted.push(name);
            }
        }
        comparison
    }
}

/// Whether a held value agrees with the wanted one. Grant and response types may carry
/// the provider's own additions (some add `authorization_code` to every client); every
/// other field must say exactly what was sent.
fn agrees(name: &str, wanted: &Held, held: &Held) -> bool {
    match (name, wanted, held) {
        ("grant_types" | "response_types", Held::Set(wanted), Held::Set(held)) => {
            wanted.is_subset(held)
        }
        ("token_endpoint_auth_method", Held::Text(wanted), Held::Set(held)) => {
            held.len() == 1 && held.contains(wanted)
        }
        _ => wanted == held,
    }
}

/// Where a provider's view and the wanted metadata part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Fields the provider holds with another value: changed there, to be put back.
    pub drifted: Vec<&'static str>,
    /// Fields sent that the provider does not keep: a capability it lacks, not drift.
    pub unheld: Vec<&'static str>,
}

impl Comparison {
    pub fn in_sync(&self) -> bool {
        self.drifted.is_empty()
    }
}

/// One field's value as a provider holds it, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Held {
    Text(String),
    Set(BTreeSet<String>),
    Number(u64),
    Flag(bool),
}

impl Held {
    fn set(items: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        Self::Set(
            items
                .into_iter()
                .map(|item| item.as_ref().to_owned())
                .filter(|item| !item.is_empty())
                .collect(),
        )
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Text(text) => text.is_empty(),
            Self::Set(set) => set.is_empty(),
            Self::Number(_) => false,
            Self::Flag(flag) => !flag,
        }
    }
}

/// The metadata a provider reports holding, read liberally: strings or lists, numbers or
/// numeric strings, `""` and `[]` as not held, unknown fields ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldMetadata {
    fields: BTreeMap<&'static str, Held>,
}

const TEXT_FIELDS: [&str; 3] = ["client_name", "jwks_uri", "token_endpoint_auth_method"];
const SET_FIELDS: [&str; 4] = [
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "response_types",
];
const NUMBER_FIELDS: [&str; 3] = [
    "nauthera_access_token_ttl",
    "nauthera_refresh_token_ttl",
    "nauthera_id_token_ttl",
];

impl HeldMetadata {
    /// Reads what a provider answered (a registration, a read or an update).
    pub fn from_answer(answer: &serde_json::Map<String, Value>) -> Self {
        let mut fields = BTreeMap::new();
        for name in TEXT_FIELDS {
            let value = match (name, answer.get(name)) {
                // One provider answers the method as a list of one.
                ("token_endpoint_auth_method", Some(Value::Array(_))) => {
                    list(answer.get(name)).map(Held::Set)
                }
                (_, value) => text(value).map(Held::Text),
            };
            if let Some(value) = value {
                fields.insert(name, value);
            }
        }
        for name in SET_FIELDS {
            if let Some(set) = list(answer.get(name)) {
                fields.insert(name, Held::Set(set));
            }
        }
        if let Some(scopes) = list(answer.get("scope")) {
            fields.insert("scope", Held::Set(scopes));
        }
        for name in NUMBER_FIELDS {
            if let Some(number) = number(answer.get(name)) {
                fields.insert(name, Held::Number(number));
            }
        }
        if let Some(flag) = flag(answer.get("nauthera_require_pkce")) {
            fields.insert("nauthera_require_pkce", Held::Flag(flag));
        }
        Self { fields }
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    }
}

/// A list, a single string, or a space-separated string (`scope`), as a set.
fn list(value: Option<&Value>) -> Option<BTreeSet<String>> {
    let set: BTreeSet<String> = match value? {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| text(Some(item)))
            .flat_map(|item| {
                item.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect(),
        Value::String(text) => text.split_whitespace().map(str::to_owned).collect(),
        _ => return None,
    };
    (!set.is_empty()).then_some(set)
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wanted() -> ClientMetadata {
        ClientMetadata {
            client_name: "Orders".into(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            response_types: vec![],
            token_endpoint_auth_method: "client_secret_basic".into(),
            scope: "api:read api:write".into(),
            jwks_uri: None,
            nauthera_access_token_ttl: Some(900),
            nauthera_refresh_token_ttl: None,
            nauthera_id_token_ttl: None,
            nauthera_require_pkce: true,
        }
    }

    fn held(answer: &Value) -> HeldMetadata {
        HeldMetadata::from_answer(answer.as_object().unwrap())
    }

    #[test]
    fn an_echo_of_everything_sent_is_in_sync_and_holds_everything() {
        let echo = serde_json::to_value(wanted()).unwrap();
        assert_eq!(wanted().compare(&held(&echo)), Comparison::default());
    }

    #[test]
    fn a_provider_that_drops_unknown_metadata_and_scope_is_in_sync_but_lacks_them() {
        // As Glewlwyd reads a client back: the method as a list, defaults added, empty
        // strings for what it does not hold, no scope and no nauthera_* fields.
        let answer = json!({
            "client_id": "x", "client_name": "Orders", "description": "",
            "token_endpoint_auth_method": ["client_secret_basic"],
            "grant_types": ["authorization_code", "client_credentials"],
            "response_types": ["code"], "redirect_uris": [], "jwks_uri": ""
        });
        let comparison = wanted().compare(&held(&answer));
        assert!(comparison.in_sync(), "{comparison:?}");
        assert_eq!(
            comparison.unheld,
            [
                "nauthera_access_token_ttl",
                "nauthera_require_pkce",
                "scope"
            ]
        );
    }

    #[test]
    fn a_value_changed_at_the_provider_is_drift() {
        let mut echo = serde_json::to_value(wanted()).unwrap();
        echo["nauthera_access_token_ttl"] = json!("3600");
        echo["scope"] = json!(["api:read"]);
        echo["redirect_uris"] = json!(["https://evil.example.com/cb"]);
        let comparison = wanted().compare(&held(&echo));
        assert_eq!(
            comparison.drifted,
            ["nauthera_access_token_ttl", "scope", "redirect_uris"]
        );
    }

    #[test]
    fn order_is_not_a_change_of_intent() {
        let mut reordered = wanted();
        reordered.scope = "api:write  api:read".into();
        assert!(wanted().same_as(&reordered));
        reordered.nauthera_access_token_ttl = Some(300);
        assert!(!wanted().same_as(&reordered));
    }
}
