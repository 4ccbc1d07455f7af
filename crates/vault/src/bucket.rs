//! Bucket files, `keys/<xx>.jsonl`: the records of every phone whose MAC ends in octet `xx`,
//! one JSON line per phone after a `{"format":1}` line.
//!
//! A file per phone would be simpler to look at, but a batch over a 100,000-phone fleet would
//! then create 100,000 files; on the reference machine that alone takes 4 to 20 seconds. 256
//! buckets keep a full batch to 256 file writes and the inventory to 256 reads, while one
//! phone's change still rewrites only about 1/256 of the records. JSON rather than TOML
//! because records are written by the program, and parsing 100,000 of them takes 0.05 s of
//! CPU as JSON against 0.5 s as TOML (toml 1.x), which alone would use half the inventory's
//! one-second budget. One line per phone keeps `grep <mac>` and diffs readable.

use std::borrow::Cow;
use std::path::Path;

use polyseal_crypto::{Fingerprint, KeyDesc, Mac};
use serde::{Deserialize, Serialize};

use crate::data_key::{NONCE_LEN, SEALED_LEN, SealedKey};
use crate::layout::bucket_of;
use crate::record::{Confirmed, Generation, GenerationParts, Record};
use crate::{Error, KeyState, Timestamp};

/// The format of a bucket file (its first line, `{"format":1}`). It did not change when the
/// vault's format became 2: authentication lives in `head.json` (docs/VAULT.md).
const BUCKET_FORMAT: u32 = 1;

/// The first line of a bucket file.
#[derive(Serialize, Deserialize)]
struct Header {
    format: i64,
}

// Text fields borrow from the file where they can (JSON strings without escapes), which
// saves an allocation per field when a large inventory is read.
#[derive(Serialize, Deserialize)]
struct PhoneEntry<'a> {
    #[serde(borrow)]
    mac: Cow<'a, str>,
    #[serde(borrow)]
    generations: Vec<GenerationEntry<'a>>,
}

#[derive(Serialize, Deserialize)]
struct GenerationEntry<'a> {
    number: u32,
    #[serde(borrow)]
    key_desc: Cow<'a, str>,
    #[serde(borrow)]
    fingerprint: Cow<'a, str>,
    #[serde(borrow)]
    state: Cow<'a, str>,
    #[serde(borrow)]
    created: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    activated: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    deactivated: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    compromised: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    destroyed: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    confirmed: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    confirmed_by: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    nonce: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    sealed: Option<Cow<'a, str>>,
}

/// Renders the records of one bucket (sorted by MAC by the caller).
pub(crate) fn render<'a>(records: impl Iterator<Item = &'a Record>) -> String {
    let header = Header {
        format: i64::from(BUCKET_FORMAT),
    };
    let mut text = String::new();
    for line in std::iter::once(serde_json::to_string(&header))
        .chain(records.map(|record| serde_json::to_string(&phone_entry(record))))
    {
        // Strings, integers and options always serialize to JSON; a failure is a bug, and
        // panicking before the journal is written leaves the vault untouched.
        #[allow(clippy::expect_used)]
        text.push_str(&line.expect("bucket records serialize to JSON"));
        text.push('\n');
    }
    text
}

fn phone_entry(record: &Record) -> PhoneEntry<'static> {
    PhoneEntry {
        mac: record.mac().to_string().into(),
        generations: record.generations().iter().map(generation_entry).collect(),
    }
}

fn generation_entry(g: &Generation) -> GenerationEntry<'static> {
    let stamp = |t: Option<Timestamp>| t.map(|t| t.to_string().into());
    GenerationEntry {
        number: g.number(),
        key_desc: g.key_desc().to_string().into(),
        fingerprint: g.fingerprint().to_string().into(),
        state: g.state().as_str().into(),
        created: g.created().to_string().into(),
        activated: stamp(g.since(KeyState::Active)),
        deactivated: stamp(g.since(KeyState::Deactivated)),
        compromised: stamp(g.since(KeyState::Compromised)),
        destroyed: stamp(g.since(KeyState::Destroyed)),
        confirmed: g.confirmed().map(|c| c.at.to_string().into()),
        confirmed_by: g.confirmed().map(|c| c.evidence.clone().into()),
        nonce: g.sealed().map(|s| hex::encode(s.nonce).into()),
        sealed: g.sealed().map(|s| hex::encode(s.ciphertext).into()),
    }
}

