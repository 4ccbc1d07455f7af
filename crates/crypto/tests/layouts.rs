//! Every layout's vector (`tests/vectors/layouts/`, made by `make-vectors.sh` with openssl and
//! sha256sum/sha1sum/md5sum): decrypted in its layout, named alone by `probe`; and every layout
//! round-trips through polyseal's own writer.

use std::path::Path;

use polyseal_crypto::{
    ConfigKey, KeyDesc, KeyString, Layout, Mac, Stage, decrypt, decrypt_with, encrypt_with, probe,
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    description: String,
    key: String,
    layout: String,
    file_hex: String,
    plaintext_hex: String,
}

fn vectors() -> Vec<(String, Vector)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/layouts");
    let mut all: Vec<(String, Vector)> = std::fs::read_dir(&dir)
        .expect("layout vectors")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let vector = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, vector)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn every_layout_has_a_vector_that_decrypts_in_it_and_probe_names_it_alone() {
    let vectors = vectors();
    let mut covered: Vec<Layout> = Vec::new();
    for (name, v) in &vectors {
        let layout: Layout = v.layout.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        let key = KeyString::parse(&v.key).expect("key");
        let file = hex::decode(&v.file_hex).expect("file hex");
        let plaintext = hex::decode(&v.plaintext_hex).expect("plaintext hex");
        let got = decrypt_with(&file, &key, &layout)
            .unwrap_or_else(|e| panic!("{name} ({}): {e}", v.description));
        assert_eq!(&got[..], &plaintext[..], "{name}");
        let found = probe(&[&file], &key, None).expect("probe");
        assert_eq!(found.fits, vec![layout], "{name}");
        // The default layout reads only its own vector.
        assert_eq!(
            decrypt(&file, &key).is_ok(),
            layout == Layout::DEFAULT,
            "{name}"
        );
        covered.push(layout);
    }
    for layout in Layout::all() {
        assert!(covered.contains(&layout), "no vector for {layout}");
    }
}

#[test]
fn every_layout_round_trips_through_polyseals_writer() {
    let mac: Mac = "0004f2abcdef".parse().expect("mac");
    let key = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
    for plaintext in [
        &b""[..],
        b"0123456789abcdef",
        b"<polycomConfig a=\"1\"/>\n\0\0",
    ] {
        for layout in Layout::all() {
            let file = encrypt_with(plaintext, &key, &layout).expect("encrypt");
            let got = decrypt_with(&file, &key, &layout)
                .unwrap_or_else(|e| panic!("{layout}, {} bytes: {e}", plaintext.len()));
            assert_eq!(&got[..], plaintext, "{layout}");
        }
    }
}

#[test]
fn a_file_no_layout_fits_says_how_far_each_value_got() {
    let (name, v) = &vectors()[0];
    let key = KeyString::parse(&v.key).expect("key");
    let mut file = hex::decode(&v.file_hex).expect("file");
    let last = file.len() - 20;
    file[last] ^= 1;
    let found = probe(&[&file], &key, None).expect("probe");
    assert!(found.fits.is_empty(), "{name}");
    assert_eq!(found.closest.len(), 5);
    // The right layout still got past the structure, the wrong line ending did not.
    let eol = &found.closest[4];
    assert!(
        eol.iter().any(|(_, stage)| *stage == Stage::Structure),
        "{eol:?}"
    );
    assert!(
        eol.iter().any(|(_, stage)| *stage > Stage::Structure),
        "{eol:?}"
    );
}
