//! The chart's optional NetworkPolicy: off by default; when on, ingress only to the admin port
//! and the EDL port (from the listed FortiGates) and egress only to the API server, the listed
//! devices and DNS, as the API server stores it;
//! the API server's addresses read from its EndpointSlice when none are listed.

use super::{chart_dir, helm, helm_template, install};
use crate::support::control_plane;

/// `(ports, peers)` of each rule of a rendered NetworkPolicy's `direction` (ingress/egress),
/// as the apiserver stored it.
fn policy_rules(ns: &str, name: &str, direction: &str) -> Vec<(String, String)> {
    let json = control_plane().kubectl_ok(&["get", "networkpolicy", name, "-n", ns, "-o", "json"]);
    let policy: serde_json::Value = serde_json::from_str(&json).expect("NetworkPolicy JSON");
    let peers_key = if direction == "ingress" { "from" } else { "to" };
    policy["spec"][direction]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| {
            let ports: Vec<String> = rule["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["protocol"].as_str().unwrap_or(""), p["port"]))
                .collect();
            let peers = serde_json::to_string(&rule[peers_key]).expect("peers");
            (ports.join(","), peers)
        })
        .collect()
}

#[test]
fn is_off_by_default_and_admits_only_the_admin_and_edl_ports_and_egress_to_apiserver_devices_and_dns()
 {
    let cp = control_plane();
    let ns = cp.namespace("chart-np");
    let default = helm_template("np", &ns, &[], &[]);
    assert!(!default.contains("kind: NetworkPolicy"), "off by default");

    install(
        "np",
        &ns,
        &[
            "networkPolicy.enabled=true",
            "admin.address=0.0.0.0:9090",
            "networkPolicy.apiServer.cidrs={10.96.0.1/32}",
            "networkPolicy.devices[0].cidr=192.0.2.0/24",
            "networkPolicy.devices[1].cidr=198.51.100.7/32",
            "networkPolicy.devices[1].ports={8443,10443}",
            "networkPolicy.adminFrom[0].namespaceSelector.matchLabels.team=monitoring",
            "networkPolicy.edlFrom[0].ipBlock.cidr=192.0.2.0/24",
        ],
    );
    assert_eq!(
        policy_rules(&ns, "np-fortisync", "ingress"),
        [
            (
                "TCP/9090".to_string(),
                r#"[{"namespaceSelector":{"matchLabels":{"team":"monitoring"}}}]"#.to_string()
            ),
            (
                "TCP/8443".to_string(),
                r#"[{"ipBlock":{"cidr":"192.0.2.0/24"}}]"#.to_string()
            )
        ]
    );
    assert_eq!(
        policy_rules(&ns, "np-fortisync", "egress"),
        [
            ("TCP/6443", r#"[{"ipBlock":{"cidr":"10.96.0.1/32"}}]"#),
            ("TCP/443", r#"[{"ipBlock":{"cidr":"192.0.2.0/24"}}]"#),
            ("TCP/8443,TCP/10443", r#"[{"ipBlock":{"cidr":"198.51.100.7/32"}}]"#),
            (
                "UDP/53,TCP/53",
                r#"[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"kube-dns"}}}]"#
            ),
        ]
        .map(|(p, t)| (p.to_string(), t.to_string()))
    );
    let deployment = cp.kubectl_ok(&["get", "deployment", "np-fortisync", "-n", &ns, "-o", "json"]);
    assert!(deployment.contains("\"--admin-address=0.0.0.0:9090\""));
    assert!(deployment.contains("\"containerPort\": 9090"));
}

#[test]
fn reads_the_apiserver_endpoints_when_none_are_listed() {
    let cp = control_plane();
    let ns = cp.namespace("chart-np-lookup");
    // Without --dry-run=server, helm cannot look up: the chart says what to set.
    let out = helm(&[
        "template",
        "np",
        chart_dir().to_str().expect("path"),
        "--namespace",
        &ns,
        "--set",
        "networkPolicy.enabled=true",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("networkPolicy.apiServer.cidrs: empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness's apiserver runs with --endpoint-reconciler-type=none, so it publishes no
    // EndpointSlice for `kubernetes`: write the one a cluster would have (an endpoint may not be
    // loopback, so a documentation address; the slice is only read here, never routed to).
    let port = 16443; // not the default 6443: the port comes from the slice too
    let slice = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: kubernetes\n  labels: {{kubernetes.io/service-name: kubernetes}}\naddressType: IPv4\nendpoints:\n  - addresses: [203.0.113.10]\nports:\n  - {{name: https, port: {port}, protocol: TCP}}\n"
    );
    let (ok, err) = cp.apply("default", &slice);
    assert!(ok, "{err}");
    let rendered = helm_template(
        "np",
        &ns,
        &["networkPolicy.enabled=true"],
        &["--dry-run=server"],
    );
    assert!(
        rendered.contains(&format!(
            "        - ipBlock: {{cidr: \"203.0.113.10/32\"}}\n      ports:\n        - {{protocol: TCP, port: {port}}}\n"
        )),
        "{rendered}"
    );
}
