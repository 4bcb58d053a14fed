//! Gathering the facts a decision needs: the engine's verdict, the operator's record of
//! the registration, the credentials Secret, and — only when a read is due — what the
//! provider holds. Reads only; nothing here writes, except recording a registration the
//! operator made earlier but could not record then.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Resource};
use nauthera_shared::policy::{Evaluation, Standing, default_secret_name};
use nauthera_shared::resources::{AuthClient, AuthServer, DeletionPolicy, ObjectRef};

use crate::Error;
use crate::context::Context;
use crate::lifecycle::{Credentials, Existing, Facts, Observed, Recorded, Rotation, Verdict};
use crate::provider::dcr::DcrDriver;
use crate::provider::{Answer, ClientMetadata, ProviderError};
use crate::records::save_registration;
use crate::secrets::{
    MANAGED_BY, StoredRegistration, is_ours, registering_since, registration_secret_name,
};

/// Everything known about one client before anything is done.
pub struct Gathered {
    pub uid: String,
    pub evaluation: Evaluation,
    pub verdict: Verdict,
    /// The server to provision at, when the verdict is to provision.
    pub server: Option<Arc<AuthServer>>,
    /// The metadata the policies decide, when the verdict is to provision.
    pub wanted: Option<ClientMetadata>,
    pub record: Option<StoredRegistration>,
    /// When a registration was begun whose answer was never recorded (the operator
    /// stopped in between): one may exist at the provider, unrecorded.
    pub registering_since: Option<String>,
    /// The client the status names when there is no record of it.
    pub lost: Option<String>,
    /// Whether what the status says was applied is what the policies decide now.
    pub applied: Applied,
    /// Whether `record` learnt something from the provider's answer (a rotated token, a
    /// new secret) and must be written again.
    pub record_changed: bool,
    /// The name the credentials Secret should have, and what is under that name now.
    pub secret_name: String,
    pub credentials: Option<Secret>,
    pub observed: Observed,
    /// Fields the provider holds with other values than applied.
    pub drifted: Vec<&'static str>,
    /// Fields the provider changed and that were already put back once: not rewritten.
    pub stubborn_drift: Vec<&'static str>,
    /// `deletionPolicy: Orphan`.
    pub orphan: bool,
    /// A registration the client asks to take over, and what became of asking.
    pub existing: Existing,
    pub adoptable: Option<StoredRegistration>,
    /// Why the registration to take over cannot be (yet), for the status.
    pub existing_problem: Option<String>,
    pub rotation: Rotation,
}

impl Gathered {
    /// The governing policies' rotation schedule, if any.
    pub fn rotation_schedule(&self) -> Option<&str> {
        self.evaluation
            .effective
            .as_ref()
            .and_then(|settings| settings.secret_rotation_schedule.as_deref())
    }
}

impl Gathered {
    pub fn facts(&self, deleting: bool, can_record: bool) -> Facts {
        let recorded = match (&self.record, &self.server, &self.wanted) {
            (None, _, _) if self.lost.is_some() => Recorded::Lost,
            (None, _, _) => Recorded::Nothing,
            (Some(record), Some(server), Some(_)) => {
                if same_issuer(&record.issuer_url, &server.spec.issuer_url) {
                    Recorded::Here {
                        current: self.applied == Applied::Current
                            || (self.applied == Applied::Unknown
                                && self.observed == Observed::InSync),
                    }
                } else {
                    Recorded::Elsewhere
                }
            }
            (Some(_), _, _) => Recorded::Here { current: true },
        };
        let foreign = self
            .credentials
            .as_ref()
            .is_some_and(|secret| !is_ours(secret, &self.uid));
        Facts {
            deleting,
            orphan: self.orphan,
            verdict: self.verdict,
            recorded,
            observed: self.observed,
            credentials: if foreign {
                Credentials::Foreign
            } else {
                Credentials::Writable
            },
            can_record,
            existing: self.existing,
            rotation: self.rotation,
        }
    }
}

