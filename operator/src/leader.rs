//! Leader election with a `coordination.k8s.io/v1` Lease, so two operators — a rolling
//! update starts the new pod before the old one stops — never reconcile at once.
//!
//! Written here rather than taken from a crate because of one property the operator
//! depends on and the crates reviewed did not give: a leader that cannot renew its lease
//! within the renew deadline stops leading *before* any other instance may consider the
//! lease expired. Followers judge expiry by their own clock from when they last saw the
//! lease change (as client-go does), so clock skew between nodes does not matter.
//! Every write is a replace guarded by the resourceVersion read, so two candidates
//! never both win.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};

/// How long releasing the lease on shutdown may take; it expires on its own anyway.
const RELEASE_WITHIN: Duration = Duration::from_secs(2);

/// How a lease is held.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This instance; unique per process (a pod's name, in a cluster).
    pub identity: String,
    /// How long a lease stays valid without renewal, as followers judge it.
    pub duration: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// A leader that has not renewed for this long stops leading. Shorter than
    /// `duration`, so it stops before anyone else may take over. Every call to the API
    /// server about the lease is bounded by it.
    pub renew_deadline: Duration,
}

impl LeaseSettings {
    pub fn new(name: String, namespace: String, identity: String) -> Self {
        Self {
            name,
            namespace,
            identity,
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(10),
        }
    }
}

pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
}

/// The lease, held: as last written, and when the request that wrote it was sent —
/// the server wrote it after that, so followers saw it change after that too.
#[derive(Debug)]
pub struct Held {
    pub lease: Lease,
    renewed: Instant,
}

/// Why leading ended.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    #[error("another instance ({0}) took the leader lease")]
    TakenBy(String),
    #[error("could not renew the leader lease for {0:?}: {1}")]
    NotRenewed(Duration, String),
    #[error("the leader lease's renewal stopped: {0}")]
    Stopped(String),
}

/// A call about the lease that failed or was not answered in time.
#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("the API server did not answer in time")]
    TimedOut,
}

impl Failed {
    fn conflict(&self) -> bool {
        matches!(self, Self::Api(kube::Error::Api(response)) if response.code == 409)
    }
}

