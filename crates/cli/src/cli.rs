//! The command line, as clap sees it. Names here are fixed: docs and scripts rely on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The end of `polyseal --help`: the exit codes, then examples.
fn top_level_help() -> String {
    format!(
        "{}\n\nExamples:\n  polyseal init --recipient ~/.config/polyseal/identity.txt --label ops\n  \
         polyseal publish --src provisioning/ --out /srv/polycom\n  \
         polyseal audit --tree /srv/polycom --strict",
        crate::exit_code::help_text()
    )
}

/// Encrypt Polycom phone configuration with a key per phone, keep every key in an age-sealed
/// vault, hand each phone its key over TLS, rotate keys without bricking phones, and show
/// auditors which MAC has which key.
#[derive(Parser, Debug)]
#[command(name = "polyseal", version, after_help = top_level_help(), max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub(crate) struct GlobalArgs {
    /// The vault directory.
    #[arg(long, global = true, env = "POLYSEAL_VAULT", default_value = "vault")]
    pub(crate) vault: PathBuf,
    /// An age identity file (or SSH private key) that opens the vault; repeat it for a vault
    /// that needs several custodians. Without it, the identity comes from POLYSEAL_IDENTITY
    /// (paths, `:`-separated), POLYSEAL_IDENTITY_CMD (a command that prints it) or
    /// POLYSEAL_IDENTITY_DATA (the text); a transit recipient opens with VAULT_TOKEN or
    /// BAO_TOKEN.
    #[arg(long, short = 'i', global = true, action = clap::ArgAction::Append)]
    pub(crate) identity: Vec<PathBuf>,
    /// Refuse an identity file that its group or others may read (by default, a warning).
    #[arg(long, global = true, env = "POLYSEAL_STRICT_PERMS")]
    pub(crate) strict_perms: bool,
    /// How long to wait for another polyseal command that holds the vault's lock, in seconds.
    #[arg(long, global = true, env = "POLYSEAL_LOCK_WAIT", default_value_t = 10)]
    pub(crate) lock_wait: u64,
    /// Print only errors.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Print more detail (each file written).
    #[arg(long, short, global = true)]
    pub(crate) verbose: bool,
    /// Colour in output: auto (only on a terminal, and never when NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
}

