//! Nauthera's second test provider: Glewlwyd, an OpenID Connect provider written in C,
//! installed from Debian's packages (`./test.sh` installs it as root) and started on a
//! free loopback port by `operator/tests/glewlwyd/start.sh` with a fresh database.
//!
//! It differs from oidc-provider in legal and common ways: 200 for a registration, an
//! empty 200 for a delete, 401 for a client it no longer knows, the method as a list in a
//! read, no `scope` and no `nauthera_*` kept, a new client secret on every update, and
//! only the `api` scope for registered clients.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::cluster::free_port;

pub struct Glewlwyd {
    pub issuer: String,
    state: tempfile::TempDir,
    process: Child,
}

impl Glewlwyd {
    /// A fresh Glewlwyd, or `None` (saying so) when it is not installed here.
    pub fn start() -> Option<Self> {
        let installed = Command::new("sh")
            .args(["-c", "command -v glewlwyd && command -v sqlite3"])
            .output()
            .is_ok_and(|output| output.status.success());
        if !installed {
            super::skip(
                "Glewlwyd is not installed (apt-get install glewlwyd sqlite3; ./test.sh does it as root)",
            );
            return None;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/glewlwyd/start.sh");
        let state = tempfile::tempdir().expect("a state directory");
        let port = free_port();
        let mut process = Command::new(script)
            .arg(port.to_string())
            .arg(state.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Glewlwyd start script runs");
        let stdout = process.stdout.take().unwrap();
        let line = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.starts_with("GLEWLWYD_"))
            .unwrap_or_default();
        let issuer = line
            .strip_prefix("GLEWLWYD_READY issuer=")
            .unwrap_or_else(|| panic!("Glewlwyd did not start: {line}"))
            .trim()
            .to_owned();
        Some(Self {
            issuer,
            state,
            process,
        })
    }

    /// An initial access token, by a client_credentials grant of the bootstrap client.
    pub async fn initial_access_token(&self) -> String {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth("dcr-bootstrap", Some("dcr-bootstrap-secret"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "registration"),
            ])
            .send()
            .await
            .expect("Glewlwyd answers")
            .json()
            .await
            .expect("a token answer");
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no initial access token: {answer}"))
            .to_owned()
    }

    /// A token by the client_credentials grant (Glewlwyd gives registered clients the
    /// `api` scope only): its `expires_in`, or what was answered.
    pub async fn client_credentials(&self, client_id: &str, secret: &str) -> Result<u64, String> {
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "api")])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        body["expires_in"]
            .as_u64()
            .ok_or_else(|| format!("HTTP {status} {body}"))
    }

    /// The registered clients it holds enabled (a deleted one is disabled, not removed).
    pub fn clients(&self) -> Vec<String> {
        let output = Command::new("sqlite3")
            .arg(self.state.path().join("glewlwyd.db"))
            .arg("SELECT gc_client_id FROM g_client WHERE gc_enabled = 1 AND gc_client_id <> 'dcr-bootstrap';")
            .output()
            .expect("sqlite3 reads Glewlwyd's database");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Stops it (an outage).
    pub fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Glewlwyd {
    fn drop(&mut self) {
        self.stop();
    }
}
