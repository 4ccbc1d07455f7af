//! A real nginx on 127.0.0.1, private to one test: its own prefix, configuration, logs and
//! temporary files, no system file read, stopped on drop and killed by a deadline in any case.

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use polyseal_delivery::NginxConfig;
use rustix::process::{Pid, Signal, kill_process_group};
use tempfile::TempDir;

use crate::{Pki, Server};

/// The nginx binary of Debian's package; `POLYSEAL_NGINX` names another.
const DEFAULT_NGINX: &str = "/usr/sbin/nginx";
/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a dropped server may take to close its port once killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many free ports to try when another process takes the one picked first.
const PORT_ATTEMPTS: usize = 5;

/// Starts nginx for tests.
///
/// nginx runs as a single process (`master_process off`, `daemon off`) in its own process
/// group, under `timeout`, which kills it when its lifetime is over even if the test process
/// dies without running destructors. [`Running`] kills it on drop and waits until its port is
/// closed.
///
/// ```no_run
/// use polyseal_testbed::{Nginx, Pki};
/// let pki = Pki::new();
/// let tree = tempfile::tempdir()?;
/// let nginx = Nginx::start(&pki.nginx_config(tree.path()));
/// println!("serving on port {}", nginx.port());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Nginx {
    binary: PathBuf,
    lifetime: Duration,
}

impl Nginx {
    /// How long a server lives unless given another lifetime: far longer than any test here
    /// needs, short enough that a crashed test leaves no server behind for long.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(120);

    /// nginx with [`Nginx::DEFAULT_LIFETIME`].
    ///
    /// # Panics
    /// If the nginx binary is missing: these tests are never skipped.
    pub fn new() -> Nginx {
        let binary = std::env::var_os("POLYSEAL_NGINX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_NGINX));
        assert!(
            binary.is_file(),
            "nginx is not installed at {} (set POLYSEAL_NGINX to use another binary): install \
             it with `apt-get install -y nginx`; the delivery tests need a real nginx and are \
             never skipped",
            binary.display()
        );
        Nginx {
            binary,
            lifetime: Nginx::DEFAULT_LIFETIME,
        }
    }

    /// The same nginx, killed after `lifetime` at the latest.
    pub fn with_lifetime(self, lifetime: Duration) -> Nginx {
        Nginx { lifetime, ..self }
    }

    /// Starts nginx with `config` rendered to listen on 127.0.0.1 and a free port.
    ///
    /// # Panics
    /// If the configuration does not render, or nginx does not start (the message holds its
    /// error log).
    pub fn start(config: &NginxConfig) -> Running {
        Nginx::new().serve(config)
    }

    /// Like [`Nginx::start`], with this nginx's lifetime.
    ///
    /// # Panics
    /// As [`Nginx::start`].
    pub fn serve(&self, config: &NginxConfig) -> Running {
        self.serve_rendered(|addr| {
            let mut config = config.clone();
            config.listen = Some(addr);
            config
                .render()
                .unwrap_or_else(|e| panic!("the nginx configuration does not render: {e}"))
        })
    }

    /// Starts nginx with the server configuration `render` writes for a listen address
    /// (127.0.0.1 and a free port), such as the output of `polyseal nginx-config --listen`.
    /// `render` is called again with another port if the first is taken meanwhile.
    ///
    /// # Panics
    /// If nginx does not start (the message holds its error log).
    pub fn serve_rendered(&self, mut render: impl FnMut(SocketAddr) -> String) -> Running {
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let addr = free_port();
            let prefix = Prefix::new(&render(addr));
            match self.launch(prefix, addr) {
                Ok(running) => return running,
                Err(log) if log.contains("Address already in use") => last_log = log,
                Err(log) => panic!("nginx did not start:\n{log}"),
            }
        }
        panic!("nginx found no free port in {PORT_ATTEMPTS} attempts:\n{last_log}");
    }

