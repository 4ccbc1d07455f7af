//! Where each phone stands in its key's life, read from its vault record (docs/ROTATION.md).
//! Publishing, `rotate status` and `audit` all use this one reading.

use std::fmt;

use crate::{Generation, KeyState, KeyTiming, Record, Timestamp};

/// A phone's rotation step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationStep {
    /// No active key: `publish` makes one and bootstraps the phone.
    NoKey,
    /// One active generation: the key file is the plaintext bootstrap of it, and every
    /// per-phone file is encrypted under it.
    Steady {
        /// The active generation.
        active: u32,
    },
    /// `rotate start` made `next` pre-active and switched the phone to it: the key file is the
    /// plaintext bootstrap of `next` and every per-phone file is under `next`, so the phone
    /// takes `next` at its next boot whatever its firmware's key timing (docs/ROTATION.md).
    /// `active` still counts as the phone's key until evidence shows the phone holds `next`.
    Started {
        /// The active generation, still the phone's key in the vault's count.
        active: u32,
        /// The pre-active generation the phone is moving to.
        next: u32,
    },
    /// Evidence (or the operator) says the phone holds `next`; `rotate finish` retires
    /// `active`. Served exactly as in `Started`.
    Confirmed {
        /// The active generation, still the phone's key in the vault's count.
        active: u32,
        /// The pre-active generation the phone is moving to.
        next: u32,
    },
}

impl RotationStep {
    /// Reads the step from a phone's record (`None`: the phone has no record).
    pub fn of(record: Option<&Record>) -> RotationStep {
        let Some(record) = record else {
            return RotationStep::NoKey;
        };
        let Some(active) = record.active() else {
            return RotationStep::NoKey;
        };
        match pending(record, active) {
            Some(next) if next.confirmed().is_some() => RotationStep::Confirmed {
                active: active.number(),
                next: next.number(),
            },
            Some(next) => RotationStep::Started {
                active: active.number(),
                next: next.number(),
            },
            None => RotationStep::Steady {
                active: active.number(),
            },
        }
    }

    /// The generation the phone is served: its key file carries it and its per-phone files
    /// are encrypted under it.
    pub fn files_generation(self) -> Option<u32> {
        match self {
            RotationStep::NoKey => None,
            RotationStep::Steady { active } => Some(active),
            RotationStep::Started { next, .. } | RotationStep::Confirmed { next, .. } => Some(next),
        }
    }

    /// True if the phone's per-phone files are served in plaintext: a rotation has started on
    /// a next-boot fleet and nothing shows yet that the phone holds `next`. Under either key a
    /// file would fail one of the phone's two boots: the one that brings the key (the phone
    /// still uses the old one) or the next (it uses the new one). docs/ROTATION.md.
    pub fn serves_plaintext(self, timing: KeyTiming) -> bool {
        matches!(self, RotationStep::Started { .. }) && timing == KeyTiming::NextBoot
    }

    /// The generation the vault counts as active: the phone's key until a rotation finishes.
    pub fn active_generation(self) -> Option<u32> {
        match self {
            RotationStep::NoKey => None,
            RotationStep::Steady { active }
            | RotationStep::Started { active, .. }
            | RotationStep::Confirmed { active, .. } => Some(active),
        }
    }

    /// The generation a rotation is moving to, if one is under way.
    pub fn next_generation(self) -> Option<u32> {
        match self {
            RotationStep::Started { next, .. } | RotationStep::Confirmed { next, .. } => Some(next),
            _ => None,
        }
    }

    /// Since when the phone has been at this step.
    pub fn since(self, record: Option<&Record>) -> Option<Timestamp> {
        let record = record?;
        match self {
            RotationStep::NoKey => None,
            RotationStep::Steady { active } => {
                record.generation(active).map(Generation::state_since)
            }
            RotationStep::Started { next, .. } => record.generation(next).map(Generation::created),
            RotationStep::Confirmed { next, .. } => record
                .generation(next)
                .and_then(Generation::confirmed)
                .map(|c| c.at),
        }
    }
}

/// The newest pre-active generation after the active one: the rotation's target.
fn pending<'r>(record: &'r Record, active: &Generation) -> Option<&'r Generation> {
    record
        .generations()
        .iter()
        .filter(|g| g.state() == KeyState::PreActive && g.number() > active.number())
        .max_by_key(|g| g.number())
}

impl fmt::Display for RotationStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotationStep::NoKey => f.write_str("no key"),
            RotationStep::Steady { active } => write!(f, "steady on g{active}"),
            RotationStep::Started { active, next } => {
                write!(
                    f,
                    "rotating g{active} -> g{next}: served g{next} from its next publish on, \
                     waiting for evidence"
                )
            }
            RotationStep::Confirmed { active, next } => {
                write!(
                    f,
                    "rotating g{active} -> g{next}: confirmed, ready to finish (retire g{active})"
                )
            }
        }
    }
}
