//! `fortisync crds`: the CRDs generated from the Rust types, as `crds/` stores them.

use std::process::ExitCode;

/// Arguments of `fortisync crds`.
#[derive(Debug, clap::Args)]
pub struct CrdsArgs {}

/// Prints every CRD as multi-document YAML.
pub fn run(_args: CrdsArgs) -> ExitCode {
    match crate::api::crds_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fortisync crds: cannot serialise the CRDs: {e}");
            ExitCode::FAILURE
        }
    }
}
