//! The XML scanner on arbitrary bytes, under every exposure: never panics, and a finding never
//! carries more than a parameter name.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use polyseal_provision::{Exposure, classify, scan_file};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.cfg");
    let _ = classify(path, data);
    for exposure in [
        Exposure::Master,
        Exposure::Shared,
        Exposure::PerPhonePlaintext,
        Exposure::PerPhoneEncrypted,
        Exposure::KeyFile,
    ] {
        match scan_file(path, data, exposure) {
            Ok(scanned) => {
                for finding in scanned.findings {
                    let _ = finding.to_string();
                }
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
});
