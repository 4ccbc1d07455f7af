//! Fleet-sized vault operations, for `docs/PERFORMANCE.md`:
//! `cargo bench -p polyseal-vault --bench fleet`.
//!
//! For 10,000 and 100,000 phones: adding a key for every phone in one transaction (durable
//! on return), listing the inventory without an identity, and opening every key with one
//! unlock. Each measurement includes opening the vault, as a command would.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use polyseal_crypto::Mac;
use polyseal_vault::{
    Identities, InitialState, NoPrompt, Recipient, Vault, VaultSettings, VaultWriter,
};
use tempfile::TempDir;

const FLEETS: [u32; 2] = [10_000, 100_000];

struct Fixture {
    identities: Identities,
    recipient: Recipient,
}

impl Fixture {
    fn new() -> Fixture {
        let identity = age::x25519::Identity::generate();
        let text = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
        Fixture {
            identities: Identities::from_text(&text, "bench", Arc::new(NoPrompt))
                .expect("identity"),
            recipient: Recipient::parse("bench", &identity.to_public().to_string())
                .expect("recipient"),
        }
    }

    /// An empty vault in a new temporary directory.
    fn empty_vault(&self) -> (TempDir, VaultWriter) {
        // On the reference machine /tmp is the same ext4 disk as the project, not a tmpfs, so
        // fsync costs what it costs for a real vault.
        let tmp = TempDir::new().expect("temp dir");
        let writer = VaultWriter::create(
            &tmp.path().join("vault"),
            VaultSettings::new(vec![self.recipient.clone()]),
        )
        .expect("create");
        (tmp, writer)
    }

    /// A vault holding one active key for each of `phones` phones.
    fn full_vault(&self, phones: u32) -> TempDir {
        let (tmp, mut writer) = self.empty_vault();
        let data_key = writer.vault().unlock(&self.identities).expect("unlock");
        writer
            .add_keys(&data_key, &fleet(phones), InitialState::Active)
            .expect("add");
        tmp
    }
}

fn fleet(phones: u32) -> Vec<Mac> {
    (1..=phones)
        .map(|i| {
            let [_, b3, b4, b5] = i.to_be_bytes();
            Mac::from_octets([0x00, 0x04, 0xf2, b3, b4, b5]).expect("unicast MAC")
        })
        .collect()
}

fn fleet_operations(c: &mut Criterion) {
    let fixture = Fixture::new();
    let mut group = c.benchmark_group("vault");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    for phones in FLEETS {
        let macs = fleet(phones);
        group.bench_with_input(
            BenchmarkId::new("add_one_batch", phones),
            &macs,
            |b, macs| {
                b.iter_batched(
                    || {
                        let (tmp, writer) = fixture.empty_vault();
                        let data_key = writer.vault().unlock(&fixture.identities).expect("unlock");
                        (tmp, writer, data_key)
                    },
                    |(tmp, mut writer, data_key)| {
                        let added = writer
                            .add_keys(&data_key, macs, InitialState::Active)
                            .expect("add");
                        (tmp, added)
                    },
                    BatchSize::PerIteration,
                );
            },
        );

        let vault = fixture.full_vault(phones);
        let dir = vault.path().join("vault");
        group.bench_with_input(
            BenchmarkId::new("list_inventory", phones),
            &dir,
            |b, dir| {
                b.iter(|| {
                    let vault = Vault::open(dir).expect("open");
                    black_box(vault.records().filter(|r| r.active().is_some()).count())
                });
            },
        );
        group.bench_with_input(BenchmarkId::new("open_all_keys", phones), &dir, |b, dir| {
            b.iter(|| {
                let vault = Vault::open(dir).expect("open");
                let data_key = vault.unlock(&fixture.identities).expect("unlock");
                black_box(vault.open_live_keys(&data_key).expect("keys").len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fleet_operations);
criterion_main!(benches);
