//! The exit codes: the one definition that `polyseal --help`, docs/CLI.md and README.md are
//! checked against (the tests below).

/// The class of a command's outcome, which decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitClass {
    /// The command did what it was asked.
    Success,
    /// `audit --strict` found problems.
    Findings,
    /// The command line is wrong (clap's own exit code).
    Usage,
    /// Bad input: a MAC, file, tree, phones list, argument or identity that cannot be used.
    Input,
    /// A file or the vault was altered, or a key does not fit.
    Integrity,
    /// No vault, locked vault, unknown format, unfinished transaction.
    Vault,
    /// A read or write failed.
    Io,
}

impl ExitClass {
    /// Every class, in the order of their codes.
    pub(crate) const ALL: [ExitClass; 7] = [
        ExitClass::Success,
        ExitClass::Findings,
        ExitClass::Usage,
        ExitClass::Input,
        ExitClass::Integrity,
        ExitClass::Vault,
        ExitClass::Io,
    ];

    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        self.describe().0
    }

    /// The class's name in the docs' tables.
    pub(crate) fn name(self) -> &'static str {
        self.describe().1
    }

    /// What the class covers, on one line.
    fn meaning(self) -> &'static str {
        self.describe().2
    }

    fn describe(self) -> (u8, &'static str, &'static str) {
        match self {
            ExitClass::Success => (0, "success", "the command did what it was asked"),
            ExitClass::Findings => (1, "findings", "audit found problems (with --strict)"),
            ExitClass::Usage => (2, "usage", "the command line is wrong"),
            ExitClass::Input => (
                3,
                "bad input",
                "a MAC, file, tree, phones list, argument or identity that cannot be used",
            ),
            ExitClass::Integrity => (
                4,
                "integrity",
                "a file or the vault was altered, or a key does not fit (wrong key, digest \
                 mismatch)",
            ),
            ExitClass::Vault => (
                5,
                "vault",
                "no vault, vault locked by another process, unknown format, unfinished \
                 transaction",
            ),
            ExitClass::Io => (6, "I/O", "a file or directory could not be read or written"),
        }
    }
}

/// The exit-code table at the end of `polyseal --help`.
pub(crate) fn help_text() -> String {
    let mut text = String::from("Exit codes:");
    for class in ExitClass::ALL {
        text.push_str(&format!(
            "\n  {}  {}: {}",
            class.code(),
            class.name(),
            class.meaning()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn codes_are_distinct_and_in_order() {
        let codes: Vec<u8> = ExitClass::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, (0..7).collect::<Vec<u8>>());
    }

    #[test]
    fn docs_cli_md_lists_every_exit_code_with_its_class() {
        let doc = include_str!("../../../docs/CLI.md");
        for class in ExitClass::ALL {
            let row = format!("| {} | {} |", class.code(), class.name());
            assert!(doc.contains(&row), "docs/CLI.md lacks the row {row:?}");
        }
    }

    #[test]
    fn readme_names_every_exit_code_with_its_class() {
        let readme = include_str!("../../../README.md");
        for class in ExitClass::ALL {
            let words = format!("{} {}", class.code(), class.name());
            assert!(readme.contains(&words), "README.md lacks {words:?}");
        }
    }

    #[test]
    fn help_ends_with_every_exit_code() {
        let help = Cli::command().render_long_help().to_string();
        for class in ExitClass::ALL {
            let line = format!("  {}  {}: ", class.code(), class.name());
            assert!(help.contains(&line), "--help lacks {line:?}:\n{help}");
        }
    }

    #[test]
    fn a_usage_error_exits_with_the_usage_code() {
        let error = Cli::try_parse_from(["polyseal", "--no-such-option"])
            .expect_err("an unknown option is a usage error");
        assert_eq!(error.exit_code(), i32::from(ExitClass::Usage.code()));
    }
}
