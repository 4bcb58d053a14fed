//! Rotating a client's credentials, on the governing policies' schedule or when asked
//! (`auth.nauthera.io/rotate: <any new value>`). Pure functions of the client, its
//! record and the time: tests set the recorded times in the past instead of waiting.
//!
//! What rotates is the registration itself: pure Dynamic Client Registration has no
//! "new secret" call every provider honours, so a rotation registers the client again
//! with the same settings, switches the credentials Secret to it in one write, and
//! deletes the old registration once the overlap window is over — both work meanwhile.
//! The application gets a new `client_id` with its new secret.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use nauthera_shared::policy::next_rotation;
use nauthera_shared::resources::{AuthClient, RetiringCredentials, RotationStatus};

use crate::lifecycle::Rotation;
use crate::secrets::{Rotated, StoredRegistration};

/// Setting this annotation to a value it did not have rotates the credentials now.
pub const ROTATE_ANNOTATION: &str = "auth.nauthera.io/rotate";

/// Whether the credentials are to be rotated now.
pub fn due(
    client: &AuthClient,
    schedule: Option<&str>,
    record: Option<&StoredRegistration>,
    now: Timestamp,
) -> Rotation {
    let Some(record) = record else {
        return Rotation::NotDue;
    };
    // One rotation at a time: the credentials it replaced must have gone first.
    if record.retired.is_some() {
        return Rotation::NotDue;
    }
    // A client without a secret (Public, or signing with its own key) has nothing to
    // rotate, and a new client_id would break apps that have it built in.
    if record.client_secret.is_none() {
        return Rotation::NotDue;
    }
    if requested(client).is_some() {
        return Rotation::Due;
    }
    match next(client, schedule, now) {
        Some(next) if next <= now => Rotation::Due,
        _ => Rotation::NotDue,
    }
}

/// The annotation's value when it asks for a rotation not yet done.
pub fn requested(client: &AuthClient) -> Option<&str> {
    let value = client
        .metadata
        .annotations
        .as_ref()?
        .get(ROTATE_ANNOTATION)?;
    let done = client
        .status
        .as_ref()
        .and_then(|status| status.rotation.as_ref())
        .and_then(|rotation| rotation.requested.as_deref());
    (done != Some(value.as_str())).then_some(value.as_str())
}

/// When the credentials were last rotated: as the status says, or since they were
/// first provisioned.
fn last(client: &AuthClient) -> Option<Timestamp> {
    let status = client.status.as_ref()?;
    if let Some(last) = status
        .rotation
        .as_ref()
        .and_then(|r| r.last_rotation.as_ref())
    {
        return Some(last.0);
    }
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Provisioned" && c.status == "True")
        .map(|c| c.last_transition_time.0)
}

/// When the schedule next rotates, counted from the last rotation (or `now`).
fn next(client: &AuthClient, schedule: Option<&str>, now: Timestamp) -> Option<Timestamp> {
    let from = last(client).unwrap_or(now);
    Timestamp::from_second(next_rotation(schedule?, from.as_second())?).ok()
}

