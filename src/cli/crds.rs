//! `fortisync crds`.

use std::process::ExitCode;

/// Arguments of `fortisync crds`.
#[derive(Debug, clap::Args)]
pub struct CrdsArgs {}

/// Runs `fortisync crds`.
pub fn run(_args: CrdsArgs) -> ExitCode {
    super::not_yet_available("crds")
}
