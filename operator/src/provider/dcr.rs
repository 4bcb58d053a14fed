//! OAuth 2.0 Dynamic Client Registration (RFC 7591) and its management protocol
//! (RFC 7592): register with the initial access token, then read, update and delete with
//! the registration access token the provider returned.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ClientMetadata, Management, ProviderDriver, ProviderError, Registered, Registration};

/// No provider call may hang a reconcile.
const TIMEOUT: Duration = Duration::from_secs(15);

pub struct DcrDriver {
    http: reqwest::Client,
    registration_endpoint: String,
    initial_access_token: Option<SecretString>,
}

/// The part of the discovery document the driver needs.
#[derive(Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub registration_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// Reads `issuer`'s discovery document and checks it names the same issuer (OpenID
/// Connect Discovery §4.3).
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery, ProviderError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let response = send(http.get(&url)).await?;
    let discovery: Discovery = json(response, "discovery request").await?;
    if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(ProviderError::Protocol(format!(
            "the discovery document at {url} names issuer {:?}, not {issuer:?}",
            discovery.issuer
        )));
    }
    Ok(discovery)
}

impl DcrDriver {
    /// A driver for the provider at `issuer`: the registration endpoint is `endpoint` when
    /// given, else the one the discovery document names.
    pub async fn for_issuer(
        issuer: &str,
        endpoint: Option<&str>,
        initial_access_token: Option<SecretString>,
    ) -> Result<Self, ProviderError> {
        let http = http_client()?;
        let registration_endpoint = match endpoint {
            Some(endpoint) => endpoint.to_owned(),
            None => discover(&http, issuer).await?.registration_endpoint.ok_or_else(|| {
                ProviderError::Protocol(format!(
                    "{issuer} offers no registration_endpoint: dynamic client registration is not enabled there"
                ))
            })?,
        };
        Ok(Self {
            http,
            registration_endpoint,
            initial_access_token,
        })
    }
}

impl DcrDriver {
    /// A driver for registrations already made: RFC 7592 calls go to each registration's
    /// own URI with its own token, so no discovery and no initial access token are needed.
    /// It cannot register.
    pub fn for_registrations() -> Result<Self, ProviderError> {
        Ok(Self {
            http: http_client()?,
            registration_endpoint: String::new(),
            initial_access_token: None,
        })
    }
}

pub fn http_client() -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("nauthera-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| ProviderError::Protocol(format!("cannot build an HTTP client: {error}")))
}

/// What a registration (or a read of one) answers: the metadata and the credentials.
#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    client_secret: Option<String>,
    registration_client_uri: Option<String>,
    registration_access_token: Option<String>,
    #[serde(flatten)]
    metadata: ClientMetadata,
}

impl RegistrationResponse {
    /// The metadata, and the new registration access token if the provider rotated it
    /// (RFC 7592 §3 allows rotation on any read or update).
    fn into_registered(self) -> Registered {
        Registered {
            metadata: self.metadata,
            rotated_token: self.registration_access_token.map(SecretString::from),
        }
    }
}

/// RFC 7591 §3.2.2.
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

async fn send(request: RequestBuilder) -> Result<Response, ProviderError> {
    request
        .send()
        .await
        .map_err(|error| ProviderError::Unavailable(without_url(&error)))
}

/// Transport errors in words, without the URL's query (which never holds secrets here,
/// but the habit is worth keeping).
fn without_url(error: &reqwest::Error) -> String {
    let error = error.to_string();
    error.split(" for url").next().unwrap_or(&error).to_owned()
}

/// Reads a successful answer as `T`, or turns the failure into a [`ProviderError`].
async fn json<T: for<'de> Deserialize<'de>>(
    response: Response,
    token: &'static str,
) -> Result<T, ProviderError> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|error| ProviderError::Unavailable(without_url(&error)))?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|error| {
            ProviderError::Protocol(format!("unreadable answer ({status}): {error}"))
        });
    }
    Err(failure(status, &body, token))
}

fn failure(status: StatusCode, body: &[u8], token: &'static str) -> ProviderError {
    let described = serde_json::from_slice::<ErrorResponse>(body).ok();
    let detail = described.as_ref().map_or_else(
        || format!("HTTP {status}"),
        |e| {
            format!(
                "{} ({})",
                e.error,
                e.error_description.as_deref().unwrap_or("no description")
            )
        },
    );
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ProviderError::Unauthorized { token, detail }
        }
        StatusCode::NOT_FOUND => ProviderError::NotFound,
        status if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
            ProviderError::Unavailable(detail)
        }
        _ => match described {
            Some(ErrorResponse {
                error,
                error_description,
            }) => ProviderError::Rejected {
                error,
                description: error_description,
            },
            None => ProviderError::Protocol(detail),
        },
    }
}

impl ProviderDriver for DcrDriver {
    async fn register(&self, metadata: &ClientMetadata) -> Result<Registration, ProviderError> {
        if self.registration_endpoint.is_empty() {
            return Err(ProviderError::Protocol(
                "this driver manages existing registrations only".to_owned(),
            ));
        }
        let mut request = self.http.post(&self.registration_endpoint).json(metadata);
        if let Some(token) = &self.initial_access_token {
            request = request.bearer_auth(token.expose_secret());
        }
        let answer: RegistrationResponse =
            json(send(request).await?, "initial access token").await?;
        let (Some(uri), Some(token)) = (
            answer.registration_client_uri,
            answer.registration_access_token,
        ) else {
            return Err(ProviderError::Protocol(format!(
                "client {} was registered without registration_client_uri and registration_access_token: the provider does not offer RFC 7592 management, so Nauthera could never update or delete it — delete it by hand",
                answer.client_id
            )));
        };
        Ok(Registration {
            client_id: answer.client_id,
            client_secret: answer.client_secret.map(SecretString::from),
            management: Management {
                registration_client_uri: uri,
                registration_access_token: SecretString::from(token),
            },
            metadata: answer.metadata,
        })
    }

    async fn read(&self, management: &Management) -> Result<Registered, ProviderError> {
        let request = self
            .http
            .get(&management.registration_client_uri)
            .bearer_auth(management.registration_access_token.expose_secret());
        let answer: RegistrationResponse =
            json(send(request).await?, "registration access token").await?;
        Ok(answer.into_registered())
    }

    async fn update(
        &self,
        management: &Management,
        metadata: &ClientMetadata,
    ) -> Result<Registered, ProviderError> {
        // RFC 7592 §2.2: the whole metadata, with the client_id, replaces what is there.
        let client_id = management
            .registration_client_uri
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let mut body = serde_json::to_value(metadata)
            .map_err(|error| ProviderError::Protocol(error.to_string()))?;
        body["client_id"] = serde_json::Value::String(client_id.to_owned());
        let request = self
            .http
            .put(&management.registration_client_uri)
            .bearer_auth(management.registration_access_token.expose_secret())
            .json(&body);
        let answer: RegistrationResponse =
            json(send(request).await?, "registration access token").await?;
        Ok(answer.into_registered())
    }

    async fn delete(&self, management: &Management) -> Result<(), ProviderError> {
        let request = self
            .http
            .delete(&management.registration_client_uri)
            .bearer_auth(management.registration_access_token.expose_secret());
        let response = send(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        match failure(status, &body, "registration access token") {
            // Gone already, or its token with it (RFC 7592 §2.3 answers 401 for both).
            ProviderError::NotFound | ProviderError::Unauthorized { .. } => Ok(()),
            other => Err(other),
        }
    }
}
