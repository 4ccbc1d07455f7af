//! A small published tree made by hand with the libraries, as `polyseal publish` will make
//! it: a master listing `[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg`,
//! a plaintext bootstrap file (mode 0600) and an encrypted `-sip.cfg` and contact directory
//! per phone.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Mac, encrypt};
use polyseal_provision::bootstrap_file;
use polyseal_testbed::{Client, Nginx, Pki, Running, Serve, ServeOptions, Server};
use tempfile::TempDir;

/// The master every phone boots from.
pub(crate) const MASTER: &str = r#"<?xml version="1.0" standalone="yes"?>
<APPLICATION APP_FILE_PATH="sip.ld"
             CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"
             CONTACTS_DIRECTORY="contacts" OVERRIDES_DIRECTORY="overrides"
             LOG_FILE_DIRECTORY="logs"/>
"#;

/// The shared file: no secret; its display name loses to each phone's (first occurrence wins).
pub(crate) const SITE: &str = r#"<?xml version="1.0" standalone="yes"?>
<polycomConfig>
  <reg reg.1.displayName="site default" reg.1.server.1.address="pbx.example.com"/>
  <sec sec.encryption.upload.overrides="1"/>
</polycomConfig>
"#;

/// One phone of the tree.
pub(crate) struct TreePhone {
    pub(crate) mac: Mac,
    pub(crate) key: KeyString,
    /// `reg.1.auth.password` in its encrypted `-sip.cfg`.
    pub(crate) password: String,
    /// `reg.1.displayName` in its encrypted `-sip.cfg`.
    pub(crate) display_name: String,
}

/// A published tree and an empty uploads directory.
pub(crate) struct Tree {
    pub(crate) dir: TempDir,
    pub(crate) uploads: TempDir,
    pub(crate) phones: Vec<TreePhone>,
}

impl Tree {
    /// The tree for phones `0004f2000001`, `0004f2000002`… (`count` of them).
    pub(crate) fn publish(count: u32) -> Tree {
        let dir = tempfile::tempdir().expect("temporary tree");
        let uploads = tempfile::tempdir().expect("temporary uploads directory");
        write(dir.path(), "000000000000.cfg", MASTER.as_bytes());
        write(dir.path(), "site.cfg", SITE.as_bytes());
        let phones = (1..=count)
            .map(|n| {
                let mac = Mac::parse(&format!("0004f2{n:06x}")).expect("a Polycom MAC");
                let phone = TreePhone {
                    key: KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate()),
                    password: format!("Secret-{n}-{}", 7919 * n),
                    display_name: format!("Phone {n}"),
                    mac,
                };
                publish_phone(dir.path(), &phone);
                phone
            })
            .collect();
        Tree {
            dir,
            uploads,
            phones,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Writes `phone`'s files again, as [`Tree::publish`] wrote them.
pub(crate) fn republish(tree: &Path, phone: &TreePhone) {
    publish_phone(tree, phone);
}

fn publish_phone(tree: &Path, phone: &TreePhone) {
    let mac = &phone.mac;
    let key_file = format!("{mac}-key.cfg");
    write(tree, &key_file, &bootstrap_file(&phone.key));
    fs::set_permissions(tree.join(&key_file), fs::Permissions::from_mode(0o600))
        .expect("chmod the key file");
    let sip = polyseal_testbed::sip_config(mac, &phone.password, &phone.display_name);
    write(
        tree,
        &format!("{mac}-sip.cfg"),
        &sealed(sip.as_bytes(), &phone.key),
    );
    let directory = br#"<?xml version="1.0" standalone="yes"?>
<directory><item_list><item><fn>Reception</fn><ct>1000</ct></item></item_list></directory>
"#;
    write(
        tree,
        &format!("contacts/{mac}-directory.xml"),
        &sealed(directory, &phone.key),
    );
}

/// `plaintext` encrypted with `key`.
pub(crate) fn sealed(plaintext: &[u8], key: &KeyString) -> Vec<u8> {
    encrypt(plaintext, key).expect("a small file encrypts")
}

/// Writes `contents` at `relative` under `root`, creating directories.
pub(crate) fn write(root: &Path, relative: &str, contents: &[u8]) {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create the tree's directories");
    }
    fs::write(&path, contents).expect("write a tree file");
}

/// Which provisioning server a scenario runs against: the same tests, the same answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// nginx with `polyseal nginx-config`'s configuration.
    Nginx,
    /// `polyseal serve`, with a ledger.
    Serve,
}