/// When to colour output.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create a vault sealed to its recipients (any one opens it, or k of n with --threshold).
    #[command(
        after_help = "Examples:\n  polyseal init --recipient ~/.config/polyseal/identity.txt --label ops\n  polyseal init --recipient age1… --cryptoperiod-days 365 --key-timing next-boot\n  polyseal init --threshold 2 --recipient alice.pub --recipient bob.pub --recipient carol.pub\n  polyseal init --recipient vault-transit:https://bao:8200/v1/transit/keys/polyseal"
    )]
    Init(InitArgs),
    /// Make, list, show and change phones' keys.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  polyseal keys add 0004f2a10001\n  polyseal keys list --format csv > inventory.csv\n  polyseal keys state 0004f2a10001 compromised"
    )]
    Keys(KeysCommand),
    /// Write plaintext bootstrap files (`<mac>-key.cfg`) that hand phones their active key.
    #[command(
        after_help = "Examples:\n  polyseal bootstrap 0004f2a10001 --out /srv/polycom\n  polyseal bootstrap --all --out staging/"
    )]
    Bootstrap(BootstrapArgs),
    /// Encrypt one configuration file with a phone's active key.
    #[command(
        after_help = "Examples:\n  polyseal encrypt --mac 0004f2a10001 0004f2a10001-sip.cfg -o out/0004f2a10001-sip.cfg"
    )]
    Encrypt(EncryptArgs),
    /// Decrypt one configuration file; the phone is found from the header's KeyDesc.
    #[command(
        after_help = "Examples:\n  polyseal decrypt out/0004f2a10001-sip.cfg\n  polyseal decrypt uploads/0004f2a10001-phone.cfg -o phone.cfg"
    )]
    Decrypt(DecryptArgs),
    /// Show encrypted files' headers (KeyDesc, digest); needs no identity.
    #[command(
        after_help = "Examples:\n  polyseal inspect out/*.cfg\n  polyseal inspect --format json out/0004f2a10001-sip.cfg"
    )]
    Inspect(InspectArgs),
    /// Publish a provisioning tree: a key per phone, bootstrap files, encrypted per-phone files.
    #[command(
        after_help = "Examples:\n  polyseal publish --src provisioning/ --out /srv/polycom\n  polyseal publish --src provisioning/ --out /srv/polycom --dry-run\n  polyseal -v publish --src provisioning/ --out /srv/polycom --phones phones.csv"
    )]
    Publish(PublishArgs),
    /// Rotate phones to a new key generation without bricking them.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  polyseal rotate start --all --uploads /srv/polycom-uploads --src provisioning/ --out /srv/polycom\n  polyseal rotate confirm --all --uploads /srv/polycom-uploads\n  polyseal rotate finish --all --src provisioning/ --out /srv/polycom"
    )]
    Rotate(RotateCommand),
    /// Check a published tree against the vault and report problems for compliance.
    #[command(
        after_help = "Examples:\n  polyseal audit --tree /srv/polycom\n  polyseal audit --tree /srv/polycom --strict --format json > audit.json\n  polyseal audit --tree /srv/polycom --uploads /srv/polycom-uploads --as-of 2026-12-31T00:00:00Z"
    )]
    Audit(AuditArgs),
    /// Write the evidence pack an assessor files: index.html, report.json and inventory.csv
    /// (docs/COMPLIANCE.md); needs no identity.
    #[command(
        after_help = "Examples:\n  polyseal report --out evidence/2026-q4 --tree /srv/polycom --as-of 2026-12-31T23:59:59Z"
    )]
    Report(ReportArgs),
    /// Record a key custodian's acknowledgement of their responsibilities (PCI DSS 3.7.8).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  polyseal custodians acknowledge --label ops --identity ~/.config/polyseal/identity.txt"
    )]
    Custodians(CustodiansCommand),
    /// List, add and remove who can open the vault.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  polyseal recipients list\n  polyseal recipients add age1… --label backup\n  polyseal recipients remove backup"
    )]
    Recipients(RecipientsCommand),
    /// Show or verify the vault's tamper-evident event log.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  polyseal log show\n  polyseal log verify")]
    Log(LogCommand),
    /// Print an nginx server block that serves a published tree over TLS, each phone's files
    /// only to the client certificate of its MAC (docs/DELIVERY.md).
    #[command(
        after_help = "Examples:\n  polyseal nginx-config --tree /srv/polycom --cert server.pem --key server.key --client-ca ca.pem"
    )]
    NginxConfig(NginxConfigArgs),
    /// Serve a published tree over HTTPS yourself: each phone's files only to the client
    /// certificate of its MAC, uploads, and a ledger of every request; needs no identity
    /// (docs/DELIVERY.md).
    #[command(
        after_help = "Examples:\n  polyseal serve --tree /srv/polycom --cert server.pem --key server.key\n  polyseal serve --tree out --cert s.pem --key s.key --uploads up --ledger ledger.jsonl"
    )]
    Serve(ServeArgs),
    /// What every phone did, from serve's ledger or nginx's access log: one row per phone with
    /// its last boot and one health (reboot-loop, refused, key-not-taken, silent, never-seen,
    /// ok); needs no identity (docs/DELIVERY.md).
    #[command(
        after_help = "Examples:\n  polyseal status --ledger /var/lib/polyseal/ledger.jsonl\n  polyseal status --nginx-log /var/log/nginx/polyseal.log --format json"
    )]
    Status(StatusArgs),
    /// Show or set when the fleet's firmware applies a new key (immediate or next-boot),
    /// which decides how `rotate start` serves phones (docs/ROTATION.md).
    #[command(after_help = "Examples:\n  polyseal key-timing\n  polyseal key-timing next-boot")]
    KeyTiming(KeyTimingArgs),
    /// Show, set or probe the byte layout of the fleet's encrypted files: where the IV is,
    /// which digest, padding, body encoding and line ending (docs/FORMAT.md, "Layouts").
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  polyseal format show\n  polyseal format probe uploads/0004f2a10001-phone.cfg --mac 0004f2a10001\n  polyseal format probe phone.cfg --key-string - < key.txt\n  polyseal format set --i-accept-the-risk iv=zero padding=zero"
    )]
    Format(FormatCommand),
    /// Move a fleet onto encryption (from plaintext, or onto a new layout) in waves: start,
    /// learn the layout from the canaries, advance wave by wave, abort a wave that loops
    /// (docs/ROLLOUT.md).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  polyseal rollout start --canary 0004f2a10001 --src src --out /srv/polycom\n  polyseal rollout learn --uploads /srv/polycom-uploads\n  polyseal rollout advance --ledger ledger.jsonl --src src --out /srv/polycom\n  polyseal rollout status --ledger ledger.jsonl"
    )]
    Rollout(RolloutCommand),
    /// Upgrade a vault made by an older polyseal to this one's format, every key kept; needs
    /// the identity (docs/VAULT.md, "Upgrading").
    #[command(
        after_help = "Examples:\n  polyseal upgrade --vault /etc/polyseal/vault --identity ~/.config/polyseal/identity.txt"
    )]
    Upgrade(UpgradeArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  polyseal completions bash > /etc/bash_completion.d/polyseal"
    )]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one per command with --out.
    #[command(
        after_help = "Examples:\n  polyseal man | man -l -\n  polyseal man --out /usr/local/share/man/man1"
    )]
    Man(ManArgs),
}