    /// Checks a server configuration with `nginx -t`, returning nginx's complaint.
    pub fn check_rendered(&self, server_config: &str) -> Result<(), String> {
        let prefix = Prefix::new(server_config);
        let output = Command::new(&self.binary)
            .args(prefix.args())
            .arg("-t")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned() + &prefix.error_log())
        }
    }

    /// Runs nginx under `timeout` and waits until it listens; on failure, its error log.
    fn launch(&self, prefix: Prefix, addr: SocketAddr) -> Result<Running, String> {
        let stderr = fs::File::create(prefix.path("stderr.log"))
            .unwrap_or_else(|e| panic!("cannot create nginx's stderr file: {e}"));
        let child = Command::new("timeout")
            .args([
                "--signal=KILL",
                &format!("{}s", self.lifetime.as_secs().max(1)),
            ])
            .arg(&self.binary)
            .args(prefix.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own process group, so that one signal stops timeout and nginx together.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run timeout {}: {e}", self.binary.display()));
        let mut running = Running {
            child,
            addr,
            prefix,
            listening: false,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(addr).is_ok() {
                running.listening = true;
                return Ok(running);
            }
            let exited = running.child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() > deadline {
                let log = running.error_log();
                drop(running);
                return Err(log);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Default for Nginx {
    fn default() -> Nginx {
        Nginx::new()
    }
}

/// A running nginx. Dropping it kills nginx and waits until its port is closed.
pub struct Running {
    child: Child,
    addr: SocketAddr,
    prefix: Prefix,
    /// nginx was seen listening on `addr`: only then does dropping it wait until `addr`
    /// refuses connections (after a failed start another process may hold the port).
    listening: bool,
}

impl Running {
    /// The address nginx listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port nginx listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The server as a client reaches it, trusting `pki`'s server CA.
    pub fn server(&self, pki: &Pki) -> Server {
        Server::new(self.base_url(), pki.server_ca_pem())
    }

    /// What nginx wrote to its error log and standard error so far.
    pub fn error_log(&self) -> String {
        self.prefix.error_log()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The group is timeout's and nginx's alone (process_group(0) above). It may be gone
        // already, when the lifetime ran out.
        let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
        // That reaps timeout, not nginx: nginx, timeout's child, has the signal but exits
        // (closing its port) only when next scheduled, which on a loaded machine can be after
        // timeout was reaped. Wait for that, so that a dropped server no longer listens.
        if self.listening {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while TcpStream::connect(self.addr).is_ok() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// nginx's private prefix: configuration, logs, pid and temporary files.
struct Prefix(TempDir);

impl Prefix {
    /// A prefix whose `nginx.conf` includes `server_config` in its `http` block and nothing
    /// from the system (no mime.types: the server configuration sets `default_type`).
    fn new(server_config: &str) -> Prefix {
        let dir = tempfile::Builder::new()
            .prefix("polyseal-nginx-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create nginx's prefix directory: {e}"));
        let prefix = Prefix(dir);
        let root = prefix.path("");
        let root = root.display();
        let main = format!(
            r#"# polyseal-testbed: a private nginx for one test.
daemon off;
master_process off;
pid "{root}nginx.pid";
error_log "{root}error.log" info;
events {{
    worker_connections 64;
}}
http {{
    access_log "{root}access.log";
    client_body_temp_path "{root}temp/body";
    proxy_temp_path "{root}temp/proxy";
    fastcgi_temp_path "{root}temp/fastcgi";
    uwsgi_temp_path "{root}temp/uwsgi";
    scgi_temp_path "{root}temp/scgi";
    include "{root}server.conf";
}}
"#
        );
        for (name, contents) in [
            ("nginx.conf", main.as_str()),
            ("server.conf", server_config),
        ] {
            fs::write(prefix.path(name), contents)
                .unwrap_or_else(|e| panic!("cannot write nginx's {name}: {e}"));
        }
        fs::create_dir(prefix.path("temp"))
            .unwrap_or_else(|e| panic!("cannot create nginx's temp directory: {e}"));
        prefix
    }

    fn path(&self, name: &str) -> PathBuf {
        // A trailing separator for the empty name, so `{root}name` joins in the templates.
        self.0.path().join(name)
    }

    /// nginx's arguments selecting this prefix and its configuration; `-e` sends even the
    /// errors nginx logs before reading its configuration here, not to the system log.
    fn args(&self) -> Vec<PathBuf> {
        vec![
            "-p".into(),
            self.path(""),
            "-c".into(),
            self.path("nginx.conf"),
            "-e".into(),
            self.path("error.log"),
        ]
    }

    fn error_log(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|name| read_if_present(&self.path(name)))
            .collect::<Vec<_>>()
            .join("")
    }
}

fn read_if_present(path: &Path) -> Option<String> {
    match fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => Some(format!("(cannot read {}: {e})\n", path.display())),
    }
}

/// A port on 127.0.0.1 that nobody listens on right now.
pub(crate) fn free_port() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
}
