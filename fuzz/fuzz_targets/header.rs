//! Header parsing on arbitrary bytes: never panics, and what it accepts is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyseal_crypto::{Header, is_encrypted};

fuzz_target!(|data: &[u8]| {
    match Header::parse(data) {
        Ok(header) => {
            assert!(header.body_offset() <= data.len());
            assert_eq!(data[header.body_offset() - 1], b'\n');
            assert!(is_encrypted(data));
            let _ = header.digest_hex();
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
