//! A fleet to publish: a copy of the example tree, a vault sealed to an identity made by the
//! real `age-keygen`, and the time and progress the engine is given.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use polyseal_fleet::publish::{self, PublishRequest, PublishSummary};
use polyseal_fleet::{Error, FixedClock, Progress};
use polyseal_provision::KeyFilePattern;
use polyseal_vault::{
    Cryptoperiod, DataKey, Identities, NoPrompt, Recipient, VaultSettings, VaultWriter,
};
use tempfile::TempDir;

/// The example tree's phones.
pub(crate) const PHONES: [&str; 3] = ["0004f2a10001", "0004f2a10002", "64167fa10003"];

/// `src/` (the example tree), `vault/`, and `out/` once published.
pub(crate) struct Fleet {
    pub(crate) dir: TempDir,
    identity: PathBuf,
}

impl Fleet {
    pub(crate) fn new() -> Fleet {
        Fleet::with_cryptoperiod(None)
    }

    /// A fleet whose vault has a cryptoperiod of `days`, if given.
    pub(crate) fn with_cryptoperiod(days: Option<u32>) -> Fleet {
        let dir = TempDir::new().expect("temp dir");
        let identity = dir.path().join("identity.txt");
        let made = Command::new("age-keygen")
            .arg("-o")
            .arg(&identity)
            .output()
            .unwrap_or_else(|e| panic!("`age-keygen` (Debian package `age`) is required: {e}"));
        assert!(made.status.success(), "age-keygen failed");
        let public = Command::new("age-keygen")
            .arg("-y")
            .arg(&identity)
            .output()
            .expect("age-keygen -y");
        let recipient = String::from_utf8(public.stdout).expect("text");
        let ops = Recipient::parse("ops", recipient.trim()).expect("recipient parses");
        let mut settings = VaultSettings::new(vec![ops]);
        settings.cryptoperiod = days.and_then(Cryptoperiod::from_days);
        VaultWriter::create(&dir.path().join("vault"), settings).expect("vault is created");
        let src = dir.path().join("src");
        std::fs::create_dir(&src).expect("src");
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/provisioning");
        for entry in std::fs::read_dir(example).expect("example tree") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), src.join(entry.file_name())).expect("copy");
        }
        Fleet { dir, identity }
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The vault, open for writing and unlocked.
    pub(crate) fn writer(&self) -> (VaultWriter, DataKey) {
        let writer = VaultWriter::open(&self.path("vault")).expect("vault opens");
        let identities =
            Identities::from_file(&self.identity, Arc::new(NoPrompt)).expect("identity");
        let data_key = writer.vault().unlock(&identities).expect("unlock");
        (writer, data_key)
    }

    /// Publishes `src` into `out` at `now`, reporting progress to `progress`.
    pub(crate) fn publish_at(
        &self,
        now: SystemTime,
        progress: &dyn Progress,
    ) -> Result<PublishSummary, Error> {
        let (mut writer, data_key) = self.writer();
        let src = self.path("src");
        let out = self.path("out");
        let request = PublishRequest::new(&src, &out, KeyFilePattern::default());
        let checked = publish::check(writer.vault(), &request)?;
        checked.run(&mut writer, &data_key, &FixedClock(now), progress)
    }
}

/// A time well past the racy window of every file the test wrote.
pub(crate) fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// Counts what the engine reports.
#[derive(Default)]
pub(crate) struct Counter {
    pub(crate) started: AtomicU64,
    pub(crate) advanced: AtomicU64,
    pub(crate) finished: AtomicU64,
}

impl Progress for Counter {
    fn start(&self, total: u64) {
        self.started.fetch_add(total, Ordering::Relaxed);
    }
    fn advance(&self) {
        self.advanced.fetch_add(1, Ordering::Relaxed);
    }
    fn finish(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}
