//! The labels and annotations a client's `secretTemplate` put on its credentials Secret,
//! remembered on the Secret itself: one dropped from the template is taken off again —
//! and only those; what other tools (Argo CD, Reloader) added stays.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use serde::{Deserialize, Serialize};

/// The annotation that remembers them: their keys, as JSON (Nauthera's own: a template
/// that sets it breaks rule `secretTemplate.annotations`).
pub const TEMPLATE_KEYS: &str = nauthera_shared::policy::TEMPLATE_KEYS_ANNOTATION;

/// The keys of the labels and annotations a template sets.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateKeys {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub labels: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub annotations: BTreeSet<String>,
}

impl TemplateKeys {
    /// What a template sets, leaving out `own` labels (Nauthera's, which always stay)
    /// and the remembering annotation itself.
    pub fn of(
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        own: &[&str],
    ) -> Self {
        Self {
            labels: labels
                .keys()
                .filter(|key| !own.contains(&key.as_str()))
                .cloned()
                .collect(),
            annotations: annotations
                .keys()
                .filter(|key| *key != TEMPLATE_KEYS)
                .cloned()
                .collect(),
        }
    }

    /// As remembered on a Secret: nothing, when it has no such annotation (or one that
    /// cannot be read).
    pub fn on(secret: &Secret) -> Self {
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(TEMPLATE_KEYS))
            .and_then(|value| serde_json::from_str(value).ok())
            .unwrap_or_default()
    }

    /// The annotation's value; none when the template sets nothing.
    pub fn annotation(&self) -> Option<String> {
        if self.labels.is_empty() && self.annotations.is_empty() {
            return None;
        }
        serde_json::to_string(self).ok()
    }
}

/// Labels and annotations an earlier template set on `existing` that `wanted` no longer
/// sets: to be removed (with the remembering annotation, when `wanted` has none).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub labels: Vec<String>,
    pub annotations: Vec<String>,
}

impl Dropped {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

pub fn dropped(existing: &Secret, wanted: &Secret) -> Dropped {
    let before = TemplateKeys::on(existing);
    let now = TemplateKeys::on(wanted);
    // Remembered then, not set now, and still there.
    let gone =
        |then: &BTreeSet<String>, now: &BTreeSet<String>, on: Option<&BTreeMap<String, String>>| {
            then.difference(now)
                .filter(|key| on.is_some_and(|on| on.contains_key(*key)))
                .cloned()
                .collect()
        };
    let mut dropped = Dropped {
        labels: gone(
            &before.labels,
            &now.labels,
            existing.metadata.labels.as_ref(),
        ),
        annotations: gone(
            &before.annotations,
            &now.annotations,
            existing.metadata.annotations.as_ref(),
        ),
    };
    let remembered = |secret: &Secret| {
        secret
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|on| on.contains_key(TEMPLATE_KEYS))
    };
    if remembered(existing) && !remembered(wanted) {
        dropped.annotations.push(TEMPLATE_KEYS.to_owned());
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A Secret as a template with these labels and annotations writes it, plus `extra`
    /// annotations other tools added.
    fn written(
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Secret {
        let keys = TemplateKeys::of(
            &map(labels),
            &map(annotations),
            &["app.kubernetes.io/managed-by"],
        );
        let mut all = map(annotations);
        all.extend(map(extra));
        if let Some(value) = keys.annotation() {
            all.insert(TEMPLATE_KEYS.to_owned(), value);
        }
        let mut labels = map(labels);
        labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            "nauthera-operator".to_owned(),
        );
        Secret {
            metadata: ObjectMeta {
                labels: Some(labels),
                annotations: (!all.is_empty()).then_some(all),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    #[test]
    fn what_the_template_no_longer_sets_is_dropped_and_nothing_else() {
        let existing = written(
            &[("part-of", "shop"), ("tier", "web")],
            &[("reloader/match", "true")],
            &[("example.com/seen", "yes")],
        );
        let wanted = written(&[("tier", "web")], &[], &[]);
        assert_eq!(
            dropped(&existing, &wanted),
            Dropped {
                labels: vec!["part-of".to_owned()],
                annotations: vec!["reloader/match".to_owned()],
            },
            "the template still sets a label, so the remembering annotation stays (rewritten)"
        );
    }

    #[test]
    fn an_emptied_template_drops_the_remembering_annotation_too() {
        let existing = written(&[("part-of", "shop")], &[], &[("example.com/seen", "yes")]);
        let wanted = written(&[], &[], &[]);
        assert_eq!(
            dropped(&existing, &wanted),
            Dropped {
                labels: vec!["part-of".to_owned()],
                annotations: vec![TEMPLATE_KEYS.to_owned()],
            }
        );
    }

    #[test]
    fn nauthera_own_labels_are_never_remembered_so_never_dropped() {
        let keys = TemplateKeys::of(
            &map(&[
                ("app.kubernetes.io/managed-by", "someone"),
                ("part-of", "shop"),
            ]),
            &map(&[(TEMPLATE_KEYS, "forged")]),
            &["app.kubernetes.io/managed-by"],
        );
        assert_eq!(keys.labels, BTreeSet::from(["part-of".to_owned()]));
        assert!(keys.annotations.is_empty());
    }

    #[test]
    fn the_labels_the_operator_sets_are_the_ones_the_policy_reserves() {
        let reserved = nauthera_shared::policy::RESERVED_LABELS;
        assert!(reserved.contains(&crate::secrets::MANAGED_BY.0));
        assert!(reserved.contains(&crate::secrets::CLIENT_NAME_LABEL));
    }

    #[test]
    fn a_secret_written_before_remembering_drops_nothing() {
        let mut existing = written(&[("part-of", "shop")], &[], &[]);
        existing.metadata.annotations = None;
        assert!(dropped(&existing, &written(&[], &[], &[])).is_empty());
    }

    #[test]
    fn a_pending_drop_is_a_difference_until_it_is_written() {
        let existing = written(&[("part-of", "shop")], &[], &[("example.com/seen", "yes")]);
        let wanted = written(&[], &[], &[]);
        assert!(
            !crate::secrets::same_data(&existing, &wanted),
            "a label to take off is a write"
        );
        let mut after = existing.clone();
        after.metadata.labels.as_mut().unwrap().remove("part-of");
        after
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(TEMPLATE_KEYS);
        assert!(
            crate::secrets::same_data(&after, &wanted),
            "once taken off, nothing more to write (another tool's annotation stays)"
        );
    }

    #[test]
    fn an_unchanged_template_drops_nothing() {
        let secret = written(&[("part-of", "shop")], &[("reloader/match", "true")], &[]);
        assert!(dropped(&secret, &secret.clone()).is_empty());
    }
}
