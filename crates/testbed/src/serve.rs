//! `polyseal serve` for tests: the real binary on a free loopback port, trusting the test
//! device CA, under `timeout` so that it dies when its lifetime is over even if the test
//! process dies without running destructors; stopped with SIGTERM (or killed) on demand, and
//! killed on drop.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tempfile::TempDir;

use crate::nginx::free_port;
use crate::{Pki, Server};

/// How long a server lives at most.
const LIFETIME: Duration = Duration::from_secs(300);
/// How long it may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What to serve: the tree, and optionally uploads, a ledger and more arguments.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// `--uploads DIR`.
    pub uploads: Option<PathBuf>,
    /// `--ledger FILE`.
    pub ledger: Option<PathBuf>,
    /// Further arguments (`--insecure-no-client-cert`).
    pub args: Vec<String>,
    /// Leave `--client-ca` out: the server trusts the Polycom device CA chain bundled with
    /// polyseal, to which no test certificate chains.
    pub bundled_ca: bool,
}

/// A running `polyseal serve`.
pub struct Serve {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Serve {
    /// Starts `binary serve` for `tree` with `pki`'s server certificate and device CA.
    ///
    /// # Panics
    /// If it does not listen within 20 seconds (with its standard error).
    pub fn start(binary: &Path, tree: &Path, pki: &Pki, options: &ServeOptions) -> Serve {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let addr = free_port();
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))
            .unwrap_or_else(|e| panic!("stderr file: {e}"));
        let mut command = Command::new("timeout");
        command
            .args(["--signal=KILL", &format!("{}s", LIFETIME.as_secs())])
            .arg(binary)
            .arg("serve")
            .arg("--tree")
            .arg(tree)
            .arg("--cert")
            .arg(pki.server_cert_path())
            .arg("--key")
            .arg(pki.server_key_path())
            .arg("--listen")
            .arg(addr.to_string());
        let insecure = options
            .args
            .iter()
            .any(|a| a == "--insecure-no-client-cert");
        if !insecure && !options.bundled_ca {
            command.arg("--client-ca").arg(pki.device_ca_path());
        }
        if let Some(uploads) = &options.uploads {
            command.arg("--uploads").arg(uploads);
        }
        if let Some(ledger) = &options.ledger {
            command.arg("--ledger").arg(ledger);
        }
        command
            .args(&options.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        use std::os::unix::process::CommandExt as _;
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `timeout {} serve`: {e}", binary.display()));
        let mut serve = Serve { child, addr, dir };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            let exited = serve.child.try_wait().ok().flatten().is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "polyseal serve did not start: {}",
                serve.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
        serve
    }

    /// The server as clients reach it.
    pub fn server(&self, pki: &Pki) -> Server {
        Server::new(format!("https://{}", self.addr), pki.server_ca_pem())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it printed on standard error.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Sends SIGTERM to polyseal (not to `timeout`) and waits for it; returns how long it took
    /// and polyseal's exit status as `timeout` passes it on.
    pub fn terminate(&mut self) -> (Duration, ExitStatus) {
        let started = Instant::now();
        if let Some(polyseal) = self.polyseal_pid() {
            let _ = kill_process(polyseal, Signal::TERM);
        }
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for serve: {e}"));
        (started.elapsed(), status)
    }

    /// Sends SIGTERM to polyseal now and waits for it on another thread: the handle gives
    /// what [`Serve::terminate`] gives.
    pub fn terminate_later(&mut self) -> thread::JoinHandle<(Duration, ExitStatus)> {
        let started = Instant::now();
        if let Some(polyseal) = self.polyseal_pid() {
            let _ = kill_process(polyseal, Signal::TERM);
        }
        let pid = self.child.id();
        thread::spawn(move || {
            // `timeout` passes polyseal's status on; wait for it by pid (the Child stays with
            // its owner, which reaps it on drop).
            let status = wait_for(pid);
            (started.elapsed(), status)
        })
    }

    /// Kills polyseal at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
    }

    /// polyseal's pid: `timeout`'s only child.
    fn polyseal_pid(&self) -> Option<Pid> {
        let children = std::fs::read_to_string(format!(
            "/proc/{}/task/{}/children",
            self.child.id(),
            self.child.id()
        ))
        .ok()?;
        let pid = children.split_whitespace().next()?.parse::<i32>().ok()?;
        Pid::from_raw(pid)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for process `pid` (a child of this process) and returns its status.
fn wait_for(pid: u32) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt as _;
    let pid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    match rustix::process::waitpid(pid, rustix::process::WaitOptions::empty()) {
        Ok(Some((_, status))) => ExitStatus::from_raw(status.as_raw()),
        _ => ExitStatus::from_raw(-1),
    }
}
