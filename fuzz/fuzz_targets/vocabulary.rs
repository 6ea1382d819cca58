//! The detect phrase ("faces and text", "the hands", "watermark"): any
//! text gives detectors or a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(message) = inpaint_gateway::vocabulary::parse(text) {
            assert!(!message.is_empty());
        }
    }
});