#[derive(Args, Debug)]
pub(crate) struct InitArgs {
    /// A recipient: an age public key (`age1…`), an SSH public key (`ssh-ed25519 …`,
    /// `ssh-rsa …`), a file holding one (an identity file's public key comments count), or a
    /// transit key (`vault-transit:https://HOST:8200/v1/transit/keys/NAME`). Repeatable.
    #[arg(long, required = true, action = clap::ArgAction::Append)]
    pub(crate) recipient: Vec<String>,
    /// A name for each recipient, paired in order, shown in listings and in errors. Without
    /// it the recipients are `admin`, `admin-2`, `admin-3`, ….
    #[arg(long, action = clap::ArgAction::Append)]
    pub(crate) label: Vec<String>,
    /// How many recipients must take part to open the vault (k of n; default 1: any one).
    /// The data key is split with Shamir's scheme, one share per recipient.
    #[arg(long, default_value_t = 1)]
    pub(crate) threshold: usize,
    /// KeyDesc template; must contain {mac} and {generation}.
    #[arg(long, default_value = "{mac}-g{generation}")]
    pub(crate) key_desc_template: String,
    /// Cryptoperiod in days: audit reports active keys older than this.
    #[arg(long)]
    pub(crate) cryptoperiod_days: Option<u32>,
    /// When the fleet's firmware applies a new key; it decides how a rotation serves phones
    /// (docs/ROTATION.md). Change it later with `polyseal key-timing`.
    #[arg(long, value_enum, default_value_t = KeyTimingArg::Immediate)]
    pub(crate) key_timing: KeyTimingArg,
}

/// When the fleet's firmware applies a key it has just read.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyTimingArg {
    /// At once: a rotating phone is served its files under the new key from `rotate start`.
    Immediate,
    /// At its next boot: a rotating phone is served its per-phone files in plaintext
    /// (owner-only, behind the per-MAC TLS rule, like its key file) until it proves it holds
    /// the new key.
    NextBoot,
}

impl From<KeyTimingArg> for polyseal_vault::KeyTiming {
    fn from(arg: KeyTimingArg) -> polyseal_vault::KeyTiming {
        match arg {
            KeyTimingArg::Immediate => polyseal_vault::KeyTiming::Immediate,
            KeyTimingArg::NextBoot => polyseal_vault::KeyTiming::NextBoot,
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct KeyTimingArgs {
    /// The new timing; without it, the current one is printed.
    #[arg(value_enum)]
    pub(crate) timing: Option<KeyTimingArg>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum FormatCommand {
    /// Print the vault's layout on one line (`iv=… digest=… padding=… body=… eol=…`); needs
    /// no identity.
    #[command(after_help = "Examples:\n  polyseal format show")]
    Show,
    /// Store a layout in the vault, each change an event; dimensions not named keep their
    /// value. A layout no phone has shown puts every phone that cannot read it in a reboot
    /// loop, so this asks for --i-accept-the-risk; needs the identity.
    #[command(
        after_help = "Examples:\n  polyseal format set --i-accept-the-risk iv=zero padding=zero\n  polyseal format set --i-accept-the-risk digest=sha1"
    )]
    Set(FormatSetArgs),
    /// Print each layout in which every file decrypts with its key (one per line, as `format
    /// show` prints it): exit 0 when exactly one fits, 4 when none does, 3 when several do.
    #[command(
        after_help = "Examples:\n  polyseal format probe uploads/0004f2a10001-phone.cfg --mac 0004f2a10001\n  polyseal format probe phone.cfg --key-string - < key.txt\n  polyseal format probe phone.cfg --mac 0004f2a10001 --plaintext phone-plain.cfg"
    )]
    Probe(FormatProbeArgs),
    /// Probe every encrypted upload of the phones (their override files, encrypted by their
    /// own firmware under the key the vault gave them) and print the one layout they all fit;
    /// with --set, store it (evidence, not a guess: no risk to accept); needs the identity.
    #[command(
        after_help = "Examples:\n  polyseal format learn --uploads /srv/polycom-uploads\n  polyseal format learn --uploads /srv/polycom-uploads --mac 0004f2a10001 --set"
    )]
    Learn(FormatLearnArgs),
}

#[derive(Args, Debug)]
pub(crate) struct FormatLearnArgs {
    /// The directory phones upload into (`serve --uploads`, nginx's WebDAV root).
    #[arg(long)]
    pub(crate) uploads: PathBuf,
    /// Only these phones' uploads (default: every phone's).
    #[arg(long = "mac")]
    pub(crate) macs: Vec<String>,
    /// Store the layout learned in the vault.
    #[arg(long)]
    pub(crate) set: bool,
}

#[derive(Args, Debug)]
pub(crate) struct FormatSetArgs {
    /// `name=value` pairs: iv=prefix|zero|header digest=sha256|sha1|md5 padding=pkcs7|zero
    /// body=raw|base64 eol=lf|crlf.
    #[arg(required = true)]
    pub(crate) assignments: Vec<String>,
    /// Set it although no phone's file has shown it (`format probe`, `format learn`).
    #[arg(long)]
    pub(crate) i_accept_the_risk: bool,
}

