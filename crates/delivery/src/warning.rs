//! What makes a configuration unsafe without making it wrong.

use std::fmt;

/// A configuration nginx accepts but that does not protect the key files. The command prints
/// these on standard error; the rendered configuration carries them as comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Warning {
    /// No client CA: any client that reaches the server can download every phone's key file,
    /// and MAC addresses are guessable (a Polycom OUI and a serial).
    NoClientCa,
    /// Uploads without a client CA: any client can write any phone's override file, contact
    /// directory and logs, and a phone applies a plaintext override it downloads.
    UploadsWithoutClientCa,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Warning::NoClientCa => {
                "no --client-ca: ANY client that can reach this server can download EVERY \
                 phone's key file (MAC addresses are guessable), so the keys protect nothing \
                 from anyone on that network; give the Polycom device CA as --client-ca"
            }
            Warning::UploadsWithoutClientCa => {
                "--uploads without --client-ca: ANY client can write any phone's override \
                 file, contact directory and logs, and phones apply the overrides they \
                 download"
            }
        })
    }
}
