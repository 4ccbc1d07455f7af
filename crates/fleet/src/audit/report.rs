//! The audit report: findings with stable codes and severities, which checks ran, and the
//! `polyseal-audit/1` JSON schema for tools (the binary renders the table for people).
//! docs/AUDIT.md documents every code and the schema; a test keeps them in step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;
use polyseal_vault::Timestamp;
use serde::Serialize;

/// The `schema` value of the JSON report. A change that could break a reader of the report
/// (a field renamed, removed or changing meaning; a code renamed) needs a new number.
pub const SCHEMA: &str = "polyseal-audit/1";

/// How bad a finding is. `--strict` fails on errors and warnings, not on info.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Phones will fail to boot or to get their key, or a secret is exposed.
    Error,
    /// Against policy or good practice; nothing fails yet.
    Warning,
    /// Worth knowing; not a problem by itself.
    Info,
}

impl Severity {
    /// The name in the JSON report: `error`, `warning`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// Whether `--strict` turns a finding of this severity into exit code 1.
    pub fn fails_strict(self) -> bool {
        self != Severity::Info
    }
}

/// What a finding is about. Each has a stable code (the JSON `code`) and a fixed severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// `phone-without-key`: Phone without an active key.
    PhoneWithoutKey,
    /// `key-without-phone`: Live key for a phone that is neither in the tree nor in the phones list.
    KeyWithoutPhone,
    /// `file-wrong-generation`: Per-phone file encrypted under a generation the phone should not be served.
    FileWrongGeneration,
    /// `file-unknown-key`: Per-phone file encrypted under a key the vault does not know.
    FileUnknownKey,
    /// `file-other-phones-key`: Per-phone file encrypted under another phone's key.
    FileOtherPhonesKey,
    /// `file-bad-header`: Encrypted file whose header cannot be read.
    FileBadHeader,
    /// `file-does-not-decrypt`: Encrypted file that does not decrypt with the key its header names.
    FileDoesNotDecrypt,
    /// `file-other-layout`: Encrypted file in another layout than the vault's.
    FileOtherLayout,
    /// `per-phone-file-plaintext`: Per-phone file served in plaintext.
    PerPhoneFilePlaintext,
    /// `plaintext-during-key-change`: Per-phone file in plaintext while its phone takes a new key (next-boot fleet).
    PlaintextDuringKeyChange,
    /// `plaintext-during-rollout`: Per-phone file in plaintext until a rollout's wave takes its phone.
    PlaintextDuringRollout,
    /// `encrypted-before-wave`: Per-phone file encrypted for a phone no rollout wave has taken.
    EncryptedBeforeWave,
    /// `shared-file-encrypted`: Shared file served encrypted.
    SharedFileEncrypted,
    /// `file-malformed`: Configuration file that is not well-formed XML.
    FileMalformed,
    /// `secret-in-master`: Secret in a master file.
    SecretInMaster,
    /// `secret-in-shared-file`: Secret in a shared file.
    SecretInSharedFile,
    /// `secret-in-plaintext-file`: Secret in a per-phone or key file served in plaintext.
    SecretInPlaintextFile,
    /// `weak-sip-password`: Weak SIP password.
    WeakSipPassword,
    /// `master-missing`: No master file.
    MasterMissing,
    /// `master-encrypted`: Encrypted master file.
    MasterEncrypted,
    /// `key-file-not-listed`: Master file that does not list the key file.
    KeyFileNotListed,
    /// `phone-file-not-master`: `<mac>.cfg` that is not a master file.
    PhoneFileNotMaster,
    /// `listed-file-of-other-phone`: Master lists a file named after another phone.
    ListedFileOfOtherPhone,
    /// `listed-file-not-in-tree`: Master lists a file outside the tree.
    ListedFileNotInTree,
    /// `key-file-missing`: Phone without a key file.
    KeyFileMissing,
    /// `key-file-wrong-key`: Key file that does not carry the key the phone should get.
    KeyFileWrongKey,
    /// `key-file-invalid`: Key file a phone cannot apply.
    KeyFileInvalid,
    /// `key-file-readable`: Key file readable by group or others.
    KeyFileReadable,
    /// `vault-file-readable`: Vault key material readable by group or others.
    VaultFileReadable,
    /// `vault-key-broken`: Key in the vault that does not open.
    VaultKeyBroken,
    /// `key-past-cryptoperiod`: Active key past the vault's cryptoperiod.
    KeyPastCryptoperiod,
    /// `non-polycom-oui`: MAC outside the Polycom OUIs.
    NonPolycomOui,
    /// `event-log-unverified`: Vault event log that does not verify.
    EventLogUnverified,
    /// `upload-wrong-key`: Phone uploads under a key other than the expected one.
    UploadWrongKey,
    /// `upload-plaintext`: Phone uploads in plaintext.
    UploadPlaintext,
}

