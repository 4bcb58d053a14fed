//! Decide, then act: what happens to one client's registration, decided by a pure
//! function over facts gathered beforehand (the engine's verdict, the operator's record,
//! what the provider answered, the credentials Secret, whether the AuthClient is being
//! deleted). The reconcile only carries the decision out.
//!
//! The invariants users rely on are properties of [`decide`], tested over every
//! combination of facts: a registration is deleted only when its AuthClient is deleted or
//! a policy explicitly revokes it; nothing is registered that cannot be recorded; a
//! registration is made again only when the provider says it no longer has it; a
//! converged client gets no write; a Secret the operator does not own is never written.

/// What the policy engine concluded, as far as the registration is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Compliant, or audit findings only, at a valid server that trusts the namespace.
    Provision,
    /// Not provisionable now (a rule broken, no policy, lost trust, server missing or
    /// invalid): changes are withheld; a registration that exists stays as it was.
    Withhold,
    /// An enforced rule of a policy with `violationResponse: Revoke` is broken.
    Revoke,
}

/// What the operator's record says exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Nothing,
    /// A registration at the provider the client's server names. `current`: the metadata
    /// last applied is what the policies now decide (false when unknown).
    Here {
        current: bool,
    },
    /// A registration at another provider (the client or its server moved).
    Elsewhere,
    /// The status names a registration, but its record is gone (deleted by hand past its
    /// finalizer): it cannot be managed, and registering again would duplicate it.
    Lost,
}

/// What the provider said of the registration in this reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Not asked: no read was due.
    Unread,
    /// It holds what was applied, as far as it keeps those fields.
    InSync,
    /// A field it holds was changed there.
    Drifted,
    /// It no longer knows the registration.
    Gone,
}

/// The credentials Secret under the name the client should use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Ours, or absent: the operator may write it.
    Writable,
    /// Exists and was not created by the operator for this AuthClient.
    Foreign,
}

/// A registration made earlier that the client asks to take over
/// (`spec.existingRegistration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// None asked for.
    NotAsked,
    /// The Secret naming it does not exist (yet).
    Missing,
    /// The provider does not accept its registration access token.
    Refused,
    /// The provider answered a read with it.
    Usable,
}

/// The client secret's rotation (the governing policies' schedule, or an annotation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    NotDue,
    Due,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub deleting: bool,
    /// `deletionPolicy: Orphan`: deleting leaves the registration at the provider.
    pub orphan: bool,
    pub verdict: Verdict,
    pub recorded: Recorded,
    pub observed: Observed,
    pub credentials: Credentials,
    /// Whether a new registration could be recorded (the operator's namespace exists).
    pub can_record: bool,
    pub existing: Existing,
    pub rotation: Rotation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Register at the provider, record it, write the credentials.
    Register,
    /// The provider lost the registration: register again (new credentials).
    Reregister,
    /// Register at the new provider, switch the credentials, then retire the old one.
    Move,
    /// Bring the provider's metadata in line with the policies.
    Update,
    /// Nothing to do at the provider; the credentials Secret is kept right.
    Keep,
    /// Not provisionable: the existing registration stays exactly as it was.
    KeepWithheld,
    /// Not provisionable and nothing registered: nothing to do.
    Withhold,
    /// Delete the registration at the provider and the Secrets, as a policy asks.
    Revoke,
    /// The credentials Secret belongs to someone else: touch nothing.
    Conflict,
    /// A registration is needed but could not be recorded: do not make it.
    CannotRecord,
    /// The AuthClient is being deleted: delete the registration, then the Secrets.
    Deregister,
    /// The AuthClient is being deleted and nothing is registered (or nothing can be
    /// reached any more).
    Release,
    /// A registration exists whose record is lost: touch nothing, say so.
    RecordLost,
    /// The AuthClient is being deleted with `deletionPolicy: Orphan`: the registration
    /// stays at the provider, the credentials Secret stays, the record goes.
    Orphan,
    /// Take over the registration the client names, then bring it in line.
    Adopt,
    /// The registration the client names cannot be taken over (yet): nothing is
    /// registered in its place.
    AwaitExisting,
    /// Rotate the client secret: a new registration with the same settings; the old one
    /// keeps working for the overlap window, then is deleted.
    Rotate,
}

