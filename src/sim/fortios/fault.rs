//! Injected faults of a simulated FortiGate: the rule a test queues, which request it hits, and
//! the answer it forces instead of the device's own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::envelope::{Body, Reply, Request, envelope};
use super::rest::segments;
use super::state::FortiGateState;

/// A fault to inject on requests whose path starts with `path` (`""` matches all).
///
/// Rules queue in the order they were added: a request is hit by the first rule that matches
/// it, which uses up one of its `times` (so two rules on one path fire one after the other,
/// never together). A forced `status` answers without running the request; `reset` runs it and
/// then drops the connection, so the client cannot know the outcome; `hang` never answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRule {
    /// Path prefix, e.g. `/api/v2/cmdb/firewall/address`.
    pub path: String,
    /// Only this HTTP method (any when absent).
    pub method: Option<String>,
    /// Delay before answering, in milliseconds.
    pub latency_ms: u64,
    /// Answer with this status without running the request.
    pub status: Option<u16>,
    /// What the forced `status` carries (the device's HTML error page when absent).
    pub body: FaultBody,
    /// FortiOS error code in the JSON envelope (`body: json`), e.g. -5 or -651.
    pub error: Option<i64>,
    /// `cli_error` text in the JSON envelope (`body: json`).
    pub cli_error: Option<String>,
    /// Headers added to the answer, e.g. `{"Retry-After": "30"}`.
    pub headers: BTreeMap<String, String>,
    /// Run the request, then drop the connection without answering.
    pub reset: bool,
    /// Never answer (the client times out).
    pub hang: bool,
    /// Apply this many times, then drop the rule (forever when absent).
    pub times: Option<u32>,
    /// Chance (0..=1) that a request the rule matches is hit, from the scenario's seeded RNG; a
    /// miss leaves the request unfaulted and does not use up `times`.
    pub probability: Option<f64>,
}

/// The body of a forced status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultBody {
    /// The Apache-style HTML page FortiOS sends for 401, 429, 5xx (facts §2.2).
    #[default]
    Html,
    /// A FortiOS JSON envelope with `http_status` = the status, `error` and `cli_error`.
    Json,
    /// Nothing at all (`Content-Length: 0`), as a proxy in front of the device may answer.
    Empty,
}

impl FaultRule {
    /// Why the rule cannot be injected as written, naming the field (for the admin port).
    pub fn check(&self) -> Result<(), String> {
        if let Some(status) = self.status
            && !(100..=599).contains(&status)
        {
            return Err(format!("status: {status} is not an HTTP status (100-599)"));
        }
        if self.status.is_none() {
            let needs_status = [
                ("body", self.body != FaultBody::Html),
                ("error", self.error.is_some()),
                ("cli_error", self.cli_error.is_some()),
            ];
            if let Some((field, _)) = needs_status.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{field}: only means something with a forced status"
                ));
            }
        }
        if self.body != FaultBody::Json && (self.error.is_some() || self.cli_error.is_some()) {
            return Err("error, cli_error: only sent in a JSON envelope (body: json)".into());
        }
        for (name, value) in &self.headers {
            axum::http::HeaderName::try_from(name.as_str())
                .map_err(|_| format!("headers: {name:?} is not a header name"))?;
            axum::http::HeaderValue::try_from(value.as_str())
                .map_err(|_| format!("headers: the value of {name} is not a header value"))?;
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability: {p} is not between 0 and 1"));
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.path)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }

    /// The answer a forced `status` gives `req` (None when the rule forces no status).
    pub fn forced_reply(&self, state: &FortiGateState, req: &Request) -> Option<Reply> {
        let status = self.status?;
        let reply = match self.body {
            FaultBody::Html => Reply::html(status),
            FaultBody::Empty => Reply {
                status,
                headers: Vec::new(),
                body: Body::Empty,
            },
            FaultBody::Json => {
                // The envelope names the table the URL names, as the device's own errors do.
                let segs = segments(&req.path);
                let part = |i: usize| segs.get(i).map(String::as_str).unwrap_or_default();
                let vdom = req.param("vdom").unwrap_or(state.management_vdom());
                let mut env = envelope(state, &req.method, vdom, part(3), part(4), status);
                if segs.len() > 5 {
                    env.insert("mkey".into(), json!(part(5)));
                }
                if let Some(code) = self.error {
                    env.insert("error".into(), json!(code));
                }
                if let Some(cli) = &self.cli_error {
                    env.insert("cli_error".into(), json!(cli));
                }
                Reply::json(status, serde_json::Value::Object(env))
            }
        };
        Some(self.with_headers(reply))
    }

    /// `reply` with the rule's extra headers.
    pub fn with_headers(&self, mut reply: Reply) -> Reply {
        reply
            .headers
            .extend(self.headers.iter().map(|(n, v)| (n.clone(), v.clone())));
        reply
    }
}

