//! `nauthera-operator`: reconciles AuthClients into an OIDC provider.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use color_eyre::eyre::{Context, Result};
use nauthera_operator::context::Settings;
use nauthera_operator::controller::Options;
use nauthera_operator::leader::LeaseSettings;
use nauthera_operator::webhook::{Endpoint, WebhookSettings};
use nauthera_shared::duration::Lifetime;

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
    /// context or --context); in a pod, its service account. Only one instance reconciles
    /// at a time (a Lease in --namespace elects it); others wait, ready to take over.
    /// Serves /metrics, /healthz and /readyz on --listen, and with --webhook-listen the
    /// admission webhook that refuses non-compliant AuthClients at `kubectl apply`.
    #[command(
        after_help = "Examples:\n  nauthera-operator run                       in a pod, or with the current context\n  nauthera-operator run --context kind-dev --namespace nauthera-system --log-format json\n  nauthera-operator run --resync 1m --concurrency 32\n  nauthera-operator run --webhook-listen 0.0.0.0:8443\n                                              the webhook, behind Service nauthera-operator:443\n  nauthera-operator run --webhook-listen 127.0.0.1:8443 \\\n      --webhook-url https://127.0.0.1:8443/validate\n                                              out of cluster, the API server on this machine\n\nOn SIGTERM it stops taking work, gives in-flight reconciles --grace to finish, releases\nthe lease and exits; a second signal exits at once. A lost lease exits with status 1."
    )]
    Run {
        /// The operator's own namespace: registration records (with each client's
        /// registration access token) and the leader Lease are kept there. Teams must not
        /// be able to read Secrets in it. It must exist.
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
        /// How often each registration is read at its provider, to repair drift (a
        /// provider that lost a client, settings changed there). Go-style: 30s, 5m, 1h.
        #[arg(long, default_value = "5m", value_parser = seconds)]
        resync: Duration,
        /// How many AuthClients are reconciled at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        /// How long in-flight reconciles get to finish after SIGTERM.
        #[arg(long, default_value = "5s", value_parser = seconds)]
        grace: Duration,
        /// The name of the leader Lease in --namespace.
        #[arg(long, default_value = "nauthera-operator")]
        lease_name: String,
        /// This instance's identity in the Lease; must be unique per running process.
        /// Defaults to POD_NAME, else the host name and process id.
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// Reconcile without leader election. Only safe when exactly one instance runs.
        #[arg(long)]
        no_leader_election: bool,
        /// A local directory where each new registration is journalled between the
        /// provider's answer and its record, so a kill in between loses nothing (a
        /// container restart keeps an emptyDir). Without it, such a kill can leave one
        /// registration unrecorded at the provider, which the next start reports.
        #[arg(long, env = "NAUTHERA_JOURNAL_DIR", value_name = "DIR")]
        journal_dir: Option<PathBuf>,
        #[command(flatten)]
        webhook: Box<WebhookArgs>,
    },
    /// Before uninstalling: stop the operator and release its AuthClients, so none is
    /// left behind a finalizer no operator will remove.
    ///
    /// Scales the operator's Deployment to 0 and takes its leader Lease once the running
    /// instance lets it go (one still leading would put the finalizers back; if the Lease
    /// stays held, the Deployment is scaled back and nothing changes). Then it takes the
    /// operator's finalizer off its AuthClients (with a Warning event each) and its
    /// registration records. Registrations stay at their providers and credentials
    /// Secrets in place: apps keep working. The records stay too, so an operator
    /// installed again in the same namespace manages every registration on. The Helm
    /// chart runs this before `helm uninstall` deletes anything.
    #[command(
        after_help = "Examples:\n  nauthera-operator release                     the operator of deploy/ (nauthera-system)\n  nauthera-operator release -n auth --deployment auth-nauthera-operator --lease-name auth-nauthera-operator\n\nThen remove the operator but keep its namespace (the records), e.g.\n  kubectl -n nauthera-system delete deployment,service,serviceaccount,role,rolebinding -l app.kubernetes.io/name=nauthera-operator\n  kubectl delete clusterrole,clusterrolebinding -l app.kubernetes.io/name=nauthera-operator\n(kubectl delete -f deploy/operator.yaml deletes the namespace too: a later install then\nreports each client's registration as RegistrationRecordLost, credentials still working.)\nTo delete the registrations instead, delete the AuthClients while the operator runs."
    )]
    Release {
        /// The operator's namespace (its Deployment and registration records).
        #[arg(long, short, env = "POD_NAMESPACE", default_value = "nauthera-system")]
        namespace: String,
        /// The operator's Deployment in --namespace, scaled to 0 (none there: none to scale).
        #[arg(long, default_value = "nauthera-operator")]
        deployment: String,
        /// The operator's leader Lease in --namespace: taken, once its holder lets it go,
        /// and held while releasing, so no instance reconciles meanwhile.
        #[arg(long, default_value = "nauthera-operator")]
        lease_name: String,
        /// The kubeconfig context to use out of cluster.
        #[arg(long)]
        context: Option<String>,
        /// How long to wait for the Lease (else the Deployment is scaled back and nothing
        /// is released).
        #[arg(long, default_value = "2m", value_parser = seconds)]
        timeout: Duration,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Print the CustomResourceDefinitions, or write one file per kind with --dir.
    ///
    /// Install them with: nauthera-operator crds | kubectl apply --server-side -f -
    Crds {
        /// Write `<plural>.auth.nauthera.io.yaml` files into this folder instead of
        /// printing; given more than once, into each (the repository keeps them in
        /// `crds` and in the Helm chart's `charts/nauthera-operator/files/crds`).
        #[arg(long, value_name = "DIR")]
        dir: Vec<PathBuf>,
    },
}

