//! The `/` filter: words that must all match. A word matches a client by name or
//! namespace, or by the server or policy it sits under; `ns:`, `label:` (or `key=value`)
//! and `state:` narrow by namespace, label and state.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use nauthera_shared::resources::ObjectRef;

use crate::model::State;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    /// Case-insensitive part of a name.
    Text(String),
    Namespace(String),
    /// `key` (present) or `key=value`.
    Label(String, Option<String>),
    State(State),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
}

impl Filter {
    /// Reads what the user typed; an error names the word and what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for word in text.split_whitespace() {
            let term = if let Some(state) = word.strip_prefix("state:") {
                let Some(state) = State::parse(state) else {
                    let known: Vec<&str> = State::ALL.iter().map(|s| s.name()).collect();
                    return Err(format!(
                        "unknown state {state:?} in filter (one of: {})",
                        known.join(", ")
                    ));
                };
                Term::State(state)
            } else if let Some(namespace) = word
                .strip_prefix("ns:")
                .or_else(|| word.strip_prefix("namespace:"))
            {
                Term::Namespace(namespace.to_owned())
            } else if let Some(label) = word.strip_prefix("label:") {
                label_term(label)
            } else if word.contains('=') {
                label_term(word)
            } else {
                Term::Text(word.to_lowercase())
            };
            terms.push(term);
        }
        Ok(Self { terms })
    }

    pub fn is_active(&self) -> bool {
        !self.terms.is_empty()
    }

    pub fn matches_client(
        &self,
        client: &ObjectRef,
        labels: &BTreeMap<String, String>,
        state: State,
        ancestors: &[&str],
    ) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Text(text) => {
                // `namespace/name`, without building it for every client on every keystroke.
                let in_name = if text.contains('/') {
                    contains(&client.to_string(), text)
                } else {
                    contains(&client.namespace, text) || contains(&client.name, text)
                };
                in_name || ancestors.iter().any(|label| contains(label, text))
            }
            Term::Namespace(namespace) => &client.namespace == namespace,
            Term::Label(key, value) => labels
                .get(key)
                .is_some_and(|actual| value.as_ref().is_none_or(|v| v == actual)),
            Term::State(wanted) => state == *wanted,
        })
    }

    /// A server or policy shown for its own name, when the filter is only about names.
    pub fn matches_branch(&self, label: &str, ancestors: &[&str]) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Text(text) => {
                contains(label, text) || ancestors.iter().any(|label| contains(label, text))
            }
            _ => false,
        })
    }

    /// The filter in words, for the status bar.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for term in &self.terms {
            if !text.is_empty() {
                text.push(' ');
            }
            let _ = match term {
                Term::Text(word) => write!(text, "{word}"),
                Term::Namespace(namespace) => write!(text, "ns:{namespace}"),
                Term::Label(key, Some(value)) => write!(text, "{key}={value}"),
                Term::Label(key, None) => write!(text, "label:{key}"),
                Term::State(state) => write!(text, "state:{}", state.name()),
            };
        }
        text
    }
}

fn label_term(text: &str) -> Term {
    match text.split_once('=') {
        Some((key, value)) => Term::Label(key.to_owned(), Some(value.to_owned())),
        None => Term::Label(text.to_owned(), None),
    }
}

fn contains(haystack: &str, lowercase_needle: &str) -> bool {
    if !lowercase_needle.is_ascii() {
        return haystack.to_lowercase().contains(lowercase_needle);
    }
    // Names are ASCII: compare in place rather than lowercasing a copy of each.
    let needle = lowercase_needle.as_bytes();
    needle.is_empty()
        || haystack
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_word_must_match() {
        let filter = Filter::parse("shop state:non-compliant").unwrap();
        let client = ObjectRef::new("shop", "legacy-admin");
        assert!(filter.matches_client(&client, &labels(&[]), State::NonCompliant, &[]));
        assert!(!filter.matches_client(&client, &labels(&[]), State::Compliant, &[]));
        let elsewhere = ObjectRef::new("payments", "checkout");
        assert!(!filter.matches_client(&elsewhere, &labels(&[]), State::NonCompliant, &[]));
    }

    #[test]
    fn words_match_the_branches_a_client_sits_under() {
        let filter = Filter::parse("WEB-APPS").unwrap();
        let client = ObjectRef::new("shop", "storefront");
        assert!(filter.matches_client(
            &client,
            &labels(&[]),
            State::Compliant,
            &["web-apps-policy"]
        ));
        assert!(!filter.matches_client(
            &client,
            &labels(&[]),
            State::Compliant,
            &["native-apps-policy"]
        ));
        assert!(filter.matches_branch("web-apps-policy", &[]));
    }

    #[test]
    fn namespaces_and_labels() {
        let client = ObjectRef::new("mobile", "field-app");
        let app = labels(&[("app-type", "native")]);
        let matches = |text: &str| {
            Filter::parse(text)
                .unwrap()
                .matches_client(&client, &app, State::Compliant, &[])
        };
        assert!(matches("ns:mobile"));
        assert!(!matches("ns:mob"));
        assert!(matches("app-type=native"));
        assert!(matches("label:app-type"));
        assert!(!matches("label:app-type=service"));
    }

    #[test]
    fn an_unknown_state_is_refused_with_the_choices() {
        let error = Filter::parse("state:broken").unwrap_err();
        assert_eq!(
            error,
            "unknown state \"broken\" in filter (one of: compliant, audit, pending, non-compliant, error)"
        );
    }

    #[test]
    fn state_names_are_forgiving() {
        for text in [
            "state:noncompliant",
            "state:Non-Compliant",
            "state:non_compliant",
        ] {
            let filter = Filter::parse(text).unwrap();
            assert_eq!(filter.describe(), "state:non-compliant");
        }
    }
}
