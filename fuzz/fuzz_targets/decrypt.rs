//! Decryption of arbitrary files under a fixed key fails closed and never panics; arbitrary
//! plaintexts round-trip; and a well-formed file with any single byte changed never decrypts
//! to something other than its plaintext.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, decrypt, encrypt};

fn key() -> KeyString {
    KeyString::new(
        KeyDesc::new("fuzz").expect("valid KeyDesc"),
        ConfigKey::from_bytes(*b"0123456789abcdef"),
    )
}

fuzz_target!(|data: &[u8]| {
    let key = key();
    // Arbitrary bytes as a file.
    if let Ok(plaintext) = decrypt(data, &key) {
        // Only a file whose digest matches can decrypt: re-encrypting must round-trip.
        let again = encrypt(&plaintext, &key).expect("encrypt");
        assert_eq!(&decrypt(&again, &key).expect("round trip")[..], &plaintext[..]);
    }
    // Arbitrary bytes as a plaintext, then one byte of the result altered.
    let file = encrypt(data, &key).expect("encrypt");
    assert_eq!(&decrypt(&file, &key).expect("round trip")[..], data);
    if !data.is_empty() {
        let mut altered = file.clone();
        let at = usize::from(data[0]) * 7919 % altered.len();
        altered[at] ^= data[data.len() - 1] | 1;
        if let Ok(plaintext) = decrypt(&altered, &key) {
            // Possible only where the change is invisible (e.g. hex case in the digest).
            assert_eq!(&plaintext[..], data);
        }
    }
});
