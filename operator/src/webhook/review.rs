//! The webhook's HTTP side: an AdmissionReview (v1) in, the engine's verdict out. Every
//! replica answers from its own stores, which it keeps warm whether it leads or not.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use nauthera_shared::resources::ObjectRef;

use super::admission::{judge, respond};
use super::configuration::PATH;
use crate::context::Context;
use nauthera_shared::policy::admission::Verdict;

/// `POST /validate`.
pub fn router(ctx: Arc<Context>) -> Router {
    Router::new().route(PATH, post(validate)).with_state(ctx)
}

async fn validate(State(ctx): State<Arc<Context>>, body: Bytes) -> Response {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(error) => {
            ctx.metrics.admission("unreadable");
            return (
                StatusCode::BAD_REQUEST,
                format!("not an AdmissionReview: {error}"),
            )
                .into_response();
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(error) => {
            ctx.metrics.admission("unreadable");
            return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
        }
    };
    let response = answer(&ctx, &request);
    json(&response)
}

/// The verdict on `request` from the stores as they are now.
fn answer(ctx: &Context, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let pending = ctx.stores.pending();
    let verdict = if pending.is_empty() {
        judge(request, &ctx.stores.evaluator())
    } else {
        // Not listed yet: judging against part of the world could refuse wrongly.
        Verdict {
            refused: Vec::new(),
            warnings: vec![format!(
                "nauthera-operator is starting (waiting for the first listing of {}): admitted unchecked; the operator checks it when it reconciles",
                pending.join(", ")
            )],
        }
    };
    let object = ObjectRef::new(
        request.namespace.clone().unwrap_or_default(),
        request.name.clone(),
    );
    match (verdict.admitted(), verdict.warnings.is_empty()) {
        (false, _) => {
            ctx.metrics.admission("refused");
            tracing::info!(client = %object, operation = ?request.operation, dry_run = request.dry_run, reason = %verdict.message().unwrap_or_default(), "webhook: refused");
        }
        (true, false) => {
            ctx.metrics.admission("warned");
            tracing::debug!(client = %object, operation = ?request.operation, warnings = ?verdict.warnings, "webhook: admitted with warnings");
        }
        (true, true) => {
            ctx.metrics.admission("admitted");
            tracing::debug!(client = %object, operation = ?request.operation, "webhook: admitted");
        }
    }
    respond(verdict, request)
}

fn json(response: &AdmissionResponse) -> Response {
    match serde_json::to_vec(&response.clone().into_review()) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
