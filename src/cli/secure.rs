//! What the CLI checks about a connection's transport before it sends anything: the URL must
//! be `https://` exactly as the CRD requires (the API key or password goes with every
//! request, and over `http://` it would cross the network in cleartext), and turning TLS
//! verification off is said out loud in the output, not only in the manifest.

use crate::cli::doctor::render::safe_url;

/// The remedy for a URL [`require_https`] refuses.
pub const HTTPS_REMEDY: &str = "use the device's HTTPS admin URL, https://<host>:<admin-sport> (System > Settings > Administration Settings > HTTPS port)";

/// Refuses a device URL that is not `https://<host>...`, the CRD's own rule (`isURL`, scheme
/// `https`, a host name). `field` names where the URL came from (`spec.url`, `--url`). Checked
/// before any request, so a refused URL never carries a credential.
pub fn require_https(field: &str, url: &str) -> Result<(), String> {
    let shown = safe_url(url);
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(u) if u.scheme() == "http" => Err(format!(
            "{field}: {shown:?} is a plain http:// URL; fortisync refuses it because the API key or password would be sent in cleartext (the FortiGate/FortiManager resource admits only https://)"
        )),
        _ => Err(format!(
            "{field}: {shown:?} is not an https:// URL with a host, such as https://fw.example.com:8443"
        )),
    }
}

/// The line plan, apply and doctor print when certificate verification is off. `field` is
/// where it was turned off (`spec.tls.insecureSkipVerify`, `--insecure-skip-verify`).
pub fn verification_off(device: &str, field: &str) -> String {
    format!("TLS verification is OFF for {device} ({field})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_with_a_host_is_the_only_url_accepted() {
        assert_eq!(
            require_https("spec.url", "https://fw.example.com:8443"),
            Ok(())
        );
        let http = require_https("spec.url", "http://fw.example.com:8080").expect_err("http");
        assert!(
            http.starts_with("spec.url: \"http://fw.example.com:8080\""),
            "{http}"
        );
        assert!(http.contains("cleartext"), "{http}");
        let other = require_https("--url", "fw.example.com").expect_err("no scheme");
        assert!(other.starts_with("--url: "), "{other}");
        assert!(require_https("spec.url", "ftp://fw").is_err());
    }

    #[test]
    fn a_refused_url_never_shows_its_query() {
        let e = require_https("spec.url", "http://fw/?access_token=s3cr3t").expect_err("http");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
