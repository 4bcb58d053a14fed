//! `nauthera-tui preview`: reads the current objects and the proposal (policy files, or a
//! whole proposed state), plans, and prints the plan. Exit codes in the `kubectl diff`
//! tradition.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Local;
use nauthera_shared::Inventory;
use nauthera_shared::impact::{parse_proposed_policy, plan_states};
use nauthera_shared::manifests::load_dir;
use nauthera_shared::resources::{AuthPolicy, ObjectRef};
use nauthera_tui::preview::{Basis, Format, Proposal, ProposedPolicy, render};
use nauthera_tui::source::cluster;

const NO_CLIENT_REFUSED: u8 = 0;
const SOME_CLIENT_REFUSED: u8 = 1;
const ERROR: u8 = 2;

/// What the command line asks to preview.
pub enum Request<'a> {
    /// Policy files, against a folder or a cluster.
    Policies {
        files: &'a [PathBuf],
        manifests: Option<&'a Path>,
        context: Option<&'a str>,
    },
    /// A whole proposed state against the current one, both folders.
    States { base: &'a Path, head: &'a Path },
}

pub fn run(request: &Request, format: Format) -> ExitCode {
    match plan(request, format) {
        Ok((output, refuses)) => {
            print!("{output}");
            ExitCode::from(if refuses {
                SOME_CLIENT_REFUSED
            } else {
                NO_CLIENT_REFUSED
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

fn plan(request: &Request, format: Format) -> Result<(String, bool), Vec<String>> {
    let (current, proposed, basis) = match *request {
        Request::Policies {
            files,
            manifests,
            context,
        } => {
            let policies = read_policies(files)?;
            let (current, source, warnings) = match (manifests, context) {
                (Some(dir), _) => {
                    let (inventory, warnings) = read_folder(dir, true)?;
                    (inventory, format!("folder {}", dir.display()), warnings)
                }
                (None, Some(context)) => {
                    let (inventory, warnings) = read_cluster(context)?;
                    (inventory, format!("context {context}"), warnings)
                }
                (None, None) => {
                    return Err(vec!["give --manifests DIR or --context NAME".to_owned()]);
                }
            };
            let (proposed, proposal) = with_policies(&current, policies);
            (current, proposed, basis(proposal, source, warnings))
        }
        Request::States { base, head } => {
            let (current, mut warnings) = read_folder(base, true)?;
            for warning in &mut warnings {
                *warning = format!("in the current state: {warning}");
            }
            let (proposed, _) = read_folder(head, false)?;
            let proposal = Proposal::State {
                head: format!("folder {}", head.display()),
            };
            let source = format!("folder {}", base.display());
            (current, proposed, basis(proposal, source, warnings))
        }
    };
    let plan = plan_states(&current, &proposed);
    Ok((render(&plan, &basis, format), plan.refuses_any()))
}

fn basis(proposal: Proposal, source: String, warnings: Vec<String>) -> Basis {
    Basis {
        proposal,
        source,
        read_at: Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        warnings,
    }
}

/// Each file holds one AuthPolicy; every problem of every file is reported, with file,
/// line and column, and no policy may be proposed twice.
fn read_policies(files: &[PathBuf]) -> Result<Vec<(AuthPolicy, &Path)>, Vec<String>> {
    let mut policies: Vec<(AuthPolicy, &Path)> = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) => {
                problems.push(format!("{}: cannot read: {error}", file.display()));
                continue;
            }
        };
        match parse_proposed_policy(&text) {
            Ok(policy) => {
                let reference = ObjectRef::of(&policy);
                if let Some((_, first)) = policies
                    .iter()
                    .find(|(other, _)| ObjectRef::of(other) == reference)
                {
                    problems.push(format!(
                        "{}: {reference} is already proposed by {}",
                        file.display(),
                        first.display()
                    ));
                }
                policies.push((policy, file));
            }
            Err(errors) => problems.extend(errors.iter().map(|error| {
                format!(
                    "{}:{}:{}: {}",
                    file.display(),
                    error.line,
                    error.column,
                    error.message
                )
            })),
        }
    }
    if problems.is_empty() {
        Ok(policies)
    } else {
        Err(problems)
    }
}

/// The current state with each proposed policy in place of the one of the same name (an
/// edit), or added (a new policy).
fn with_policies(current: &Inventory, policies: Vec<(AuthPolicy, &Path)>) -> (Inventory, Proposal) {
    let mut proposed = current.clone();
    let mut each = Vec::new();
    for (policy, _) in policies {
        let reference = ObjectRef::of(&policy);
        let existing = proposed
            .policies
            .iter()
            .position(|p| ObjectRef::of(p) == reference);
        each.push(ProposedPolicy {
            policy: reference,
            edit: existing.is_some(),
        });
        match existing {
            Some(index) => proposed.policies[index] = policy,
            None => proposed.policies.push(policy),
        }
    }
    (proposed, Proposal::Policies(each))
}

/// A folder's objects. Documents that cannot be read are warnings when `lenient` (the
/// current state: the preview is of the rest), errors otherwise (a proposed state must be
/// readable); a folder with nothing to preview against is an error.
fn read_folder(dir: &Path, lenient: bool) -> Result<(Inventory, Vec<String>), Vec<String>> {
    let loaded = load_dir(dir).map_err(|error| vec![error.to_string()])?;
    let problems: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    if !lenient && !problems.is_empty() {
        return Err(problems);
    }
    let inventory = loaded.inventory;
    if inventory.servers.is_empty() && inventory.clients.is_empty() {
        return Err(vec![format!(
            "no AuthServer or AuthClient under {} to preview against ({} YAML files read)",
            dir.display(),
            loaded.files
        )]);
    }
    Ok((inventory, problems))
}

/// A cluster's objects; what RBAC hides (namespaces, their clients) is a warning the plan
/// carries.
fn read_cluster(context: &str) -> Result<(Inventory, Vec<String>), Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| vec![error.to_string()])?;
    runtime.block_on(async {
        let connection = cluster::connect(Some(context)).await.map_err(|e| vec![e])?;
        let (inventory, _, warnings) = cluster::list_inventory(connection.client)
            .await
            .map_err(|e| vec![e])?;
        Ok((inventory, warnings))
    })
}