/// Parses bucket file `path` (bucket number `bucket`), checking every field and that each
/// record belongs in this bucket.
pub(crate) fn parse(path: &Path, bucket: u8, text: &str) -> Result<Vec<Record>, Error> {
    let mut lines = text.lines();
    let header: Header = serde_json::from_str(lines.next().unwrap_or_default())
        .map_err(|e| Error::corrupt(path, format!("line 1 is not a bucket header ({e})")))?;
    if header.format != i64::from(BUCKET_FORMAT) {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            found: header.format,
            supported: BUCKET_FORMAT,
        });
    }
    lines
        .enumerate()
        .map(|(index, line)| {
            let entry = serde_json::from_str(line).map_err(|e| {
                Error::corrupt(
                    path,
                    format!("line {} is not a phone record ({e})", index + 2),
                )
            })?;
            parse_phone(path, bucket, entry)
        })
        .collect()
}

fn parse_phone(path: &Path, bucket: u8, entry: PhoneEntry<'_>) -> Result<Record, Error> {
    // Canonical form only: 12 lowercase hex digits (checked on the text, which is cheaper
    // than formatting the parsed MAC back).
    let canonical = entry.mac.len() == 12
        && entry
            .mac
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let mac = Mac::parse(&entry.mac)
        .ok()
        .filter(|_| canonical)
        .ok_or_else(|| Error::corrupt(path, format!("{:?} is not a canonical MAC", entry.mac)))?;
    if bucket_of(&mac) != bucket {
        return Err(Error::MisplacedRecord {
            path: path.to_path_buf(),
            mac,
        });
    }
    let bad = |reason: String| Error::corrupt(path, format!("MAC {mac}: {reason}"));
    if entry.generations.is_empty() {
        return Err(bad("has no key generation".to_owned()));
    }
    let mut generations: Vec<Generation> = Vec::with_capacity(entry.generations.len());
    for g in entry.generations {
        let number = g.number;
        let generation =
            parse_generation(g).map_err(|reason| bad(format!("generation {number} {reason}")))?;
        if generations
            .last()
            .is_some_and(|prev| prev.number() >= number)
            || number == 0
        {
            return Err(bad(format!(
                "generation {number} is out of order (numbers start at 1 and increase)"
            )));
        }
        generations.push(generation);
    }
    if generations
        .iter()
        .filter(|g| g.state() == KeyState::Active)
        .count()
        > 1
    {
        return Err(bad("has more than one active generation".to_owned()));
    }
    Ok(Record::new(mac, generations))
}

fn parse_generation(g: GenerationEntry<'_>) -> Result<Generation, String> {
    let stamp = |field: &str, text: &Option<Cow<'_, str>>| -> Result<Option<Timestamp>, String> {
        text.as_deref().map(|t| parse_time(field, t)).transpose()
    };
    let key_desc = KeyDesc::new(&g.key_desc).map_err(|e| format!("has a bad KeyDesc: {e}"))?;
    let fingerprint = Fingerprint::parse(&g.fingerprint)
        .ok_or_else(|| format!("has a bad fingerprint {:?}", g.fingerprint))?;
    let state =
        KeyState::parse(&g.state).ok_or_else(|| format!("has an unknown state {:?}", g.state))?;
    let created = parse_time("created", &g.created)?;
    let confirmed = match (stamp("confirmed", &g.confirmed)?, g.confirmed_by) {
        (Some(at), Some(evidence)) => Some(Confirmed {
            at,
            evidence: evidence.into_owned(),
        }),
        (None, None) => None,
        _ => return Err("has only one of confirmed and confirmed_by".to_owned()),
    };
    let sealed = match (g.nonce, g.sealed) {
        (Some(nonce), Some(sealed)) => Some(parse_sealed(&nonce, &sealed)?),
        (None, None) => None,
        _ => return Err("has only one of nonce and sealed".to_owned()),
    };
    if sealed.is_some() != state.is_live() {
        return Err(format!(
            "is {state} but {} sealed key",
            if sealed.is_some() {
                "still has a"
            } else {
                "has no"
            }
        ));
    }
    let generation = Generation::from_parts(GenerationParts {
        number: g.number,
        key_desc,
        fingerprint,
        state,
        created,
        activated: stamp("activated", &g.activated)?,
        deactivated: stamp("deactivated", &g.deactivated)?,
        compromised: stamp("compromised", &g.compromised)?,
        destroyed: stamp("destroyed", &g.destroyed)?,
        confirmed,
        sealed,
    });
    if generation.since(state).is_none() {
        return Err(format!("is {state} but has no time for entering it"));
    }
    Ok(generation)
}