/// Both servers, for tests that must hold for each.
pub(crate) const BACKENDS: [Backend; 2] = [Backend::Nginx, Backend::Serve];

/// The server process of a [`Setup`].
pub(crate) enum Provider {
    Nginx(Running),
    Serve(Serve),
}

/// A tree served by a private nginx or `polyseal serve`, with client certificates and uploads.
pub(crate) struct Setup {
    pub(crate) pki: Pki,
    pub(crate) tree: Tree,
    pub(crate) provider: Provider,
    pub(crate) server: Server,
    /// Holds `ledger.jsonl` of `polyseal serve` (outside the tree and the uploads).
    pub(crate) state: TempDir,
}

impl Setup {
    /// [`Tree::publish`]`(phones)`, served by nginx.
    pub(crate) fn new(phones: u32) -> Setup {
        Setup::on(Backend::Nginx, phones)
    }

    /// [`Tree::publish`]`(phones)`, served by `backend`.
    pub(crate) fn on(backend: Backend, phones: u32) -> Setup {
        let pki = Pki::new();
        let tree = Tree::publish(phones);
        let state = tempfile::tempdir().expect("temporary state directory");
        let (provider, server) = match backend {
            Backend::Nginx => {
                let mut config = pki.nginx_config(tree.path());
                config.uploads = Some(tree.uploads.path().to_owned());
                config.access_log = Some(state.path().join("access.log"));
                let nginx = Nginx::start(&config);
                let server = nginx.server(&pki);
                (Provider::Nginx(nginx), server)
            }
            Backend::Serve => {
                let options = ServeOptions {
                    uploads: Some(tree.uploads.path().to_owned()),
                    ledger: Some(state.path().join("ledger.jsonl")),
                    ..ServeOptions::default()
                };
                let serve = Serve::start(super::polyseal_bin(), tree.path(), &pki, &options);
                let server = serve.server(&pki);
                (Provider::Serve(serve), server)
            }
        };
        Setup {
            pki,
            tree,
            provider,
            server,
            state,
        }
    }

    /// The server's log: nginx's error log, or what `polyseal serve` printed.
    pub(crate) fn log(&self) -> String {
        match &self.provider {
            Provider::Nginx(nginx) => nginx.error_log(),
            Provider::Serve(serve) => serve.stderr(),
        }
    }

    /// The address the server listens on.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        match &self.provider {
            Provider::Nginx(nginx) => nginx.addr(),
            Provider::Serve(serve) => serve.addr(),
        }
    }

    /// The ledger `polyseal serve` writes.
    pub(crate) fn ledger(&self) -> std::path::PathBuf {
        self.state.path().join("ledger.jsonl")
    }

    /// The `status` option that reads this server's record of requests: `--ledger FILE` for
    /// `polyseal serve`, `--nginx-log FILE` for nginx.
    pub(crate) fn status_source(&self) -> [String; 2] {
        match &self.provider {
            Provider::Nginx(_) => [
                "--nginx-log".to_owned(),
                self.state.path().join("access.log").display().to_string(),
            ],
            Provider::Serve(_) => ["--ledger".to_owned(), self.ledger().display().to_string()],
        }
    }

    /// The ledger's lines as JSON, once there are at least `count` (lines a server writes
    /// after the client saw its answer, such as a refused handshake's), or after 10 s.
    pub(crate) fn ledger_lines(&self, count: usize) -> Vec<serde_json::Value> {
        let read = || {
            std::fs::read_to_string(self.ledger())
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect::<Vec<serde_json::Value>>()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while read().len() < count && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        read()
    }

    /// A client presenting phone `index`'s factory-style certificate.
    pub(crate) fn phone_client(&self, index: usize) -> Client {
        let identity = self.pki.client_cert(&self.tree.phones[index].mac);
        Client::new(&self.server, Some(&identity))
    }
}
