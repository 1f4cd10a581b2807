//! Any bytes as a FortiManager JSON-RPC answer: checked strictly, never a panic; rows and
//! objects are read only from an answer that passed the check.
#![no_main]

use fortisync::device::error::Context;
use fortisync::device::fortimanager::answer::RpcAnswer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = RpcAnswer::from_slice(data) else {
        return;
    };
    assert!(!answer.results.is_empty(), "a checked answer has a result");
    let ctx = Context {
        device: "fuzz/fmg".into(),
        method: "get".into(),
        path: "/pm/config/adom/root/obj/firewall/address".into(),
    };
    for r in &answer.results {
        let _ = r.message.len();
    }
    let _ = answer.data_rows(&ctx);
    let _ = answer.data_object(&ctx);
});