impl Code {
    /// Every code, in the order docs/AUDIT.md lists them.
    #[cfg(test)]
    pub const ALL: [Code; 35] = [
        Code::PhoneWithoutKey,
        Code::KeyWithoutPhone,
        Code::FileWrongGeneration,
        Code::FileUnknownKey,
        Code::FileOtherPhonesKey,
        Code::FileBadHeader,
        Code::FileDoesNotDecrypt,
        Code::FileOtherLayout,
        Code::PerPhoneFilePlaintext,
        Code::PlaintextDuringKeyChange,
        Code::PlaintextDuringRollout,
        Code::EncryptedBeforeWave,
        Code::SharedFileEncrypted,
        Code::FileMalformed,
        Code::SecretInMaster,
        Code::SecretInSharedFile,
        Code::SecretInPlaintextFile,
        Code::WeakSipPassword,
        Code::MasterMissing,
        Code::MasterEncrypted,
        Code::KeyFileNotListed,
        Code::PhoneFileNotMaster,
        Code::ListedFileOfOtherPhone,
        Code::ListedFileNotInTree,
        Code::KeyFileMissing,
        Code::KeyFileWrongKey,
        Code::KeyFileInvalid,
        Code::KeyFileReadable,
        Code::VaultFileReadable,
        Code::VaultKeyBroken,
        Code::KeyPastCryptoperiod,
        Code::NonPolycomOui,
        Code::EventLogUnverified,
        Code::UploadWrongKey,
        Code::UploadPlaintext,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        self.describe().0
    }

    /// The severity every finding of this code has.
    pub fn severity(self) -> Severity {
        self.describe().1
    }

    /// What the code means, in a few words (the table's group heading).
    pub fn title(self) -> &'static str {
        self.describe().2
    }

    fn describe(self) -> (&'static str, Severity, &'static str) {
        use Severity::{Error, Info, Warning};
        match self {
            Code::PhoneWithoutKey => ("phone-without-key", Error, "phone without an active key"),
            Code::KeyWithoutPhone => (
                "key-without-phone",
                Warning,
                "live key for a phone that is neither in the tree nor in the phones list",
            ),
            Code::FileWrongGeneration => (
                "file-wrong-generation",
                Error,
                "per-phone file encrypted under a generation the phone should not be served",
            ),
            Code::FileUnknownKey => (
                "file-unknown-key",
                Error,
                "per-phone file encrypted under a key the vault does not know",
            ),
            Code::FileOtherPhonesKey => (
                "file-other-phones-key",
                Error,
                "per-phone file encrypted under another phone's key",
            ),
            Code::FileBadHeader => (
                "file-bad-header",
                Error,
                "encrypted file whose header cannot be read",
            ),
            Code::FileDoesNotDecrypt => (
                "file-does-not-decrypt",
                Error,
                "encrypted file that does not decrypt with the key its header names",
            ),
            Code::FileOtherLayout => (
                "file-other-layout",
                Error,
                "encrypted file in another layout than the vault's",
            ),
            Code::PerPhoneFilePlaintext => (
                "per-phone-file-plaintext",
                Error,
                "per-phone file served in plaintext",
            ),
            Code::PlaintextDuringKeyChange => (
                "plaintext-during-key-change",
                Info,
                "per-phone file in plaintext while its phone takes a new key (next-boot fleet)",
            ),
            Code::PlaintextDuringRollout => (
                "plaintext-during-rollout",
                Info,
                "per-phone file in plaintext until a rollout's wave takes its phone",
            ),
            Code::EncryptedBeforeWave => (
                "encrypted-before-wave",
                Error,
                "per-phone file encrypted for a phone no rollout wave has taken",
            ),
            Code::SharedFileEncrypted => (
                "shared-file-encrypted",
                Error,
                "shared file served encrypted",
            ),
            Code::FileMalformed => (
                "file-malformed",
                Error,
                "configuration file that is not well-formed XML",
            ),
            Code::SecretInMaster => ("secret-in-master", Error, "secret in a master file"),
            Code::SecretInSharedFile => ("secret-in-shared-file", Error, "secret in a shared file"),
            Code::SecretInPlaintextFile => (
                "secret-in-plaintext-file",
                Error,
                "secret in a per-phone or key file served in plaintext",
            ),
            Code::WeakSipPassword => ("weak-sip-password", Warning, "weak SIP password"),
            Code::MasterMissing => ("master-missing", Error, "no master file"),
            Code::MasterEncrypted => ("master-encrypted", Error, "encrypted master file"),
            Code::KeyFileNotListed => (
                "key-file-not-listed",
                Error,
                "master file that does not list the key file",
            ),
            Code::PhoneFileNotMaster => (
                "phone-file-not-master",
                Warning,
                "<mac>.cfg that is not a master file",
            ),
            Code::ListedFileOfOtherPhone => (
                "listed-file-of-other-phone",
                Warning,
                "master lists a file named after another phone",
            ),
            Code::ListedFileNotInTree => (
                "listed-file-not-in-tree",
                Info,
                "master lists a file outside the tree",
            ),
            Code::KeyFileMissing => ("key-file-missing", Error, "phone without a key file"),
            Code::KeyFileWrongKey => (
                "key-file-wrong-key",
                Error,
                "key file that does not carry the key the phone should get",
            ),
            Code::KeyFileInvalid => ("key-file-invalid", Error, "key file a phone cannot apply"),
            Code::KeyFileReadable => (
                "key-file-readable",
                Error,
                "key file readable by group or others",
            ),
            Code::VaultFileReadable => (
                "vault-file-readable",
                Error,
                "vault key material readable by group or others",
            ),
            Code::VaultKeyBroken => (
                "vault-key-broken",
                Error,
                "key in the vault that does not open",
            ),
            Code::KeyPastCryptoperiod => (
                "key-past-cryptoperiod",
                Warning,
                "active key past the vault's cryptoperiod",
            ),
            Code::NonPolycomOui => ("non-polycom-oui", Info, "MAC outside the Polycom OUIs"),
            Code::EventLogUnverified => (
                "event-log-unverified",
                Error,
                "vault event log that does not verify",
            ),
            Code::UploadWrongKey => (
                "upload-wrong-key",
                Error,
                "phone uploads under a key other than the expected one",
            ),
            Code::UploadPlaintext => ("upload-plaintext", Warning, "phone uploads in plaintext"),
        }
    }
}

