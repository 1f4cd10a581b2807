//! The steps before any credential is sent: DNS, TCP to the admin port, and the TLS handshake
//! with exactly the HTTP client the controller builds (same roots, CA bundle, insecure mode),
//! so its verdict is the controller's.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpSocket;

use super::checks::Step;
use crate::device::transport::{CA_AS_END_ENTITY, CA_AS_END_ENTITY_REMEDY, classify, http_client};
use crate::device::{Context, DeviceError, EndpointConfig};

/// What the network steps found.
pub struct Network {
    /// dns, tcp, tls.
    pub steps: Vec<Step>,
    /// Whether authenticated steps can follow.
    pub reachable: bool,
    /// The local address the TCP connection left from (what trusted hosts must allow).
    pub local: Option<IpAddr>,
}

fn ctx(endpoint: &EndpointConfig, method: &str, path: &str) -> Context {
    Context {
        device: endpoint.name.clone(),
        method: method.to_string(),
        path: path.to_string(),
    }
}

/// Runs DNS → TCP → TLS; stops at the first failure.
pub async fn check(endpoint: &EndpointConfig) -> Network {
    let timeout = endpoint.transport.timeout;
    let mut net = Network {
        steps: Vec::new(),
        reachable: false,
        local: None,
    };
    let url = match url::Url::parse(&endpoint.url) {
        // `--url` and `spec.url` are refused before this unless https:// (see `secure`).
        Ok(u) if u.host_str().is_some() && u.scheme() == "https" => u,
        _ => {
            let mut step = Step::failed(
                "dns",
                "DNS",
                &DeviceError::ConnectFailed {
                    ctx: ctx(endpoint, "", ""),
                    detail: format!("{:?} is not an https:// URL with a host", endpoint.url),
                },
            );
            step.cause = Some("the connection URL is malformed".into());
            step.remedy =
                Some("set spec.url (doctor: --url) to https://<host>:<admin-sport>".into());
            net.steps.push(step);
            return net;
        }
    };
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => {
            net.steps.push(Step::ok(
                "dns",
                "DNS",
                format!("{ip} is an IP address; no lookup needed"),
            ));
            vec![SocketAddr::new(ip, port)]
        }
        Err(_) => {
            match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port)))
                .await
            {
                Ok(Ok(found)) => {
                    let found: Vec<SocketAddr> = found.collect();
                    let list: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                    net.steps.push(Step::ok(
                        "dns",
                        "DNS",
                        format!("{host} resolves to {}", list.join(", ")),
                    ));
                    found
                }
                outcome => {
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {timeout:?}"),
                    };
                    let mut step = Step::failed(
                        "dns",
                        "DNS",
                        &DeviceError::ConnectFailed {
                            ctx: ctx(endpoint, "", ""),
                            detail: format!("{host} does not resolve: {why}"),
                        },
                    );
                    step.cause =
                        Some("the host name in the URL does not resolve from this machine".into());
                    step.remedy = Some("fix the host name in spec.url or this machine's DNS (cluster DNS for the controller); the management IP works too".into());
                    net.steps.push(step);
                    return net;
                }
            }
        }
    };
    let Some(addr) = pick(&addrs, endpoint.transport.source_address) else {
        net.steps.push(Step::failed(
            "tcp",
            "TCP connect",
            &DeviceError::ConnectFailed {
                ctx: ctx(endpoint, "", ""),
                detail: format!("{host} has no address of the source address's family"),
            },
        ));
        return net;
    };
    match connect(addr, endpoint.transport.source_address, timeout).await {
        Ok(local) => {
            net.local = Some(local.ip());
            net.steps.push(Step::ok(
                "tcp",
                "TCP connect",
                format!(
                    "connected to {addr} from {local}; the device sees {} unless NAT is in between",
                    local.ip()
                ),
            ));
        }
        Err(step) => {
            net.steps.push(step.detail_with_target(endpoint, addr));
            return net;
        }
    }
    let step = tls(endpoint).await;
    net.reachable = step.status != super::checks::Status::Fail;
    net.steps.push(step);
    net
}

/// The first address matching the source address's family.
fn pick(addrs: &[SocketAddr], source: Option<IpAddr>) -> Option<SocketAddr> {
    addrs
        .iter()
        .find(|a| source.is_none_or(|s| s.is_ipv4() == a.is_ipv4()))
        .copied()
}

