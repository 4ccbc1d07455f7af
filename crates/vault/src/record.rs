//! A phone's record: every generation of its key, with state, timestamps and sealed bytes.

use polyseal_crypto::{Fingerprint, KeyDesc, Mac};

use crate::data_key::SealedKey;
use crate::{KeyState, Timestamp};

/// Everything the vault knows about one phone's keys. Readable without any identity.
#[derive(Clone, Debug)]
pub struct Record {
    mac: Mac,
    generations: Vec<Generation>,
}

impl Record {
    pub(crate) fn new(mac: Mac, generations: Vec<Generation>) -> Record {
        Record { mac, generations }
    }

    /// The phone's MAC.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// Every generation, oldest first (destroyed ones included).
    pub fn generations(&self) -> &[Generation] {
        &self.generations
    }

    /// The generation numbered `number`.
    pub fn generation(&self, number: u32) -> Option<&Generation> {
        self.generations.iter().find(|g| g.number == number)
    }

    /// The active generation, if there is one (never more than one).
    pub fn active(&self) -> Option<&Generation> {
        self.generations
            .iter()
            .find(|g| g.state == KeyState::Active)
    }

    /// The newest generation.
    pub fn latest(&self) -> Option<&Generation> {
        self.generations.last()
    }

    pub(crate) fn generation_mut(&mut self, number: u32) -> Option<&mut Generation> {
        self.generations.iter_mut().find(|g| g.number == number)
    }

    pub(crate) fn push(&mut self, generation: Generation) {
        push_generation(&mut self.generations, generation);
    }

    /// The number the next generation gets; `None` past `u32::MAX`.
    pub fn next_number(&self) -> Option<u32> {
        self.latest().map_or(Some(1), |g| g.number.checked_add(1))
    }
}

/// Appends `generation` with room for exactly one more: a plain push reserves room for four
/// (768 bytes) where most phones ever hold one or two, 57 MB wasted at 100,000 phones. Records
/// and the event log's replay both grow their lists through here.
pub(crate) fn push_generation(generations: &mut Vec<Generation>, generation: Generation) {
    generations.reserve_exact(1);
    generations.push(generation);
}

/// Evidence that a phone holds a pre-active generation (docs/ROTATION.md): the phone uploaded a file
/// under it, or an operator said so.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Confirmed {
    /// When the confirmation was recorded.
    pub at: Timestamp,
    /// What showed it, such as `upload 0004f2abcdef-phone.cfg` or `operator`.
    pub evidence: String,
}

/// One generation of a phone's key: its name, fingerprint, state and since when, and the
/// key itself sealed under the vault's data key (gone once destroyed).
#[derive(Clone, Debug)]
pub struct Generation {
    number: u32,
    key_desc: KeyDesc,
    fingerprint: Fingerprint,
    state: KeyState,
    created: Timestamp,
    activated: Option<Timestamp>,
    deactivated: Option<Timestamp>,
    compromised: Option<Timestamp>,
    destroyed: Option<Timestamp>,
    confirmed: Option<Confirmed>,
    sealed: Option<SealedKey>,
}

/// The fields of a [`Generation`] as stored, for the bucket-file reader; it validates them
/// and builds the generation with [`Generation::from_parts`].
pub(crate) struct GenerationParts {
    pub(crate) number: u32,
    pub(crate) key_desc: KeyDesc,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) state: KeyState,
    pub(crate) created: Timestamp,
    pub(crate) activated: Option<Timestamp>,
    pub(crate) deactivated: Option<Timestamp>,
    pub(crate) compromised: Option<Timestamp>,
    pub(crate) destroyed: Option<Timestamp>,
    pub(crate) confirmed: Option<Confirmed>,
    pub(crate) sealed: Option<SealedKey>,
}

