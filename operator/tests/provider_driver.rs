//! The Dynamic Client Registration driver against a real OpenID provider on loopback:
//! register, read back, update (seen in a real token), delete, a provider that lost the
//! client, one that refuses management (403), one that keeps no unknown metadata, a
//! provider down, a bad initial access token, metadata refused.

mod common;

use common::{Flavour, INITIAL_ACCESS_TOKEN, TestProvider};
use nauthera_operator::provider::dcr::{DcrDriver, http_client};
use nauthera_operator::provider::discovery::DiscoveryCache;
use nauthera_operator::provider::{ClientMetadata, Deleted, ProviderError, Registration};
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

/// The provider's registration endpoint, by discovery.
async fn endpoint(provider: &TestProvider) -> String {
    let discovered = DiscoveryCache::default()
        .get(&http_client().unwrap(), &provider.issuer)
        .await
        .expect("discovery");
    discovered
        .document
        .registration_endpoint
        .clone()
        .expect("registration is enabled")
}

async fn register(provider: &TestProvider, metadata: &ClientMetadata) -> (DcrDriver, Registration) {
    let driver = DcrDriver::new(http_client().unwrap());
    let token = SecretString::from(INITIAL_ACCESS_TOKEN);
    let registration = driver
        .register(&endpoint(provider).await, Some(&token), metadata, "uid-1")
        .await
        .expect("registered");
    (driver, registration)
}

#[tokio::test]
async fn register_read_update_and_delete_with_lifetimes_seen_in_real_tokens() {
    let provider = TestProvider::start();
    let (driver, registration) = register(&provider, &service(15 * 60)).await;
    let secret = registration
        .client_secret
        .as_ref()
        .expect("a confidential client gets a secret")
        .expose_secret()
        .to_owned();
    let id = registration.client_id.clone();
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Ok(900),
        "a 15m token"
    );

    let read = driver
        .read(&registration.management)
        .await
        .expect("read back");
    let comparison = service(900).compare(&read.held);
    assert!(comparison.in_sync(), "{comparison:?}");
    assert!(comparison.unheld.is_empty(), "{comparison:?}");
    assert!(
        !service(300).compare(&read.held).in_sync(),
        "a TTL change is seen"
    );

    // The seed policy change: 15m → 5m. Same client, same secret, shorter tokens.
    let updated = driver
        .update(&registration.management, &id, &service(5 * 60))
        .await
        .expect("updated");
    assert!(service(300).compare(&updated.held).in_sync());
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Ok(300),
        "a 5m token with the same credentials"
    );

    assert_eq!(
        driver.delete(&registration.management).await.unwrap(),
        Deleted::Removed
    );
    assert_eq!(
        provider.client_credentials(&id, &secret, "api:read").await,
        Err("invalid_client".to_owned()),
        "the credentials no longer work"
    );
    let error = driver.read(&registration.management).await.unwrap_err();
    assert!(matches!(error, ProviderError::Gone { .. }), "{error:?}");
    assert_eq!(
        driver.delete(&registration.management).await.unwrap(),
        Deleted::AlreadyGone,
        "deleting again finds it gone, which is not an error"
    );
}

#[tokio::test]
async fn a_provider_that_lost_its_clients_says_the_registration_is_gone() {
    let mut provider = TestProvider::start();
    let (driver, registration) = register(&provider, &service(300)).await;
    provider.restart_empty();
    for error in [
        driver.read(&registration.management).await.unwrap_err(),
        driver
            .update(
                &registration.management,
                &registration.client_id,
                &service(60),
            )
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(error, ProviderError::Gone { status: 401 }),
            "{error:?}"
        );
        assert!(!error.is_transient());
    }
}

