//! A plain HTTP client for talking to the simulator as a third-party tool would: trusts the
//! device's self-signed certificate and can send from a chosen 127.0.0.x source address.

#![allow(dead_code)]

use std::net::IpAddr;

use reqwest::{Client, Method, Response};
use serde_json::Value;

/// Source addresses that play different admins' machines.
pub fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A client trusting `ca_pem`, sending from `source`, with a cookie store.
pub fn client(ca_pem: Option<&str>, source: IpAddr) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = Client::builder()
        .local_address(source)
        .cookie_store(true)
        .use_rustls_tls();
    if let Some(pem) = ca_pem {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(pem.as_bytes()).expect("simulator CA"),
        );
    }
    builder.build().expect("http client")
}

/// Sends a request with an optional bearer token and JSON body.
pub async fn send(
    client: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut req = client.request(method, url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request reaches the simulator")
}

/// Status and JSON body (Null when the body is not JSON).
pub async fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