impl Generation {
    /// A new generation, created at `now` in `state` (pre-active or active).
    pub(crate) fn new(
        number: u32,
        key_desc: KeyDesc,
        fingerprint: Fingerprint,
        state: KeyState,
        now: Timestamp,
        sealed: Option<SealedKey>,
    ) -> Generation {
        Generation {
            number,
            key_desc,
            fingerprint,
            state,
            created: now,
            activated: (state == KeyState::Active).then_some(now),
            deactivated: None,
            compromised: None,
            destroyed: None,
            confirmed: None,
            sealed,
        }
    }

    pub(crate) fn from_parts(parts: GenerationParts) -> Generation {
        Generation {
            number: parts.number,
            key_desc: parts.key_desc,
            fingerprint: parts.fingerprint,
            state: parts.state,
            created: parts.created,
            activated: parts.activated,
            deactivated: parts.deactivated,
            compromised: parts.compromised,
            destroyed: parts.destroyed,
            confirmed: parts.confirmed,
            sealed: parts.sealed,
        }
    }

    /// The generation number: 1 for a phone's first key, then 2, 3, …
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The KeyDesc phones see in `Crypt=1;KeyDesc=…;Key=…;` and in file headers.
    pub fn key_desc(&self) -> &KeyDesc {
        &self.key_desc
    }

    /// The key's fingerprint (it identifies the key without revealing it).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The current state.
    pub fn state(&self) -> KeyState {
        self.state
    }

    /// When the generation was made.
    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// When the generation entered `state`; `None` if it never did. Pre-active starts at
    /// creation, even for a key added directly as active.
    pub fn since(&self, state: KeyState) -> Option<Timestamp> {
        match state {
            KeyState::PreActive => Some(self.created),
            KeyState::Active => self.activated,
            KeyState::Deactivated => self.deactivated,
            KeyState::Compromised => self.compromised,
            KeyState::Destroyed => self.destroyed,
        }
    }

    /// When the generation entered its current state.
    pub fn state_since(&self) -> Timestamp {
        self.since(self.state).unwrap_or(self.created)
    }

    /// The confirmation that the phone holds this generation, if one was recorded.
    pub fn confirmed(&self) -> Option<&Confirmed> {
        self.confirmed.as_ref()
    }

    pub(crate) fn sealed(&self) -> Option<&SealedKey> {
        self.sealed.as_ref()
    }

    /// Moves to `to` at `now`; the caller has checked that the transition is allowed.
    /// Destroying erases the sealed key.
    pub(crate) fn enter(&mut self, to: KeyState, now: Timestamp) {
        self.state = to;
        match to {
            // Never a transition's target: a generation is pre-active only from creation.
            KeyState::PreActive => {}
            KeyState::Active => self.activated = Some(now),
            KeyState::Deactivated => self.deactivated = Some(now),
            KeyState::Compromised => self.compromised = Some(now),
            KeyState::Destroyed => self.destroyed = Some(now),
        }
        if to == KeyState::Destroyed {
            self.sealed = None;
        }
    }

    pub(crate) fn set_confirmed(&mut self, confirmed: Confirmed) {
        self.confirmed = Some(confirmed);
    }

    pub(crate) fn set_sealed(&mut self, sealed: SealedKey) {
        self.sealed = Some(sealed);
    }

    /// True if everything but the sealed bytes is equal: what the event log can vouch for.
    pub(crate) fn same_metadata(&self, other: &Generation) -> bool {
        self.number == other.number
            && self.key_desc == other.key_desc
            && self.fingerprint == other.fingerprint
            && self.state == other.state
            && self.created == other.created
            && self.activated == other.activated
            && self.deactivated == other.deactivated
            && self.compromised == other.compromised
            && self.destroyed == other.destroyed
            && self.confirmed == other.confirmed
    }

    /// A one-line description of the metadata, for verification findings.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!(
            "{} since {}, KeyDesc {}, {}",
            self.state,
            self.state_since(),
            self.key_desc,
            self.fingerprint
        );
        if let Some(confirmed) = &self.confirmed {
            text.push_str(&format!(", confirmed at {}", confirmed.at));
        }
        text
    }
}