/// The admission webhook's flags.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Admission webhook")]
#[allow(clippy::struct_field_names)] // named as the flags are
struct WebhookArgs {
    /// Serve the validating admission webhook (HTTPS) on this address, so `kubectl
    /// apply` refuses an AuthClient that breaks an Enforce policy and prints an Audit
    /// policy's findings as warnings. Every replica serves it; the leader registers it
    /// (ValidatingWebhookConfiguration --webhook-name, failurePolicy Ignore) with a CA
    /// the operator makes itself. Off when not given (the reconcile enforces every policy
    /// either way, in status).
    #[arg(long, value_name = "ADDR")]
    webhook_listen: Option<std::net::SocketAddr>,
    /// Where the API server calls the webhook, instead of --webhook-service: for an
    /// operator out of cluster or in tests. Must be https and end in /validate.
    #[arg(long, value_name = "URL", requires = "webhook_listen", value_parser = webhook_url)]
    webhook_url: Option<url::Url>,
    /// The Service in --namespace in front of the webhook (when no --webhook-url).
    #[arg(long, value_name = "NAME", default_value = "nauthera-operator")]
    webhook_service: String,
    /// The port of --webhook-service that leads to --webhook-listen.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    webhook_service_port: u16,
    /// The ValidatingWebhookConfiguration the leader writes; its certificates are kept
    /// in Secret NAME-webhook-tls in --namespace.
    #[arg(long, value_name = "NAME", default_value = "nauthera-operator")]
    webhook_name: String,
    /// Send only AuthClients of namespaces with these labels to the webhook (the
    /// configuration's namespaceSelector); by default, every namespace. For two
    /// operators sharing a cluster, or a gradual roll-out.
    #[arg(long, value_name = "KEY=VALUE,...", value_parser = label_pairs)]
    webhook_namespace_selector: Option<BTreeMap<String, String>>,
}

impl WebhookArgs {
    /// The webhook's settings, when it is served.
    fn settings(self) -> Option<WebhookSettings> {
        let listen = self.webhook_listen?;
        let endpoint = match self.webhook_url {
            Some(url) => Endpoint::Url(url),
            None => Endpoint::Service {
                name: self.webhook_service,
                port: self.webhook_service_port,
            },
        };
        Some(WebhookSettings {
            listen,
            endpoint,
            name: self.webhook_name,
            namespace_labels: self.webhook_namespace_selector.unwrap_or_default(),
        })
    }
}