/// The rotation part of the client's status after this reconcile. `rotated`: the
/// rotation the record remembers (made in this reconcile or an earlier one whose status
/// write was lost); it wins over an older status.
pub fn status(
    client: &AuthClient,
    schedule: Option<&str>,
    record: Option<&StoredRegistration>,
    rotated: Option<&Rotated>,
    now: Timestamp,
) -> Option<RotationStatus> {
    let previous = client.status.as_ref().and_then(|s| s.rotation.clone());
    let annotation = client
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ROTATE_ANNOTATION))
        .cloned();
    let remembered = rotated.and_then(|r| r.at.parse::<Timestamp>().ok());
    let last_rotation = previous
        .as_ref()
        .and_then(|p| p.last_rotation.as_ref().map(|t| t.0))
        .into_iter()
        .chain(remembered)
        .max()
        .map(Time);
    // A client provisioned just now (no client in its status before) starts with the
    // annotation it was created or restored with counted as done: it asks for nothing.
    let fresh = client
        .status
        .as_ref()
        .is_none_or(|status| status.client_id.is_none());
    let requested = match rotated {
        Some(rotated) if rotated.requested.is_some() => rotated.requested.clone(),
        _ if fresh => annotation,
        _ => previous.as_ref().and_then(|p| p.requested.clone()),
    };
    let from = last_rotation.as_ref().map(|t| t.0).or_else(|| last(client));
    let next_rotation = schedule.and_then(|schedule| {
        let next = next_rotation(schedule, from.unwrap_or(now).as_second())?;
        Timestamp::from_second(next).ok().map(Time)
    });
    let retiring = record.and_then(|r| r.retired.as_ref()).and_then(|retired| {
        let until = retired.after.as_deref()?.parse::<Timestamp>().ok()?;
        Some(RetiringCredentials {
            client_id: retired.client_id.clone(),
            until: Time(until),
        })
    });
    let status = RotationStatus {
        last_rotation,
        next_rotation,
        requested,
        retiring,
    };
    (status != RotationStatus::default()).then_some(status)
}

