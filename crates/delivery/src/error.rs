//! The one error type of this crate, and the names of the inputs it blames.

use std::fmt;
use std::path::PathBuf;

/// One input of [`crate::NginxConfig`], named in errors by the `polyseal nginx-config` option
/// that sets it, so that the command's user sees which flag to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// The published tree (`--tree`).
    Tree,
    /// The server name (`--server-name`).
    ServerName,
    /// The server certificate chain (`--cert`).
    Cert,
    /// The server certificate's private key (`--key`).
    Key,
    /// The CA that issues client certificates (`--client-ca`).
    ClientCa,
    /// The directory phones upload to (`--uploads`).
    Uploads,
    /// The access log in polyseal's format (`--access-log`).
    AccessLog,
}

impl Setting {
    /// The command-line option that sets this input.
    pub fn option(self) -> &'static str {
        match self {
            Setting::Tree => "--tree",
            Setting::ServerName => "--server-name",
            Setting::Cert => "--cert",
            Setting::Key => "--key",
            Setting::ClientCa => "--client-ca",
            Setting::Uploads => "--uploads",
            Setting::AccessLog => "--access-log",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.option())
    }
}

/// An input that would make a wrong or unsafe nginx configuration.
///
/// Every message names the option at fault and quotes its value (paths and host names are not
/// secret); the configuration is never rendered from an input that fails these checks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A path is relative: nginx would resolve it against its own prefix
    /// (`/usr/share/nginx`), not the directory polyseal ran in.
    RelativePath {
        /// The option.
        setting: Setting,
        /// The path as given.
        path: PathBuf,
    },
    /// A path is not valid UTF-8, so it cannot be written into the configuration.
    NotUtf8 {
        /// The option.
        setting: Setting,
        /// The path as given.
        path: PathBuf,
    },
    /// A path has `.` or `..` components: the directory nginx would use is not the one it
    /// seems to name, and the overlap checks below could be fooled.
    NotNormalized {
        /// The option.
        setting: Setting,
        /// The path as given.
        path: PathBuf,
    },
    /// A value holds a character nginx would read as syntax (a quote, `;`, a brace, `$`
    /// starting a variable, `#`, a backslash) or a control character such as a newline:
    /// written into the configuration it could end the value and add directives.
    UnsafeCharacter {
        /// The option.
        setting: Setting,
        /// The value as given (lossily converted to text for a path).
        value: String,
        /// The first offending character.
        character: char,
    },
    /// The published tree is the filesystem root: nginx would serve every file of the host.
    TreeIsRoot,
    /// The server name is not a host name nginx can match (letters, digits, `-` and `.`,
    /// optionally starting with `*.`).
    ServerName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The uploads directory and the published tree are the same directory or one holds the
    /// other: phones could overwrite published files, or their uploads would be served as part
    /// of the tree.
    UploadsOverlapTree {
        /// The published tree.
        tree: PathBuf,
        /// The uploads directory.
        uploads: PathBuf,
    },
    /// The server's private key lies inside a directory nginx serves, so any client could
    /// download it.
    KeyIsServed {
        /// The private key.
        key: PathBuf,
        /// The served directory that holds it.
        served: PathBuf,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::RelativePath { setting, path } => write!(
                f,
                "{setting} {:?} is a relative path; give an absolute path (nginx would resolve it \
                 against its own prefix)",
                path.display()
            ),
            Error::NotUtf8 { setting, path } => write!(
                f,
                "{setting} {:?} is not valid UTF-8 and cannot be written into an nginx \
                 configuration",
                path.display()
            ),
            Error::NotNormalized { setting, path } => write!(
                f,
                "{setting} {:?} contains '.' or '..' components; give the directory's plain \
                 absolute path",
                path.display()
            ),
            Error::UnsafeCharacter {
                setting,
                value,
                character,
            } => write!(
                f,
                "{setting} {value:?} contains {character:?}, which nginx would read as \
                 configuration syntax; rename it or use a path without quotes, ';', braces, '$', \
                 '#', backslashes or control characters"
            ),
            Error::TreeIsRoot => f.write_str(
                "--tree is the filesystem root '/': nginx would serve every file on the host",
            ),
            Error::ServerName { name, reason } => {
                write!(f, "--server-name {name:?} {reason}")
            }
            Error::UploadsOverlapTree { tree, uploads } => write!(
                f,
                "--uploads {:?} and --tree {:?} overlap; phones must upload outside the \
                 published tree, and uploads must not be published",
                uploads.display(),
                tree.display()
            ),
            Error::KeyIsServed { key, served } => write!(
                f,
                "--key {:?} lies inside {:?}, which nginx serves: any client could download the \
                 server's private key; move it out",
                key.display(),
                served.display()
            ),
        }
    }
}

impl std::error::Error for Error {}
