#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fortisync_fuzz::fortios_response(data));
