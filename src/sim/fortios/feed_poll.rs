//! The pulls a simulated FortiGate makes for its feed-mode external resources: one task per
//! device plans what is due (`FortiGateState::plan_polls`) and runs each pull unlocked, with
//! basic auth, the configured certificate check, a timeout, a body cap and no redirects.

use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::feed::{
    CODE_CONFIG, CODE_CONNECT, CODE_HTTP, CODE_TIMEOUT, CODE_TLS, CODE_TOO_LARGE, FeedSignals,
    PollJob, PollRecord, PullError, Verify,
};
use super::state::FortiGateState;

type Shared = Arc<Mutex<FortiGateState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, FortiGateState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Runs until aborted: pulls what is due, sleeps until the next due time or a wake-up.
/// Dropping the task drops the running pulls with it.
pub async fn run(state: Shared, signals: Arc<FeedSignals>) {
    let mut pulls = JoinSet::new();
    loop {
        let (jobs, next) = lock(&state).plan_polls(Instant::now());
        for job in jobs {
            let state = state.clone();
            let signals = signals.clone();
            pulls.spawn(async move {
                let (outcome, record) = pull(&job).await;
                lock(&state).finish_poll(&job, outcome, record, Instant::now(), unix_now());
                signals.polled.send_modify(|n| *n += 1);
                signals.wake.notify_one();
            });
        }
        // Reap finished pulls so the set stays small.
        while pulls.try_join_next().is_some() {}
        match next {
            Some(at) => {
                tokio::select! {
                    () = signals.wake.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => signals.wake.notified().await,
        }
    }
}

/// The URL as records show it: no query (it may hold a token), no user info.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

fn config_error(what: String) -> PullError {
    PullError {
        error: what,
        error_code: CODE_CONFIG,
        http_status_code: None,
    }
}

/// Why a request failed, without the URL, with the innermost cause (a TLS alert, a refused
/// connection) that tells tests apart.
fn request_error(e: &reqwest::Error) -> PullError {
    let mut cause = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let tls = cause.to_ascii_lowercase().contains("certificate")
        || cause.to_ascii_lowercase().contains("tls");
    let (code, what) = if e.is_timeout() {
        (CODE_TIMEOUT, "timed out")
    } else if tls {
        (CODE_TLS, "TLS failure")
    } else {
        (CODE_CONNECT, "connection failed")
    };
    PullError {
        error: if cause.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {cause}")
        },
        error_code: code,
        http_status_code: None,
    }
}

/// One pull: the body on HTTP 200, else why not; and its record.
pub async fn pull(job: &PollJob) -> (Result<String, PullError>, PollRecord) {
    let mut record = PollRecord {
        vdom: job.key.0.clone(),
        feed: job.key.1.clone(),
        url: shown(&job.url),
        source: job.source,
        username: (!job.username.is_empty()).then(|| job.username.clone()),
        http_status: None,
        error: None,
        entries: 0,
    };
    let outcome = fetch(job, &mut record).await;
    if let Err(e) = &outcome {
        record.error = Some(e.error.clone());
    }
    (outcome, record)
}

async fn fetch(job: &PollJob, record: &mut PollRecord) -> Result<String, PullError> {
    let url = url::Url::parse(&job.url)
        .map_err(|e| config_error(format!("resource: not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(format!(
            "resource: scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        // A FortiGate follows no redirect: a 3xx is an HTTP error like any other non-200.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(job.timeout)
        .user_agent(job.user_agent.clone());
    if let Some(source) = job.source {
        builder = builder.local_address(source);
    }
    match job.verify {
        Verify::None => builder = builder.danger_accept_invalid_certs(true),
        Verify::Full => {
            if let Some(pem) = &job.ca_pem {
                let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                    .map_err(|e| config_error(format!("feeds.ca_pem: not PEM ({e})")))?;
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
        }
    }
    let client = builder
        .build()
        .map_err(|e| config_error(format!("HTTP client: {}", e.without_url())))?;
    let mut request = client.get(url);
    if !job.username.is_empty() {
        request = request.basic_auth(&job.username, Some(&job.password));
    }
    let mut response = request.send().await.map_err(|e| request_error(&e))?;
    let status = response.status().as_u16();
    record.http_status = Some(status);
    if status != 200 {
        return Err(PullError {
            error: format!("HTTP status {status}"),
            error_code: CODE_HTTP,
            http_status_code: Some(status),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| request_error(&e))? {
        if body.len() + chunk.len() > job.max_body {
            // Over the size limit the pull fails and the last good list stays: dropping it
            // or keeping a part is UNCONFIRMED, and failing never loses the list.
            return Err(PullError {
                error: format!("resource file larger than {} bytes", job.max_body),
                error_code: CODE_TOO_LARGE,
                http_status_code: Some(status),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
