//! `fortisync demo`.

use std::process::ExitCode;

/// Arguments of `fortisync demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// Runs `fortisync demo`.
pub async fn run(_args: DemoArgs) -> ExitCode {
    super::not_yet_available("demo")
}
