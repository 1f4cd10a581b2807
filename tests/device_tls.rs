//! A device whose certificate cannot be trusted — expired, not yet valid, issued for another
//! name, or self-signed without the CA bundle — is refused by both clients during the TLS
//! handshake with the typed `Tls` error (troubleshooting row F2) and its remedy: the request,
//! and the credential in it, never cross. A certificate from the trusted CA for the right name,
//! in its validity period, is the control: the same server answers it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fortisync::device::fortimanager::FortiManagerClient;
use fortisync::device::fortios::FortiOsClient;
use fortisync::device::{
    Credentials, DeviceError, DeviceMetrics, Guard, LockoutPolicy, TransportConfig,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The token the clients send; it must never reach a server they do not trust.
const TOKEN: &str = "tls-canary-token-000";

/// A private CA: its PEM (the bundle a FortiGate/FortiManager resource names) and its issuer.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A CA named `name` (a leaf's issuer is found by name first, then its signature checked).
fn ca_named(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn ca() -> Ca {
    ca_named("fortisync test CA")
}

/// What the server presents.
struct Presented {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A certificate for `names`, valid from `from` to `until` (years), signed by `ca` or, without
/// one, self-signed.
fn certificate(ca: Option<&Ca>, names: &[&str], from: i32, until: i32) -> Presented {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(until, 1, 1);
    let key = KeyPair::generate().expect("key");
    let cert = match ca {
        Some(ca) => params.signed_by(&key, &ca.issuer).expect("signed"),
        None => params.self_signed(&key).expect("self-signed"),
    };
    Presented {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

/// A loopback HTTPS server presenting `presented`; answers every request it reads with
/// `body` and counts the requests it read (a request is read only after a handshake the client
/// accepted).
async fn serve(presented: Presented, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(presented.chain, presented.key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused the certificate
                };
                let mut buf = vec![0u8; 16 * 1024];
                if tls.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (url, requests)
}

const FORTIOS_STATUS: &str = r#"{"http_method":"GET","results":{"model_name":"FortiGate","model":"FGT60F","hostname":"fw"},"vdom":"root","path":"system","name":"status","status":"success","http_status":200,"serial":"FGT60FTK20000001","version":"v7.4.3","build":2573}"#;
const FORTIMANAGER_STATUS: &str = r#"{"id":1,"result":[{"status":{"code":0,"message":"OK"},"url":"/sys/status","data":{"Version":"v7.4.3","Serial Number":"FMG-VM0000000001","Hostname":"fmg"}}]}"#;

/// A Guard as the device tests build it (the simulator's fixture is not needed here: the
/// test runs without the `sim` feature too).
fn guard(device: &str) -> Arc<Guard> {
    Arc::new(Guard::new(
        device,
        LockoutPolicy::default(),
        4,
        DeviceMetrics::default(),
    ))
}

fn transport(ca: Option<&Ca>) -> TransportConfig {
    TransportConfig {
        ca_bundle_pem: ca.map(|c| c.pem.clone()),
        timeout: Duration::from_secs(5),
        ..TransportConfig::default()
    }
}

async fn fortios(url: &str, ca: Option<&Ca>) -> Result<(), DeviceError> {
    let guard = guard("fw");
    let client = FortiOsClient::new(
        "fw",
        url,
        "root",
        Credentials::Token(TOKEN.into()),
        &transport(ca),
        guard,
    )
    .expect("client");
    client.system_status().await.map(|_| ())
}

async fn fortimanager(url: &str, ca: Option<&Ca>) -> Result<(), DeviceError> {
    let guard = guard("fmg");
    let client = FortiManagerClient::new(
        "fmg",
        url,
        "root",
        Credentials::Token(TOKEN.into()),
        &transport(ca),
        guard,
    )
    .expect("client");
    client.system_status().await.map(|_| ())
}

/// Both clients against a server presenting each certificate: refused as `Tls` (F2) with the
/// CA-bundle remedy, a detail containing `why`, and no request read by the server.
async fn refused_by_both(
    what: &str,
    presented: impl Fn() -> Presented,
    ca: Option<&Ca>,
    why: &str,
) {
    for client in ["FortiOS", "FortiManager"] {
        let (body, call): (&'static str, bool) = match client {
            "FortiOS" => (FORTIOS_STATUS, true),
            _ => (FORTIMANAGER_STATUS, false),
        };
        let (url, requests) = serve(presented(), body).await;
        let refused = match call {
            true => fortios(&url, ca).await,
            false => fortimanager(&url, ca).await,
        }
        .expect_err(what);
        assert_eq!(
            (refused.reason(), refused.troubleshooting_row()),
            ("Tls", "F2"),
            "{client}, {what}: {refused:?}"
        );
        let DeviceError::Tls { detail, .. } = &refused else {
            unreachable!("reason Tls");
        };
        assert!(
            detail.to_lowercase().contains(why),
            "{client}, {what}: {why:?} not in {detail:?}"
        );
        assert!(
            refused.remedy().contains("spec.tls.caBundleSecretRef"),
            "{client}, {what}: {}",
            refused.remedy()
        );
        assert!(!format!("{refused:?}").contains(TOKEN), "{client}, {what}");
        assert_eq!(
            requests.load(Ordering::SeqCst),
            0,
            "{client}, {what}: a request crossed an untrusted connection"
        );
    }
}

#[tokio::test]
async fn an_expired_certificate_is_refused_before_any_request() {
    let ca = ca();
    let expired = || certificate(Some(&ca), &["127.0.0.1"], 2019, 2020);
    refused_by_both("expired", expired, Some(&ca), "expired").await;
}

#[tokio::test]
async fn a_certificate_not_yet_valid_is_refused_before_any_request() {
    let ca = ca();
    let future = || certificate(Some(&ca), &["127.0.0.1"], 2090, 2100);
    refused_by_both("not yet valid", future, Some(&ca), "not valid yet").await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_before_any_request() {
    let ca = ca();
    let elsewhere = || certificate(Some(&ca), &["fw.example.com"], 2020, 2090);
    refused_by_both(
        "another name",
        elsewhere,
        Some(&ca),
        "host name in spec.url",
    )
    .await;
}

#[tokio::test]
async fn a_self_signed_certificate_without_the_bundle_is_refused_before_any_request() {
    let own = || certificate(None, &["127.0.0.1"], 2020, 2090);
    refused_by_both("self-signed", own, None, "unknown issuer").await;
    // Trusting another CA does not make it trusted either.
    let other = ca();
    refused_by_both("self-signed, other CA", own, Some(&other), "unknown issuer").await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_of_the_same_name_is_refused_before_any_request() {
    // Another device's (or a regenerated) CA with the name of the one in the bundle.
    let (trusted, impostor) = (ca(), ca());
    let forged = || certificate(Some(&impostor), &["127.0.0.1"], 2020, 2090);
    refused_by_both(
        "same-name CA",
        forged,
        Some(&trusted),
        "different ca of the same name",
    )
    .await;
}

#[tokio::test]
async fn a_certificate_from_the_bundle_for_the_right_name_is_answered() {
    let ca = ca();
    let good = || certificate(Some(&ca), &["127.0.0.1"], 2020, 2090);
    let (url, requests) = serve(good(), FORTIOS_STATUS).await;
    fortios(&url, Some(&ca)).await.expect("FortiOS answered");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    let (url, requests) = serve(good(), FORTIMANAGER_STATUS).await;
    fortimanager(&url, Some(&ca))
        .await
        .expect("FortiManager answered");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}
