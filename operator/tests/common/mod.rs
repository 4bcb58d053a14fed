//! A real OpenID provider for the tests: `operator/tests/provider/server.mjs`
//! (panva/oidc-provider, pinned in its package-lock.json), started on a free loopback
//! port and stopped when dropped.

#![allow(dead_code)]

pub mod cluster;
pub mod mock_api;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const INITIAL_ACCESS_TOKEN: &str = "nauthera-test-initial-access-token";

pub struct TestProvider {
    pub issuer: String,
    process: Child,
}

impl TestProvider {
    pub fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/provider");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test provider is not installed: run `npm ci` in {} (./test.sh does it)",
            dir.display()
        );
        let mut process = Command::new("node")
            .arg("server.mjs")
            .arg("0")
            .current_dir(&dir)
            .env("NAUTHERA_TEST_INITIAL_ACCESS_TOKEN", INITIAL_ACCESS_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the test provider");
        let stdout = process.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("the test provider prints its port")
                .unwrap();
            if let Some(port) = line.strip_prefix("listening ") {
                break port.trim().to_owned();
            }
        };
        Self {
            issuer: format!("http://127.0.0.1:{port}"),
            process,
        }
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
}

impl TestProvider {
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
