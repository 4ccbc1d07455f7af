//! k-of-n custody: the data key split with Shamir's scheme over GF(256) (the audited vsss-rs),
//! one share sealed to each recipient, so that opening the vault takes K custodians (PCI DSS
//! v4 3.6.1.2 and 3.7.6, split knowledge and dual control; docs/VAULT.md, "Threshold").
//!
//! With a threshold, `data-key.age` is a first line `polyseal data-key shares: K of N` and then
//! N ASCII-armored age files, one per recipient in the order of `vault.toml`, each sealed to
//! that recipient alone. Each opens to `share HEX` (the share: its x coordinate, then 32
//! bytes), the line `of K of N` and the format-2 marker. Shares carry no integrity of their
//! own: the combined key must match `data_key_check`, and then the vault's head.

use rand::rngs::SysRng;
use zeroize::Zeroizing;

use crate::Error;

/// The first line's prefix of a `data-key.age` that holds shares.
const HEADER_PREFIX: &str = "polyseal data-key shares: ";
/// The line that ends each armored age file.
const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";
/// The most recipients a threshold can span: shares are numbered by one byte.
pub(crate) const MAX_SHARES: usize = 255;

/// How many recipients must take part to open the data key, out of how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Threshold {
    pub(crate) needed: usize,
    pub(crate) of: usize,
}

impl Threshold {
    /// Checks `needed` against `recipients`: 1 ≤ needed ≤ recipients ≤ 255.
    pub(crate) fn new(needed: usize, recipients: usize) -> Result<Threshold, Error> {
        let invalid = |reason: &str| Error::InvalidThreshold {
            threshold: needed,
            recipients,
            reason: reason.to_owned(),
        };
        if needed == 0 {
            return Err(invalid("a threshold is at least 1"));
        }
        if needed > recipients {
            return Err(invalid(
                "more custodians than recipients could never open the vault; add recipients \
                 first (`polyseal recipients add`), or lower the threshold",
            ));
        }
        if recipients > MAX_SHARES {
            return Err(invalid("a threshold spans at most 255 recipients"));
        }
        Ok(Threshold {
            needed,
            of: recipients,
        })
    }
}

/// Splits `secret` into `threshold.of` shares, any `threshold.needed` of which recombine it.
pub(crate) fn split(secret: &[u8], threshold: Threshold) -> Result<Vec<Zeroizing<Vec<u8>>>, Error> {
    let rng = rand::rand_core::UnwrapErr(SysRng);
    vsss_rs::Gf256::split_bytes(threshold.needed, threshold.of, secret, rng)
        .map(|shares| shares.into_iter().map(Zeroizing::new).collect())
        .map_err(|e| Error::InvalidThreshold {
            threshold: threshold.needed,
            recipients: threshold.of,
            reason: format!("the data key could not be split ({e:?})"),
        })
}

/// Recombines shares; `None` when they do not form a valid set (repeated or empty).
pub(crate) fn combine(shares: &[Zeroizing<Vec<u8>>]) -> Option<Zeroizing<Vec<u8>>> {
    let plain: Vec<Vec<u8>> = shares.iter().map(|s| s.to_vec()).collect();
    let combined = vsss_rs::Gf256::combine_bytes(&plain)
        .ok()
        .map(Zeroizing::new);
    for mut share in plain {
        zeroize::Zeroize::zeroize(&mut share);
    }
    combined
}

/// The plaintext sealed to one recipient: `share HEX`, `of K of N`, then `marker`.
pub(crate) fn share_plaintext(
    share: &[u8],
    threshold: Threshold,
    marker: &str,
) -> Zeroizing<String> {
    let line = format!("of {} of {}\n", threshold.needed, threshold.of);
    let mut text = Zeroizing::new(String::with_capacity(
        6 + 2 * share.len() + 1 + line.len() + marker.len(),
    ));
    text.push_str("share ");
    text.push_str(&Zeroizing::new(hex::encode(share)));
    text.push('\n');
    text.push_str(&line);
    text.push_str(marker);
    text
}

