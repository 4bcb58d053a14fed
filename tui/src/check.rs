//! `nauthera-tui check`: the pull-request gate. Every client's compliance, as text or JSON.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use nauthera_shared::manifests::{DocumentError, Loaded, load_dir};
use nauthera_shared::policy::{Compliance, Evaluation};

use crate::Format;

/// Exit codes, in the `kubectl diff` tradition.
const ALL_COMPLY: u8 = 0;
const SOME_NON_COMPLIANT: u8 = 1;
const ERROR: u8 = 2;

pub fn run(dir: &Path, format: Format) -> ExitCode {
    let loaded = match load_dir(dir) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(ERROR);
        }
    };
    let inventory = &loaded.inventory;
    if inventory.servers.is_empty()
        && inventory.policies.is_empty()
        && inventory.clients.is_empty()
        && loaded.errors.is_empty()
    {
        eprintln!(
            "error: no Nauthera manifests under {} ({} YAML files read, {} other documents skipped)",
            dir.display(),
            loaded.files,
            loaded.skipped
        );
        return ExitCode::from(ERROR);
    }
    let mut evaluations = inventory.evaluate_all();
    evaluations.sort_by(|a, b| a.client.cmp(&b.client));
    let report = Report::new(&loaded, &evaluations);
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Text => write_text(&mut out, dir, &loaded, &report),
        Format::Json => write_json(&mut out, &report),
    };
    if let Err(error) = written {
        eprintln!("error: cannot write the report: {error}");
        return ExitCode::from(ERROR);
    }
    for error in &loaded.errors {
        eprintln!("error: {error}");
    }
    ExitCode::from(report.exit_code())
}

#[derive(serde::Serialize)]
struct Report<'a> {
    clients: &'a [Evaluation],
    errors: Vec<String>,
    summary: Counts,
}

#[derive(serde::Serialize, Default)]
struct Counts {
    clients: usize,
    compliant: usize,
    audit_findings: usize,
    non_compliant: usize,
    servers: usize,
    policies: usize,
    document_errors: usize,
}

impl<'a> Report<'a> {
    fn new(loaded: &Loaded, evaluations: &'a [Evaluation]) -> Self {
        let count = |wanted: Compliance| {
            evaluations
                .iter()
                .filter(|e| e.compliance == wanted)
                .count()
        };
        Self {
            clients: evaluations,
            errors: loaded.errors.iter().map(DocumentError::to_string).collect(),
            summary: Counts {
                clients: evaluations.len(),
                compliant: count(Compliance::Compliant),
                audit_findings: count(Compliance::AuditViolations),
                non_compliant: count(Compliance::NonCompliant),
                servers: loaded.inventory.servers.len(),
                policies: loaded.inventory.policies.len(),
                document_errors: loaded.errors.len(),
            },
        }
    }

    fn exit_code(&self) -> u8 {
        if self.summary.document_errors > 0 {
            ERROR
        } else if self.summary.non_compliant > 0 {
            SOME_NON_COMPLIANT
        } else {
            ALL_COMPLY
        }
    }
}

/// The symbol of a state; it reads without colour.
fn symbol(compliance: Compliance) -> &'static str {
    match compliance {
        Compliance::Compliant => "✔",
        Compliance::AuditViolations => "⚠",
        Compliance::NonCompliant => "✖",
    }
}

fn write_text(
    out: &mut impl Write,
    dir: &Path,
    loaded: &Loaded,
    report: &Report,
) -> std::io::Result<()> {
    let counts = &report.summary;
    writeln!(
        out,
        "{}: {} servers, {} policies, {} clients ({} files)\n",
        dir.display(),
        counts.servers,
        counts.policies,
        counts.clients,
        loaded.files
    )?;
    let width = report
        .clients
        .iter()
        .map(|e| e.client.to_string().len())
        .max()
        .unwrap_or(0);
    let server_width = report
        .clients
        .iter()
        .map(|e| e.server.name.len())
        .max()
        .unwrap_or(0);
    for evaluation in report.clients {
        let policies: Vec<&str> = evaluation
            .governing
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let governed_by = if policies.is_empty() {
            "no policy".to_owned()
        } else {
            policies.join(", ")
        };
        writeln!(
            out,
            "{} {:width$}  {:server_width$}  {}",
            symbol(evaluation.compliance),
            evaluation.client.to_string(),
            evaluation.server.name.as_str(),
            governed_by
        )?;
        for violation in &evaluation.violations {
            writeln!(out, "    {violation}")?;
        }
    }
    writeln!(
        out,
        "\n{} clients: {} compliant, {} with audit findings, {} non-compliant.",
        counts.clients, counts.compliant, counts.audit_findings, counts.non_compliant
    )?;
    if counts.document_errors > 0 {
        writeln!(
            out,
            "{} documents could not be read (see errors).",
            counts.document_errors
        )?;
    }
    Ok(())
}

fn write_json(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}