/// `key=value,key=value`, as `kubectl get -l` takes equality selectors.
fn label_pairs(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.split(',')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.trim().to_owned()))
            }
            _ => Err(format!("{pair:?} is not KEY=VALUE")),
        })
        .collect()
}

fn webhook_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| error.to_string())?;
    if url.scheme() != "https" || url.path() != nauthera_operator::webhook::configuration::PATH {
        return Err(format!(
            "the API server calls webhooks over https, and this one answers on {}: e.g. https://127.0.0.1:8443{}",
            nauthera_operator::webhook::configuration::PATH,
            nauthera_operator::webhook::configuration::PATH
        ));
    }
    Ok(url)
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<Lifetime>()
        .map(|lifetime| Duration::from_secs(lifetime.as_secs()))
        .map_err(|error| error.to_string())
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A fatal error ends the process with status 1 and one plain line: `kubectl logs` is not a
/// terminal, so there are no colours and no backtrace section there (a terminal gets
/// color-eyre's report).
fn main() -> std::process::ExitCode {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if terminal {
        let _ = color_eyre::install();
    }
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if terminal => {
            eprintln!("Error: {error:?}");
            std::process::ExitCode::FAILURE
        }
        Err(error) => {
            let sentence = nauthera_operator::error::one_line(&error);
            if tracing::dispatcher::has_been_set() {
                // In the log's own format (a JSON line with --log-format json).
                tracing::error!(error = %sentence, "nauthera-operator stopped");
            } else {
                eprintln!("nauthera-operator: {sentence}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            namespace,
            context,
            listen,
            log_format,
            resync,
            concurrency,
            grace,
            lease_name,
            identity,
            no_leader_election,
            journal_dir,
            webhook,
        } => {
            init_logs(log_format);
            let identity = identity.unwrap_or_else(default_identity);
            let lease = (!no_leader_election)
                .then(|| LeaseSettings::new(lease_name, namespace.clone(), identity.clone()));
            let options = Options {
                settings: Settings {
                    operator_namespace: namespace.clone(),
                    resync,
                    journal_dir,
                },
                listen,
                concurrency,
                grace,
                lease,
                webhook: webhook.settings(),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(async {
                let client = kube_client(context).await?;
                tracing::info!(%namespace, %listen, %identity, "nauthera-operator starting");
                nauthera_operator::controller::run(client, options).await
            });
            // Abandoned reconciles must not hold the process open.
            runtime.shutdown_timeout(Duration::from_secs(1));
            result?;
        }
        Command::Release {
            namespace,
            deployment,
            lease_name,
            context,
            timeout,
            log_format,
        } => {
            init_logs(log_format);
            let runtime = tokio::runtime::Runtime::new()?;
            let released = runtime.block_on(async {
                let client = kube_client(context).await?;
                nauthera_operator::uninstall::release(
                    &client,
                    &namespace,
                    &deployment,
                    &lease_name,
                    timeout,
                )
                .await
            })?;
            tracing::info!(
                clients = released.clients,
                records = released.records,
                "released: no AuthClient or record waits for an operator any more; registrations and credentials Secrets are unchanged"
            );
        }
        Command::Crds { dir } if dir.is_empty() => {
            print!("{}", nauthera_shared::crds::crds_yaml());
        }
        Command::Crds { dir } => {
            for dir in dir {
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
    }
    Ok(())
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// The kubeconfig's (current or `context`) cluster, else the pod's service account.
async fn kube_client(context: Option<String>) -> Result<kube::Client> {
    let options = kube::config::KubeConfigOptions {
        context,
        ..Default::default()
    };
    let config = match kube::Config::from_kubeconfig(&options).await {
        Ok(config) => config,
        Err(kubeconfig) => kube::Config::incluster()
            .wrap_err_with(|| format!("no kubeconfig ({kubeconfig}) and not in a pod"))?,
    };
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&nauthera_operator::metrics::CountKubeCalls)
        .build())
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "nauthera-operator".to_owned());
    format!("{host}-{}", std::process::id())
}
