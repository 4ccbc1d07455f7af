//! Benchmarks of the secret scanner on the corpus's largest real file, and of the other
//! per-phone steps of a publish (fetch plan, bootstrap file). Results: docs/PERFORMANCE.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Mac};
use polyseal_provision::{Exposure, SourceTree, bootstrap_file, scan};

/// The 197 KB UC Software 3.2.7 `sip.cfg` (old nested schema), a real Polycom file.
const SIP_327: &[u8] = include_bytes!("../../../tests/fixtures/polycom/sip-3.2.7.cfg");

fn scanner(c: &mut Criterion) {
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(SIP_327.len() as u64));
    group.bench_function("sip-3.2.7.cfg", |b| {
        b.iter(|| {
            scan(
                Path::new("sip-3.2.7.cfg"),
                black_box(SIP_327),
                Exposure::Shared,
            )
        })
    });
    let per_phone = per_phone_config();
    group.throughput(Throughput::Bytes(per_phone.len() as u64));
    group.bench_function("per-phone 5 KB", |b| {
        b.iter(|| {
            scan(
                Path::new("0004f2000001-sip.cfg"),
                black_box(per_phone.as_bytes()),
                Exposure::PerPhoneEncrypted,
            )
        })
    });
    group.finish();
}

/// The per-phone file of `bench/make-fleet.py` (the publish benchmark's workload): a line
/// registration with its password and 60 feature settings, about 5.4 KB.
fn per_phone_config() -> String {
    let features: String = (0..60)
        .map(|i| {
            format!(
                "  <feature feature.{i}.enabled=\"1\" feature.{i}.label=\"Feature number {i} for this phone\"/>\n"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<polycomConfig>\n  <reg reg.1.address=\"1000\" \
         reg.1.auth.userId=\"1000\" reg.1.auth.password=\"bench-Passw0rd-00000000\"/>\n{features}</polycomConfig>\n"
    )
}

#[allow(clippy::expect_used)] // Set-up of a benchmark: a failure must stop it loudly.
fn per_phone_steps(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("000000000000.cfg"),
        r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg" CONTACTS_DIRECTORY="contacts" OVERRIDES_DIRECTORY="overrides"/>"#,
    )
    .expect("write master");
    std::fs::write(dir.path().join("site.cfg"), SIP_327).expect("write site.cfg");
    std::fs::write(dir.path().join("0004f2abcdef-sip.cfg"), "<polycomConfig/>")
        .expect("write per-phone file");
    let tree = SourceTree::open(dir.path()).expect("open tree");
    let mac: Mac = "0004f2abcdef".parse().expect("mac");
    c.bench_function("fetch_plan/one phone, 5 files", |b| {
        b.iter(|| tree.fetch_plan(black_box(&mac), None))
    });
    let key = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
    c.bench_function("bootstrap_file", |b| {
        b.iter(|| bootstrap_file(black_box(&key)))
    });
}

criterion_group!(benches, scanner, per_phone_steps);
criterion_main!(benches);