#[derive(Args, Debug)]
pub(crate) struct FormatProbeArgs {
    /// Encrypted files made by phones (their uploads), all under one key.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// The phone whose key opens them (from the vault, by the files' KeyDesc; needs the
    /// identity).
    #[arg(
        long,
        required_unless_present = "key_string",
        conflicts_with = "key_string"
    )]
    pub(crate) mac: Option<String>,
    /// The key string (`Crypt=1;KeyDesc=…;Key=…;`, as `keys show --reveal` prints it), or `-`
    /// to read it from standard input, out of the process list; needs no vault.
    #[arg(long)]
    pub(crate) key_string: Option<String>,
    /// The plaintext the files must decrypt to.
    #[arg(long)]
    pub(crate) plaintext: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Make an active key for each phone that has none.
    #[command(
        after_help = "Examples:\n  polyseal keys add 0004f2a10001 0004F2-A1-00-02\n  polyseal keys add --from phones.csv"
    )]
    Add(KeysAddArgs),
    /// List every phone's key generations, states and ages; needs no identity.
    #[command(after_help = "Examples:\n  polyseal keys list\n  polyseal keys list --format json")]
    List(KeysListArgs),
    /// Print a phone's key string (refuses without --reveal).
    #[command(after_help = "Examples:\n  polyseal keys show 0004f2a10001 --reveal")]
    Show(KeysShowArgs),
    /// Change the state of a phone's key generation.
    #[command(
        after_help = "Examples:\n  polyseal keys state 0004f2a10001 compromised\n  polyseal keys state 0004f2a10001 destroyed --generation 1"
    )]
    State(KeysStateArgs),
}

#[derive(Args, Debug)]
pub(crate) struct KeysAddArgs {
    /// Phones' MACs, in any common spelling.
    #[arg(required_unless_present = "from")]
    pub(crate) macs: Vec<String>,
    /// Read MACs from a file (`-` for standard input): CSV `mac[,label]` or one MAC a line.
    #[arg(long, conflicts_with = "macs")]
    pub(crate) from: Option<PathBuf>,
}

/// Output format of listings.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListFormat {
    /// Aligned columns for people.
    Table,
    /// JSON, one document.
    Json,
    /// CSV with a header line.
    Csv,
}

/// Output format of listings that have no CSV form.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableFormat {
    /// Aligned columns for people.
    Table,
    /// JSON for tools: one document (`log show`: the log's own lines, one event each).
    Json,
}

impl From<TableFormat> for ListFormat {
    fn from(format: TableFormat) -> ListFormat {
        match format {
            TableFormat::Table => ListFormat::Table,
            TableFormat::Json => ListFormat::Json,
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct KeysListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub(crate) format: ListFormat,
}

#[derive(Args, Debug)]
pub(crate) struct KeysShowArgs {
    /// The phone.
    pub(crate) mac: String,
    /// Really print the key string (it is a secret).
    #[arg(long)]
    pub(crate) reveal: bool,
    /// Which generation (default: the active one).
    #[arg(long)]
    pub(crate) generation: Option<u32>,
}

/// A state an operator can put a key in (pre-active is only ever made by polyseal).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetState {
    /// Encrypts and decrypts.
    Active,
    /// No longer encrypts; still decrypts old files.
    Deactivated,
    /// Known or suspected to be exposed.
    Compromised,
    /// Key bytes erased; metadata kept.
    Destroyed,
}

#[derive(Args, Debug)]
pub(crate) struct KeysStateArgs {
    /// The phone.
    pub(crate) mac: String,
    /// The new state.
    #[arg(value_enum)]
    pub(crate) state: TargetState,
    /// Which generation (default: the active one, or else the newest).
    #[arg(long)]
    pub(crate) generation: Option<u32>,
}

#[derive(Args, Debug)]
pub(crate) struct BootstrapArgs {
    /// Phones' MACs.
    #[arg(required_unless_present = "all")]
    pub(crate) macs: Vec<String>,
    /// Every phone with an active key.
    #[arg(long, conflicts_with = "macs")]
    pub(crate) all: bool,
    /// Directory to write the files into (created if missing).
    #[arg(long)]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) key_file: KeyFileArg,
}

/// The key file's name pattern, shared by every command that writes or finds key files.
#[derive(Args, Debug, Clone)]
pub(crate) struct KeyFileArg {
    /// Name of each phone's key file; `[PHONE_MAC_ADDRESS]` stands for the MAC. The master's
    /// CONFIG_FILES must list it.
    #[arg(long = "key-file", default_value = KeyFileArg::DEFAULT)]
    pub(crate) pattern: String,
}

impl KeyFileArg {
    /// The key file's name unless `--key-file` says otherwise.
    pub(crate) const DEFAULT: &str = "[PHONE_MAC_ADDRESS]-key.cfg";
}

#[derive(Args, Debug)]
pub(crate) struct EncryptArgs {
    /// The phone whose active key encrypts.
    #[arg(long)]
    pub(crate) mac: String,
    /// The plaintext file, or `-` for standard input.
    pub(crate) input: PathBuf,
    /// Where to write (default: standard output; `-` too).
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct DecryptArgs {
    /// The phone (default: found from the file's KeyDesc).
    #[arg(long)]
    pub(crate) mac: Option<String>,
    /// The encrypted file, or `-` for standard input.
    pub(crate) input: PathBuf,
    /// Where to write (default: standard output; `-` too).
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Files to inspect.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub(crate) format: TableFormat,
}

#[derive(Args, Debug)]
pub(crate) struct PublishArgs {
    /// The source tree: masters, shared files, per-phone files named with the MAC, in plaintext.
    #[arg(long)]
    pub(crate) src: PathBuf,
    /// The published tree the web server serves. Replaced as a whole, never half-written.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// More phones: CSV `mac[,label]` or one MAC a line.
    #[arg(long)]
    pub(crate) phones: Option<PathBuf>,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Publish even if a shared or master file carries a secret (served in plaintext to all).
    #[arg(long)]
    pub(crate) allow_plaintext_secrets: bool,
    /// Publish into an --out that holds files polyseal did not write (a directory in use
    /// before polyseal): they stay where they are, served as they are, except those at a path
    /// the new tree writes, which are replaced. Without it such an --out is refused.
    #[arg(long)]
    pub(crate) adopt_out: bool,
    #[command(flatten)]
    pub(crate) key_file: KeyFileArg,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RotateCommand {
    /// Make generation N+1 pre-active and serve it: the bootstrap of N+1, files under N+1.
    #[command(
        after_help = "Examples:\n  polyseal rotate start 0004f2a10001 --src provisioning/ --out /srv/polycom\n  polyseal rotate start --all --uploads /srv/polycom-uploads --src provisioning/ --out /srv/polycom"
    )]
    Start(RotateStartArgs),
    /// Record that phones hold N+1: explicitly, or from evidence in --uploads.
    #[command(
        after_help = "Examples:\n  polyseal rotate confirm --all --uploads /srv/polycom-uploads\n  polyseal rotate confirm 0004f2a10001"
    )]
    Confirm(RotateConfirmArgs),
    /// Retire N for confirmed phones: N+1 becomes active, N deactivated.
    #[command(
        after_help = "Examples:\n  polyseal rotate finish --all --src provisioning/ --out /srv/polycom"
    )]
    Finish(RotateFinishArgs),
    /// Show each phone's rotation step and since when.
    #[command(
        after_help = "Examples:\n  polyseal rotate status\n  polyseal rotate status --format csv"
    )]
    Status(RotateStatusArgs),
}