/// A raw TCP connect from `source`; returns the local address.
async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<SocketAddr, TcpFailure> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| TcpFailure::Connect(e.to_string()))?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| TcpFailure::Source(ip, e.to_string()))?;
    }
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(Ok(stream)) => stream
            .local_addr()
            .map_err(|e| TcpFailure::Connect(e.to_string())),
        Ok(Err(e)) => Err(TcpFailure::Connect(e.to_string())),
        Err(_) => Err(TcpFailure::Timeout(timeout)),
    }
}

enum TcpFailure {
    Source(IpAddr, String),
    Connect(String),
    Timeout(Duration),
}

impl TcpFailure {
    fn detail_with_target(self, endpoint: &EndpointConfig, addr: SocketAddr) -> Step {
        let c = ctx(endpoint, "", "");
        match self {
            TcpFailure::Source(ip, why) => {
                let mut step = Step::failed(
                    "tcp",
                    "TCP connect",
                    &DeviceError::ConnectFailed {
                        ctx: c,
                        detail: format!("cannot send from {ip}: {why}"),
                    },
                );
                step.cause = Some("the source address is not an address of this machine".into());
                step.remedy = Some("use one of this machine's addresses in spec.sourceAddress (doctor: --source-address), or leave it out".into());
                step
            }
            TcpFailure::Connect(why) => Step::failed(
                "tcp",
                "TCP connect",
                &DeviceError::ConnectFailed {
                    ctx: c,
                    detail: format!("{addr}: {why}"),
                },
            ),
            TcpFailure::Timeout(timeout) => Step::failed(
                "tcp",
                "TCP connect",
                &DeviceError::Timeout { ctx: c, timeout },
            )
            .detail(format!(
                "{addr}: no TCP answer within {timeout:?} (dropped, not refused)"
            )),
        }
    }
}

/// One unauthenticated GET of `/` through the controller's HTTP client: the handshake is the
/// controller's, and no credential is at stake.
async fn handshake(endpoint: &EndpointConfig, verify: bool) -> Result<(), DeviceError> {
    let mut transport = endpoint.transport.clone();
    if verify {
        transport.insecure_skip_verify = false;
    }
    let client = http_client(&transport, &endpoint.name)?;
    let base = endpoint.url.trim_end_matches('/');
    match client.get(format!("{base}/")).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(classify(
            &e,
            ctx(endpoint, "GET", "/"),
            transport.timeout,
            false,
        )),
    }
}

const CA_HINT: &str = "get the CA certificate that signs the device certificate (for a self-signed device certificate, the certificate itself: System > Certificates > Local > Download) and check it here with --ca-file";

/// The first remedy of a TLS failure: for a CA certificate presented as the device's own, the
/// general hint (give the self-signed certificate itself) is exactly what fails.
fn ca_hint(e: &DeviceError) -> &'static str {
    match e {
        DeviceError::Tls { detail, .. } if detail.starts_with(CA_AS_END_ENTITY) => {
            CA_AS_END_ENTITY_REMEDY
        }
        _ => CA_HINT,
    }
}

async fn tls(endpoint: &EndpointConfig) -> Step {
    let verified = handshake(endpoint, true).await;
    if !endpoint.transport.insecure_skip_verify {
        return match verified {
            Ok(()) => Step::ok(
                "tls",
                "TLS",
                if endpoint.transport.ca_bundle_pem.is_some() {
                    "the certificate verifies against the CA bundle and matches the host name"
                } else {
                    "the certificate verifies against the public roots and matches the host name"
                },
            ),
            Err(e @ DeviceError::Tls { .. }) => {
                Step::failed("tls", "TLS", &e).remedy_first(ca_hint(&e))
            }
            Err(e) => Step::failed("tls", "TLS", &e),
        };
    }
    match (verified, handshake(endpoint, false).await) {
        (Ok(()), _) => Step::ok(
            "tls",
            "TLS",
            "the certificate verifies even without insecureSkipVerify: turn insecureSkipVerify off",
        ),
        (Err(e @ DeviceError::Tls { .. }), Ok(())) => Step::warned(
            "tls",
            "TLS",
            format!("the certificate is NOT verified (insecureSkipVerify); with verification: {e}"),
            &e,
        )
        .remedy_first(ca_hint(&e)),
        (Err(e), Ok(())) => Step::failed("tls", "TLS", &e),
        (_, Err(e)) => Step::failed("tls", "TLS", &e),
    }
}
