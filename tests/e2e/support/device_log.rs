//! Reading the simulated FortiGate's request log the way fault tests need: the writes it took
//! (what a lost or doubled write would change) and who sent each request (the `User-Agent`
//! of `fortisync run` names its replica).

use fortisync::sim::fortios::{FortiGateHandle, RequestRecord};

/// Whether `r` asked the device to change something (anything but a read).
pub fn is_write(r: &RequestRecord) -> bool {
    r.method != "GET"
}

/// The write requests the device has answered so far, as `METHOD path status` lines.
pub fn writes(fg: &FortiGateHandle) -> Vec<String> {
    fg.requests()
        .iter()
        .filter(|r| is_write(r))
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect()
}

/// The `User-Agent` `fortisync run --identity <identity>` sends.
pub fn agent_of(identity: &str) -> String {
    format!("fortisync/{} ({identity})", env!("CARGO_PKG_VERSION"))
}
