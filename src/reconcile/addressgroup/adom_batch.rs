//! AddressGroups on a FortiManager ADOM, batched per FortiManager (`batch::converge_batched`): the
//! groups already queued for one ADOM are observed and planned each exactly as alone, then
//! written in **one** workspace session (lock → every group's writes → commit → unlock)
//! instead of one session per group, so a burst of N groups costs the ADOM 3 workspace calls,
//! not 3·N, and other admins wait for one lock instead of N.
//!
//! A lone group takes the path it always took (`converge::run`). If the shared session
//! fails, nothing of it was committed (unlock without commit discards it) and each of its
//! groups runs again alone, observed afresh: one group the ADOM refuses never fails another.
//! Two groups touching one object never share a batch (`batch::split_beside`), nor two passes that
//! read their connection's settings differently (a client outlives an edit of its install
//! settings or device targets): each runs under the settings it read.

use super::batch::{
    Answer, Request, in_rounds, log_write, outcomes, settings_of, split_beside, writes,
};
use super::converge::{Convergence, Pass, install_devices, observe_adom, run, write_adom};
use crate::api::addressgroup::AddressGroup;
use crate::reconcile::batch::Outcome;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::Target;
use crate::reconcile::target::workspace::in_workspace;

async fn alone(target: &Target, r: &Request) -> Answer {
    let owner = r.owner();
    let mut on_write = |device: &str, op: &super::plan::Op| log_write(device, &owner, op);
    run(
        target,
        &r.families,
        Pass::Converge(r.now),
        r.write,
        &mut on_write,
    )
    .await
}

pub(super) async fn run_batch(
    target: &Target,
    requests: Vec<Request>,
) -> Vec<Outcome<Request, Answer>> {
    // Under the settings this batch runs with (the turn holder's): a pass that read others
    // runs in a later batch, under its own.
    let settings = settings_of(target);
    let (now_, slots) = split_beside(requests, |r, _| r.settings != settings);
    let answers = if now_.is_empty() {
        Vec::new()
    } else if now_.len() == 1 {
        vec![alone(target, &now_[0]).await]
    } else {
        converge_many(target, &now_).await
    };
    outcomes(slots, answers)
}

/// Several groups: each observed and planned as alone, every write in one workspace session.
pub(super) async fn converge_many(target: &Target, requests: &[Request]) -> Vec<Answer> {
    let Target::FortiManager { client, spec, .. } = target else {
        unreachable!("a FortiManager batch");
    };
    let mut answers: Vec<Answer> = Vec::with_capacity(requests.len());
    for r in requests {
        answers.push(
            observe_adom(client, &r.families, Pass::Converge(r.now))
                .await
                .map(|plans| Convergence {
                    plans,
                    ..Convergence::default()
                }),
        );
    }
    let writers: Vec<usize> = (0..requests.len())
        .filter(|&i| writes(&requests[i], &answers[i]))
        .collect();
    let mut redone = vec![false; requests.len()];
    if !writers.is_empty() {
        let written = in_workspace(client, spec, || async {
            for &i in &writers {
                let owner = requests[i].owner();
                let mut on_write =
                    |device: &str, op: &super::plan::Op| log_write(device, &owner, op);
                let Ok(out) = &answers[i] else { continue };
                write_adom(client, &out.plans, &mut on_write).await?;
            }
            Ok::<(), ReconcileError>(())
        })
        .await;
        if let Err(e) = written {
            tracing::debug!(device = %client.device(), error = %e, groups = writers.len(),
                "a shared workspace session failed; each group runs alone");
            for &i in &writers {
                answers[i] = alone(target, &requests[i]).await;
                redone[i] = true;
            }
        }
    }
    // The FortiGates behind the ADOM, per group, after the commit (a group run again alone
    // did its own).
    for (i, r) in requests.iter().enumerate() {
        if redone[i] {
            continue;
        }
        let Ok(out) = &mut answers[i] else { continue };
        if out.refusal().is_some() {
            continue;
        }
        let owner = r.owner();
        let mut on_write = |device: &str, op: &super::plan::Op| log_write(device, &owner, op);
        match install_devices(
            client,
            spec,
            &r.families,
            Pass::Converge(r.now),
            r.write,
            &mut on_write,
        )
        .await
        {
            Ok(devices) => out.devices = devices,
            Err(e) => answers[i] = Err(e),
        }
    }
    answers
}

/// `groups` (all on one FortiManager `target`) through the batch path as if queued together.
/// For tests and figures; the controller goes through `converge_batched`.
pub async fn converge_together(
    target: &Target,
    groups: &[AddressGroup],
    now: jiff::Timestamp,
    write: bool,
) -> Vec<Answer> {
    in_rounds(
        target,
        groups,
        now,
        write,
        |requests, mut replies| async move {
            replies.record(run_batch(target, requests).await);
            replies
        },
    )
    .await
}
