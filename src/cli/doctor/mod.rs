//! `fortisync doctor`: walks the connection checklist for one FortiGate or FortiManager (DNS →
//! TCP → TLS → one authenticated read → read-only permission probes → facts → version rules)
//! and explains each failure with the troubleshooting table's cause and remedy.
//!
//! It never writes to the device (GETs and JSON-RPC `get` only; a FortiManager password login
//! is ended with a logout), and one Guard per run means a refused credential is sent once.
//! Exit codes: 0 every step passed (warnings allowed), 1 a step failed, 2 bad arguments.

pub mod checks;
pub mod feeds;
mod fortigate;
mod fortimanager;
mod network;
pub mod render;
pub mod rules;
pub mod slots;
mod target;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::refused::{Refusal, RefusedArgs, RefusedKeys};
use super::render::{ColorChoice, OutputFormat};
use super::secure::verification_off;
use crate::device::wording::{self, noun};
use crate::device::{DeviceError, DeviceKind, DeviceMetrics, EndpointConfig, Guard};
use checks::{Report, Status, Step};

pub use target::TargetError;

/// Arguments of `fortisync doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Manifest files or directories with the FortiGate / FortiManager (and its Secrets).
    #[arg(long = "filename", short = 'f', num_args = 1.., conflicts_with = "url")]
    pub files: Vec<PathBuf>,
    /// Namespace of documents that name none.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Which connection of the manifests to check, when they hold several.
    #[arg(long)]
    pub name: Option<String>,
    /// Directory laid out like mounted Secrets (`<dir>/<secret>/<key>`), read when the
    /// manifests hold no Secret of that name; `FORTISYNC_SECRET_<SECRET>_<KEY>` is read last.
    #[arg(long, env = "FORTISYNC_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Device URL (`https://host:port`), instead of manifests.
    #[arg(long)]
    pub url: Option<String>,
    /// Device kind (with --url, or to pick among manifests).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// File holding the API token (with --url).
    #[arg(long, requires = "url")]
    pub token_file: Option<PathBuf>,
    /// VDOM (FortiGate; default `root`, or the manifest's).
    #[arg(long)]
    pub vdom: Option<String>,
    /// ADOM (FortiManager; default `root`, or the manifest's).
    #[arg(long)]
    pub adom: Option<String>,
    /// PEM CA bundle that signs the device certificate.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the device certificate (doctor still says what verification would find).
    #[arg(long)]
    pub insecure_skip_verify: bool,
    /// Local address to send from (the address trusted hosts must allow).
    #[arg(long)]
    pub source_address: Option<IpAddr>,
    /// FortiManager administrator to inspect (default: the password login's user).
    #[arg(long)]
    pub admin_user: Option<String>,
    /// Seconds to wait for each connection and answer.
    #[arg(long, default_value_t = 10)]
    pub timeout_seconds: u64,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// When to color text output.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    #[command(flatten)]
    pub refused: RefusedArgs,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// FortiOS REST.
    Fortigate,
    /// FortiManager JSON-RPC.
    Fortimanager,
}

impl From<KindArg> for DeviceKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Fortigate => DeviceKind::FortiGate,
            KindArg::Fortimanager => DeviceKind::FortiManager,
        }
    }
}

/// What one doctor run checks.
#[derive(Debug, Clone)]
pub struct Target {
    /// The endpoint as the controller would build it.
    pub endpoint: EndpointConfig,
    /// FortiManager administrator to inspect.
    pub admin_user: Option<String>,
    /// The manifests' ExternalConnectors on this FortiGate, whose lists doctor reads.
    pub feeds: Vec<feeds::FeedCheck>,
    /// The users the manifests' TrustedHosts name on this device, whose slots doctor shows.
    pub users: Vec<slots::UserCheck>,
}

impl Target {
    /// From the command line: manifests (`-f`) or flags (`--url`).
    pub fn from_args(args: &DoctorArgs) -> Result<Self, TargetError> {
        target::from_args(args)
    }
}

/// Walks the checklist for `target`, remembering nothing across runs.
pub async fn diagnose(target: &Target) -> Report {
    diagnose_remembering(target, &RefusedKeys::none()).await
}