impl Decision {
    /// Whether this decision deletes a registration at the provider.
    pub const fn deletes(self) -> bool {
        matches!(self, Self::Deregister | Self::Revoke)
    }

    /// Whether this decision makes a new registration at a provider.
    pub const fn registers(self) -> bool {
        matches!(
            self,
            Self::Register | Self::Reregister | Self::Move | Self::Rotate
        )
    }

    /// Whether this decision writes to the provider at all.
    pub const fn writes_to_provider(self) -> bool {
        self.deletes() || self.registers() || matches!(self, Self::Update | Self::Adopt)
    }
}

pub fn decide(facts: Facts) -> Decision {
    let registered = facts.recorded != Recorded::Nothing;
    if facts.deleting {
        return match facts.recorded {
            Recorded::Nothing | Recorded::Lost => Decision::Release,
            Recorded::Here { .. } | Recorded::Elsewhere if facts.orphan => Decision::Orphan,
            Recorded::Here { .. } | Recorded::Elsewhere => Decision::Deregister,
        };
    }
    if facts.recorded == Recorded::Lost {
        return Decision::RecordLost;
    }
    match facts.verdict {
        Verdict::Revoke if registered => Decision::Revoke,
        Verdict::Revoke | Verdict::Withhold if !registered => Decision::Withhold,
        Verdict::Revoke | Verdict::Withhold => Decision::KeepWithheld,
        Verdict::Provision if facts.credentials == Credentials::Foreign => Decision::Conflict,
        Verdict::Provision => match (facts.recorded, facts.observed) {
            (Recorded::Nothing, _) => match facts.existing {
                Existing::NotAsked => register(facts, Decision::Register),
                Existing::Usable => register(facts, Decision::Adopt),
                Existing::Missing | Existing::Refused => Decision::AwaitExisting,
            },
            (Recorded::Elsewhere, _) => register(facts, Decision::Move),
            (Recorded::Here { .. }, Observed::Gone) => register(facts, Decision::Reregister),
            (Recorded::Here { .. }, Observed::Drifted) | (Recorded::Here { current: false }, _) => {
                Decision::Update
            }
            (Recorded::Here { current: true }, Observed::Unread | Observed::InSync) => {
                match facts.rotation {
                    Rotation::Due => register(facts, Decision::Rotate),
                    Rotation::NotDue => Decision::Keep,
                }
            }
            (Recorded::Lost, _) => Decision::RecordLost,
        },
    }
}

