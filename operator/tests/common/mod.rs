//! A real OpenID provider for the tests: `operator/tests/provider/server.mjs`
//! (panva/oidc-provider, pinned in its package-lock.json), started on a loopback port and
//! stopped when dropped. It can be restarted empty on the same port (a provider that
//! lost its clients), made to drop unknown metadata as most providers do, and asked
//! through its test hooks which clients it holds and how many registration requests it
//! saw.

#![allow(dead_code)]

pub mod cluster;
pub mod glewlwyd;
pub mod mock_api;
pub mod world;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A suite that cannot run here says so and passes — unless `NAUTHERA_E2E_REQUIRED` is
/// set (`./test.sh` sets it when it starts a cluster), where a skip would hide a suite
/// that never ran: then it fails.
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("NAUTHERA_E2E_REQUIRED").is_none_or(|v| v.is_empty() || v == "0"),
        "not skipped, NAUTHERA_E2E_REQUIRED is set: {why}"
    );
    eprintln!("skipped: {why}");
}

pub const INITIAL_ACCESS_TOKEN: &str = "nauthera-test-initial-access-token";

/// How the provider behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavour {
    /// Keeps and echoes the `nauthera_*` metadata, and honours it.
    #[default]
    Extended,
    /// Keeps none of the `nauthera_*` metadata and never echoes it.
    DropsUnknown,
}

pub struct TestProvider {
    pub issuer: String,
    pub port: u16,
    flavour: Flavour,
    process: Child,
}

/// Registration requests the provider saw, by method.
#[derive(Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub struct Requests {
    pub post: u64,
    pub get: u64,
    pub put: u64,
    pub delete: u64,
}

/// A registration as the provider holds it.
#[derive(Debug, serde::Deserialize)]
pub struct Held {
    pub client_id: String,
    pub client_name: Option<String>,
    pub software_id: Option<String>,
}

impl Requests {
    /// Registrations, updates and deletions: what changes the provider's state.
    pub fn writes(&self) -> u64 {
        self.post + self.put + self.delete
    }
}

impl TestProvider {
    pub fn start() -> Self {
        Self::start_with(Flavour::Extended, 0)
    }

    pub fn start_with(flavour: Flavour, port: u16) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/provider");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test provider is not installed: run `npm ci` in {} (./test.sh does it)",
            dir.display()
        );
        let mut command = Command::new("node");
        command
            .arg("server.mjs")
            .arg(port.to_string())
            .current_dir(&dir)
            .env("NAUTHERA_TEST_INITIAL_ACCESS_TOKEN", INITIAL_ACCESS_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if flavour == Flavour::DropsUnknown {
            command.env("NAUTHERA_TEST_DROP_UNKNOWN", "1");
        }
        let mut process = command.spawn().expect("node runs the test provider");
        let stdout = process.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("the test provider prints its port")
                .unwrap();
            if let Some(port) = line.strip_prefix("listening ") {
                break port.trim().parse().expect("a port");
            }
        };
        Self {
            issuer: format!("http://127.0.0.1:{port}"),
            port,
            flavour,
            process,
        }
    }

    /// Stops the provider and starts an empty one at the same address: every client and
    /// registration access token it held is gone.
    pub fn restart_empty(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let mut restarted = Self::start_with(self.flavour, self.port);
        std::mem::swap(&mut self.process, &mut restarted.process);
    }

    /// Stops the provider (an outage) until [`Self::restart_empty`].
    pub fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// The client ids registered now.
    pub async fn clients(&self) -> Vec<String> {
        reqwest::get(format!("{}/nauthera-test/clients", self.issuer))
            .await
            .expect("the provider's test hook answers")
            .json()
            .await
            .expect("a list of client ids")
    }

    /// Every registration held now, with the `software_id` it was registered with.
    pub async fn registrations(&self) -> Vec<Held> {
        reqwest::get(format!("{}/nauthera-test/registrations", self.issuer))
            .await
            .expect("the provider's test hook answers")
            .json()
            .await
            .expect("a list of registrations")
    }

    /// Registration requests seen since the provider started.
    pub async fn requests(&self) -> Requests {
        reqwest::get(format!("{}/nauthera-test/requests", self.issuer))
            .await
            .expect("the provider's test hook answers")
            .json()
            .await
            .expect("counts by method")
    }

    /// Deletes a client at the provider, as its administrator would.
    pub async fn forget(&self, client_id: &str) {
        reqwest::Client::new()
            .post(format!(
                "{}/nauthera-test/forget?client_id={client_id}",
                self.issuer
            ))
            .send()
            .await
            .expect("the provider's test hook answers");
    }

    /// From now on, answer every RFC 7592 management request with `status` (0: stop).
    pub async fn refuse_management(&self, status: u16) {
        reqwest::Client::new()
            .post(format!(
                "{}/nauthera-test/refuse?status={status}",
                self.issuer
            ))
            .send()
            .await
            .expect("the provider's test hook answers");
    }

    /// A token by the client_credentials grant: its `expires_in`, or the error answered.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> Result<u64, String> {
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=client_credentials&scope={scope}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        body["expires_in"]
            .as_u64()
            .ok_or_else(|| body["error"].as_str().unwrap_or("no error").to_owned())
    }

    /// Whether the provider accepts these credentials: token introspection (RFC 7662)
    /// requires the client to authenticate, whatever grants it may use.
    pub async fn authenticates(&self, client_id: &str, secret: &str) -> bool {
        reqwest::Client::new()
            .post(format!("{}/token/introspection", self.issuer))
            .basic_auth(client_id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=not-a-token")
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
