//! Encrypted-file throughput: a typical 5 KB per-phone configuration, and 1 MiB for raw
//! AES-128-CBC speed. `cargo bench -p polyseal-crypto --bench crypt`; results in
//! docs/PERFORMANCE.md.
#![allow(missing_docs)] // criterion's macros generate undocumented items.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, decrypt, encrypt};

fn bench(c: &mut Criterion) {
    let key = KeyString::new(KeyDesc::new("bench").expect("desc"), ConfigKey::generate());
    let mut group = c.benchmark_group("file");
    for (name, len) in [("5 KB", 5 * 1024), ("1 MiB", 1024 * 1024)] {
        let plaintext = vec![0x5a; len];
        let file = encrypt(&plaintext, &key).expect("encrypt");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("encrypt {name}"), |b| {
            b.iter(|| encrypt(&plaintext, &key).expect("encrypt"));
        });
        group.bench_function(format!("decrypt {name}"), |b| {
            b.iter(|| decrypt(&file, &key).expect("decrypt"));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