/// What the client's status says the provider was last given, against what the
/// policies decide now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The same, and the spec has not changed since: nothing to do, nothing to ask.
    Current,
    /// Different: an update, without asking first.
    Changed,
    /// Not known (no status, or the spec changed since, which may rename the client):
    /// the provider is asked.
    Unknown,
}

/// Compares the settings the status records as applied with what the policies decide.
fn applied_state(client: &AuthClient, name: &str, wanted: Option<&ClientMetadata>) -> Applied {
    let Some(wanted) = wanted else {
        return Applied::Unknown;
    };
    let status = client.status.as_ref();
    let registered = status.is_some_and(|s| s.client_id.is_some());
    let Some(had) = status
        .and_then(|s| s.effective.as_ref())
        .filter(|_| registered)
    else {
        return Applied::Unknown;
    };
    if !ClientMetadata::from_settings(name, had).same_as(wanted) {
        Applied::Changed
    } else if status.and_then(|s| s.observed_generation) == client.metadata.generation {
        Applied::Current
    } else {
        Applied::Unknown
    }
}

pub fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The verdict, from the evaluation: provision what complies at a valid server; revoke
/// only what a policy explicitly revokes; withhold everything else.
pub fn verdict(evaluation: &Evaluation) -> Verdict {
    if evaluation.standing == Standing::Governed && evaluation.compliance.is_provisionable() {
        Verdict::Provision
    } else if !evaluation.revoked_by.is_empty() {
        Verdict::Revoke
    } else {
        Verdict::Withhold
    }
}

pub async fn gather(client: &AuthClient, ctx: &Context) -> Result<Gathered, Error> {
    let uid = uid(client)?.to_owned();
    let evaluation = ctx.evaluator().evaluate(client);
    let verdict = verdict(&evaluation);
    let name = client_name(client);
    let (server, wanted, secret_name) = match (verdict, &evaluation.effective) {
        (Verdict::Provision, Some(settings)) => (
            ctx.server(&evaluation.server),
            Some(ClientMetadata::from_settings(&name, settings)),
            settings.secret_name.clone(),
        ),
        _ => (None, None, current_secret_name(client)),
    };
    let applied = applied_state(client, &name, wanted.as_ref());
    let (record, registering_since) = load_registration(client, &uid, ctx).await?;
    // A status naming a registration without a record: lost, unless this operator
    // deleted it itself and the status read is older than that (the store lags).
    let lost = match &record {
        Some(_) => None,
        None => client
            .status
            .as_ref()
            .and_then(|s| s.client_id.clone())
            .filter(|client_id| !ctx.was_deleted_here(&uid, client_id)),
    };
    let credentials = secrets_of(client, ctx).get_opt(&secret_name).await?;
    let mut gathered = Gathered {
        uid,
        evaluation,
        verdict,
        server,
        wanted,
        record,
        registering_since,
        lost,
        applied,
        record_changed: false,
        secret_name,
        credentials,
        observed: Observed::Unread,
        drifted: Vec::new(),
        stubborn_drift: Vec::new(),
        orphan: client.spec.deletion_policy == DeletionPolicy::Orphan,
        existing: Existing::NotAsked,
        adoptable: None,
        existing_problem: None,
        rotation: Rotation::NotDue,
    };
    // A client on its way out needs no drift read: its registration is deleted or left.
    if client.metadata.deletion_timestamp.is_none() {
        observe(&mut gathered, ctx).await?;
    }
    look_for_existing(client, &mut gathered, ctx).await?;
    if gathered.verdict == Verdict::Provision {
        gathered.rotation = crate::rotation::due(
            client,
            gathered.rotation_schedule(),
            gathered.record.as_ref(),
            k8s_openapi::jiff::Timestamp::now(),
        );
    }
    Ok(gathered)
}