/// One finding: what, about which phone and file, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// What was found.
    pub code: Code,
    /// The phone it is about.
    pub mac: Option<Mac>,
    /// The file it is about.
    pub file: Option<PathBuf>,
    /// One line; names parameters and KeyDescs, never a key or a secret's value.
    pub message: String,
    /// One line: what to do about it.
    pub fix: String,
}

impl Finding {
    /// A finding of `code` with its message and fix, about no phone or file yet.
    pub fn new(code: Code, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            code,
            mac: None,
            file: None,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// The phone it is about.
    pub fn mac(mut self, mac: impl Into<Option<Mac>>) -> Finding {
        self.mac = mac.into();
        self
    }

    /// The file it is about.
    pub fn file(mut self, file: impl Into<PathBuf>) -> Finding {
        self.file = Some(file.into());
        self
    }

    /// Its code's severity.
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// The order of the report: most severe first, then by code, phone, file and message.
    fn sort_key(&self) -> (Severity, &'static str, Option<Mac>, Option<&Path>, &str) {
        (
            self.severity(),
            self.code.as_str(),
            self.mac,
            self.file.as_deref(),
            &self.message,
        )
    }
}

/// A group of checks, named in the report's `checks` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// Every served phone has a key; every live key a phone.
    PhonesAndKeys,
    /// Per-phone files encrypted under the generation their phone is served.
    FileEncryption,
    /// No secret in a plaintext file.
    Secrets,
    /// Masters and the fetch plans they give.
    Masters,
    /// Each phone's key file.
    KeyFiles,
    /// File modes of the tree and the vault.
    Permissions,
    /// Keys' age against the cryptoperiod.
    Cryptoperiod,
    /// Phones' makers by OUI.
    Oui,
    /// The event log verifies.
    EventLog,
    /// Files phones uploaded.
    Uploads,
    /// What encrypted files decrypt to (needs the identity).
    DecryptedContents,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 11] = [
        Check::PhonesAndKeys,
        Check::FileEncryption,
        Check::Secrets,
        Check::Masters,
        Check::KeyFiles,
        Check::Permissions,
        Check::Cryptoperiod,
        Check::Oui,
        Check::EventLog,
        Check::Uploads,
        Check::DecryptedContents,
    ];

    /// The name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::PhonesAndKeys => "phones-and-keys",
            Check::FileEncryption => "file-encryption",
            Check::Secrets => "secrets",
            Check::Masters => "masters",
            Check::KeyFiles => "key-files",
            Check::Permissions => "permissions",
            Check::Cryptoperiod => "cryptoperiod",
            Check::Oui => "oui",
            Check::EventLog => "event-log",
            Check::Uploads => "uploads",
            Check::DecryptedContents => "decrypted-contents",
        }
    }
}

