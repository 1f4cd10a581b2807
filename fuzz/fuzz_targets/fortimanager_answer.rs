#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fortisync_fuzz::fortimanager_answer(data));