/// The registration the client asks to take over (`spec.existingRegistration`), when it
/// has none recorded and is to be provisioned: its Secret, and whether the provider
/// answers a read with its token.
async fn look_for_existing(
    client: &AuthClient,
    gathered: &mut Gathered,
    ctx: &Context,
) -> Result<(), Error> {
    let (Some(existing), None, Some(server), false) = (
        &client.spec.existing_registration,
        &gathered.record,
        &gathered.server,
        client.metadata.deletion_timestamp.is_some(),
    ) else {
        return Ok(());
    };
    let name = &existing.secret_name;
    let Some(secret) = secrets_of(client, ctx).get_opt(name).await? else {
        gathered.existing = Existing::Missing;
        gathered.existing_problem = Some(format!(
            "waiting for Secret {name} (spec.existingRegistration.secretName): nothing is registered in its place"
        ));
        return Ok(());
    };
    let refuse = |gathered: &mut Gathered, why: String| {
        gathered.existing = Existing::Refused;
        gathered.existing_problem = Some(format!(
            "the registration in Secret {name} cannot be taken over: {why}"
        ));
    };
    let Some(mut record) = StoredRegistration::from_secret(&secret) else {
        refuse(
            gathered,
            "it needs the keys client_id, registration_client_uri and registration_access_token"
                .to_owned(),
        );
        return Ok(());
    };
    if !same_origin(
        &record.management.registration_client_uri,
        &server.spec.issuer_url,
    ) {
        // The token would be sent wherever the Secret says: only to the server's provider.
        refuse(
            gathered,
            format!(
                "its registration_client_uri is not at the server's issuer {} (same scheme, host and port required)",
                server.spec.issuer_url
            ),
        );
        return Ok(());
    }
    record.issuer_url.clone_from(&server.spec.issuer_url);
    record.retired = None;
    let read = DcrDriver::new(ctx.http.clone())
        .read(&record.management)
        .await;
    ctx.metrics.provider_call("read", &read);
    match read {
        Ok(_) if claimed_by_another(&record.client_id, &gathered.uid, ctx).await? => {
            refuse(
                gathered,
                format!(
                    "another AuthClient already manages {}: one registration, one owner",
                    record.client_id
                ),
            );
        }
        Ok(answer) => {
            adopt(&mut record, answer);
            gathered.existing = Existing::Usable;
            gathered.adoptable = Some(record);
        }
        Err(error @ (ProviderError::Gone { .. } | ProviderError::Forbidden { .. })) => {
            refuse(
                gathered,
                format!(
                    "{} refused its registration access token ({error})",
                    server.spec.issuer_url
                ),
            );
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// Whether another client's record holds this registration (two AuthClients naming the
/// same Secret): deleting one would delete what the other uses. Lists the records, which
/// only a take-over ever does.
async fn claimed_by_another(client_id: &str, uid: &str, ctx: &Context) -> Result<bool, Error> {
    let records: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.operator_namespace);
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let list = records
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?;
    let own = registration_secret_name(uid);
    Ok(list.items.iter().any(|secret| {
        secret.metadata.name.as_deref() != Some(own.as_str())
            && StoredRegistration::from_secret(secret).is_some_and(|r| r.client_id == client_id)
    }))
}

/// Whether two URLs share scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin() && a.origin().is_tuple(),
        _ => false,
    }
}