/// The queued fault rules of one device.
#[derive(Debug, Clone, Default)]
pub struct FaultQueue(Vec<FaultRule>);

impl FaultQueue {
    /// Queues a rule behind the others.
    pub fn push(&mut self, rule: FaultRule) {
        self.0.push(rule);
    }

    /// Forgets every rule.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The rules still queued, first to fire first.
    pub fn rules(&self) -> &[FaultRule] {
        &self.0
    }

    /// The fault that hits this request, if any: the first matching rule, drawn against its
    /// probability with `draw` (a number in 0..1), which then uses up one of its `times`.
    pub fn take(
        &mut self,
        method: &str,
        path: &str,
        draw: impl FnOnce() -> f64,
    ) -> Option<FaultRule> {
        let index = self.0.iter().position(|f| f.matches(method, path))?;
        if let Some(p) = self.0[index].probability
            && draw() >= p
        {
            return None;
        }
        let rule = self.0[index].clone();
        if let Some(times) = &mut self.0[index].times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.0.remove(index);
            }
        }
        Some(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(status: u16, times: Option<u32>) -> FaultRule {
        FaultRule {
            path: "/api".into(),
            status: Some(status),
            times,
            ..FaultRule::default()
        }
    }

    #[test]
    fn rules_on_one_path_fire_in_order_one_per_request() {
        let mut q = FaultQueue::default();
        q.push(rule(503, Some(1)));
        q.push(rule(500, Some(2)));
        let fired: Vec<Option<u16>> = (0..4)
            .map(|_| q.take("GET", "/api/v2/cmdb", || 0.0).and_then(|r| r.status))
            .collect();
        assert_eq!(fired, [Some(503), Some(500), Some(500), None]);
        assert!(q.rules().is_empty());
    }

    #[test]
    fn a_rule_without_times_stays_in_front() {
        let mut q = FaultQueue::default();
        q.push(rule(503, None));
        q.push(rule(500, Some(1)));
        for _ in 0..3 {
            assert_eq!(
                q.take("GET", "/api/x", || 0.0).and_then(|r| r.status),
                Some(503)
            );
        }
        assert_eq!(q.rules().len(), 2);
    }

    #[test]
    fn a_probability_miss_neither_hits_nor_uses_up_the_rule() {
        let mut q = FaultQueue::default();
        q.push(FaultRule {
            probability: Some(0.5),
            ..rule(503, Some(1))
        });
        assert!(q.take("GET", "/api", || 0.7).is_none());
        assert_eq!(q.rules()[0].times, Some(1));
        assert!(q.take("GET", "/api", || 0.2).is_some());
    }

    #[test]
    fn method_and_path_must_both_match() {
        let mut q = FaultQueue::default();
        q.push(FaultRule {
            method: Some("post".into()),
            ..rule(503, None)
        });
        assert!(q.take("GET", "/api/v2", || 0.0).is_none());
        assert!(q.take("POST", "/logincheck", || 0.0).is_none());
        assert!(q.take("POST", "/api/v2", || 0.0).is_some());
    }

    #[test]
    fn check_names_the_field_that_makes_no_sense() {
        let cases = [
            (
                FaultRule {
                    status: Some(42),
                    ..FaultRule::default()
                },
                "status",
            ),
            (
                FaultRule {
                    body: FaultBody::Json,
                    ..FaultRule::default()
                },
                "body",
            ),
            (
                FaultRule {
                    error: Some(-5),
                    status: Some(500),
                    ..FaultRule::default()
                },
                "error",
            ),
            (
                FaultRule {
                    status: Some(429),
                    headers: [("Retry After".to_string(), "1".to_string())].into(),
                    ..FaultRule::default()
                },
                "headers",
            ),
        ];
        for (rule, field) in cases {
            let err = rule.check().expect_err(field);
            assert!(err.starts_with(field), "{err}");
        }
        assert_eq!(
            FaultRule {
                status: Some(500),
                body: FaultBody::Json,
                error: Some(-5),
                ..FaultRule::default()
            }
            .check(),
            Ok(())
        );
    }
}
