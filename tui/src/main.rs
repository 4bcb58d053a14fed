//! `nauthera-tui`: Nauthera's terminal dashboard and its headless checks.

mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Nauthera's terminal companion: see which OAuth2/OIDC clients comply with which
/// AuthPolicies, from a folder of manifests (a GitOps repository) or a cluster.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every AuthClient in a folder of manifests against its policies.
    ///
    /// Reads *.yaml and *.yml files recursively (hidden folders skipped), prints each
    /// client's compliance and violations, and exits 0 when every client complies,
    /// 1 when any client is non-compliant, 2 on errors (unreadable folder, no Nauthera
    /// manifests, or a manifest that cannot be read). Made for pull-request gates.
    #[command(
        after_help = "Example:\n  nauthera-tui check examples/\n  nauthera-tui check --output json gitops/ > report.json"
    )]
    Check {
        /// The folder (or single file) of manifests.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// For people and CI logs.
    Text,
    /// For tools: every evaluation, error and count.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { dir, output } => check::run(&dir, output),
    }
}
