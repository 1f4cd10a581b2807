//! `fortisync sim`.

use std::process::ExitCode;

/// Arguments of `fortisync sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {}

/// Runs `fortisync sim`.
pub async fn run(_args: SimArgs) -> ExitCode {
    super::not_yet_available("sim")
}
