//! Decryption of arbitrary files under a fixed key, in any layout, fails closed and never
//! panics; arbitrary plaintexts round-trip in every layout; and a well-formed file with any
//! single byte changed never decrypts to something other than its plaintext.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyseal_crypto::{
    ConfigKey, KeyDesc, KeyString, Layout, decrypt, decrypt_with, encrypt, encrypt_with,
};

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
        // The same in the layout the first byte picks (of 72).
        let all = Layout::all();
        let layout = all[usize::from(data[0]) % all.len()];
        if let Ok(plaintext) = decrypt_with(data, &key, &layout) {
            let again = encrypt_with(&plaintext, &key, &layout).expect("encrypt");
            assert_eq!(
                &decrypt_with(&again, &key, &layout).expect("round trip")[..],
                &plaintext[..]
            );
        }
        let sealed = encrypt_with(data, &key, &layout).expect("encrypt");
        assert_eq!(&decrypt_with(&sealed, &key, &layout).expect("round trip")[..], data);
        let mut altered = file.clone();
        let at = usize::from(data[0]) * 7919 % altered.len();
        altered[at] ^= data[data.len() - 1] | 1;
        if let Ok(plaintext) = decrypt(&altered, &key) {
            // Possible only where the change is invisible (e.g. hex case in the digest).
            assert_eq!(&plaintext[..], data);
        }
    }
});
