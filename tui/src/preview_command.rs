//! `nauthera-tui preview`: reads the proposed policy and the current objects, plans, and
//! prints the plan. Exit codes in the `kubectl diff` tradition.

use std::path::Path;
use std::process::ExitCode;

use chrono::Local;
use nauthera_shared::Inventory;
use nauthera_shared::impact::{Planner, parse_proposed_policy};
use nauthera_shared::manifests::load_dir;
use nauthera_shared::resources::ObjectRef;
use nauthera_tui::preview::{Basis, Format, render};
use nauthera_tui::source::cluster;

const NO_CLIENT_BREAKS: u8 = 0;
const SOME_CLIENT_BREAKS: u8 = 1;
const ERROR: u8 = 2;

pub fn run(
    policy: &Path,
    manifests: Option<&Path>,
    context: Option<&str>,
    format: Format,
) -> ExitCode {
    match plan(policy, manifests, context, format) {
        Ok((output, breaks)) => {
            print!("{output}");
            ExitCode::from(if breaks {
                SOME_CLIENT_BREAKS
            } else {
                NO_CLIENT_BREAKS
            })
        }
        Err(problems) => {
            for problem in problems {
                eprintln!("error: {problem}");
            }
            ExitCode::from(ERROR)
        }
    }
}

fn plan(
    policy_file: &Path,
    manifests: Option<&Path>,
    context: Option<&str>,
    format: Format,
) -> Result<(String, bool), Vec<String>> {
    let text = std::fs::read_to_string(policy_file)
        .map_err(|error| vec![format!("{}: cannot read: {error}", policy_file.display())])?;
    let proposed = parse_proposed_policy(&text).map_err(|errors| {
        errors
            .iter()
            .map(|error| {
                format!(
                    "{}:{}:{}: {}",
                    policy_file.display(),
                    error.line,
                    error.column,
                    error.message
                )
            })
            .collect::<Vec<_>>()
    })?;
    let (inventory, source) = match (manifests, context) {
        (Some(dir), _) => (read_folder(dir)?, format!("folder {}", dir.display())),
        (None, Some(context)) => (read_cluster(context)?, format!("context {context}")),
        (None, None) => return Err(vec!["give --manifests DIR or --context NAME".to_owned()]),
    };
    let reference = ObjectRef::of(&proposed);
    let edit = inventory
        .policies
        .iter()
        .any(|policy| ObjectRef::of(policy) == reference);
    let planner = Planner::new(inventory);
    let plan = planner.plan(edit.then_some(&reference), Some(&proposed));
    let basis = Basis {
        source,
        read_at: Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        edit,
    };
    Ok((render(&plan, &basis, format), plan.breaks_any()))
}

/// The folder's objects; documents that cannot be read are warnings (the preview is of
/// the rest), a folder with nothing to preview against is an error.
fn read_folder(dir: &Path) -> Result<Inventory, Vec<String>> {
    let loaded = load_dir(dir).map_err(|error| vec![error.to_string()])?;
    for error in &loaded.errors {
        eprintln!("warning: {error}");
    }
    let inventory = loaded.inventory;
    if inventory.servers.is_empty() && inventory.clients.is_empty() {
        return Err(vec![format!(
            "no AuthServer or AuthClient under {} to preview against ({} YAML files read)",
            dir.display(),
            loaded.files
        )]);
    }
    Ok(inventory)
}

fn read_cluster(context: &str) -> Result<Inventory, Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| vec![error.to_string()])?;
    runtime.block_on(async {
        let connection = cluster::connect(Some(context)).await.map_err(|e| vec![e])?;
        let (inventory, _, warnings) = cluster::list_inventory(connection.client)
            .await
            .map_err(|e| vec![e])?;
        for warning in warnings {
            eprintln!("warning: {warning}");
        }
        Ok(inventory)
    })
}
