//! `fortisync plan` and `fortisync apply`: the reconcile logic without Kubernetes.

use std::process::ExitCode;

/// Arguments of `fortisync plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {}

/// Arguments of `fortisync apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {}

/// Runs `fortisync plan`.
pub async fn plan(_args: PlanArgs) -> ExitCode {
    super::not_yet_available("plan")
}

/// Runs `fortisync apply`.
pub async fn apply(_args: ApplyArgs) -> ExitCode {
    super::not_yet_available("apply")
}