/// Reads the registration at the provider when a read is due (or what was applied is
/// not known), and compares what it holds with what the policies decide. A change the
/// policies made is written without asking first.
async fn observe(gathered: &mut Gathered, ctx: &Context) -> Result<(), Error> {
    let facts = gathered.facts(false, true);
    let (Some(record), Some(wanted), Recorded::Here { .. }) =
        (&mut gathered.record, &gathered.wanted, facts.recorded)
    else {
        return Ok(());
    };
    let due = ctx.read_due_in(&gathered.uid).is_zero();
    match gathered.applied {
        Applied::Changed => return Ok(()),
        Applied::Current if !due => return Ok(()),
        Applied::Current | Applied::Unknown => {}
    }
    let driver = DcrDriver::new(ctx.http.clone());
    let read = driver.read(&record.management).await;
    ctx.metrics.provider_call("read", &read);
    let answer = match read {
        Ok(answer) => answer,
        Err(ProviderError::Gone { .. }) => {
            gathered.observed = Observed::Gone;
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    ctx.verified(&gathered.uid);
    let comparison = wanted.compare(&answer.held);
    ctx.note_unheld(&record.issuer_url, &comparison.unheld);
    gathered.record_changed |= adopt(record, answer);
    gathered.observed = if comparison.in_sync() {
        ctx.in_sync(&gathered.uid);
        Observed::InSync
    } else if ctx.drift_returned(&gathered.uid, &comparison.drifted) {
        gathered.stubborn_drift = comparison.drifted;
        Observed::InSync
    } else {
        gathered.drifted = comparison.drifted;
        Observed::Drifted
    };
    Ok(())
}

/// Takes what a provider's answer says about credentials: a client secret it issued anew
/// (the old one may already be dead there), a registration access token it rotated.
/// Returns whether the record changed.
pub fn adopt(record: &mut StoredRegistration, answer: Answer) -> bool {
    use secrecy::ExposeSecret;
    let mut changed = false;
    if let Some(secret) = answer.client_secret {
        let same = record
            .client_secret
            .as_ref()
            .is_some_and(|old| old.expose_secret() == secret.expose_secret());
        if !same {
            record.client_secret = Some(secret);
            changed = true;
        }
    }
    if let Some(token) = answer.registration_access_token
        && token.expose_secret() != record.management.registration_access_token.expose_secret()
    {
        record.management.registration_access_token = token;
        changed = true;
    }
    changed
}

/// The recorded registration, and when a registration was begun but never answered;
/// or one made earlier that could not be recorded then, recorded now before anything
/// else happens.
async fn load_registration(
    client: &AuthClient,
    uid: &str,
    ctx: &Context,
) -> Result<(Option<StoredRegistration>, Option<String>), Error> {
    let records: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.operator_namespace);
    let secret = records.get_opt(&registration_secret_name(uid)).await?;
    let recorded = secret.as_ref().and_then(StoredRegistration::from_secret);
    let registering_since = secret.as_ref().and_then(registering_since);
    // A registration made earlier in this run and not recorded then comes first: it
    // replaces whatever the record holds (a re-registration, rotation or move carries
    // what it replaced), or another would be made on top of it.
    let Some(unrecorded) = ctx.take_unrecorded(uid) else {
        return Ok((recorded, registering_since));
    };
    if let Err(error) = save_registration(client, &unrecorded, ctx).await {
        let message = format!(
            "registration {} at {} is still not recorded: {error}",
            unrecorded.client_id, unrecorded.issuer_url
        );
        ctx.keep_unrecorded(uid, unrecorded);
        return Err(Error::Unrecorded(message));
    }
    tracing::info!(client = %ObjectRef::of(client), client_id = %unrecorded.client_id, "recorded a registration made earlier");
    Ok((Some(unrecorded), None))
}

pub fn secrets_of(client: &AuthClient, ctx: &Context) -> Api<Secret> {
    let namespace = client.meta().namespace.clone().unwrap_or_default();
    Api::namespaced(ctx.client.clone(), &namespace)
}

/// The Secret the credentials are in now: as the status records it, or as the spec says.
pub fn current_secret_name(client: &AuthClient) -> String {
    client
        .status
        .as_ref()
        .and_then(|status| status.client_secret_ref.as_ref())
        .map(|secret| secret.name.clone())
        .or_else(|| client.spec.secret_name.clone())
        .unwrap_or_else(|| default_secret_name(client.meta().name.as_deref().unwrap_or_default()))
}

pub fn uid(client: &AuthClient) -> Result<&str, Error> {
    client.meta().uid.as_deref().ok_or(Error::MissingField {
        kind: "AuthClient",
        field: "metadata.uid",
    })
}

fn client_name(client: &AuthClient) -> String {
    if client.spec.display_name.is_empty() {
        ObjectRef::of(client).to_string()
    } else {
        client.spec.display_name.clone()
    }
}
