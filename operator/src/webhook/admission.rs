//! The webhook's side of admission: which requests are judged, and the answer that
//! carries the verdict. The verdict itself — which findings refuse a write, which only
//! warn — is the policy's, in `nauthera_shared::policy::admission`. Nothing is checked on
//! an object being deleted, so a deletion never hangs.

use kube::Resource;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::{DynamicObject, Status};
use nauthera_shared::policy::Evaluator;
use nauthera_shared::policy::admission::{Judged, Verdict, verdict};
use nauthera_shared::resources::AuthClient;

/// The verdict on one request: only AuthClients created or updated, and not being deleted,
/// are judged.
pub fn judge(request: &AdmissionRequest<DynamicObject>, evaluator: &Evaluator) -> Verdict {
    let ours =
        request.kind.group == AuthClient::group(&()) && request.kind.kind == AuthClient::kind(&());
    let Some(object) = request.object.as_ref().filter(|_| ours) else {
        return Verdict::default();
    };
    if !matches!(request.operation, Operation::Create | Operation::Update)
        || object.metadata.deletion_timestamp.is_some()
    {
        return Verdict::default();
    }
    let new = match read(object, request.namespace.as_deref()) {
        Ok(client) => client,
        Err(error) => {
            return Verdict {
                refused: Vec::new(),
                warnings: vec![format!(
                    "nauthera-operator cannot read this AuthClient ({error}): admitted unchecked; its status will say more"
                )],
            };
        }
    };
    let old = match request.operation {
        Operation::Update => request
            .old_object
            .as_ref()
            .and_then(|old| read(old, request.namespace.as_deref()).ok()),
        _ => None,
    };
    let old = old.map(|old| Judged::new(evaluator, &old));
    verdict(&Judged::new(evaluator, &new), old.as_ref())
}

/// The AuthClient in a request, in the request's namespace.
fn read(object: &DynamicObject, namespace: Option<&str>) -> Result<AuthClient, serde_json::Error> {
    let mut client: AuthClient = serde_json::from_value(serde_json::to_value(object)?)?;
    if client.metadata.namespace.is_none() {
        client.metadata.namespace = namespace.map(str::to_owned);
    }
    Ok(client)
}

/// The admission response to `request` that says `verdict`.
pub fn respond<T: kube::Resource>(
    verdict: Verdict,
    request: &AdmissionRequest<T>,
) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(request);
    if let Some(message) = verdict.message() {
        response.allowed = false;
        response.result = Status {
            status: Some(StatusSummary::Failure),
            code: 403,
            message,
            metadata: None,
            reason: "Forbidden".to_owned(),
            details: Some(StatusDetails {
                name: request.name.clone(),
                group: request.kind.group.clone(),
                kind: request.resource.resource.clone(),
                uid: String::new(),
                causes: verdict
                    .refused
                    .iter()
                    .map(|violation| StatusCause {
                        reason: violation.rule.clone(),
                        message: violation.message.clone(),
                        field: violation.field.clone(),
                    })
                    .collect(),
                retry_after_seconds: 0,
            }),
        };
    }
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings);
    }
    response
}
