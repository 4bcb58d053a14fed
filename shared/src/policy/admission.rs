//! Which of the engine's findings refuse a write to an AuthClient at admission, and which
//! are only worth a warning. Pure: the operator's webhook only carries the verdict to the
//! API server.
//!
//! - **Refused**: what the client's own fields break — Nauthera's fixed rules, and the
//!   rules of every governing `Enforce` policy — with the engine's exact sentences, the
//!   first one leading the message.
//! - **Admitted with a warning**: an `Audit` policy's findings; and everything that is not
//!   the client's own doing, which the reconcile withholds anyway: a missing or invalid
//!   server (GitOps may apply the client before its server), a namespace the server does
//!   not trust, no governing policy, a governing policy that is itself invalid.
//! - **An update is refused only for what it introduces.** A violation the object already
//!   had (a policy tightened after it was applied) is a warning: an unrelated edit, the
//!   operator's own finalizer, a label, never gets stuck on it.

use std::collections::HashSet;

use super::{Evaluation, Evaluator, PreparedClient, Standing, Violation, rule};
use crate::resources::AuthClient;

/// One AuthClient as the engine sees it: its evaluation, and what the fixed rules say of
/// its own fields (an evaluation stopped at the server does not carry them).
#[derive(Clone, Debug)]
pub struct Judged {
    pub evaluation: Evaluation,
    pub fixed: Vec<Violation>,
}

impl Judged {
    pub fn new(evaluator: &Evaluator, client: &AuthClient) -> Self {
        let prepared = PreparedClient::new(client);
        Self {
            evaluation: evaluator.evaluate_prepared(client, &prepared),
            fixed: prepared.fixed_violations().to_vec(),
        }
    }

    /// What would refuse this object: its own fields against the fixed rules and, once
    /// governed, against every `Enforce` policy (a broken policy is not the client's fault).
    fn refusing(&self) -> Vec<&Violation> {
        if self.evaluation.standing == Standing::Governed {
            self.evaluation
                .enforced_violations()
                .filter(|violation| violation.rule != rule::POLICY_VALID)
                .collect()
        } else {
            self.fixed.iter().collect()
        }
    }

    /// What is only worth a warning.
    fn warnings(&self) -> Vec<String> {
        if self.evaluation.standing != Standing::Governed {
            return self
                .evaluation
                .violations
                .iter()
                .map(|violation| {
                    format!(
                        "{}: admitted without a policy check; the operator provisions nothing until this is resolved",
                        violation.message
                    )
                })
                .collect();
        }
        self.evaluation
            .violations
            .iter()
            .filter_map(|violation| {
                if !violation.is_enforced() {
                    Some(violation.to_string())
                } else if violation.rule == rule::POLICY_VALID {
                    Some(format!(
                        "{}: admitted; the operator withholds this client until the policy is fixed",
                        violation.message
                    ))
                } else {
                    None
                }
            })
            .collect()
    }
}

/// What the webhook says of one write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The violations that refuse the write, the one the message leads with first; empty
    /// when it is admitted.
    pub refused: Vec<Violation>,
    /// What `kubectl` prints as `Warning: …`.
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn admitted(&self) -> bool {
        self.refused.is_empty()
    }

    /// The refusal's message: every refusing violation, the first leading.
    pub fn message(&self) -> Option<String> {
        (!self.refused.is_empty()).then(|| {
            self.refused
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// The verdict on an object whose engine findings are `new`, written over an object whose
/// findings (against the same servers and policies) are `old`, if it is an update.
pub fn verdict(new: &Judged, old: Option<&Judged>) -> Verdict {
    // The value broken is in each sentence, so a violation keeps its identity when an
    // edit moves it to another index of a list.
    let key = |violation: &Violation| {
        (
            violation.rule.clone(),
            violation.policy.clone(),
            violation.message.clone(),
        )
    };
    let before: HashSet<_> = old
        .map(|old| old.refusing().into_iter().map(key).collect())
        .unwrap_or_default();
    let mut verdict = Verdict::default();
    for violation in new.refusing() {
        if before.contains(&key(violation)) {
            verdict.warnings.push(format!(
                "{violation} (already so before this change; the operator withholds the client until it is fixed)"
            ));
        } else {
            verdict.refused.push(violation.clone());
        }
    }
    verdict.warnings.extend(new.warnings());
    verdict
}
