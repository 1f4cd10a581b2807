//! Bad specs are refused by the real API server at `kubectl apply`, with a message that names
//! the field and the reason — before the controller ever sees them.

use crate::support::control_plane;

const GOOD_FORTIGATE: &str = r#"
apiVersion: fortisync.dev/v1alpha1
kind: FortiGate
metadata: {name: fw}
spec:
  url: https://fw.example.com:8443
  credentialsSecretRef: {name: fw-token, tokenKey: token}
"#;

const GOOD_GROUP: &str = r#"
apiVersion: fortisync.dev/v1alpha1
kind: AddressGroup
metadata: {name: grp}
spec:
  targetRef: {kind: FortiGate, name: fw}
  groupName: allowed-admins
  members:
  - {address: 192.0.2.10}
  - {address: 10.0.0.0/24}
  - {address: 2001:db8::/64}
  - {address: 192.0.2.1-192.0.2.9, comment: lab range, expiresAt: "2030-01-01T00:00:00Z"}
"#;

/// Replaces `from` with `to` in a known-good manifest (failing loudly if `from` is absent).
fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(
        base.contains(from),
        "test bug: {from:?} not in the base manifest"
    );
    base.replacen(from, to, 1)
}

#[test]
fn good_specs_are_accepted() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("admission-good");
    for manifest in [GOOD_FORTIGATE, GOOD_GROUP] {
        let (ok, stderr) = cp.apply(&ns, manifest);
        assert!(ok, "a valid manifest was refused: {stderr}");
    }
    let prefix = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "addressgroup",
        "grp",
        "-o",
        "jsonpath={.spec.addressPrefix}",
    ]);
    assert_eq!(
        prefix, "fs_",
        "the default prefix is filled in by the schema"
    );
}

#[test]
fn bad_specs_are_rejected_naming_the_field() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("admission-bad");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "url without https",
            edit(
                GOOD_FORTIGATE,
                "https://fw.example.com:8443",
                "http://fw.example.com",
            ),
            "spec.url must be an https:// URL",
        ),
        (
            "url not a URL",
            edit(
                GOOD_FORTIGATE,
                "https://fw.example.com:8443",
                "fw.example.com",
            ),
            "spec.url must be an https:// URL",
        ),
        (
            "token and password both",
            edit(
                GOOD_FORTIGATE,
                "tokenKey: token}",
                "tokenKey: token, usernameKey: u, passwordKey: p}",
            ),
            "set either tokenKey, or usernameKey and passwordKey",
        ),
        (
            "username without password",
            edit(GOOD_FORTIGATE, "tokenKey: token}", "usernameKey: u}"),
            "usernameKey and passwordKey go together",
        ),
        (
            "source address not an IP",
            edit(
                GOOD_FORTIGATE,
                "  url:",
                "  sourceAddress: 10.0.0.300\n  url:",
            ),
            "spec.sourceAddress must be an IPv4 or IPv6 address",
        ),
        (
            "resync interval too short",
            edit(GOOD_FORTIGATE, "  url:", "  resyncInterval: 1s\n  url:"),
            "spec.resyncInterval must be a duration between 10s and 24h",
        ),
        (
            "resync interval not a duration",
            edit(GOOD_FORTIGATE, "  url:", "  resyncInterval: often\n  url:"),
            "spec.resyncInterval must be a duration",
        ),
        (
            "lockout threshold above 10",
            edit(
                GOOD_FORTIGATE,
                "  url:",
                "  lockout: {threshold: 11}\n  url:",
            ),
            "spec.lockout.threshold",
        ),
        (
            "too many concurrent requests",
            edit(
                GOOD_FORTIGATE,
                "  url:",
                "  maxConcurrentRequests: 100\n  url:",
            ),
            "spec.maxConcurrentRequests",
        ),
        (
            "bad vdom",
            edit(GOOD_FORTIGATE, "  url:", "  vdom: \"root vdom\"\n  url:"),
            "spec.vdom must be 1-31 characters",
        ),
        (
            "bad IPv4 member",
            edit(GOOD_GROUP, "192.0.2.10}", "192.0.2.300}"),
            "spec.members[0].address",
        ),
        (
            "CIDR with host bits",
            edit(GOOD_GROUP, "10.0.0.0/24", "10.0.0.1/24"),
            "must be an IP address, a CIDR without host bits",
        ),
        (
            "mixed-family range",
            edit(GOOD_GROUP, "192.0.2.1-192.0.2.9", "192.0.2.1-2001:db8::1"),
            "spec.members[3].address",
        ),
        (
            "hostname member",
            edit(GOOD_GROUP, "192.0.2.10}", "fw.example.com}"),
            "spec.members[0].address",
        ),
        (
            "duplicate member",
            edit(
                GOOD_GROUP,
                "  - {address: 10.0.0.0/24}",
                "  - {address: 192.0.2.10}",
            ),
            "Duplicate value",
        ),
        (
            "unknown target kind",
            edit(GOOD_GROUP, "kind: FortiGate,", "kind: FortiAnalyzer,"),
            "spec.targetRef.kind",
        ),
        (
            "group name too long",
            edit(GOOD_GROUP, "allowed-admins", &"g".repeat(80)),
            "spec.groupName",
        ),
        (
            "group name with XSS characters",
            edit(GOOD_GROUP, "allowed-admins", "\"admins<script>\""),
            "must not contain < > ( ) #",
        ),
        (
            "prefix too long",
            edit(
                GOOD_GROUP,
                "  groupName:",
                &format!("  addressPrefix: {}\n  groupName:", "p".repeat(33)),
            ),
            "spec.addressPrefix",
        ),
        (
            "prefix with a slash",
            edit(
                GOOD_GROUP,
                "  groupName:",
                "  addressPrefix: fs/\n  groupName:",
            ),
            "spec.addressPrefix must start with a letter",
        ),
        (
            "bad expiry",
            edit(GOOD_GROUP, "2030-01-01T00:00:00Z", "next tuesday"),
            "spec.members[3].expiresAt",
        ),
        (
            "unknown membership",
            edit(
                GOOD_GROUP,
                "  groupName:",
                "  membership: Some\n  groupName:",
            ),
            "spec.membership",
        ),
    ];
    assert!(cases.len() >= 15);
    for (what, manifest, expected) in cases {
        let (ok, stderr) = cp.apply(&ns, &manifest);
        assert!(
            !ok,
            "{what}: the API server accepted a bad spec:\n{manifest}"
        );
        assert!(
            stderr.contains(expected),
            "{what}: expected {expected:?} in the rejection, got:\n{stderr}"
        );
    }
}
