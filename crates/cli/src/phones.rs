//! Phone lists and key-file names given on the command line.

use std::path::Path;

use polyseal_crypto::Mac;
use polyseal_provision::{KeyFilePattern, PhoneList};

use crate::cli::KeyFileArg;
use crate::failure::Failure;
use crate::output::read_input;

/// Largest phones file accepted (a million phones at ~40 bytes a line).
const MAX_PHONES_FILE: usize = 64 * 1024 * 1024;

/// Reads MACs from a phones file or, for `-`, standard input: CSV `mac[,label]` or one MAC a
/// line. A bad line is an error naming the file and line.
pub(crate) fn read_mac_list(path: &Path) -> Result<Vec<Mac>, Failure> {
    let mut list = PhoneList::new();
    if path == Path::new("-") {
        let bytes = read_input(path, MAX_PHONES_FILE)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Failure::input("standard input: phones list is not UTF-8 text"))?;
        list.add_phones_text(Path::new("standard input"), text)?;
    } else {
        list.read_phones_file(path)?;
    }
    Ok(list.iter().map(|phone| phone.mac).collect())
}

/// The key file pattern given with --key-file.
pub(crate) fn key_file_pattern(arg: &KeyFileArg) -> Result<KeyFilePattern, Failure> {
    parse_key_file(&arg.pattern)
}

/// Parses a --key-file pattern, naming the option in the error.
pub(crate) fn parse_key_file(pattern: &str) -> Result<KeyFilePattern, Failure> {
    KeyFilePattern::parse(pattern).map_err(|e| Failure::input(format!("--key-file: {e}")))
}
