//! Keys' age against the vault's cryptoperiod, and phones' makers.

use polyseal_vault::{KeyState, Timestamp};

use super::Audit;
use super::report::{Code, Finding};

impl<'a> Audit<'a> {
    pub(super) fn cryptoperiods(&self, as_of: Timestamp) -> Vec<Finding> {
        let Some(period) = self.vault.cryptoperiod() else {
            return Vec::new();
        };
        self.vault
            .records()
            .filter_map(|record| {
                let active = record.active()?;
                let since = active.since(KeyState::Active).unwrap_or(active.created());
                let end = period.end(since);
                if as_of <= end {
                    return None;
                }
                let mac = record.mac();
                let tree = self.tree.root().display();
                let (rotating, fix) = match self.step(&mac).next_generation() {
                    Some(next) => (
                        format!(" (rotation to generation {next} under way)"),
                        format!(
                            "finish the rotation: polyseal rotate confirm {mac} once it uploads \
                             under generation {next}, then polyseal rotate finish {mac} --src SRC \
                             --out {tree}"
                        ),
                    ),
                    None => (
                        String::new(),
                        format!(
                            "rotate it: polyseal rotate start {mac} --src SRC --out {tree}, then \
                             confirm and finish"
                        ),
                    ),
                };
                Some(
                    Finding::new(
                        Code::KeyPastCryptoperiod,
                        format!(
                            "generation {} ({}) active since {since}: its {}-day cryptoperiod \
                             ended {end}{rotating}",
                            active.number(),
                            active.key_desc(),
                            period.days()
                        ),
                        fix,
                    )
                    .mac(mac),
                )
            })
            .collect()
    }

    pub(super) fn ouis(&self) -> Vec<Finding> {
        self.all_phones()
            .into_iter()
            .filter(|mac| !mac.is_polycom_oui())
            .map(|mac| {
                let [a, b, c] = mac.oui();
                Finding::new(
                    Code::NonPolycomOui,
                    format!(
                        "OUI {a:02X}-{b:02X}-{c:02X} is not a Polycom/Poly OUI (00-04-F2, \
                         64-16-7F, 48-25-67)"
                    ),
                    "check the MAC for a typo; a phone of another maker needs nothing",
                )
                .mac(mac)
            })
            .collect()
    }
}
