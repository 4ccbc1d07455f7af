//! Key states and the transitions between them (NIST SP 800-57 part 1 rev. 5, §7).

use std::fmt;

/// The state of one generation of a phone's key.
///
/// | from \ to   | active | deactivated | compromised | destroyed |
/// |-------------|--------|-------------|-------------|-----------|
/// | pre-active  | yes    |             | yes         | yes (never used) |
/// | active      |        | yes         | yes         |           |
/// | deactivated |        |             | yes         | yes       |
/// | compromised |        |             |             | yes       |
/// | destroyed   |        |             |             |           |
///
/// Only an active key encrypts. Pre-active, deactivated and compromised keys still decrypt
/// (a phone confirming a new key uploads files under it; old files stay readable). A
/// destroyed key keeps its metadata; its sealed bytes are erased.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum KeyState {
    /// Made, not yet in use: the phone may not hold it yet.
    PreActive,
    /// The key the phone's files are encrypted with. At most one per MAC.
    Active,
    /// Retired: no longer encrypts, still decrypts old files.
    Deactivated,
    /// Known or suspected to be disclosed. Still decrypts, for investigation.
    Compromised,
    /// Key bytes erased; metadata kept.
    Destroyed,
}

impl KeyState {
    /// Every state, in lifecycle order.
    pub const ALL: [KeyState; 5] = [
        KeyState::PreActive,
        KeyState::Active,
        KeyState::Deactivated,
        KeyState::Compromised,
        KeyState::Destroyed,
    ];

    /// The name used in vault files, events and messages: `pre-active`, `active`,
    /// `deactivated`, `compromised`, `destroyed`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::PreActive => "pre-active",
            KeyState::Active => "active",
            KeyState::Deactivated => "deactivated",
            KeyState::Compromised => "compromised",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// Parses a name written by [`KeyState::as_str`].
    ///
    /// ```
    /// use polyseal_vault::KeyState;
    /// assert_eq!(KeyState::parse("pre-active"), Some(KeyState::PreActive));
    /// assert_eq!(KeyState::parse("expired"), None);
    /// ```
    pub fn parse(name: &str) -> Option<KeyState> {
        KeyState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
    }

    /// True if NIST SP 800-57 allows a key in state `self` to move to `next`:
    /// pre-active → active, pre-active → destroyed (a key never used), active → deactivated,
    /// pre-active/active/deactivated → compromised, deactivated/compromised → destroyed.
    /// Destroyed is final; staying in the same state is not a transition.
    ///
    /// ```
    /// use polyseal_vault::KeyState::*;
    /// assert!(PreActive.can_become(Active));
    /// assert!(!Deactivated.can_become(Active));
    /// assert!(!Destroyed.can_become(Compromised));
    /// ```
    pub fn can_become(self, next: KeyState) -> bool {
        use KeyState::*;
        matches!(
            (self, next),
            (PreActive, Active | Compromised | Destroyed)
                | (Active, Deactivated | Compromised)
                | (Deactivated, Compromised | Destroyed)
                | (Compromised, Destroyed)
        )
    }

    /// True for every state but destroyed: the key bytes are still sealed in the vault.
    pub fn is_live(self) -> bool {
        self != KeyState::Destroyed
    }

    /// True for the states whose entry replaces the data key (crypto-shredding): destroyed and
    /// compromised.
    pub fn shreds(self) -> bool {
        matches!(self, KeyState::Destroyed | KeyState::Compromised)
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state a newly added generation starts in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InitialState {
    /// The normal start: a rotation makes the next generation pre-active until the phone is
    /// confirmed to hold it.
    PreActive,
    /// Active at once, for a phone that has no key yet and gets this one in its bootstrap file.
    Active,
}

impl From<InitialState> for KeyState {
    fn from(state: InitialState) -> KeyState {
        match state {
            InitialState::PreActive => KeyState::PreActive,
            InitialState::Active => KeyState::Active,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyState::{self, *};

    #[test]
    fn transitions_are_exactly_nist_sp_800_57_table() {
        let allowed = [
            (PreActive, Active),
            (PreActive, Compromised),
            (PreActive, Destroyed),
            (Active, Deactivated),
            (Active, Compromised),
            (Deactivated, Compromised),
            (Deactivated, Destroyed),
            (Compromised, Destroyed),
        ];
        for from in KeyState::ALL {
            for to in KeyState::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} → {to}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip_and_only_destroyed_is_dead() {
        for state in KeyState::ALL {
            assert_eq!(KeyState::parse(state.as_str()), Some(state));
            assert_eq!(state.is_live(), state != Destroyed);
        }
        assert_eq!(KeyState::parse("Active"), None);
    }
}
