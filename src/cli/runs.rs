//! The outcome of one `plan`/`apply` over every kind of the manifests: what the summary line,
//! the JSON report and the exit code count.

use super::connector::ConnectorRun;
use super::standalone::GroupRun;
use super::trustedhost::TrustedHostRun;

/// Every resource's outcome, per kind, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    /// AddressGroups.
    pub groups: Vec<GroupRun>,
    /// ExternalConnectors.
    pub connectors: Vec<ConnectorRun>,
    /// TrustedHosts.
    pub trusted_hosts: Vec<TrustedHostRun>,
}

impl Runs {
    /// Only AddressGroups.
    pub fn of_groups(groups: Vec<GroupRun>) -> Self {
        Self {
            groups,
            ..Self::default()
        }
    }

    /// Resources run.
    pub fn len(&self) -> usize {
        self.groups.len() + self.connectors.len() + self.trusted_hosts.len()
    }

    /// Whether nothing ran.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes needed (plan) or made (apply).
    pub fn writes(&self) -> usize {
        self.groups.iter().map(GroupRun::writes).sum::<usize>()
            + self
                .connectors
                .iter()
                .map(ConnectorRun::writes)
                .sum::<usize>()
            + self
                .trusted_hosts
                .iter()
                .map(TrustedHostRun::writes)
                .sum::<usize>()
    }

    /// Resources that failed (an error, or refused before any write).
    pub fn failures(&self) -> usize {
        self.groups.iter().filter(|r| r.result.is_err()).count()
            + self.connectors.iter().filter(|c| c.failed()).count()
            + self.trusted_hosts.iter().filter(|t| t.failed()).count()
    }

    /// Whether the run fails (exit 1): a failure, a refusal or a conflict anywhere.
    pub fn failed(&self) -> bool {
        self.groups.iter().any(|r| {
            r.result.is_err()
                || r.result.as_ref().is_ok_and(|c| {
                    c.refusal().is_some() || c.plans.iter().any(|p| !p.plan.conflicts().is_empty())
                })
        }) || self.connectors.iter().any(ConnectorRun::failed)
            || self.trusted_hosts.iter().any(TrustedHostRun::failed)
    }

    /// The connections that turn certificate verification off, each once, in order.
    pub fn insecure_targets(&self) -> Vec<&str> {
        let all = self
            .groups
            .iter()
            .filter(|r| r.insecure_tls)
            .map(|r| r.target.as_str())
            .chain(
                self.connectors
                    .iter()
                    .filter(|c| c.insecure_tls)
                    .map(|c| c.target.as_str()),
            )
            .chain(
                self.trusted_hosts
                    .iter()
                    .filter(|t| t.insecure_tls)
                    .map(|t| t.target.as_str()),
            );
        let mut out: Vec<&str> = Vec::new();
        for target in all {
            if !out.contains(&target) {
                out.push(target);
            }
        }
        out
    }
}
