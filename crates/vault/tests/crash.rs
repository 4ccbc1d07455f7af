//! Crash safety: a writer doing 1,000 adds is killed with SIGKILL at random moments, until 50
//! kills have landed mid-run. Every time, the vault opens and verifies, every add the writer
//! reported complete is there, and the transaction it was in the middle of is either wholly
//! there or wholly absent.
//!
//! The writer is this test binary itself, re-executed with `--exact crash_child_writer` and
//! the vault's directory in an environment variable, so the kill hits real, separate process
//! state at any point: building the journal, applying it, fsyncing, between transactions.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::age_keygen;
use polyseal_crypto::Mac;
use polyseal_vault::{
    Identities, InitialState, NoPrompt, Recipient, Vault, VaultSettings, VaultWriter,
};

/// Kills that must land while the writer is still working.
const KILLS: u64 = 50;
/// Adds per run: 500 phones, each given generation 1 (active) and later generation 2.
const ADDS: u32 = 1000;
const PHONES: u32 = ADDS / 2;
const MAX_BATCH: u64 = 40;
const CHILD_DIR: &str = "POLYSEAL_CRASH_CHILD_DIR";
const CHILD_IDENTITY: &str = "POLYSEAL_CRASH_CHILD_IDENTITY";

/// Phone `i`'s MAC. Only 8 distinct last octets, so batches rewrite shared bucket files, as
/// they do in a real fleet.
fn phone(i: u32) -> Mac {
    Mac::from_octets([0x00, 0x04, 0xf2, 0x10, (i / 8) as u8, (i % 8) as u8]).expect("unicast MAC")
}

/// The writer's plan, the same in child and parent: batches of 1 to 40 adds, first every
/// phone's generation 1 (active), then every phone's generation 2 (pre-active).
fn plan() -> Vec<Vec<(Mac, u32)>> {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut batches = Vec::new();
    for generation in [1, 2] {
        let mut next = 0;
        while next < PHONES {
            let end = (next + 1 + random.below(MAX_BATCH) as u32).min(PHONES);
            batches.push((next..end).map(|i| (phone(i), generation)).collect());
            next = end;
        }
    }
    batches
}

/// The writer process. Does nothing unless started by the test below.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let identity = std::env::var(CHILD_IDENTITY).expect("identity");
    let identities = Identities::from_text(&identity, "child", Arc::new(NoPrompt)).expect("id");
    let mut writer = VaultWriter::open(Path::new(&dir)).expect("open for writing");
    let data_key = writer.vault().unlock(&identities).expect("unlock");
    let mut stdout = std::io::stdout().lock();
    for (index, batch) in plan().iter().enumerate() {
        let macs: Vec<Mac> = batch.iter().map(|(mac, _)| *mac).collect();
        let state = if batch[0].1 == 1 {
            InitialState::Active
        } else {
            InitialState::PreActive
        };
        writer.add_keys(&data_key, &macs, state).expect("add");
        // Reported only once add_keys returned, i.e. once the batch is durable.
        writeln!(stdout, "done {index}")
            .and_then(|()| stdout.flush())
            .expect("report");
    }
}

/// When to kill the writer: once it has reported `after_batch` batches complete (0: right
/// after it started), plus `delay`, which lands the kill anywhere in the next transaction.
#[derive(Clone, Copy)]
struct KillPoint {
    after_batch: usize,
    delay: Duration,
}

/// Runs the writer on `dir`, killing it with SIGKILL at `kill` unless it finishes first.
/// Returns the batches it reported complete and whether it was killed before finishing.
fn run_writer(dir: &Path, identity: &str, kill: Option<KillPoint>) -> (Vec<usize>, bool) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_IDENTITY, identity)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the writer");
    let stdout = child.stdout.take().expect("stdout");
    let (reports, received) = mpsc::channel::<usize>();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print "test crash_child_writer ... " before the first report on
            // the same line.
            if let Some(batch) = line
                .split("done ")
                .nth(1)
                .and_then(|n| n.trim().parse().ok())
            {
                let _ = reports.send(batch);
            }
        }
    });
    let mut reported = Vec::new();
    if let Some(kill) = kill {
        while reported.len() < kill.after_batch {
            match received.recv_timeout(Duration::from_secs(60)) {
                Ok(batch) => reported.push(batch),
                Err(_) => break,
            }
        }
        thread::sleep(kill.delay);
        child.kill().expect("SIGKILL");
    }
    let status = child.wait().expect("reap");
    reader.join().expect("reader");
    reported.extend(received.try_iter());
    let killed = kill.is_some() && reported.len() < plan().len();
    assert!(
        killed || status.success(),
        "the writer failed on its own: {status}"
    );
    (reported, killed)
}