#[tokio::test]
async fn a_provider_that_refuses_management_is_forbidden_never_gone() {
    let provider = TestProvider::start();
    let (driver, registration) = register(&provider, &service(300)).await;
    provider.refuse_management(403).await;
    let read = driver.read(&registration.management).await.unwrap_err();
    let update = driver
        .update(
            &registration.management,
            &registration.client_id,
            &service(60),
        )
        .await
        .unwrap_err();
    let delete = driver.delete(&registration.management).await.unwrap_err();
    for error in [read, update, delete] {
        assert!(
            matches!(&error, ProviderError::Forbidden { detail } if detail.contains("access_denied")),
            "{error:?}"
        );
    }
    provider.refuse_management(0).await;
    assert_eq!(
        provider.clients().await,
        vec![registration.client_id.clone()],
        "still there"
    );
}

#[tokio::test]
async fn a_provider_that_keeps_no_unknown_metadata_is_in_sync_and_says_what_it_lacks() {
    let provider = TestProvider::start_with(Flavour::DropsUnknown, 0);
    let (driver, registration) = register(&provider, &service(300)).await;
    let read = driver.read(&registration.management).await.unwrap();
    let comparison = service(300).compare(&read.held);
    assert!(comparison.in_sync(), "{comparison:?}");
    assert_eq!(comparison.unheld, ["nauthera_access_token_ttl"]);
    let secret = registration.client_secret.as_ref().unwrap().expose_secret();
    assert_eq!(
        provider
            .client_credentials(&registration.client_id, secret, "api:read")
            .await,
        Ok(3600),
        "the provider's own default lifetime applies"
    );
}

#[tokio::test]
async fn a_bad_initial_access_token_is_a_clear_error() {
    let provider = TestProvider::start();
    let driver = DcrDriver::new(http_client().unwrap());
    let token = SecretString::from("not-the-token");
    let error = driver
        .register(
            &endpoint(&provider).await,
            Some(&token),
            &service(300),
            "uid-1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert!(
        error
            .to_string()
            .starts_with("the provider refused the initial access token: invalid_token"),
        "{error}"
    );
    assert!(provider.clients().await.is_empty());
}

#[tokio::test]
async fn metadata_the_provider_refuses_comes_back_with_its_reason() {
    let provider = TestProvider::start();
    let driver = DcrDriver::new(http_client().unwrap());
    let token = SecretString::from(INITIAL_ACCESS_TOKEN);
    let mut web = service(300);
    web.grant_types = vec!["authorization_code".to_owned()];
    web.response_types = vec!["code".to_owned()];
    web.redirect_uris = vec!["not a url".to_owned()];
    let error = driver
        .register(&endpoint(&provider).await, Some(&token), &web, "uid-1")
        .await
        .unwrap_err();
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
    let mut provider = TestProvider::start();
    let (driver, registration) = register(&provider, &service(300)).await;
    let issuer = provider.issuer.clone();
    provider.stop();

    let error = driver
        .update(
            &registration.management,
            &registration.client_id,
            &service(60),
        )
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
    let error = DiscoveryCache::default()
        .get(&http_client().unwrap(), &issuer)
        .await
        .unwrap_err();
    assert!(error.is_transient());
}

#[tokio::test]
async fn discovery_is_fetched_once_per_issuer() {
    let provider = TestProvider::start();
    let cache = DiscoveryCache::default();
    let http = http_client().unwrap();
    for _ in 0..5 {
        cache.get(&http, &provider.issuer).await.unwrap();
    }
    assert_eq!(cache.fetches(), 1);
}

#[tokio::test]
async fn secrets_never_show_in_debug_output() {
    let provider = TestProvider::start();
    let (driver, registration) = register(&provider, &service(300)).await;
    let printed = format!("{registration:?}");
    let secret = registration.client_secret.as_ref().unwrap().expose_secret();
    let token = registration
        .management
        .registration_access_token
        .expose_secret();
    assert!(!printed.contains(secret), "{printed}");
    assert!(!printed.contains(token), "{printed}");
    let read = driver.read(&registration.management).await.unwrap();
    let printed = format!("{read:?}");
    assert!(!printed.contains(secret), "{printed}");
}

