//! The Dynamic Client Registration driver against a real OpenID provider on loopback:
//! register, read back, update (seen in a real token), delete, provider down, bad initial
//! access token, metadata refused.

mod common;

use common::{INITIAL_ACCESS_TOKEN, TestProvider};
use nauthera_operator::provider::dcr::DcrDriver;
use nauthera_operator::provider::{ClientMetadata, ProviderDriver, ProviderError};
use secrecy::{ExposeSecret, SecretString};

fn service(ttl_seconds: u64) -> ClientMetadata {
    ClientMetadata {
        client_name: "shop/order-service".to_owned(),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec!["client_credentials".to_owned()],
        response_types: Vec::new(),
        token_endpoint_auth_method: "client_secret_basic".to_owned(),
        scope: "api:read orders:write".to_owned(),
        jwks_uri: None,
        nauthera_access_token_ttl: Some(ttl_seconds),
        nauthera_refresh_token_ttl: None,
        nauthera_id_token_ttl: None,
        nauthera_require_pkce: false,
    }
}

async fn driver(provider: &TestProvider, token: &str) -> DcrDriver {
    DcrDriver::for_issuer(
        &provider.issuer,
        None,
        Some(SecretString::from(token.to_owned())),
    )
    .await
    .expect("discovery")
}

#[tokio::test]
async fn register_read_update_and_delete_with_lifetimes_seen_in_real_tokens() {
    let provider = TestProvider::start();
    let driver = driver(&provider, INITIAL_ACCESS_TOKEN).await;

    let registration = driver
        .register(&service(15 * 60))
        .await
        .expect("registered");
    let secret = registration
        .client_secret
        .as_ref()
        .expect("a confidential client gets a secret");
    assert!(
        registration.metadata.agrees_with(&service(15 * 60)),
        "{:?}",
        registration.metadata
    );
    assert_eq!(
        provider
            .client_credentials(&registration.client_id, secret.expose_secret(), "api:read")
            .await,
        Ok(900),
        "a 15m token"
    );

    let read = driver
        .read(&registration.management)
        .await
        .expect("read back");
    assert!(read.metadata.agrees_with(&service(900)));

    // The seed policy change: 15m → 5m. Same client, same secret, shorter tokens.
    let updated = driver
        .update(&registration.management, &service(5 * 60))
        .await
        .expect("updated");
    assert!(updated.metadata.agrees_with(&service(300)));
    assert_eq!(
        provider
            .client_credentials(&registration.client_id, secret.expose_secret(), "api:read")
            .await,
        Ok(300),
        "a 5m token with the same credentials"
    );

    driver
        .delete(&registration.management)
        .await
        .expect("deleted");
    assert_eq!(
        provider
            .client_credentials(&registration.client_id, secret.expose_secret(), "api:read")
            .await,
        Err("invalid_client".to_owned()),
        "the credentials no longer work"
    );
    assert!(driver.read(&registration.management).await.is_err());
    // Deleting again is not an error: it is gone either way.
    driver
        .delete(&registration.management)
        .await
        .expect("already gone is deleted");
}

#[tokio::test]
async fn a_bad_initial_access_token_is_a_clear_error() {
    let provider = TestProvider::start();
    let driver = driver(&provider, "not-the-token").await;
    let error = driver.register(&service(300)).await.unwrap_err();
    assert!(
        matches!(
            error,
            ProviderError::Unauthorized {
                token: "initial access token",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert!(
        error
            .to_string()
            .starts_with("the provider refused the initial access token: invalid_token"),
        "{error}"
    );
}

#[tokio::test]
async fn metadata_the_provider_refuses_comes_back_with_its_reason() {
    let provider = TestProvider::start();
    let driver = driver(&provider, INITIAL_ACCESS_TOKEN).await;
    let mut web = service(300);
    web.grant_types = vec!["authorization_code".to_owned()];
    web.response_types = vec!["code".to_owned()];
    web.redirect_uris = vec!["not a url".to_owned()];
    let error = driver.register(&web).await.unwrap_err();
    let ProviderError::Rejected {
        error: code,
        description,
    } = &error
    else {
        panic!("refused metadata: {error:?}");
    };
    assert_eq!(code, "invalid_redirect_uri");
    assert!(
        description
            .as_deref()
            .is_some_and(|d| d.contains("redirect_uris")),
        "{description:?}"
    );
}

#[tokio::test]
async fn a_provider_that_is_down_is_transient_and_says_so() {
    let provider = TestProvider::start();
    let driver = driver(&provider, INITIAL_ACCESS_TOKEN).await;
    let registration = driver.register(&service(300)).await.unwrap();
    let issuer = provider.issuer.clone();
    drop(provider);

    let error = driver
        .update(&registration.management, &service(60))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("the provider is unavailable: "),
        "{error}"
    );
    let error = driver.delete(&registration.management).await.unwrap_err();
    assert!(
        error.is_transient(),
        "a delete during an outage must be retried, never assumed done: {error:?}"
    );

    let Err(error) = DcrDriver::for_issuer(&issuer, None, None).await else {
        panic!("discovery of a stopped provider")
    };
    assert!(error.is_transient());
}

#[tokio::test]
async fn secrets_never_show_in_debug_output() {
    let provider = TestProvider::start();
    let driver = driver(&provider, INITIAL_ACCESS_TOKEN).await;
    let registration = driver.register(&service(300)).await.unwrap();
    let printed = format!("{registration:?}");
    let secret = registration.client_secret.as_ref().unwrap().expose_secret();
    let token = registration
        .management
        .registration_access_token
        .expose_secret();
    assert!(!printed.contains(secret), "{printed}");
    assert!(!printed.contains(token), "{printed}");
    driver.delete(&registration.management).await.unwrap();
}
