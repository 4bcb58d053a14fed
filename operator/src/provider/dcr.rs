//! OAuth 2.0 Dynamic Client Registration (RFC 7591) and its management protocol
//! (RFC 7592): register with the initial access token, then read, update and delete with
//! the registration access token the provider returned.
//!
//! Liberal in what it accepts, since providers differ within the protocol: any 2xx is
//! success (200 or 201 for a registration, 200 or 204 for a delete), a field may be a
//! string or a list, fields may be missing from a read, unknown fields are ignored. An
//! answer it cannot use is reported with the provider's URL and the field at fault.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::{
    Answer, ClientMetadata, Deleted, HeldMetadata, Management, ProviderError, Registration,
};

/// No provider call may hang a reconcile.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// One HTTP client for every provider call, so connections are reused.
pub fn http_client() -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("nauthera-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| ProviderError::Protocol(format!("cannot build an HTTP client: {error}")))
}

pub struct DcrDriver {
    http: reqwest::Client,
}

impl DcrDriver {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// Registers a client at `endpoint` (RFC 7591 §3.1). `software_id` (RFC 7591 §2)
    /// names the AuthClient, stable across its registrations, so a registration whose
    /// answer was lost can be found at the provider by it.
    pub async fn register(
        &self,
        endpoint: &str,
        initial_access_token: Option<&SecretString>,
        metadata: &ClientMetadata,
        software_id: &str,
    ) -> Result<Registration, ProviderError> {
        let mut body = serde_json::to_value(metadata)
            .map_err(|error| ProviderError::Protocol(error.to_string()))?;
        body["software_id"] = Value::String(software_id.to_owned());
        let mut request = self.http.post(endpoint).json(&body);
        if let Some(token) = initial_access_token {
            request = request.bearer_auth(token.expose_secret());
        }
        // Once the request may have reached the provider, a lost answer may hide a
        // registration made: say so, rather than "unavailable".
        let lost = |error: &reqwest::Error| {
            if error.is_connect() {
                ProviderError::Unavailable(without_url(error))
            } else {
                ProviderError::AnswerLost(without_url(error))
            }
        };
        let response = request.send().await.map_err(|error| lost(&error))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map(|bytes| bytes.to_vec())
            .map_err(|error| lost(&error))?;
        if !status.is_success() {
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProviderError::Unauthorized {
                    detail: described(status, &body),
                },
                // A gateway that gave up waiting: the provider behind it may have registered.
                StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
                    ProviderError::AnswerLost(format!("{endpoint}: {}", described(status, &body)))
                }
                _ => failure(status, &body, endpoint),
            });
        }
        let unusable = |error: ProviderError| ProviderError::RegisteredUnusable(error.to_string());
        let answer = object(&body, status, endpoint).map_err(unusable)?;
        let client_id = client_id(&answer).ok_or_else(|| {
            ProviderError::RegisteredUnusable(format!(
                "{endpoint} answered a registration ({status}) without a client_id"
            ))
        })?;
        let management = match (
            text(&answer, "registration_client_uri"),
            text(&answer, "registration_access_token"),
        ) {
            (Some(uri), Some(token)) => Management {
                registration_client_uri: uri,
                registration_access_token: SecretString::from(token),
            },
            _ => {
                return Err(ProviderError::RegisteredUnusable(format!(
                    "{endpoint} registered client {client_id} without registration_client_uri and registration_access_token: the provider does not offer RFC 7592 management, so Nauthera could never update or delete it — delete client {client_id} at the provider by hand"
                )));
            }
        };
        Ok(Registration {
            client_id,
            client_secret: text(&answer, "client_secret").map(SecretString::from),
            management,
        })
    }

    /// Reads a registration (RFC 7592 §2.1).
    pub async fn read(&self, management: &Management) -> Result<Answer, ProviderError> {
        let request = || {
            self.http
                .get(&management.registration_client_uri)
                .bearer_auth(management.registration_access_token.expose_secret())
        };
        managed(
            send_idempotent(request).await?,
            &management.registration_client_uri,
        )
        .await
    }

    /// Replaces a registration's metadata (RFC 7592 §2.2): the whole metadata, with the
    /// client_id, replaces what is there.
    pub async fn update(
        &self,
        management: &Management,
        client_id: &str,
        metadata: &ClientMetadata,
    ) -> Result<Answer, ProviderError> {
        let mut body = serde_json::to_value(metadata)
            .map_err(|error| ProviderError::Protocol(error.to_string()))?;
        body["client_id"] = Value::String(client_id.to_owned());
        let request = || {
            self.http
                .put(&management.registration_client_uri)
                .bearer_auth(management.registration_access_token.expose_secret())
                .json(&body)
        };
        managed(
            send_idempotent(request).await?,
            &management.registration_client_uri,
        )
        .await
    }

    /// Deletes a registration (RFC 7592 §2.3).
    pub async fn delete(&self, management: &Management) -> Result<Deleted, ProviderError> {
        let uri = &management.registration_client_uri;
        let request = || {
            self.http
                .delete(uri)
                .bearer_auth(management.registration_access_token.expose_secret())
        };
        let response = send_idempotent(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(Deleted::Removed);
        }
        match management_failure(status, &body(response).await?, uri) {
            ProviderError::Gone { .. } => Ok(Deleted::AlreadyGone),
            other => Err(other),
        }
    }
}