/// The same protocol, a second and independent implementation: Glewlwyd.
mod glewlwyd {
    use super::*;
    use crate::common::glewlwyd::Glewlwyd;

    /// Glewlwyd wants at least one redirect URI, whatever the grant.
    fn service(ttl_seconds: u64) -> ClientMetadata {
        ClientMetadata {
            redirect_uris: vec!["https://orders.example.com/callback".to_owned()],
            ..super::service(ttl_seconds)
        }
    }

    async fn register(glewlwyd: &Glewlwyd, metadata: &ClientMetadata) -> (DcrDriver, Registration) {
        let endpoint = DiscoveryCache::default()
            .get(&http_client().unwrap(), &glewlwyd.issuer)
            .await
            .expect("discovery")
            .document
            .registration_endpoint
            .clone()
            .expect("registration is enabled");
        let token = SecretString::from(glewlwyd.initial_access_token().await);
        let driver = DcrDriver::new(http_client().unwrap());
        let registration = driver
            .register(&endpoint, Some(&token), metadata, "uid-1")
            .await
            .expect("registered (Glewlwyd answers 200, not 201)");
        (driver, registration)
    }

    #[tokio::test]
    async fn register_read_update_and_delete_following_every_new_secret() {
        let Some(glewlwyd) = Glewlwyd::start() else {
            return;
        };
        let (driver, registration) = register(&glewlwyd, &service(900)).await;
        let id = registration.client_id.clone();
        let first = registration
            .client_secret
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        assert_eq!(glewlwyd.client_credentials(&id, &first).await, Ok(3600));

        // A read answers another shape: the method as a list, defaults added, no scope,
        // no nauthera_*, no registration access token. A steady client is in sync.
        let read = driver.read(&registration.management).await.expect("read");
        let comparison = service(900).compare(&read.held);
        assert!(comparison.in_sync(), "{comparison:?}");
        assert_eq!(
            comparison.unheld,
            ["nauthera_access_token_ttl", "scope"],
            "what this provider does not keep"
        );
        assert!(read.registration_access_token.is_none());

        // Every update issues a new secret and kills the old one at once.
        let updated = driver
            .update(&registration.management, &id, &service(300))
            .await
            .expect("updated");
        let second = updated
            .client_secret
            .as_ref()
            .expect("the new secret is in the answer")
            .expose_secret()
            .to_owned();
        assert_ne!(second, first);
        assert!(glewlwyd.client_credentials(&id, &first).await.is_err());
        assert_eq!(glewlwyd.client_credentials(&id, &second).await, Ok(3600));
        assert!(
            updated.registration_access_token.is_none(),
            "no new token in the answer: the stored one stays valid"
        );
        driver
            .read(&registration.management)
            .await
            .expect("the stored registration access token still works");

        assert_eq!(
            driver.delete(&registration.management).await.unwrap(),
            Deleted::Removed,
            "an empty 200"
        );
        let error = driver.read(&registration.management).await.unwrap_err();
        assert!(
            matches!(error, ProviderError::Gone { status: 401 }),
            "{error:?}"
        );
        assert_eq!(
            driver.delete(&registration.management).await.unwrap(),
            Deleted::AlreadyGone
        );
        assert!(glewlwyd.clients().is_empty());
    }

    #[tokio::test]
    async fn a_bad_initial_access_token_and_an_outage_are_told_apart() {
        let Some(mut glewlwyd) = Glewlwyd::start() else {
            return;
        };
        let endpoint = format!("{}/register", glewlwyd.issuer);
        let driver = DcrDriver::new(http_client().unwrap());
        let error = driver
            .register(
                &endpoint,
                Some(&SecretString::from("nope")),
                &service(300),
                "uid-1",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProviderError::Unauthorized { .. }),
            "{error:?}"
        );
        let (driver, registration) = register(&glewlwyd, &service(300)).await;
        glewlwyd.stop();
        let error = driver.read(&registration.management).await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }
}