/// How long until something about rotation falls due, from the status this reconcile
/// wrote: the end of an overlap window, else the schedule's next rotation. Only future
/// times count — a past one was this reconcile's to act on, and waking for it again and
/// again would help nothing. `None`: nothing pending.
pub fn wake_in(rotation: Option<&RotationStatus>, now: Timestamp) -> Option<std::time::Duration> {
    let rotation = rotation?;
    let when = match &rotation.retiring {
        Some(retiring) => retiring.until.0,
        None => rotation.next_rotation.as_ref()?.0,
    };
    let seconds = when.as_second().checked_sub(now.as_second())?;
    (seconds > 0).then(|| std::time::Duration::from_secs(seconds.unsigned_abs() + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Management;
    use crate::secrets::Retired;
    use nauthera_shared::resources::{AuthClientStatus, Condition};
    use secrecy::SecretString;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn client(provisioned: &str, last_rotation: Option<&str>) -> AuthClient {
        let mut client: AuthClient = serde_json::from_value(serde_json::json!({
            "apiVersion": "auth.nauthera.io/v1alpha1", "kind": "AuthClient",
            "metadata": {"name": "orders", "namespace": "shop"},
            "spec": {"displayName": "orders", "authServerRef": {"name": "s"}}
        }))
        .unwrap();
        client.status = Some(AuthClientStatus {
            conditions: vec![Condition {
                type_: "Provisioned".into(),
                status: "True".into(),
                reason: "Registered".into(),
                message: String::new(),
                last_transition_time: Time(at(provisioned)),
                observed_generation: None,
            }],
            rotation: last_rotation.map(|last| RotationStatus {
                last_rotation: Some(Time(at(last))),
                ..RotationStatus::default()
            }),
            client_id: Some("new".into()),
            ..AuthClientStatus::default()
        });
        client
    }

    fn record(retiring_until: Option<&str>) -> StoredRegistration {
        let management = Management {
            registration_client_uri: "https://auth.example.com/reg/a".into(),
            registration_access_token: SecretString::from("t"),
        };
        StoredRegistration {
            client_id: "new".into(),
            client_secret: Some(SecretString::from("s")),
            issuer_url: "https://auth.example.com".into(),
            management: management.clone(),
            retired: retiring_until.map(|until| Retired {
                client_id: "old".into(),
                issuer_url: "https://auth.example.com".into(),
                management,
                after: Some(until.into()),
                rotated: None,
            }),
        }
    }

    const DAILY: Option<&str> = Some("0 0 * * *");

    #[test]
    fn the_schedule_counts_from_the_last_rotation_or_the_first_provisioning() {
        let now = at("2026-11-23T12:00:00Z");
        let fresh = client("2026-11-23T08:00:00Z", None);
        assert_eq!(
            due(&fresh, DAILY, Some(&record(None)), now),
            Rotation::NotDue
        );
        let old = client("2026-11-21T08:00:00Z", None);
        assert_eq!(due(&old, DAILY, Some(&record(None)), now), Rotation::Due);
        let rotated_today = client("2026-11-01T08:00:00Z", Some("2026-11-23T00:00:05Z"));
        assert_eq!(
            due(&rotated_today, DAILY, Some(&record(None)), now),
            Rotation::NotDue
        );
        let written = status(&rotated_today, DAILY, Some(&record(None)), None, now);
        assert_eq!(
            wake_in(written.as_ref(), now),
            Some(std::time::Duration::from_secs(12 * 3600 + 1))
        );
        assert_eq!(due(&old, None, Some(&record(None)), now), Rotation::NotDue);
    }

    #[test]
    fn a_client_without_a_secret_never_rotates() {
        let now = at("2026-11-23T12:00:00Z");
        let mut public = client("2026-11-01T08:00:00Z", None);
        public.metadata.annotations =
            Some([(ROTATE_ANNOTATION.to_owned(), "please".to_owned())].into());
        let mut without_secret = record(None);
        without_secret.client_secret = None;
        assert_eq!(
            due(&public, DAILY, Some(&without_secret), now),
            Rotation::NotDue
        );
    }

    #[test]
    fn a_client_created_with_the_annotation_does_not_rotate_after_its_first_registration() {
        let now = at("2026-11-23T12:00:00Z");
        let mut created = client("2026-11-23T11:59:00Z", None);
        created.metadata.annotations =
            Some([(ROTATE_ANNOTATION.to_owned(), "from-git".to_owned())].into());
        created.status.as_mut().unwrap().client_id = None;
        let first = status(&created, None, Some(&record(None)), None, now).unwrap();
        assert_eq!(first.requested.as_deref(), Some("from-git"));
        created.status.as_mut().unwrap().client_id = Some("new".into());
        created.status.as_mut().unwrap().rotation = Some(first);
        assert_eq!(
            due(&created, None, Some(&record(None)), now),
            Rotation::NotDue
        );
    }

    #[test]
    fn an_annotation_with_a_new_value_rotates_now_once() {
        let now = at("2026-11-23T12:00:00Z");
        let mut asked = client("2026-11-23T08:00:00Z", None);
        asked.metadata.annotations =
            Some([(ROTATE_ANNOTATION.to_owned(), "please".to_owned())].into());
        assert_eq!(due(&asked, None, Some(&record(None)), now), Rotation::Due);
        let after = status(
            &asked,
            None,
            Some(&record(Some("2026-11-23T13:00:00Z"))),
            Some(&Rotated {
                at: now.to_string(),
                requested: requested(&asked).map(str::to_owned),
            }),
            now,
        )
        .unwrap();
        assert_eq!(after.requested.as_deref(), Some("please"));
        assert_eq!(after.last_rotation, Some(Time(now)));
        assert_eq!(after.retiring.unwrap().client_id, "old");
        asked.status.as_mut().unwrap().rotation = Some(RotationStatus {
            requested: Some("please".into()),
            ..RotationStatus::default()
        });
        assert_eq!(
            due(&asked, None, Some(&record(None)), now),
            Rotation::NotDue
        );
    }

    #[test]
    fn one_rotation_at_a_time() {
        let now = at("2026-11-23T12:00:00Z");
        let old = client("2026-11-01T08:00:00Z", None);
        let retiring = record(Some("2026-11-23T13:00:00Z"));
        assert_eq!(due(&old, DAILY, Some(&retiring), now), Rotation::NotDue);
        let written = status(&old, DAILY, Some(&retiring), None, now);
        assert_eq!(
            wake_in(written.as_ref(), now),
            Some(std::time::Duration::from_secs(3601)),
            "back when the old credentials are to go, not before"
        );
        // Overdue, but not this reconcile's to do (withheld, say): no busy waking.
        let overdue = status(&old, DAILY, Some(&record(None)), None, now);
        assert_eq!(wake_in(overdue.as_ref(), now), None);
    }
}