/// `call`, given up at `deadline`: a hung connection must not keep a leader waiting past
/// the moment it has to stop (kube's client has no read timeout by default).
async fn bounded<T>(
    deadline: Instant,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, Failed> {
    match timeout_at(deadline, call).await {
        Ok(result) => result.map_err(Failed::Api),
        Err(_) => Err(Failed::TimedOut),
    }
}

/// What one renewal came to.
enum Renewal {
    Renewed(Held),
    TakenBy(String),
    Failed(Lease, String),
}

impl Elector {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    /// Waits until this instance holds the lease, and returns it.
    pub async fn acquire(&self) -> Held {
        // (record, when it was first seen unchanged): the follower's own clock.
        let mut observed: Option<(String, Instant)> = None;
        let mut said_waiting = false;
        loop {
            match self.try_acquire(&mut observed).await {
                Ok(Some(held)) => return held,
                Ok(None) => {
                    if !said_waiting {
                        let holder = observed.as_ref().map_or("", |(record, _)| record.as_str());
                        tracing::info!(lease = %self.settings.name, holder = %holder.split('|').next().unwrap_or_default(), "another instance leads; waiting for the lease");
                        said_waiting = true;
                    }
                }
                Err(error) => {
                    tracing::warn!(lease = %self.settings.name, %error, "cannot read or take the leader lease; retrying");
                }
            }
            sleep(self.settings.renew_every).await;
        }
    }

    async fn try_acquire(
        &self,
        observed: &mut Option<(String, Instant)>,
    ) -> Result<Option<Held>, Failed> {
        let deadline = Instant::now() + self.settings.renew_deadline;
        let Some(lease) = bounded(deadline, self.api.get_opt(&self.settings.name)).await? else {
            let sent = Instant::now();
            let deadline = sent + self.settings.renew_deadline;
            return match bounded(
                deadline,
                self.api.create(&PostParams::default(), &self.fresh()),
            )
            .await
            {
                Ok(lease) => Ok(Some(Held {
                    lease,
                    renewed: sent,
                })),
                Err(failed) if failed.conflict() => Ok(None),
                Err(failed) => Err(failed),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if !holder.is_empty() && holder != self.settings.identity {
            let record = format!(
                "{holder}|{:?}|{:?}",
                spec.renew_time.as_ref().map(|t| t.0),
                lease.metadata.resource_version
            );
            let first_seen = match observed {
                Some((seen, since)) if *seen == record => *since,
                _ => {
                    *observed = Some((record, Instant::now()));
                    Instant::now()
                }
            };
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.settings.duration, Duration::from_secs);
            if first_seen.elapsed() < duration {
                return Ok(None);
            }
            tracing::info!(lease = %self.settings.name, %holder, "the leader stopped renewing; taking over");
        }
        self.take(lease).await
    }

    /// Takes `lease` as read; `None` if someone else wrote it meanwhile.
    async fn take(&self, mut lease: Lease) -> Result<Option<Held>, Failed> {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let now = MicroTime(Timestamp::now());
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.acquire_time = Some(now.clone());
        }
        spec.holder_identity = Some(self.settings.identity.clone());
        spec.lease_duration_seconds = Some(seconds(self.settings.duration));
        spec.renew_time = Some(now);
        let sent = Instant::now();
        let deadline = sent + self.settings.renew_deadline;
        let params = PostParams::default();
        let replaced = self.api.replace(&self.settings.name, &params, &lease);
        match bounded(deadline, replaced).await {
            Ok(lease) => Ok(Some(Held {
                lease,
                renewed: sent,
            })),
            Err(failed) if failed.conflict() => Ok(None),
            Err(failed) => Err(failed),
        }
    }

    /// Renews the lease until it is lost; never returns while it is held. A leader that
    /// has not renewed within the renew deadline stops, whatever a call to the API server
    /// is waiting for: each call is bounded by the deadline, and so is the wait itself.
    pub async fn hold(&self, held: Held) -> Lost {
        let Held {
            mut lease,
            mut renewed,
        } = held;
        // Said when the deadline passes: the last error, or a renewal never answered.
        let unanswered = || Failed::TimedOut.to_string();
        let mut last_error = unanswered();
        loop {
            let deadline = renewed + self.settings.renew_deadline;
            let renewal = async {
                sleep(self.settings.renew_every).await;
                self.renew(&lease, deadline).await
            };
            tokio::select! {
                biased;
                () = sleep_until(deadline) => {
                    return Lost::NotRenewed(renewed.elapsed(), last_error);
                }
                renewal = renewal => match renewal {
                    Renewal::Renewed(held) => {
                        lease = held.lease;
                        renewed = held.renewed;
                        last_error = unanswered();
                    }
                    Renewal::TakenBy(holder) => return Lost::TakenBy(holder),
                    Renewal::Failed(current, error) => {
                        tracing::warn!(lease = %self.settings.name, %error, "cannot renew the leader lease; retrying");
                        lease = current;
                        last_error = error;
                    }
                },
            }
        }
    }

    /// One renewal, given up at `deadline`.
    async fn renew(&self, lease: &Lease, deadline: Instant) -> Renewal {
        let mut renewal = lease.clone();
        if let Some(spec) = renewal.spec.as_mut() {
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        let sent = Instant::now();
        let params = PostParams::default();
        let replaced = self.api.replace(&self.settings.name, &params, &renewal);
        match bounded(deadline, replaced).await {
            Ok(lease) => Renewal::Renewed(Held {
                lease,
                renewed: sent,
            }),
            // Written by someone else: still ours?
            Err(failed) if failed.conflict() => {
                match bounded(deadline, self.api.get(&self.settings.name)).await {
                    Ok(current) => {
                        let holder = current
                            .spec
                            .as_ref()
                            .and_then(|s| s.holder_identity.clone())
                            .unwrap_or_default();
                        if holder == self.settings.identity {
                            Renewal::Failed(current, "the lease changed meanwhile".to_owned())
                        } else {
                            Renewal::TakenBy(holder)
                        }
                    }
                    Err(failed) => Renewal::Failed(lease.clone(), failed.to_string()),
                }
            }
            Err(failed) => Renewal::Failed(lease.clone(), failed.to_string()),
        }
    }

    /// Gives the lease up, so a successor need not wait for it to expire; given up
    /// after a couple of seconds (the lease then expires on its own).
    pub async fn release(&self) {
        let deadline = Instant::now() + RELEASE_WITHIN;
        match self.try_release(deadline).await {
            Ok(true) => tracing::info!(lease = %self.settings.name, "released the leader lease"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(lease = %self.settings.name, %error, "cannot release the leader lease; it expires on its own");
            }
        }
    }

    async fn try_release(&self, deadline: Instant) -> Result<bool, Failed> {
        let Some(mut lease) = bounded(deadline, self.api.get_opt(&self.settings.name)).await?
        else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        let params = PostParams::default();
        let replaced = self.api.replace(&self.settings.name, &params, &lease);
        bounded(deadline, replaced).await?;
        Ok(true)
    }

    fn fresh(&self) -> Lease {
        let now = MicroTime(Timestamp::now());
        Lease {
            metadata: ObjectMeta {
                name: Some(self.settings.name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.settings.identity.clone()),
                lease_duration_seconds: Some(seconds(self.settings.duration)),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}
