//! `nauthera-tui`: Nauthera's terminal dashboard and its headless checks.

mod check;
mod preview_command;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use nauthera_tui::preview::Format as PlanFormat;
use nauthera_tui::run::{Source, run};

/// Nauthera's terminal dashboard: a live tree of AuthServers ▸ the AuthPolicies each
/// selects ▸ the AuthClients each governs, with compliance at a glance.
///
/// With no option it reads the current kubeconfig context and stays live through watches.
/// With --manifests it reads a folder of manifests (a GitOps repository) and follows
/// changes on disk; no cluster needed. Press ? inside for every key.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Examples:\n  nauthera-tui --manifests examples/             a folder, no cluster\n  nauthera-tui -A                                the current context, every namespace\n  nauthera-tui --context prod -n shop            one context, one namespace\n  nauthera-tui check examples/                   the pull-request gate, no terminal UI\n  nauthera-tui preview --base ../main --head .   what a pull request does to every client"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Read a folder (or file) of manifests instead of a cluster.
    #[arg(long, value_name = "DIR", conflicts_with = "context")]
    manifests: Option<PathBuf>,
    /// The kubeconfig context to read (default: the current one).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Show clients of this namespace only (default: the context's namespace; with
    /// --manifests, all). A policy edit is still planned against every namespace you may
    /// list.
    #[arg(
        long,
        short = 'n',
        value_name = "NAME",
        conflicts_with = "all_namespaces"
    )]
    namespace: Option<String>,
    /// Show clients of every namespace.
    #[arg(long, short = 'A')]
    all_namespaces: bool,
    /// Browse and preview only: the policy editor refuses to commit.
    #[arg(long)]
    readonly: bool,
    /// Write logs to this file (the terminal is for the dashboard).
    #[arg(long, value_name = "FILE", env = "NAUTHERA_TUI_LOG")]
    log_file: Option<PathBuf>,
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
    /// Preview what a proposal would do to every client, before it is applied.
    ///
    /// A proposal is one or more AuthPolicy files (--policy, against a folder or a
    /// cluster), or a whole proposed state (--base DIR --head DIR: e.g. a checkout of main
    /// and one of a pull request's branch), where every changed, added or removed policy,
    /// server, client and namespace label is planned at once. Lists the clients that would
    /// break (-), be fixed (+), change settings (~), stay refused for new reasons (!), and
    /// new clients that would be provisioned (*) or refused (x). Exits 0 when every client
    /// stays provisionable, 1 when some client would become non-compliant or a new one
    /// would be refused, 2 on errors (the `kubectl diff` convention).
    #[command(
        after_help = "Examples:\n  nauthera-tui preview --policy web-apps-policy.yaml --manifests gitops/\n  nauthera-tui preview --policy web-apps.yaml --policy pci-strict.yaml --context prod --output markdown > comment.md\n  git worktree add ../main main\n  nauthera-tui preview --base ../main --head . --output markdown > comment.md"
    )]
    Preview {
        /// A proposed AuthPolicy (one document): an edit of the policy of the same name, or
        /// a new one. Give it several times to propose several policies at once.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "base",
            requires = "current"
        )]
        policy: Vec<PathBuf>,
        #[command(flatten)]
        current: PreviewSource,
        /// The current state, as a folder of manifests (e.g. a checkout of main); with
        /// --head.
        #[arg(
            long,
            value_name = "DIR",
            requires = "head",
            conflicts_with_all = ["policy", "manifests", "context"]
        )]
        base: Option<PathBuf>,
        /// The proposed state, as a folder of manifests (e.g. the pull request's branch);
        /// with --base.
        #[arg(long, value_name = "DIR", requires = "base")]
        head: Option<PathBuf>,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = PreviewFormat::Text)]
        output: PreviewFormat,
    },
}

/// Where a preview of policy files reads the current objects from.
#[derive(clap::Args, Debug)]
#[group(id = "current", multiple = false)]
struct PreviewSource {
    /// A folder (or file) of manifests: the GitOps repository the policies belong to.
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// A kubeconfig context: the cluster as it is now (every namespace you may list; the
    /// plan names those RBAC hides).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PreviewFormat {
    /// For people and CI logs, in the spirit of `terraform plan`.
    Text,
    /// Ready to post as a pull-request comment.
    Markdown,
    /// For tools.
    Json,
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
        Some(Command::Check { dir, output }) => check::run(&dir, output),
        Some(Command::Preview {
            policy,
            current,
            base,
            head,
            output,
        }) => {
            let request = match (&base, &head) {
                (Some(base), Some(head)) => preview_command::Request::States { base, head },
                _ => preview_command::Request::Policies {
                    files: &policy,
                    manifests: current.manifests.as_deref(),
                    context: current.context.as_deref(),
                },
            };
            preview_command::run(
                &request,
                match output {
                    PreviewFormat::Text => PlanFormat::Text,
                    PreviewFormat::Markdown => PlanFormat::Markdown,
                    PreviewFormat::Json => PlanFormat::Json,
                },
            )
        }
        None => match dashboard(cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(report) => {
                eprintln!("Error: {report:?}");
                ExitCode::from(2)
            }
        },
    }
}

fn dashboard(cli: Cli) -> color_eyre::Result<()> {
    color_eyre::install()?;
    if let Some(path) = &cli.log_file {
        let file = std::fs::File::create(path)?;
        tracing_subscriber::fmt()
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .init();
    }
    let source = match cli.manifests {
        Some(path) => Source::Folder(path),
        None => Source::Cluster {
            context: cli.context,
            namespace: cli.namespace.clone(),
            all_namespaces: cli.all_namespaces,
        },
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(source, cli.namespace, cli.readonly))
}
