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
    /// Run the operator: reconcile every AuthClient until stopped (SIGTERM, Ctrl-C).
    ///
    /// Out of cluster it uses the kubeconfig (KUBECONFIG or ~/.kube/config, current
    /// context or --context); in a pod, its service account. Serves /metrics, /healthz and
    /// /readyz on --listen.
    #[command(
        after_help = "Examples:\n  nauthera-operator run                       in a pod, or with the current context\n  nauthera-operator run --context kind-dev --namespace nauthera-system --log-format json"
    )]
    Run {
        /// Where registration Secrets are kept (the operator's own namespace; teams must
        /// not be able to read Secrets there).
        #[arg(long, short, env = "POD_NAMESPACE", default_value = "nauthera-system")]
        namespace: String,
        /// The kubeconfig context to use out of cluster.
        #[arg(long)]
        context: Option<String>,
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: std::net::SocketAddr,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Print the CustomResourceDefinitions, or write one file per kind with --dir.
    ///
    /// Install them with: nauthera-operator crds | kubectl apply --server-side -f -
    Crds {
        /// Write `<plural>.auth.nauthera.io.yaml` files into this folder instead of printing.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> Result<()> {
    color_eyre::install()?;
    match Cli::parse().command {
        Command::Run {
            namespace,
            context,
            listen,
            log_format,
        } => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into());
            let logs = tracing_subscriber::fmt().with_env_filter(filter);
            match log_format {
                LogFormat::Text => logs.init(),
                LogFormat::Json => logs.json().init(),
            }
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let options = kube::config::KubeConfigOptions {
                    context,
                    ..Default::default()
                };
                let config = match kube::Config::from_kubeconfig(&options).await {
                    Ok(config) => config,
                    Err(kubeconfig) => kube::Config::incluster().wrap_err_with(|| {
                        format!("no kubeconfig ({kubeconfig}) and not in a pod")
                    })?,
                };
                let client = kube::Client::try_from(config)?;
                tracing::info!(%namespace, %listen, "nauthera-operator starting");
                nauthera_operator::controller::run(client, namespace, listen).await
            })?;
        }
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