fn parse_time(field: &str, text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).ok_or_else(|| format!("has a bad {field} time {text:?}"))
}

fn parse_sealed(nonce: &str, sealed: &str) -> Result<SealedKey, String> {
    let mut key = SealedKey {
        nonce: [0; NONCE_LEN],
        ciphertext: [0; SEALED_LEN],
    };
    hex::decode_to_slice(nonce, &mut key.nonce)
        .map_err(|_| format!("has a nonce that is not {} hex digits", NONCE_LEN * 2))?;
    hex::decode_to_slice(sealed, &mut key.ciphertext)
        .map_err(|_| format!("has a sealed key that is not {} hex digits", SEALED_LEN * 2))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polyseal_crypto::ConfigKey;

    const T0: &str = "2026-11-22T05:42:00Z";

    fn generation(number: u32, state: KeyState) -> Generation {
        let mac = Mac::parse("0004f2abcdef").expect("mac");
        let key = ConfigKey::generate();
        let sealed = SealedKey {
            nonce: [7; NONCE_LEN],
            ciphertext: [9; SEALED_LEN],
        };
        let now = Timestamp::parse(T0).expect("time");
        let mut g = Generation::new(
            number,
            KeyDesc::for_generation(&mac, number),
            key.fingerprint(),
            KeyState::PreActive,
            now,
            Some(sealed),
        );
        if state != KeyState::PreActive {
            g.enter(
                state,
                now.saturating_add(std::time::Duration::from_secs(60)),
            );
        }
        g
    }

    fn bucket_text(generations: Vec<Generation>) -> String {
        let mac = Mac::parse("0004f2abcdef").expect("mac");
        render([Record::new(mac, generations)].iter())
    }

    #[test]
    fn records_round_trip_through_their_bucket_file() {
        let mut confirmed = generation(3, KeyState::PreActive);
        confirmed.set_confirmed(Confirmed {
            at: Timestamp::parse(T0).expect("time"),
            evidence: "upload 0004f2abcdef-phone.cfg".to_owned(),
        });
        let generations = vec![
            generation(1, KeyState::Destroyed),
            generation(2, KeyState::Active),
            confirmed,
        ];
        let text = bucket_text(generations.clone());
        let parsed = parse(Path::new("keys/ef.jsonl"), 0xef, &text).expect("parses");
        assert_eq!(parsed.len(), 1);
        for (back, original) in parsed[0].generations().iter().zip(&generations) {
            assert!(back.same_metadata(original));
            assert_eq!(back.sealed(), original.sealed());
        }
        assert_eq!(
            text.matches("\"nonce\":").count(),
            2,
            "the destroyed key has none"
        );
    }

    #[test]
    fn inconsistent_records_are_refused() {
        let cases = [
            (
                "\"state\":\"active\"",
                "\"state\":\"destroyed\"",
                "still has a sealed key",
            ),
            (
                "\"activated\":",
                "\"x_activated\":",
                "no time for entering it",
            ),
            ("\"number\":2", "\"number\":1", "out of order"),
            (
                "\"state\":\"pre-active\"",
                "\"state\":\"active\",\"activated\":\"2026-11-22T05:42:00Z\"",
                "more than one active",
            ),
            (
                "\"mac\":\"0004f2abcdef\"",
                "\"mac\":\"0004F2ABCDEF\"",
                "not a canonical MAC",
            ),
            ("\"nonce\":", "\"x_nonce\":", "only one of nonce and sealed"),
        ];
        let text = bucket_text(vec![
            generation(1, KeyState::PreActive),
            generation(2, KeyState::Active),
        ]);
        // The first generation is pre-active, the second active: the edits below target the
        // first occurrence of each field.
        for (from, to, reason) in cases {
            assert!(text.contains(from), "{from}");
            let edited = text.replacen(from, to, 1);
            let error = parse(Path::new("keys/ef.jsonl"), 0xef, &edited).expect_err(reason);
            assert!(error.to_string().contains(reason), "{reason}: {error}");
        }
        let error = parse(Path::new("keys/ee.jsonl"), 0xee, &text).expect_err("wrong bucket");
        assert!(matches!(error, Error::MisplacedRecord { .. }));
    }
}