#[derive(Args, Debug)]
pub(crate) struct RotateStartArgs {
    /// Phones' MACs.
    #[arg(required_unless_present_any = ["all", "uploads"])]
    pub(crate) macs: Vec<String>,
    /// Every phone in the vault with one active key.
    #[arg(long, conflicts_with = "macs")]
    pub(crate) all: bool,
    /// Directory of files phones uploaded (`<mac>-phone.cfg`, `<mac>-directory.xml`):
    /// rotating phones' uploads are re-encrypted under N+1 (phones read them back).
    #[arg(long)]
    pub(crate) uploads: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) republish: RepublishArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RotateConfirmArgs {
    /// Phones' MACs: confirmed on the operator's word, or (with --uploads) only these.
    #[arg(required_unless_present_any = ["all", "uploads"])]
    pub(crate) macs: Vec<String>,
    /// Every phone with evidence in --uploads.
    #[arg(long, conflicts_with = "macs", requires = "uploads")]
    pub(crate) all: bool,
    /// Directory of files phones uploaded: a file whose header KeyDesc is generation N+1
    /// confirms that phone.
    #[arg(long)]
    pub(crate) uploads: Option<PathBuf>,
    /// The ledger of `polyseal serve`: only uploads it recorded as received over the phone's
    /// own client certificate count as evidence.
    #[arg(long, requires = "uploads")]
    pub(crate) ledger: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct RotateFinishArgs {
    /// Phones' MACs.
    #[arg(required_unless_present = "all")]
    pub(crate) macs: Vec<String>,
    /// Every confirmed phone.
    #[arg(long, conflicts_with = "macs")]
    pub(crate) all: bool,
    #[command(flatten)]
    pub(crate) republish: RepublishArgs,
}

/// Where `rotate start` and `finish` republish the tree.
#[derive(Args, Debug)]
pub(crate) struct RepublishArgs {
    /// The source tree to republish from (with --out).
    #[arg(long, requires = "out")]
    pub(crate) src: Option<PathBuf>,
    /// The published tree to update (with --src).
    #[arg(long, requires = "src")]
    pub(crate) out: Option<PathBuf>,
    /// More phones for republishing: CSV `mac[,label]` or one MAC a line.
    #[arg(long, requires = "src")]
    pub(crate) phones: Option<PathBuf>,
    /// Republish even if a shared or master file carries a secret (as `publish
    /// --allow-plaintext-secrets`).
    #[arg(long, requires = "src")]
    pub(crate) allow_plaintext_secrets: bool,
    /// Name of each phone's key file in the republished tree (as `publish --key-file`).
    #[arg(long = "key-file", requires = "src", default_value = KeyFileArg::DEFAULT)]
    pub(crate) key_file: String,
}

#[derive(Args, Debug)]
pub(crate) struct RotateStatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub(crate) format: ListFormat,
    /// The ledger of `polyseal serve`: each phone's health, and the generations it was served
    /// and uploads under, beside the vault's view.
    #[arg(long)]
    pub(crate) ledger: Option<PathBuf>,
}

