use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::common::{Counter, Fleet, PHONES, later};
use polyseal_fleet::publish::{self, PublishRequest};
use polyseal_fleet::{Error, NoProgress};
use polyseal_provision::KeyFilePattern;
use polyseal_vault::Vault;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn a_checked_tree_publishes_every_phone_under_its_own_key() {
    let fleet = Fleet::new();
    let summary = fleet.publish_at(later(), &NoProgress).expect("publish");
    assert_eq!(summary.phones, 3);
    assert_eq!(summary.keys_made, 3);
    assert_eq!(summary.key_files, 3);
    assert_eq!(summary.encrypted, 3);
    assert_eq!(summary.copied, 2);
    assert!(summary.changed);
    for mac in PHONES {
        let key_file = fleet.path(&format!("out/{mac}-key.cfg"));
        assert_eq!(mode(&key_file), 0o600, "{mac}'s key file is owner-only");
        let sealed = fs::read(fleet.path(&format!("out/{mac}-sip.cfg"))).expect("sealed file");
        assert!(
            polyseal_crypto::is_encrypted(&sealed),
            "{mac}-sip.cfg is encrypted"
        );
        assert!(
            String::from_utf8_lossy(&sealed[..200]).contains(&format!("{mac}-g1")),
            "{mac}-sip.cfg names its own key"
        );
    }
    assert_eq!(
        fs::read(fleet.path("out/site.cfg")).expect("site.cfg"),
        fs::read(fleet.path("src/site.cfg")).expect("source"),
        "a shared file is copied as it is"
    );
}

#[test]
fn a_refused_tree_makes_no_key_and_writes_nothing() {
    let fleet = Fleet::new();
    fs::write(fleet.path("src/0004f2a10001-key.cfg"), "<x/>").expect("write");
    let vault = Vault::open(&fleet.path("vault")).expect("vault");
    let src = fleet.path("src");
    let out = fleet.path("out");
    let request = PublishRequest::new(&src, &out, KeyFilePattern::default());
    let error = publish::check(&vault, &request).expect_err("a key file in the source is refused");
    assert!(
        matches!(&error, Error::KeyFileInSource { mac, .. } if mac.to_string() == PHONES[0]),
        "{error:?}"
    );
    assert_eq!(
        Vault::open(&fleet.path("vault"))
            .expect("vault")
            .records()
            .count(),
        0
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn progress_is_reported_for_every_file_staged() {
    let fleet = Fleet::new();
    let counter = Counter::default();
    let summary = fleet.publish_at(later(), &counter).expect("publish");
    let files = (summary.key_files + summary.encrypted + summary.copied) as u64;
    assert_eq!(counter.started.load(Ordering::Relaxed), files);
    assert_eq!(counter.advanced.load(Ordering::Relaxed), files);
    assert_eq!(counter.finished.load(Ordering::Relaxed), 1);
}

#[test]
fn a_rerun_trusts_the_manifest_only_for_sources_older_than_the_racy_window() {
    // Published "now", just after the sources were written: every source is inside the racy
    // window, so no entry may vouch for it and the rerun reads every file that has a source.
    let fleet = Fleet::new();
    let written = SystemTime::now();
    fleet
        .publish_at(written, &NoProgress)
        .expect("first publish");
    let rerun = fleet
        .publish_at(written, &NoProgress)
        .expect("second publish");
    assert!(!rerun.changed, "nothing changed");
    assert_eq!(rerun.reused, 8);
    assert_eq!(
        rerun.recorded, 3,
        "only the key files (no source) are proved by stat"
    );

    // An hour later the sources are out of the window: this rerun reads them once more and
    // records them, and the next one proves all eight by stat alone.
    let first_later = fleet
        .publish_at(later(), &NoProgress)
        .expect("third publish");
    assert_eq!(
        first_later.recorded, 3,
        "the entries made at `written` vouched for nothing"
    );
    let second_later = fleet
        .publish_at(later(), &NoProgress)
        .expect("fourth publish");
    assert!(!second_later.changed);
    assert_eq!(
        second_later.recorded, 8,
        "every file is proved by the manifest"
    );
}