/// Walks the checklist for `target`; a credential `refused` remembers is not sent (the network
/// steps still run), and a refusal or an acceptance seen now is remembered.
pub async fn diagnose_remembering(target: &Target, refused: &RefusedKeys) -> Report {
    let endpoint = &target.endpoint;
    let net = network::check(endpoint).await;
    let mut steps = net.steps;
    for (id, title) in [("dns", "DNS"), ("tcp", "TCP connect"), ("tls", "TLS")] {
        if !steps.iter().any(|s| s.id == id) {
            steps.push(Step::skip(id, title, "not tried: an earlier step failed"));
        }
    }
    let remembered = refused.refused(endpoint);
    if let (true, Some(refusal)) = (net.reachable, &remembered) {
        steps.push(remembered_refusal(endpoint, refusal));
        steps.extend(
            checks::authenticated_steps(endpoint.kind)
                .iter()
                .map(|(id, title)| Step::skip(id, title, checks::STOPPED)),
        );
    } else if net.reachable {
        // One guard for the run: a refused credential is frozen after its first refusal.
        let guard = Arc::new(Guard::new(
            endpoint.name.clone(),
            endpoint.lockout,
            1,
            DeviceMetrics::default(),
        ));
        let source = endpoint.transport.source_address.or(net.local);
        steps.extend(match endpoint.kind {
            DeviceKind::FortiGate => {
                fortigate::check(endpoint, guard, source, &target.feeds, &target.users).await
            }
            DeviceKind::FortiManager => {
                fortimanager::check(
                    endpoint,
                    guard,
                    source,
                    target.admin_user.as_deref(),
                    &target.users,
                )
                .await
            }
        });
    } else {
        let why = "not tried: an earlier step failed (see above); no credential was sent";
        steps.push(Step::skip("auth", "authenticated read", why));
        steps.extend(
            checks::authenticated_steps(endpoint.kind)
                .iter()
                .map(|(id, title)| Step::skip(id, title, why)),
        );
    }
    if remembered.is_none()
        && let Some(auth) = steps.iter().find(|s| s.id == "auth")
    {
        match (auth.status, auth.reason.as_deref()) {
            (Status::Fail, Some("Unauthorized")) => refused.remember(endpoint),
            (Status::Ok, _) => refused.forget(endpoint),
            _ => {}
        }
    }
    Report {
        kind: match endpoint.kind {
            DeviceKind::FortiGate => "FortiGate",
            DeviceKind::FortiManager => "FortiManager",
        }
        .to_string(),
        device: endpoint.name.clone(),
        url: render::safe_url(&endpoint.url),
        scope: endpoint.scope.clone(),
        steps,
    }
}

/// The `auth` step when the credential was refused in an earlier run: not sent again.
fn remembered_refusal(endpoint: &EndpointConfig, refusal: &Refusal) -> Step {
    let refused = DeviceError::Unauthorized {
        ctx: Default::default(),
    };
    let row = match endpoint.kind {
        DeviceKind::FortiGate => "F3",
        DeviceKind::FortiManager => "F13",
    };
    Step {
        id: "auth".into(),
        title: "authenticated read".into(),
        status: Status::Fail,
        detail: refusal.message(noun(&endpoint.credentials)),
        reason: Some("Unauthorized".into()),
        cause: Some(wording::cause(&refused, &endpoint.credentials).into()),
        remedy: Some(wording::remedy(&refused, &endpoint.credentials).into()),
        troubleshooting_row: Some(row.into()),
    }
}

/// Runs `fortisync doctor`.
pub async fn run(args: DoctorArgs) -> ExitCode {
    let target = match Target::from_args(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fortisync doctor: {e}");
            return ExitCode::from(2);
        }
    };
    let report = diagnose_remembering(&target, &RefusedKeys::new(&args.refused)).await;
    // Said in the output, not only in the manifest or the flags.
    let insecure = target.endpoint.transport.insecure_skip_verify.then(|| {
        let field = if args.insecure_skip_verify {
            "--insecure-skip-verify"
        } else {
            "spec.tls.insecureSkipVerify"
        };
        verification_off(&target.endpoint.name, field)
    });
    match args.output {
        OutputFormat::Text => {
            if let Some(line) = &insecure {
                println!("{line}");
            }
            print!("{}", render::text(&report, args.color.enabled()));
        }
        OutputFormat::Json => {
            let mut doc = render::json(&report);
            doc["warnings"] = serde_json::json!(insecure.into_iter().collect::<Vec<_>>());
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