/// Output format of the audit report.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    /// For people.
    Table,
    /// The documented, stable JSON schema (docs/AUDIT.md).
    Json,
    /// One finding a line: severity, code, mac, file, message, fix (docs/AUDIT.md).
    Csv,
}

#[derive(Args, Debug)]
pub(crate) struct UpgradeArgs {
    /// A head of the vault's log recorded before (`head SEQ HEX`, as `log verify` prints it):
    /// the upgrade goes on only if the log still holds it (docs/VAULT.md, "Upgrading").
    #[arg(long, value_name = "HEAD")]
    pub(crate) expect_head: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum CustodiansCommand {
    /// Record that the custodian holding recipient LABEL's identity accepts the
    /// responsibilities of a key custodian; the identity must be that recipient's (a challenge
    /// sealed to it alone must open), and the event is logged.
    #[command(
        after_help = "Examples:\n  polyseal custodians acknowledge --label ops --identity ~/.config/polyseal/identity.txt"
    )]
    Acknowledge(AcknowledgeArgs),
}

#[derive(Args, Debug)]
pub(crate) struct AcknowledgeArgs {
    /// The recipient's label (`polyseal recipients list`).
    #[arg(long)]
    pub(crate) label: String,
}

#[derive(Args, Debug)]
pub(crate) struct ReportArgs {
    /// Where to write index.html, report.json and inventory.csv: a new or empty directory, or
    /// one holding an earlier report (replaced).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// The published tree to audit as part of the report.
    #[arg(long)]
    pub(crate) tree: Option<PathBuf>,
    /// Judge as of this RFC 3339 UTC time (the end of the audit period) instead of now.
    #[arg(long, value_name = "TIME")]
    pub(crate) as_of: Option<String>,
    /// The provisioning ledger of `polyseal serve`: the fleet's health in the audit trail, and
    /// phones in a reboot loop or refused their files as findings.
    #[arg(long, value_name = "FILE")]
    pub(crate) ledger: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key_file: KeyFileArg,
}

#[derive(Args, Debug)]
pub(crate) struct AuditArgs {
    /// The published tree to audit.
    #[arg(long)]
    pub(crate) tree: PathBuf,
    /// Directory of files phones uploaded, as evidence of the key each phone holds.
    #[arg(long)]
    pub(crate) uploads: Option<PathBuf>,
    /// Phones that should exist: CSV `mac[,label]` or one MAC a line.
    #[arg(long)]
    pub(crate) phones: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub(crate) format: ReportFormat,
    /// Exit with code 1 if there is a finding of severity error or warning (info does not count).
    #[arg(long)]
    pub(crate) strict: bool,
    /// Judge cryptoperiods as of this RFC 3339 UTC time (such as the end of the audit period,
    /// 2026-12-31T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME")]
    pub(crate) as_of: Option<String>,
    #[command(flatten)]
    pub(crate) key_file: KeyFileArg,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RecipientsCommand {
    /// List recipients and their labels; needs no identity.
    #[command(
        after_help = "Examples:\n  polyseal recipients list\n  polyseal recipients list --format json"
    )]
    List(RecipientsListArgs),
    /// Add a recipient (re-seals the data key to all).
    #[command(
        after_help = "Examples:\n  polyseal recipients add age1… --label backup\n  polyseal recipients add ~/.ssh/id_ed25519.pub --label alice"
    )]
    Add(RecipientAddArgs),
    /// Remove a recipient (rotates the data key and re-seals every record; with a threshold,
    /// splits the same data key anew).
    #[command(
        after_help = "Examples:\n  polyseal recipients remove backup\n  polyseal recipients remove backup --rotate-keys"
    )]
    Remove(RecipientRemoveArgs),
    /// Set how many recipients must take part to open the vault (k of n), or print it. The
    /// same data key is split anew; no phone key is re-sealed.
    #[command(
        after_help = "Examples:\n  polyseal recipients threshold\n  polyseal recipients threshold 2 -i alice.txt -i bob.txt"
    )]
    Threshold(RecipientsThresholdArgs),
    /// Seal the same data key anew to every recipient: after a transit key's rotation, its
    /// stanza is then under the key's latest version.
    #[command(
        after_help = "Examples:\n  polyseal recipients rewrap\n  polyseal recipients rewrap -i alice.txt -i bob.txt"
    )]
    Rewrap,
}

#[derive(Args, Debug)]
pub(crate) struct RecipientsThresholdArgs {
    /// The new threshold (1 up to the number of recipients); without it, the current one is
    /// printed.
    pub(crate) threshold: Option<usize>,
}

#[derive(Args, Debug)]
pub(crate) struct RecipientsListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub(crate) format: TableFormat,
}

#[derive(Args, Debug)]
pub(crate) struct RecipientAddArgs {
    /// An age public key, an SSH public key, a file holding one, or a transit key
    /// (`vault-transit:URL`).
    pub(crate) recipient: String,
    /// Its label.
    #[arg(long)]
    pub(crate) label: String,
}