/// Everything an audit found, and what it looked at.
pub struct Report {
    /// The published tree audited.
    pub tree: PathBuf,
    /// The vault.
    pub vault: PathBuf,
    /// The uploads directory, if one was audited.
    pub uploads: Option<PathBuf>,
    /// When the audit ran.
    pub generated_at: Timestamp,
    /// The instant cryptoperiods are judged at (`--as-of`, or `generated_at`).
    pub as_of: Timestamp,
    /// Checks that did not run, each with why.
    pub skipped: BTreeMap<Check, String>,
    /// Phones known from the tree, the phones list and the vault.
    pub phones: usize,
    /// Files of the tree looked at.
    pub files: usize,
    /// Uploaded files looked at.
    pub uploaded_files: usize,
    findings: Vec<Finding>,
}

impl Report {
    /// A report of `findings` (put in report order here).
    pub fn new(
        tree: &Path,
        vault: &Path,
        uploads: Option<&Path>,
        generated_at: Timestamp,
        as_of: Timestamp,
        mut findings: Vec<Finding>,
    ) -> Report {
        findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        findings.dedup();
        Report {
            tree: tree.to_owned(),
            vault: vault.to_owned(),
            uploads: uploads.map(Path::to_owned),
            generated_at,
            as_of,
            skipped: BTreeMap::new(),
            phones: 0,
            files: 0,
            uploaded_files: 0,
            findings,
        }
    }

    /// The checks that ran, in report order.
    pub fn checks_run(&self) -> impl Iterator<Item = Check> + '_ {
        Check::ALL
            .into_iter()
            .filter(|c| !self.skipped.contains_key(c))
    }

    /// The findings, in report order: by severity, code, phone and file.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// How many findings have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity() == severity)
            .count()
    }

    /// How many findings make `--strict` fail.
    pub fn strict_failures(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity().fails_strict())
            .count()
    }

    /// The `polyseal-audit/1` JSON document, pretty-printed, with a final newline.
    pub fn to_json(&self) -> String {
        let report = JsonReport {
            schema: SCHEMA,
            tree: self.tree.display().to_string(),
            vault: self.vault.display().to_string(),
            uploads: self.uploads.as_ref().map(|p| p.display().to_string()),
            generated_at: self.generated_at.to_string(),
            as_of: self.as_of.to_string(),
            checks: JsonChecks {
                run: self.checks_run().map(Check::as_str).collect(),
                skipped: self
                    .skipped
                    .iter()
                    .map(|(check, reason)| JsonSkipped {
                        check: check.as_str(),
                        reason,
                    })
                    .collect(),
            },
            summary: JsonSummary {
                phones: self.phones,
                files: self.files,
                uploads: self.uploaded_files,
                findings: JsonCounts {
                    error: self.count(Severity::Error),
                    warning: self.count(Severity::Warning),
                    info: self.count(Severity::Info),
                },
            },
            findings: self
                .findings
                .iter()
                .map(|f| JsonFinding {
                    code: f.code.as_str(),
                    severity: f.severity().as_str(),
                    mac: f.mac.map(|m| m.to_string()),
                    file: f.file.as_ref().map(|p| p.display().to_string()),
                    message: &f.message,
                    fix: &f.fix,
                })
                .collect(),
        };
        // Serialising plain strings and numbers cannot fail.
        let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
        text.push('\n');
        text
    }
}

// The JSON schema, field by field in the order printed (docs/AUDIT.md).

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    tree: String,
    vault: String,
    uploads: Option<String>,
    generated_at: String,
    as_of: String,
    checks: JsonChecks<'a>,
    summary: JsonSummary,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonChecks<'a> {
    run: Vec<&'static str>,
    skipped: Vec<JsonSkipped<'a>>,
}

#[derive(Serialize)]
struct JsonSkipped<'a> {
    check: &'static str,
    reason: &'a str,
}

#[derive(Serialize)]
struct JsonSummary {
    phones: usize,
    files: usize,
    uploads: usize,
    findings: JsonCounts,
}

#[derive(Serialize)]
struct JsonCounts {
    error: usize,
    warning: usize,
    info: usize,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    code: &'static str,
    severity: &'static str,
    mac: Option<String>,
    file: Option<String>,
    message: &'a str,
    fix: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/AUDIT.md is the contract with compliance officers and tools: every code, its
    /// severity and every check must be in it.
    #[test]
    fn every_code_and_check_is_documented() {
        let doc = include_str!("../../../../docs/AUDIT.md");
        for code in Code::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.severity().as_str());
            assert!(doc.contains(&row), "docs/AUDIT.md lacks the row {row:?}");
        }
        for check in Check::ALL {
            let name = format!("`{}`", check.as_str());
            assert!(doc.contains(&name), "docs/AUDIT.md lacks the check {name}");
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Code::ALL.len());
    }
}
