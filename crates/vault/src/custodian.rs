//! A custodian's acknowledgement of their responsibilities (PCI DSS v4 3.7.8), proven by
//! possession of their own recipient's identity.

use std::io::Read as _;

use age::armor::ArmoredReader;
use rand::TryRng;
use rand::rngs::SysRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::event::EventKind;
use crate::recipient::seal_to_all;
use crate::transit::TransitOpener;
use crate::writer::Transaction;
use crate::{DataKey, Error, Identities, VaultWriter};

/// Bytes of the challenge sealed to the custodian's recipient alone.
const CHALLENGE_LEN: usize = 32;

impl VaultWriter {
    /// Records, as an `acknowledge` event, that the custodian holding recipient `label`'s
    /// identity accepts the responsibilities of a key custodian (PCI DSS v4 3.7.8).
    ///
    /// Possession is proven, not claimed: a random challenge is sealed with age to that
    /// recipient alone and must open with `identities` ([`Error::NotTheCustodian`]
    /// otherwise), so another custodian cannot acknowledge in their name.
    pub fn acknowledge(
        &mut self,
        data_key: &DataKey,
        label: &str,
        identities: &Identities,
    ) -> Result<(), Error> {
        let recipient = self
            .vault()
            .recipients()
            .iter()
            .find(|r| r.label() == label)
            .cloned()
            .ok_or_else(|| Error::UnknownRecipient {
                label: label.to_owned(),
                known: self.vault().recipient_labels(),
            })?;
        let mut challenge = Zeroizing::new([0u8; CHALLENGE_LEN]);
        #[allow(clippy::expect_used)] // As for every key: no randomness, no challenge.
        SysRng
            .try_fill_bytes(&mut challenge[..])
            .expect("operating system random number generator failed");
        let sealed = seal_to_all(
            std::slice::from_ref(&recipient),
            &challenge[..],
            identities.transit(),
        )?;
        let transit = self.vault().transit_opener(identities);
        let mut openers: Vec<&dyn age::Identity> = identities.as_age().collect();
        if let Some(transit) = &transit {
            openers.push(transit);
        }
        if !opens_to(&sealed, &openers, &challenge[..]) {
            if let Some(failure) = transit.as_ref().and_then(TransitOpener::take_failure) {
                return Err(failure);
            }
            return Err(Error::NotTheCustodian {
                label: label.to_owned(),
                origin: identities.origin().to_owned(),
            });
        }
        let mut txn = Transaction::new();
        txn.events.push(EventKind::Acknowledged {
            label: label.to_owned(),
            public_key: recipient.public_key(),
        });
        self.commit_change(data_key, txn)
    }
}

/// Whether `openers` open the age file `sealed` to exactly `expected`.
fn opens_to(sealed: &str, openers: &[&dyn age::Identity], expected: &[u8]) -> bool {
    let Ok(decryptor) = age::Decryptor::new_buffered(ArmoredReader::new(sealed.as_bytes())) else {
        return false;
    };
    let Ok(mut reader) = decryptor.decrypt(openers.iter().copied()) else {
        return false;
    };
    let mut opened = Zeroizing::new(Vec::with_capacity(2 * CHALLENGE_LEN));
    reader.read_to_end(&mut opened).is_ok() && bool::from(opened[..].ct_eq(expected))
}
