//! `fortisync run`.

use std::process::ExitCode;

/// Arguments of `fortisync run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs `fortisync run`.
pub async fn run(_args: RunArgs) -> ExitCode {
    super::not_yet_available("run")
}