/// A new (or taken over) registration only where it can be recorded the moment it is
/// known.
fn register(facts: Facts, decision: Decision) -> Decision {
    if facts.can_record {
        decision
    } else {
        Decision::CannotRecord
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of facts.
    fn every_fact() -> Vec<Facts> {
        let mut all = Vec::new();
        for base in every_core_fact() {
            for orphan in [false, true] {
                for existing in [
                    Existing::NotAsked,
                    Existing::Missing,
                    Existing::Refused,
                    Existing::Usable,
                ] {
                    for rotation in [Rotation::NotDue, Rotation::Due] {
                        all.push(Facts {
                            orphan,
                            existing,
                            rotation,
                            ..base
                        });
                    }
                }
            }
        }
        all
    }

    fn every_core_fact() -> Vec<Facts> {
        let mut all = Vec::new();
        for deleting in [false, true] {
            for verdict in [Verdict::Provision, Verdict::Withhold, Verdict::Revoke] {
                for recorded in [
                    Recorded::Nothing,
                    Recorded::Here { current: true },
                    Recorded::Here { current: false },
                    Recorded::Elsewhere,
                    Recorded::Lost,
                ] {
                    for observed in [
                        Observed::Unread,
                        Observed::InSync,
                        Observed::Drifted,
                        Observed::Gone,
                    ] {
                        for credentials in [Credentials::Writable, Credentials::Foreign] {
                            for can_record in [false, true] {
                                all.push(Facts {
                                    deleting,
                                    orphan: false,
                                    verdict,
                                    recorded,
                                    observed,
                                    credentials,
                                    can_record,
                                    existing: Existing::NotAsked,
                                    rotation: Rotation::NotDue,
                                });
                            }
                        }
                    }
                }
            }
        }
        all
    }

    #[test]
    fn only_a_deleted_client_or_an_explicit_revoke_deletes_a_registration() {
        for facts in every_fact() {
            if decide(facts).deletes() {
                assert!(
                    facts.deleting || facts.verdict == Verdict::Revoke,
                    "{facts:?}"
                );
                assert!(
                    !matches!(facts.recorded, Recorded::Nothing | Recorded::Lost),
                    "{facts:?}"
                );
            }
        }
    }

    #[test]
    fn a_withheld_client_keeps_its_registration_exactly_as_it_was() {
        for facts in every_fact() {
            if !facts.deleting && facts.verdict == Verdict::Withhold {
                assert!(!decide(facts).writes_to_provider(), "{facts:?}");
            }
        }
    }

    #[test]
    fn nothing_is_registered_that_cannot_be_recorded() {
        for facts in every_fact() {
            if decide(facts).registers() {
                assert!(facts.can_record, "{facts:?}");
            }
        }
    }

    #[test]
    fn a_recorded_registration_is_made_again_only_when_the_provider_lost_it_or_rotating() {
        for facts in every_fact() {
            let decision = decide(facts);
            if let Recorded::Here { .. } = facts.recorded
                && decision.registers()
            {
                match decision {
                    Decision::Reregister => {
                        assert_eq!(facts.observed, Observed::Gone, "{facts:?}");
                    }
                    Decision::Rotate => assert_eq!(facts.rotation, Rotation::Due, "{facts:?}"),
                    other => panic!("{facts:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_converged_client_gets_no_write_at_the_provider() {
        for facts in every_fact() {
            let converged = !facts.deleting
                && facts.verdict == Verdict::Provision
                && facts.recorded == (Recorded::Here { current: true })
                && matches!(facts.observed, Observed::Unread | Observed::InSync)
                && facts.credentials == Credentials::Writable
                && facts.rotation == Rotation::NotDue;
            if converged {
                assert_eq!(decide(facts), Decision::Keep, "{facts:?}");
            }
        }
    }

    #[test]
    fn a_foreign_secret_stops_every_provisioning_write() {
        for facts in every_fact() {
            if facts.credentials == Credentials::Foreign
                && !facts.deleting
                && facts.verdict == Verdict::Provision
            {
                let decision = decide(facts);
                assert!(
                    matches!(decision, Decision::Conflict | Decision::RecordLost),
                    "{facts:?}: {decision:?}"
                );
            }
        }
    }

    #[test]
    fn a_registration_whose_record_is_lost_is_never_duplicated() {
        for facts in every_fact() {
            if facts.recorded == Recorded::Lost {
                assert!(!decide(facts).writes_to_provider(), "{facts:?}");
            }
        }
    }

    #[test]
    fn a_registration_asked_to_be_taken_over_is_never_replaced_by_a_new_one() {
        for facts in every_fact() {
            if facts.existing != Existing::NotAsked && facts.recorded == Recorded::Nothing {
                let decision = decide(facts);
                assert!(!decision.registers(), "{facts:?}: {decision:?}");
            }
        }
    }

    #[test]
    fn a_rotation_is_the_only_new_registration_of_a_converged_client() {
        for facts in every_fact() {
            let decision = decide(facts);
            if decision == Decision::Rotate {
                assert_eq!(facts.rotation, Rotation::Due, "{facts:?}");
                assert_eq!(
                    facts.recorded,
                    Recorded::Here { current: true },
                    "{facts:?}"
                );
                assert!(
                    !facts.deleting && facts.verdict == Verdict::Provision,
                    "{facts:?}"
                );
            }
        }
    }

    #[test]
    fn deletion_always_ends_in_deregistering_releasing_or_orphaning() {
        for facts in every_fact().into_iter().filter(|f| f.deleting) {
            let expected = if matches!(facts.recorded, Recorded::Nothing | Recorded::Lost) {
                Decision::Release
            } else if facts.orphan {
                Decision::Orphan
            } else {
                Decision::Deregister
            };
            assert_eq!(decide(facts), expected, "{facts:?}");
        }
    }
}