/// A share read back from its plaintext, and whether the marker followed.
pub(crate) fn parse_share(
    plaintext: &[u8],
    threshold: Threshold,
    marker: &str,
) -> Option<(Zeroizing<Vec<u8>>, bool)> {
    let (body, marked) = match plaintext.strip_suffix(marker.as_bytes()) {
        Some(body) => (body, true),
        None => (plaintext, false),
    };
    let text = std::str::from_utf8(body).ok()?;
    let mut lines = text.strip_suffix('\n')?.split('\n');
    let hex_share = lines.next()?.strip_prefix("share ")?;
    let of = lines.next()?;
    if lines.next().is_some() || of != format!("of {} of {}", threshold.needed, threshold.of) {
        return None;
    }
    if hex_share.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let share = Zeroizing::new(hex::decode(hex_share).ok()?);
    Some((share, marked))
}

/// A shares file read: the threshold, and each recipient's armored age file in order.
pub(crate) type SharesFile<'a> = (Threshold, Vec<&'a [u8]>);

/// Renders the shares file: the header line, then each armored age file.
pub(crate) fn render(threshold: Threshold, sealed: &[String]) -> String {
    let mut text = format!("{HEADER_PREFIX}{} of {}\n", threshold.needed, threshold.of);
    for block in sealed {
        text.push_str(block);
        if !block.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// Reads a shares file: `None` when `file` is not one (a whole-key `data-key.age`), else the
/// threshold and each recipient's armored age file, or what is malformed.
pub(crate) fn parse(file: &[u8]) -> Option<Result<SharesFile<'_>, String>> {
    let rest = file.strip_prefix(HEADER_PREFIX.as_bytes())?;
    Some(parse_after_header(rest))
}

fn parse_after_header(rest: &[u8]) -> Result<SharesFile<'_>, String> {
    let newline = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("the first line does not end")?;
    let counts = std::str::from_utf8(&rest[..newline]).map_err(|_| "the first line is not text")?;
    let (needed, of) = counts
        .split_once(" of ")
        .and_then(|(k, n)| Some((k.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
        .ok_or("the first line is not `polyseal data-key shares: K of N`")?;
    let threshold = Threshold::new(needed, of).map_err(|e| e.to_string())?;
    let mut blocks = Vec::with_capacity(of);
    let mut body = &rest[newline + 1..];
    while !body.is_empty() {
        let end = find(body, ARMOR_END.as_bytes()).ok_or("an armored share does not end")?;
        let mut cut = end + ARMOR_END.len();
        if body.get(cut) == Some(&b'\n') {
            cut += 1;
        }
        blocks.push(&body[..cut]);
        body = &body[cut..];
    }
    if blocks.len() != of {
        return Err(format!(
            "holds {} shares where its first line says {of}",
            blocks.len()
        ));
    }
    Ok((threshold, blocks))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_two_of_three_shares_recombine_the_secret_and_one_does_not() {
        let secret = [7u8; 32];
        let threshold = Threshold::new(2, 3).expect("test value");
        let shares = split(&secret, threshold).expect("test value");
        for pair in [[0, 1], [1, 2], [2, 0]] {
            let chosen = [shares[pair[0]].clone(), shares[pair[1]].clone()];
            assert_eq!(&combine(&chosen).expect("test value")[..], &secret[..]);
        }
        let alone = combine(&[shares[0].clone()]);
        assert!(alone.is_none_or(|s| s[..] != secret[..]));
    }

    #[test]
    fn a_share_survives_its_plaintext_and_a_threshold_must_be_reachable() {
        let threshold = Threshold::new(2, 3).expect("test value");
        let text = share_plaintext(&[1, 2, 3], threshold, "marker\n");
        let (share, marked) =
            parse_share(text.as_bytes(), threshold, "marker\n").expect("test value");
        assert_eq!(&share[..], &[1, 2, 3]);
        assert!(marked);
        assert!(
            parse_share(
                text.as_bytes(),
                Threshold::new(3, 3).expect("test value"),
                "marker\n"
            )
            .is_none()
        );
        assert!(Threshold::new(3, 2).is_err());
        assert!(Threshold::new(0, 2).is_err());
    }
}