pub(super) async fn send(request: RequestBuilder) -> Result<Response, ProviderError> {
    request
        .send()
        .await
        .map_err(|error| ProviderError::Unavailable(without_url(&error)))
}

/// Sends a request that may safely be sent twice (GET, PUT, DELETE), once more when the
/// first attempt died on a connection the provider had closed (a restart, an idle
/// timeout). A registration (POST) is never resent: it could register twice.
async fn send_idempotent(request: impl Fn() -> RequestBuilder) -> Result<Response, ProviderError> {
    match request().send().await {
        Ok(response) => Ok(response),
        Err(error) if !error.is_timeout() && (error.is_connect() || error.is_request()) => {
            send(request()).await
        }
        Err(error) => Err(ProviderError::Unavailable(without_url(&error))),
    }
}

/// Transport errors in words, without the URL's query (which never holds secrets here,
/// but the habit is worth keeping).
fn without_url(error: &reqwest::Error) -> String {
    let mut words = error.to_string();
    if let Some(cut) = words.find(" for url") {
        words.truncate(cut);
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        words.push_str(": ");
        words.push_str(&cause.to_string());
        source = cause.source();
    }
    words
}

async fn body(response: Response) -> Result<Vec<u8>, ProviderError> {
    response
        .bytes()
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|error| ProviderError::Unavailable(without_url(&error)))
}

/// Reads a successful answer as `T`, or turns the failure into a [`ProviderError`].
pub(super) async fn read_json<T: for<'de> serde::Deserialize<'de>>(
    response: Response,
    url: &str,
) -> Result<T, ProviderError> {
    let status = response.status();
    let body = body(response).await?;
    if !status.is_success() {
        return Err(failure(status, &body, url));
    }
    serde_json::from_slice(&body)
        .map_err(|error| ProviderError::Protocol(format!("{url} answered {status} with {error}")))
}

/// The answer to a read or an update of a registration.
async fn managed(response: Response, uri: &str) -> Result<Answer, ProviderError> {
    let status = response.status();
    let body = body(response).await?;
    if !status.is_success() {
        return Err(management_failure(status, &body, uri));
    }
    let answer = object(&body, status, uri)?;
    Ok(Answer {
        held: HeldMetadata::from_answer(&answer),
        client_secret: text(&answer, "client_secret").map(SecretString::from),
        registration_access_token: text(&answer, "registration_access_token")
            .map(SecretString::from),
    })
}

fn object(body: &[u8], status: StatusCode, url: &str) -> Result<Map<String, Value>, ProviderError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(ProviderError::Protocol(format!(
            "{url} answered {status} with JSON that is not an object ({})",
            kind(&other)
        ))),
        Err(error) if body.is_empty() => Err(ProviderError::Protocol(format!(
            "{url} answered {status} with an empty body ({error})"
        ))),
        Err(error) => Err(ProviderError::Protocol(format!(
            "{url} answered {status} with a body that is not JSON: {error}"
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn text(answer: &Map<String, Value>, key: &str) -> Option<String> {
    match answer.get(key)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    }
}

fn client_id(answer: &Map<String, Value>) -> Option<String> {
    match answer.get("client_id")? {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The error an RFC 7591 §3.2.2 body describes, or the status alone.
fn described(status: StatusCode, body: &[u8]) -> String {
    let error = serde_json::from_slice::<Value>(body).ok();
    let field = |key: &str| {
        error
            .as_ref()
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (field("error"), field("error_description")) {
        (Some(error), Some(description)) => format!("{error} ({description})"),
        (Some(error), None) => error,
        _ => format!("HTTP {status}"),
    }
}

/// A failed management call: 401 and 404 say the registration is gone (RFC 7592 §2.1),
/// 403 that the provider refuses; the rest as any failure.
fn management_failure(status: StatusCode, body: &[u8], uri: &str) -> ProviderError {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND => ProviderError::Gone {
            status: status.as_u16(),
        },
        StatusCode::FORBIDDEN => ProviderError::Forbidden {
            detail: described(status, body),
        },
        _ => failure(status, body, uri),
    }
}

fn failure(status: StatusCode, body: &[u8], url: &str) -> ProviderError {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return ProviderError::Unavailable(format!("{url}: {}", described(status, body)));
    }
    let error = serde_json::from_slice::<Value>(body).ok();
    match error
        .as_ref()
        .and_then(|e| e.get("error"))
        .and_then(Value::as_str)
    {
        Some(code) => ProviderError::Rejected {
            error: code.to_owned(),
            description: error
                .as_ref()
                .and_then(|e| e.get("error_description"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        None => ProviderError::Protocol(format!("{url} answered {status}")),
    }
}