#[derive(Args, Debug)]
pub(crate) struct RecipientRemoveArgs {
    /// The label of the recipient to remove.
    pub(crate) label: String,
    /// Also start a rotation of every phone's key (as `rotate start --all`): whoever holds the
    /// removed identity may already hold every key.
    #[arg(long)]
    pub(crate) rotate_keys: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum LogCommand {
    /// Print the event log.
    #[command(after_help = "Examples:\n  polyseal log show\n  polyseal log show --format json")]
    Show(LogShowArgs),
    /// Check the hash chain and that the records agree with it; prints the head hash.
    #[command(
        after_help = "Examples:\n  polyseal log verify\n  polyseal log verify --expect-head 42:3f1c…"
    )]
    Verify(LogVerifyArgs),
}

#[derive(Args, Debug)]
pub(crate) struct LogShowArgs {
    /// Output format: `json` prints the log's own lines, one JSON event a line, as they are
    /// hash-chained (docs/VAULT.md).
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub(crate) format: TableFormat,
    /// The same as `--format json` (kept for scripts written before `--format`).
    #[arg(long, hide = true, conflicts_with = "format")]
    pub(crate) json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct LogVerifyArgs {
    /// A head an earlier `log verify` printed, kept outside the vault (its line `head SEQ HEX`,
    /// or `SEQ:HEX`): the log must still hold that event with that hash (exit 4 if cut,
    /// rewritten or restored from before).
    #[arg(long, value_name = "HEAD")]
    pub(crate) expect_head: Option<String>,
}

/// What a provisioning server serves, and with which certificates: `nginx-config` and `serve`.
#[derive(Args, Debug)]
pub(crate) struct ServedTree {
    /// The published tree to serve (`publish --out`).
    #[arg(long)]
    pub(crate) tree: PathBuf,
    /// The server's TLS certificate chain (PEM).
    #[arg(long)]
    pub(crate) cert: PathBuf,
    /// The server's TLS private key (PEM); must not lie inside a served directory.
    #[arg(long)]
    pub(crate) key: PathBuf,
    /// The CA that issues the phones' client certificates: each certificate gets only its own
    /// MAC's files. Default: the Polycom device CA chain bundled with polyseal (`nginx-config`
    /// writes it as polycom-device-ca.pem beside --cert).
    #[arg(long, value_name = "FILE")]
    pub(crate) client_ca: Option<PathBuf>,
    /// Where phones' uploads (HTTP PUT of overrides, directories, logs) are stored and read
    /// back from; never inside the tree. Without it, uploads are refused.
    #[arg(long)]
    pub(crate) uploads: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct NginxConfigArgs {
    #[command(flatten)]
    pub(crate) served: ServedTree,
    /// The server's name (nginx `server_name`).
    #[arg(long)]
    pub(crate) server_name: Option<String>,
    /// Serve without client certificates: ANY client gets every phone's key file. Only for a
    /// network where every client is trusted.
    #[arg(long, conflicts_with = "client_ca")]
    pub(crate) no_client_cert: bool,
    /// Address and port to listen on (default: nginx's, 443 on all addresses).
    #[arg(long)]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// Also log every request to this file in polyseal's format (one JSON line each), for
    /// `polyseal status --nginx-log`.
    #[arg(long, value_name = "FILE")]
    pub(crate) access_log: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) served: ServedTree,
    /// Serve without client certificates: ANY client gets every phone's key file. Only for a
    /// network where every client is trusted; logged loudly.
    #[arg(long, conflicts_with = "client_ca")]
    pub(crate) insecure_no_client_cert: bool,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:443")]
    pub(crate) listen: std::net::SocketAddr,
    /// Append a line for every request to this file (outside the tree): what `polyseal
    /// status` reads.
    #[arg(long)]
    pub(crate) ledger: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) sources: RequestSourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub(crate) format: TableFormat,
    #[command(flatten)]
    pub(crate) rules: HealthRuleArgs,
}

/// Where the phones' requests are read from.
#[derive(Args, Debug)]
pub(crate) struct RequestSourceArgs {
    /// The ledger `polyseal serve --ledger` writes.
    #[arg(long, required_unless_present = "nginx_log")]
    pub(crate) ledger: Option<PathBuf>,
    /// nginx's access log in polyseal's format (`nginx-config --access-log`).
    #[arg(long, value_name = "FILE")]
    pub(crate) nginx_log: Option<PathBuf>,
}

