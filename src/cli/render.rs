//! How a plan reads at a terminal: one block per resource, one line per device write in the
//! order it is (or would be) made, diff-like markers (`+` create, `~` change, `-` remove,
//! `=` kept, `!` needs attention), colored only on a terminal.

use std::fmt::Write as _;
use std::io::IsTerminal;

use super::runs::Runs;
use super::standalone::GroupRun;

/// When to color the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to color stdout.
    pub fn enabled(self) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
        }
    }
}

/// Output format of `plan` and `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// For machines: one JSON document.
    Json,
}

/// Paints a line by its marker.
pub fn paint(line: &str, color: bool) -> String {
    if !color {
        return line.to_string();
    }
    let code = match line.trim_start().chars().next() {
        Some('+') => "32",
        Some('-') => "31",
        Some('~') => "33",
        Some('=') => "2",
        Some('!') => "1;31",
        _ => return line.to_string(),
    };
    format!("\x1b[{code}m{line}\x1b[0m")
}

/// One resource's block: its head (bold on a terminal), where it is, then its lines, each
/// painted by its marker.
pub fn block(head: &str, location: &str, lines: &[String], color: bool) -> String {
    let mut out = String::new();
    let _ = if color {
        writeln!(out, "\x1b[1m{head}\x1b[0m")
    } else {
        writeln!(out, "{head}")
    };
    if !location.is_empty() {
        let _ = writeln!(out, "  at {location}");
    }
    for line in lines {
        let _ = writeln!(out, "  {}", paint(line, color));
    }
    out
}

/// The text block of one resource (`applied` says whether the writes were made).
pub fn resource(run: &GroupRun, applied: bool, color: bool) -> String {
    let head = format!(
        "AddressGroup {} -> {} group {:?}",
        run.resource, run.target, run.group_name
    );
    let mut lines = Vec::new();
    match &run.result {
        Err(e) => {
            lines.push(format!("! {}: {}", e.reason, e.message));
            lines.push(format!("  remedy: {}", e.remedy));
        }
        Ok(c) => {
            for p in &c.plans {
                if p.family.v6 && !p.plan.is_empty() {
                    lines.push("  IPv6 (firewall/address6, firewall/addrgrp6):".to_string());
                }
                lines.extend(p.plan.ops().iter().map(ToString::to_string));
                lines.extend(
                    p.plan
                        .foreign_members()
                        .iter()
                        .map(|m| format!("= member {m} kept (added outside fortisync)")),
                );
                lines.extend(
                    p.plan
                        .conflicts()
                        .iter()
                        .map(|c| format!("! conflict: {c}")),
                );
            }
            for d in &c.devices {
                if d.plan.is_empty() && d.error.is_none() {
                    lines.push(format!("= device {}: in sync", d.device));
                    continue;
                }
                lines.push(format!("  device {}:", d.device));
                lines.extend(d.plan.ops().iter().map(|op| format!("  {op}")));
                if let Some(e) = &d.error {
                    lines.push(format!("  ! {e}"));
                }
            }
            if let Some(r) = c.refusal() {
                // Refused before any write: what the controller reports as Ready=False.
                lines.push(format!("! {}: {}", r.reason, r.message));
                lines.push(format!("  remedy: {}", r.remedy));
            } else if c.writes() == 0 {
                lines.push("= no changes".to_string());
            } else if run.observe_only {
                lines.push(format!(
                    "= managementPolicy ObserveOnly: {} change(s) reported, none made",
                    c.writes()
                ));
            } else if applied {
                lines.push(format!("= applied {} write(s)", c.writes()));
            }
        }
    }
    block(&head, &run.location, &lines, color)
}

/// The closing line of a run.
pub fn summary(runs: &Runs, applied: bool) -> String {
    let changes = runs.writes();
    let failed = runs.failures();
    let verb = if applied { "applied" } else { "to apply" };
    let mut s = format!(
        "{changes} change(s) {verb} across {} resource(s)",
        runs.len()
    );
    if failed > 0 {
        let _ = write!(s, "; {failed} failed");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_colored_by_their_marker_only_when_asked() {
        assert_eq!(paint("+ address a", false), "+ address a");
        assert_eq!(paint("+ address a", true), "\x1b[32m+ address a\x1b[0m");
        assert_eq!(paint("  - member a", true), "\x1b[31m  - member a\x1b[0m");
        assert_eq!(paint("at somewhere", true), "at somewhere");
    }

    #[test]
    fn a_refused_plan_prints_its_reason_and_remedy_not_no_changes() {
        use crate::reconcile::addressgroup::converge::Convergence;
        use crate::reconcile::addressgroup::plan::Refusal;
        let run = GroupRun {
            resource: "team-a/admins".into(),
            group_name: "g".into(),
            target: "FortiGate team-a/fw".into(),
            location: String::new(),
            insecure_tls: false,
            result: Ok(Convergence {
                spec_refusal: Some(Refusal {
                    reason: "DuplicateMember",
                    message: "spec.members[0].address and spec.members[1].address".into(),
                    remedy: "remove one".into(),
                }),
                ..Convergence::default()
            }),
            observe_only: false,
        };
        let text = resource(&run, false, false);
        assert!(
            text.contains("! DuplicateMember: spec.members[0].address and spec.members[1].address"),
            "{text}"
        );
        assert!(text.contains("remedy: remove one"), "{text}");
        assert!(!text.contains("no changes"), "{text}");
        assert_eq!(
            super::super::manifests::exit_code(&Runs::of_groups(vec![run]), false),
            std::process::ExitCode::FAILURE
        );
    }
}
