//! `nauthera-operator`: reconciles AuthClients into an OIDC provider.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use color_eyre::eyre::{Context, Result};

/// Nauthera's Kubernetes operator: provisions AuthClients in their AuthServer's OIDC
/// provider, within the AuthPolicies that govern them, and writes their credentials to
/// Secrets.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CustomResourceDefinitions, or write one file per kind with --dir.
    ///
    /// Install them with: nauthera-operator crds | kubectl apply --server-side -f -
    Crds {
        /// Write `<plural>.auth.nauthera.io.yaml` files into this folder instead of printing.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    color_eyre::install()?;
    match Cli::parse().command {
        Command::Crds { dir: None } => print!("{}", nauthera_shared::crds::crds_yaml()),
        Command::Crds { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)
                .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
            for (name, yaml) in nauthera_shared::crds::crd_files() {
                let path = dir.join(name);
                std::fs::write(&path, yaml)
                    .wrap_err_with(|| format!("cannot write {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
