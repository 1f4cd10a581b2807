//! Any bytes as a FortiOS answer, with any status: parsing never panics, and an error is a
//! typed DeviceError (never a success built from a body that did not parse).
#![no_main]

use fortisync::device::error::Context;
use fortisync::device::fortios::response::{parse, strict_results};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&status, body)) = data.split_first() else {
        return;
    };
    let status = [200, 400, 401, 403, 404, 405, 424, 429, 500, 503][usize::from(status) % 10];
    let ctx = Context {
        device: "fuzz/fw".into(),
        method: "GET".into(),
        path: "/api/v2/cmdb/firewall/address".into(),
    };
    for (cookie, write) in [(false, false), (true, true)] {
        if let Ok(reply) = parse(ctx.clone(), status, body, cookie, write) {
            assert_eq!(status, 200, "only a 200 answer can be a success");
            let _ = reply;
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let _ = strict_results(&value);
    }
});
