//! The `fortisync` command line: one subcommand per job, one module per subcommand.

mod connector;
mod crds;
#[cfg(feature = "sim")]
mod demo;
pub mod doctor;
pub mod load;
mod manifests;
pub mod refused;
mod render;
mod run;
mod runs;
pub mod secure;
#[cfg(feature = "sim")]
mod sim;
pub mod standalone;
mod trustedhost;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps Fortinet firewalls converged with Kubernetes custom resources.
#[derive(Debug, Parser)]
#[command(name = "fortisync", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every job fortisync does, as a subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller against the cluster in the current kubeconfig.
    Run(run::RunArgs),
    /// Show what `apply` would change on the devices, without changing anything.
    Plan(manifests::PlanArgs),
    /// Converge the devices once with the manifests given, without Kubernetes.
    Apply(manifests::ApplyArgs),
    /// Walk the connection checklist for a device and explain each failure.
    Doctor(doctor::DoctorArgs),
    /// Run the FortiGate / FortiManager simulator.
    #[cfg(feature = "sim")]
    Sim(sim::SimArgs),
    /// Run the FortiGate / FortiManager simulator (not in this build).
    #[cfg(not(feature = "sim"))]
    Sim(without_sim::Args),
    /// Converge the example manifests against the built-in simulator and show it happening.
    #[cfg(feature = "sim")]
    Demo(demo::DemoArgs),
    /// Converge the example manifests against the built-in simulator (not in this build).
    #[cfg(not(feature = "sim"))]
    Demo(without_sim::Args),
    /// Print the CustomResourceDefinitions generated from the Rust types.
    Crds(crds::CrdsArgs),
}

/// Logs for the one-shot commands: to stderr, so stdout stays the report (and `-o json`
/// parseable); nothing unless `RUST_LOG` asks (`RUST_LOG=fortisync=debug`).
fn quiet_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .compact()
        .try_init();
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` and `sim` install their own subscriber (JSON or text, default `info`).
    if matches!(
        cli.command,
        Command::Plan(_) | Command::Apply(_) | Command::Doctor(_) | Command::Demo(_)
    ) {
        quiet_logging();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fortisync: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Plan(args) => manifests::plan(args).await,
            Command::Apply(args) => manifests::apply(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            #[cfg(feature = "sim")]
            Command::Sim(args) => sim::run(args).await,
            #[cfg(not(feature = "sim"))]
            Command::Sim(_) => without_sim::refuse("sim"),
            #[cfg(feature = "sim")]
            Command::Demo(args) => demo::run(args).await,
            #[cfg(not(feature = "sim"))]
            Command::Demo(_) => without_sim::refuse("demo"),
            Command::Crds(args) => crds::run(args),
        }
    })
}

/// `sim` and `demo` in a build without the simulator: they still parse (with any arguments), so
/// the user learns why they cannot run instead of reading "unrecognized subcommand".
#[cfg(not(feature = "sim"))]
mod without_sim {
    use std::process::ExitCode;

    /// Whatever arguments were given; none is looked at.
    #[derive(Debug, clap::Args)]
    pub struct Args {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        _ignored: Vec<String>,
    }

    /// Explains that the subcommand needs the `sim` feature.
    pub fn refuse(command: &str) -> ExitCode {
        eprintln!(
            "fortisync {command}: this fortisync was built without the simulator \
             (cargo feature `sim`, on by default); rebuild without `--no-default-features`"
        );
        ExitCode::FAILURE
    }
}
