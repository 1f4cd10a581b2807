//! `fortisync doctor`.

use std::process::ExitCode;

/// Arguments of `fortisync doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

/// Runs `fortisync doctor`.
pub async fn run(_args: DoctorArgs) -> ExitCode {
    super::not_yet_available("doctor")
}
