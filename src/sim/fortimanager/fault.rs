//! Injected faults of a simulated FortiManager: the rule a test queues, which JSON-RPC param it
//! hits, and what the HTTP answer then carries.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// A fault to inject on JSON-RPC params whose url starts with `url` (`""` matches all).
///
/// Rules queue in the order they were added: a param is hit by the first rule that matches it,
/// which uses up one of its `times`, so two rules on one url fire one after the other, never
/// together. Once a rule answers the whole HTTP request (`http_status`, `reset`), the request's
/// later params draw no rule. A forced `code` or `http_status` refuses the param without
/// running it; `reset` runs it and then drops the connection, so the client never learns the
/// outcome. Params refused by an injected HTTP status are logged with code -1.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRule {
    /// Url prefix, normalised with a leading slash (e.g. `/pm/config/adom/root/obj`).
    pub url: String,
    /// Delay before answering, in milliseconds (a huge value plays a hung FortiManager).
    pub latency_ms: u64,
    /// Extra delay drawn uniformly from `0..=jitter_ms` with the seeded RNG.
    pub jitter_ms: u64,
    /// Force this `status.code` on matching params.
    pub code: Option<i64>,
    /// Message sent with a forced code.
    pub message: Option<String>,
    /// Answer the whole HTTP request with this status.
    pub http_status: Option<u16>,
    /// What a forced `http_status` carries (nothing when absent).
    pub body: HttpFaultBody,
    /// Headers added to the answer, e.g. `{"Retry-After": "30"}`.
    pub headers: BTreeMap<String, String>,
    /// Apply this many times, then drop the rule (forever when absent).
    pub times: Option<u32>,
    /// Chance (0..=1) that a param the rule matches is hit, drawn from the scenario's seeded
    /// RNG; a miss leaves the param unfaulted and does not use up `times`. Always when absent.
    pub probability: Option<f64>,
    /// Close the connection without an answer (a reset as the client sees it).
    pub reset: bool,
}

/// The body of a forced HTTP status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFaultBody {
    /// No body (`Content-Length: 0`).
    #[default]
    Empty,
    /// The JSON-RPC answer as it would have been, each refused param with its code (-1, or the
    /// rule's `code`): a client that reads the body before the status sees why.
    Jsonrpc,
    /// An HTML error page, as the web server in front of the API answers when it fails.
    Html,
}

impl FaultRule {
    /// Why the rule cannot be injected as written, naming the field (for the admin port).
    pub fn check(&self) -> Result<(), String> {
        if let Some(status) = self.http_status
            && !(100..=599).contains(&status)
        {
            return Err(format!(
                "http_status: {status} is not an HTTP status (100-599)"
            ));
        }
        if self.http_status.is_none() && self.body != HttpFaultBody::Empty {
            return Err("body: only means something with http_status".into());
        }
        if self.message.is_some() && self.code.is_none() {
            return Err("message: only sent with a forced code".into());
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

    /// Whether the rule answers the whole HTTP request rather than one param.
    pub fn answers_request(&self) -> bool {
        self.http_status.is_some() || self.reset
    }
}

/// The queued fault rules of one FortiManager.
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

    /// The fault that hits a param on `url`: the first matching rule, if its probability draw
    /// hits, with its jitter added to the latency; it then uses up one of its `times`.
    pub fn take(&mut self, url: &str, rng: &mut StdRng) -> Option<FaultRule> {
        let index = self.0.iter().position(|r| url.starts_with(&r.url))?;
        let chance = self.0[index].probability.unwrap_or(1.0).clamp(0.0, 1.0);
        if !rng.random_bool(chance) {
            return None;
        }
        let mut hit = self.0[index].clone();
        if let Some(times) = &mut self.0[index].times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.0.remove(index);
            }
        }
        if hit.jitter_ms > 0 {
            hit.latency_ms = hit
                .latency_ms
                .saturating_add(rng.random_range(0..=hit.jitter_ms));
        }
        Some(hit)
    }
}

/// The HTML page of a forced status.
pub fn error_page(status: u16) -> String {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn code(code: i64, times: Option<u32>) -> FaultRule {
        FaultRule {
            url: "/sys".into(),
            code: Some(code),
            times,
            ..FaultRule::default()
        }
    }

    #[test]
    fn rules_on_one_url_fire_in_order_one_per_param() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut q = FaultQueue::default();
        q.push(code(-1, Some(1)));
        q.push(code(-6, Some(1)));
        let fired: Vec<Option<i64>> = (0..3)
            .map(|_| q.take("/sys/status", &mut rng).and_then(|r| r.code))
            .collect();
        assert_eq!(fired, [Some(-1), Some(-6), None]);
        assert!(q.rules().is_empty());
    }

    #[test]
    fn check_names_the_field_that_makes_no_sense() {
        let cases = [
            (
                FaultRule {
                    http_status: Some(1000),
                    ..FaultRule::default()
                },
                "http_status",
            ),
            (
                FaultRule {
                    body: HttpFaultBody::Html,
                    ..FaultRule::default()
                },
                "body",
            ),
            (
                FaultRule {
                    message: Some("x".into()),
                    ..FaultRule::default()
                },
                "message",
            ),
            (
                FaultRule {
                    probability: Some(2.0),
                    ..FaultRule::default()
                },
                "probability",
            ),
        ];
        for (rule, field) in cases {
            let err = rule.check().expect_err(field);
            assert!(err.starts_with(field), "{err}");
        }
    }
}