/// Everything the issue promises after a crash, checked on `dir`.
fn check_after_crash(
    dir: &Path,
    identities: &Identities,
    plan: &[Vec<(Mac, u32)>],
    reported: &[usize],
) {
    assert!(
        reported.iter().enumerate().all(|(i, &batch)| i == batch),
        "reports come in order"
    );
    let vault = Vault::open(dir).expect("the vault opens after a crash");
    vault.verify().expect("the vault verifies after a crash");
    let present: BTreeSet<(Mac, u32)> = vault
        .records()
        .flat_map(|r| r.generations().iter().map(move |g| (r.mac(), g.number())))
        .collect();
    let reported_adds: BTreeSet<(Mac, u32)> = reported
        .iter()
        .flat_map(|&b| plan[b].iter().copied())
        .collect();
    assert!(
        reported_adds.is_subset(&present),
        "a reported add is missing: {:?}",
        reported_adds.difference(&present).next()
    );
    let unreported: BTreeSet<(Mac, u32)> = present.difference(&reported_adds).copied().collect();
    if !unreported.is_empty() {
        // Only the batch in flight may be there, and then all of it.
        let in_flight: BTreeSet<(Mac, u32)> = plan[reported.len()].iter().copied().collect();
        assert_eq!(unreported, in_flight, "a partial batch survived the crash");
    }
    let data_key = vault.unlock(identities).expect("unlock");
    assert_eq!(
        vault
            .open_live_keys(&data_key)
            .expect("every key opens")
            .len(),
        present.len()
    );
    drop(vault);
    let mut writer = VaultWriter::open(dir).expect("writable after the crash");
    let data_key = writer.vault().unlock(identities).expect("unlock");
    writer
        .add_keys(&data_key, &[phone(PHONES + 1)], InitialState::Active)
        .expect("a new transaction after the crash");
}

#[test]
fn writer_killed_at_random_moments_never_loses_a_reported_add() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (identity_file, recipient) = age_keygen(tmp.path(), "id.txt");
    let identity = std::fs::read_to_string(&identity_file).expect("identity");
    let identities = common::identities(&identity_file);
    let plan = plan();
    let new_vault = |name: &str| {
        let dir = tmp.path().join(name);
        let ops = Recipient::parse("ops", &recipient).expect("recipient");
        VaultWriter::create(&dir, VaultSettings::new(vec![ops])).expect("create");
        dir
    };

    // One undisturbed run measures how long a transaction takes.
    let dir = new_vault("full");
    let start = Instant::now();
    let (reported, killed) = run_writer(&dir, &identity, None);
    let per_batch = start.elapsed() / plan.len() as u32;
    assert!(
        !killed && reported.len() == plan.len(),
        "the full run completes: {} of {} batches reported",
        reported.len(),
        plan.len()
    );
    check_after_crash(&dir, &identities, &plan, &reported);

    // Each kill lands after a random number of completed batches, at a random moment of the
    // next one; trials go on until 50 kills landed before the writer finished, within a bound.
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    let (mut trials, mut killed_mid_run, mut transactions_cut) = (0, 0, 0);
    while killed_mid_run < KILLS && trials < 2 * KILLS {
        let dir = new_vault(&format!("trial-{trials}"));
        let kill = KillPoint {
            after_batch: random.below(plan.len() as u64) as usize,
            delay: per_batch.mul_f64(random.below(1000) as f64 / 1000.0),
        };
        let (reported, killed) = run_writer(&dir, &identity, Some(kill));
        trials += 1;
        killed_mid_run += u64::from(killed);
        transactions_cut += u64::from(dir.join("journal").exists());
        check_after_crash(&dir, &identities, &plan, &reported);
    }
    writeln!(
        std::io::stderr(),
        "{trials} trials, {killed_mid_run} kills before the writer finished, \
         {transactions_cut} left a committed transaction to recover ({per_batch:?} per batch)"
    )
    .expect("report");
    assert_eq!(killed_mid_run, KILLS, "{KILLS} kills landed mid-run");
}

/// A small deterministic generator, so a failing trial can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}