/// The settings of the health rules (docs/DELIVERY.md, "status").
#[derive(Args, Debug)]
pub(crate) struct HealthRuleArgs {
    /// Judge as of this time (RFC 3339 UTC, `2026-12-31T23:59:59Z`); default now.
    #[arg(long, value_name = "TIME")]
    pub(crate) as_of: Option<String>,
    /// Boot sequences that make a reboot loop…
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..))]
    pub(crate) loop_boots: u16,
    /// …within this many minutes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) loop_minutes: u32,
    /// How often the phones poll, in hours: a phone unheard for twice this is silent.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) poll_hours: u32,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RolloutCommand {
    /// Give every phone its key and keep every per-phone file in plaintext (owner-only,
    /// behind the per-MAC rule), with canaries chosen to go first; refused unless every phone
    /// is told to upload encrypted (sec.encryption.upload.overrides="1"); needs the identity.
    #[command(
        after_help = "Examples:\n  polyseal rollout start --canary 0004f2a10001 --src src --out /srv/polycom\n  polyseal rollout start --canary-count 3 --src src --out /srv/polycom"
    )]
    Start(RolloutStartArgs),
    /// Probe the canaries' encrypted uploads with their keys and confirm the one layout they
    /// fit for this rollout (and the vault); needs the identity.
    #[command(after_help = "Examples:\n  polyseal rollout learn --uploads /srv/polycom-uploads")]
    Learn(RolloutLearnArgs),
    /// Encrypt the next wave's files (the canaries first), only when every phone of the last
    /// wave polled again after its encrypted files and is ok; a reboot loop halts the
    /// rollout; needs the identity.
    #[command(
        after_help = "Examples:\n  polyseal rollout advance --ledger ledger.jsonl --src src --out /srv/polycom\n  polyseal rollout advance --ledger ledger.jsonl --wave 50 --src src --out /srv/polycom\n  polyseal rollout advance --ledger ledger.jsonl --waive 0004f2a10007\n  polyseal rollout advance --nginx-log access.log --src src --out /srv/polycom"
    )]
    Advance(RolloutAdvanceArgs),
    /// Serve the last wave's files in plaintext again, the state before it; needs the
    /// identity.
    #[command(after_help = "Examples:\n  polyseal rollout abort --src src --out /srv/polycom")]
    Abort(RolloutAbortArgs),
    /// Per wave and per phone: its health in the ledger and whether it settled on its
    /// encrypted files; needs no identity.
    #[command(
        after_help = "Examples:\n  polyseal rollout status --ledger ledger.jsonl\n  polyseal rollout status --nginx-log access.log --out /srv/polycom"
    )]
    Status(RolloutStatusArgs),
}

#[derive(Args, Debug)]
pub(crate) struct RolloutStartArgs {
    /// A phone to go first (repeatable).
    #[arg(long = "canary", value_name = "MAC", conflicts_with = "canary_count")]
    pub(crate) canaries: Vec<String>,
    /// How many phones go first, the first in MAC order (default 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) canary_count: Option<u32>,
    #[command(flatten)]
    pub(crate) republish: RepublishArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RolloutLearnArgs {
    /// The directory phones upload into (`serve --uploads`, nginx's WebDAV root).
    #[arg(long)]
    pub(crate) uploads: PathBuf,
    /// The ledger of `polyseal serve`: only uploads it recorded as received over the canary's
    /// own client certificate count.
    #[arg(long)]
    pub(crate) ledger: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct RolloutAdvanceArgs {
    /// The share of the fleet the wave takes, in percent (the first wave is the canaries).
    #[arg(long, value_name = "PERCENT", default_value_t = 25, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub(crate) wave: u8,
    /// A phone of the last wave that is not heard from (unplugged, broken) and must not hold
    /// the next wave (repeatable); named in the vault's events. A phone in a reboot loop
    /// cannot be waived.
    #[arg(long = "waive", value_name = "MAC")]
    pub(crate) waived: Vec<String>,
    #[command(flatten)]
    pub(crate) sources: RequestSourceArgs,
    #[command(flatten)]
    pub(crate) rules: HealthRuleArgs,
    #[command(flatten)]
    pub(crate) republish: RepublishArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RolloutStatusArgs {
    #[command(flatten)]
    pub(crate) status: StatusArgs,
    /// With --nginx-log, whose lines do not say which files were encrypted: the published
    /// tree nginx serves (default: the rollout's, `rollout start --out`).
    #[arg(long, value_name = "OUT")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct RolloutAbortArgs {
    #[command(flatten)]
    pub(crate) republish: RepublishArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ManArgs {
    /// Write one page per command (`polyseal.1`, `polyseal-keys-add.1`, …) into this
    /// directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command and subcommand (clap's own `help` aside), with its full name.
    fn commands(command: &clap::Command, prefix: &str, all: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{prefix} {}", sub.get_name());
            commands(sub, &name, all);
            all.push((name, sub.clone()));
        }
    }

    #[test]
    fn every_commands_help_ends_with_examples_of_itself() {
        let mut all = vec![("polyseal".to_owned(), Cli::command())];
        commands(&Cli::command(), "polyseal", &mut all);
        assert!(all.len() > 25, "found {} commands", all.len());
        for (name, mut command) in all {
            let help = command.render_long_help().to_string();
            let examples = help
                .rsplit_once("Examples:\n")
                .unwrap_or_else(|| panic!("`{name} --help` has no examples:\n{help}"))
                .1;
            for line in examples.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    line.starts_with("  polyseal "),
                    "`{name} --help` ends with something other than examples: {line:?}"
                );
            }
            // A group's examples may show its subcommands; a leaf's show the leaf itself.
            let leaf = name.trim_start_matches("polyseal").trim();
            assert!(
                examples.contains(&format!("polyseal {leaf}")) || name == "polyseal",
                "`{name} --help`'s examples do not use it:\n{examples}"
            );
        }
    }
}
