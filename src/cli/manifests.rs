//! `fortisync plan` and `fortisync apply`: the reconcile logic without Kubernetes.
//!
//! Exit codes: `plan` 0 = nothing would change, 2 = something would, 1 = a resource failed
//! (usable as a GitOps pull-request check); `apply` 0 = converged, 1 = a resource failed.

use std::path::PathBuf;
use std::process::ExitCode;

use super::connector;
use super::load::Manifests;
use super::refused::{RefusedArgs, RefusedKeys};
use super::render::{self, ColorChoice, OutputFormat};
use super::runs::Runs;
use super::secure::verification_off;
use super::standalone::{CredentialSources, GroupRun, Runner, report};
use super::trustedhost;
use crate::reconcile::addressgroup::plan::Op;

/// Arguments shared by `plan` and `apply`.
#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// Manifest files or directories (multi-document YAML; `*.yaml`, `*.yml`, `*.json`).
    #[arg(long = "filename", short = 'f', required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Namespace of documents that name none.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Directory laid out like mounted Secrets (`<dir>/<secret>/<key>`), read when the
    /// manifests hold no Secret of that name; `FORTISYNC_SECRET_<SECRET>_<KEY>` is read last.
    #[arg(long, env = "FORTISYNC_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// When to color text output.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    #[command(flatten)]
    pub refused: RefusedArgs,
}

/// Arguments of `fortisync plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: ManifestArgs,
}

/// Arguments of `fortisync apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub common: ManifestArgs,
}

/// Runs `fortisync plan`.
pub async fn plan(args: PlanArgs) -> ExitCode {
    run(args.common, false).await
}

/// Runs `fortisync apply`.
pub async fn apply(args: ApplyArgs) -> ExitCode {
    run(args.common, true).await
}

async fn run(args: ManifestArgs, write: bool) -> ExitCode {
    let command = if write { "apply" } else { "plan" };
    let manifests = match Manifests::load(&args.files, &args.namespace) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("fortisync {command}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (kind, name, at) in &manifests.skipped {
        let what = if name.is_empty() {
            kind.clone()
        } else {
            format!("{kind} {name}")
        };
        eprintln!("fortisync {command}: skipping {what} ({at}): not a fortisync resource");
    }
    if manifests.address_groups.is_empty()
        && manifests.external_connectors.is_empty()
        && manifests.trusted_hosts.is_empty()
    {
        eprintln!(
            "fortisync {command}: the manifests hold no AddressGroup, ExternalConnector or TrustedHost; nothing to do"
        );
    }
    let runner = Runner::new(CredentialSources {
        secrets_dir: args.secrets_dir.clone(),
    })
    .remembering(RefusedKeys::new(&args.refused));
    let text = args.output == OutputFormat::Text;
    let color = text && args.color.enabled();
    let mut runs: Vec<GroupRun> = Vec::new();
    let mut groups: Vec<_> = manifests.address_groups.iter().collect();
    groups.sort_by_key(|g| (g.metadata.namespace.clone(), g.metadata.name.clone()));
    for (i, group) in groups.iter().enumerate() {
        let mut progress = |device: &str, op: &Op| {
            if text && write {
                eprintln!("    {device}: {op}");
            }
        };
        if text && write {
            eprintln!(
                "[{}/{}] applying AddressGroup {}/{}",
                i + 1,
                groups.len(),
                group.metadata.namespace.as_deref().unwrap_or_default(),
                group.metadata.name.as_deref().unwrap_or_default()
            );
        }
        let r = runner
            .run_group(&manifests, group, write, &mut progress)
            .await;
        // Said where the plan is read, once per connection, not only in the manifest.
        if text && r.insecure_tls && !runs.iter().any(|p| p.insecure_tls && p.target == r.target) {
            println!(
                "{}",
                verification_off(&r.target, "spec.tls.insecureSkipVerify")
            );
        }
        if text {
            print!("{}", render::resource(&r, write, color));
        }
        runs.push(r);
    }
    let mut all = Runs::of_groups(runs);
    let said = |all: &Runs, target: &str, insecure: bool| {
        // Said where the plan is read, once per connection, not only in the manifest.
        if text && insecure && !all.insecure_targets().contains(&target) {
            println!(
                "{}",
                verification_off(target, "spec.tls.insecureSkipVerify")
            );
        }
    };
    let mut connectors: Vec<_> = manifests.external_connectors.iter().collect();
    connectors.sort_by_key(|c| (c.metadata.namespace.clone(), c.metadata.name.clone()));
    for (i, ec) in connectors.iter().enumerate() {
        progress_line(
            text && write,
            i,
            connectors.len(),
            "ExternalConnector",
            &ec.metadata,
        );
        let r = runner.run_connector(&manifests, ec, write).await;
        said(&all, &r.target, r.insecure_tls);
        if text {
            print!("{}", connector::render(&r, write, color));
        }
        all.connectors.push(r);
    }
    let mut hosts: Vec<_> = manifests.trusted_hosts.iter().collect();
    hosts.sort_by_key(|t| (t.metadata.namespace.clone(), t.metadata.name.clone()));
    for (i, th) in hosts.iter().enumerate() {
        progress_line(text && write, i, hosts.len(), "TrustedHost", &th.metadata);
        let r = runner.run_trusted_host(&manifests, th, write).await;
        said(&all, &r.target, r.insecure_tls);
        if text {
            print!("{}", trustedhost::render(&r, write, color));
        }
        all.trusted_hosts.push(r);
    }
    if text {
        println!("{}", render::summary(&all, write));
    } else {
        match serde_json::to_string_pretty(&report(&all)) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("fortisync {command}: cannot print JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    exit_code(&all, write)
}

/// `[i/n] applying <Kind> ns/name` on stderr, while applying.
fn progress_line(show: bool, i: usize, n: usize, kind: &str, meta: &kube::api::ObjectMeta) {
    if show {
        eprintln!(
            "[{}/{n}] applying {kind} {}/{}",
            i + 1,
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        );
    }
}

/// The exit code of a run (pure).
pub fn exit_code(runs: &Runs, write: bool) -> ExitCode {
    let changes = runs.writes();
    if runs.failed() {
        ExitCode::FAILURE
    } else if !write && changes > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
