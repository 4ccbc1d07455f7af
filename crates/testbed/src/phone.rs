//! A Polycom phone as the provisioning server sees it: a MAC, a client certificate, a stored
//! key or none; it boots by fetching its master and configuration files, decrypts what is
//! encrypted, stores the key files give it, reboots on a file it cannot decrypt, and uploads
//! its override file. `docs/DELIVERY.md` documents the model and what in it is inferred.

use std::collections::BTreeMap;
use std::path::Path;

use polyseal_crypto::{KeyDesc, KeyString, Layout, Mac};
use polyseal_provision::{
    FileKind, FileReference, MasterAttribute, MasterConfig, classify, expand_mac,
    read_bootstrap_file, split_file_list,
};
use zeroize::Zeroizing;

use crate::client::{Client, ConnectionError, Response, Server};
use crate::{Identity, params};

/// The parameter that carries a phone's key.
const KEY_PARAMETER: &str = "device.sec.configEncryption.key";
/// The parameter that makes a phone encrypt the override file it uploads with its key.
const ENCRYPT_OVERRIDES: &str = "sec.encryption.upload.overrides";
/// The default master file, requested when `<mac>.cfg` is not served.
const DEFAULT_MASTER: &str = "000000000000.cfg";

/// When a simulated phone starts using a key it has just read: the vault's [`KeyTiming`]
/// policy, one definition for both. Whether a real phone also uses a new key for the rest of
/// the boot that read it is not documented (docs/ROTATION.md); the simulator models both, and
/// tests run under both (`KeyTiming::ALL`).
pub use polyseal_vault::KeyTiming;

/// What a phone got for one file it requested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// An HTTP status other than 200: the phone goes on without the file.
    Status(u16),
    /// A plaintext file, read.
    Plaintext,
    /// An encrypted file, decrypted with the phone's key; the KeyDesc of its header.
    Decrypted(Option<KeyDesc>),
    /// An encrypted file the phone could not decrypt (no key, or another key): it reboots.
    Undecryptable(String),
    /// A file that is not a readable configuration file (not UTF-8 XML): it is skipped.
    Unreadable(String),
    /// A URL or a path outside the server's tree: not requested from this server.
    NotOnThisServer,
}

/// One file a phone requested during a boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The path requested, relative to the tree root.
    pub path: String,
    /// What the phone got.
    pub got: Got,
}

/// Why a phone rebooted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebootCause {
    /// It downloaded a file it cannot decrypt (Polycom: it logs it, shows an error and
    /// reboots, again and again until the server is fixed).
    CannotDecrypt {
        /// The file.
        path: String,
        /// Why it could not decrypt it.
        reason: String,
    },
    /// [`KeyTiming::NextBoot`]: it stored a new key and reboots to use it.
    NewKey(KeyDesc),
}

/// How one boot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootEnd {
    /// Every file was read: the phone runs with the parameters it applied.
    Running,
    /// The phone rebooted; it boots again.
    Rebooted(RebootCause),
    /// Neither `<mac>.cfg` nor `000000000000.cfg` was served: the phone has nothing to boot
    /// from and keeps trying (the simulator stops here).
    NoMaster,
    /// The master file is not a master (its root is not `<APPLICATION>`, or it is not XML).
    BadMaster(String),
    /// A request got no HTTP answer (TLS refused, connection failed).
    Unreachable(ConnectionError),
}

/// One boot of a phone: the files it requested in order, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// The files requested, in order, master first.
    pub fetched: Vec<Fetch>,
    /// The KeyDesc of the key a key file gave the phone in this boot, if one did.
    pub key_read: Option<KeyDesc>,
    /// Why a `device.sec.configEncryption.key` the phone read was not applied, if one was not.
    pub key_ignored: Option<String>,
    /// How the boot ended.
    pub end: BootEnd,
}

/// Everything that happened from power-on until the phone ran, or the simulator gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootReport {
    /// Each boot, in order; all but the last ended in a reboot.
    pub boots: Vec<Boot>,
}

impl BootReport {
    /// How many times the phone rebooted.
    pub fn reboots(&self) -> usize {
        self.boots
            .iter()
            .filter(|boot| matches!(boot.end, BootEnd::Rebooted(_)))
            .count()
    }

    /// How the last boot ended.
    pub fn end(&self) -> &BootEnd {
        // A report is only made after at least one boot.
        &self.last().end
    }

    /// True if the phone ended up running.
    pub fn is_running(&self) -> bool {
        *self.end() == BootEnd::Running
    }

    /// The paths the last boot requested, in order.
    pub fn fetched(&self) -> Vec<&str> {
        self.last()
            .fetched
            .iter()
            .map(|f| f.path.as_str())
            .collect()
    }

    fn last(&self) -> &Boot {
        #[allow(clippy::expect_used)] // Phone::boot always boots at least once.
        self.boots
            .last()
            .expect("a boot report holds at least one boot")
    }
}

/// A file a phone read: its path and its plaintext.
type Fetched = (String, Zeroizing<Vec<u8>>);

/// A simulated Polycom phone.
///
/// ```no_run
/// use polyseal_testbed::{KeyTiming, Nginx, Phone, Pki};
/// let pki = Pki::new();
/// let tree = tempfile::tempdir()?;
/// let nginx = Nginx::start(&pki.nginx_config(tree.path()));
/// let mac = "0004f2abcdef".parse()?;
/// let mut phone = Phone::new(mac, pki.client_cert(&mac), KeyTiming::NextBoot);
/// let report = phone.boot(&nginx.server(&pki));
/// assert!(report.is_running(), "{report:#?}");
/// assert_eq!(phone.param("reg.1.address"), Some("1001"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Phone {
    mac: Mac,
    model: Option<String>,
    identity: Option<Identity>,
    timing: KeyTiming,
    key: Option<KeyString>,
    /// A key read under [`KeyTiming::NextBoot`], used from the next boot on.
    pending: Option<KeyString>,
    applied: BTreeMap<String, String>,
    /// `OVERRIDES_DIRECTORY` of the last master read, `[PHONE_MAC_ADDRESS]` expanded.
    overrides_directory: String,
    max_boots: usize,
    /// The byte layout its firmware reads and writes encrypted files in: a file in any other
    /// layout does not decrypt, and the phone reboots on it (docs/FORMAT.md, "Layouts").
    layout: Layout,
}

impl Phone {
    /// How many boots [`Phone::boot`] makes before it gives up on a reboot loop.
    pub const DEFAULT_MAX_BOOTS: usize = 5;

    /// A factory-fresh phone (no key) that presents `identity` as its client certificate.
    pub fn new(mac: Mac, identity: Identity, timing: KeyTiming) -> Phone {
        Phone {
            identity: Some(identity),
            ..Phone::without_certificate(mac, timing)
        }
    }

    /// A factory-fresh phone with no client certificate (as older models have none).
    pub fn without_certificate(mac: Mac, timing: KeyTiming) -> Phone {
        Phone {
            mac,
            model: None,
            identity: None,
            timing,
            key: None,
            pending: None,
            applied: BTreeMap::new(),
            overrides_directory: String::new(),
            max_boots: Phone::DEFAULT_MAX_BOOTS,
            layout: Layout::DEFAULT,
        }
    }

    /// The same phone of `model` (as master files name models: `VVX500`, `SPIP300`…): it
    /// reads the master's `CONFIG_FILES_<model>` when there is one.
    pub fn with_model(self, model: impl Into<String>) -> Phone {
        Phone {
            model: Some(model.into()),
            ..self
        }
    }

    /// The same phone already holding `key`, as one provisioned earlier.
    pub fn with_key(self, key: KeyString) -> Phone {
        Phone {
            key: Some(key),
            ..self
        }
    }

    /// The same phone with firmware that reads and writes encrypted files in `layout`.
    pub fn with_layout(self, layout: Layout) -> Phone {
        Phone { layout, ..self }
    }

    /// The layout its firmware reads and writes encrypted files in.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The same phone, giving up after `max_boots` boots in a reboot loop.
    pub fn with_max_boots(self, max_boots: usize) -> Phone {
        Phone {
            max_boots: max_boots.max(1),
            ..self
        }
    }

    /// The phone's MAC.
    pub fn mac(&self) -> &Mac {
        &self.mac
    }

    /// The key the phone decrypts with, if it holds one.
    pub fn key(&self) -> Option<&KeyString> {
        self.key.as_ref()
    }

    /// A key the phone has stored but uses only from its next boot on ([`KeyTiming::NextBoot`]).
    pub fn pending_key(&self) -> Option<&KeyString> {
        self.pending.as_ref()
    }

    /// The parameters the phone runs with, from its last complete boot: for each, the value of
    /// its first occurrence across `CONFIG_FILES`, overridden by the phone's override file.
    pub fn applied(&self) -> &BTreeMap<String, String> {
        &self.applied
    }

    /// The value the phone runs with for `parameter`.
    pub fn param(&self, parameter: &str) -> Option<&str> {
        self.applied.get(parameter).map(String::as_str)
    }

    /// Factory reset: the phone forgets its key and its configuration.
    pub fn factory_reset(&mut self) {
        self.key = None;
        self.pending = None;
        self.applied.clear();
        self.overrides_directory.clear();
    }

    /// Powers the phone on and boots it against `server` until it runs, stops (no master,
    /// server unreachable) or has booted [`Phone::with_max_boots`] times in a reboot loop.
    pub fn boot(&mut self, server: &Server) -> BootReport {
        self.boot_up_to(server, self.max_boots)
    }

    /// One boot only, even if it ends in a reboot: the next [`Phone::boot`] or
    /// [`Phone::boot_once`] is the boot after that reboot. Lets a test change the server
    /// between two boots of a phone, as an operator's command does while phones reboot.
    pub fn boot_once(&mut self, server: &Server) -> BootReport {
        self.boot_up_to(server, 1)
    }

    fn boot_up_to(&mut self, server: &Server, max_boots: usize) -> BootReport {
        let client = Client::new(server, self.identity.as_ref());
        let mut boots = Vec::new();
        loop {
            // A key stored during the previous boot is the one this boot uses.
            if let Some(key) = self.pending.take() {
                self.key = Some(key);
            }
            let boot = self.boot_once_with(&client);
            let rebooted = matches!(boot.end, BootEnd::Rebooted(_));
            boots.push(boot);
            if !rebooted || boots.len() >= max_boots {
                return BootReport { boots };
            }
        }
    }

    /// Uploads `contents` as the phone's override file `<mac>-phone.cfg`, into the
    /// `OVERRIDES_DIRECTORY` of the last master it read, as a phone does when its settings
    /// change locally. With `sec.encryption.upload.overrides="1"` applied and a key held, the
    /// file is encrypted with the key the phone uses, so its header tells which key that is.
    pub fn upload_override(
        &self,
        server: &Server,
        contents: &[u8],
    ) -> Result<Response, ConnectionError> {
        let file_name = format!("{}-phone.cfg", self.mac);
        let path = FileReference::in_directory(&self.overrides_directory, &file_name)
            .tree_path()
            .map_or(file_name.clone(), |path| {
                path.to_string_lossy().into_owned()
            });
        let body = match (&self.key, self.param(ENCRYPT_OVERRIDES)) {
            #[allow(clippy::expect_used)] // An override file is far below the 64 MiB cap.
            (Some(key), Some("1")) => polyseal_crypto::encrypt_with(contents, key, &self.layout)
                .expect("an override file is smaller than polyseal_crypto::MAX_FILE_SIZE"),
            _ => contents.to_vec(),
        };
        Client::new(server, self.identity.as_ref()).put(&path, &body)
    }

    /// One boot: master, then `CONFIG_FILES` left to right, then the contact directory and
    /// the override file.
    fn boot_once_with(&mut self, client: &Client) -> Boot {
        let mut boot = Boot {
            fetched: Vec::new(),
            key_read: None,
            key_ignored: None,
            end: BootEnd::Running,
        };
        if let Err(end) = self.run_boot(client, &mut boot) {
            boot.end = end;
        } else if let Some(key) = &self.pending {
            boot.end = BootEnd::Rebooted(RebootCause::NewKey(key.key_desc().clone()));
        }
        boot
    }

    fn run_boot(&mut self, client: &Client, boot: &mut Boot) -> Result<(), BootEnd> {
        let master = self.fetch_master(client, boot)?;
        let setting = |attribute| {
            master
                .setting(attribute, self.model.as_deref())
                .map(|setting| expand_mac(&setting.value, &self.mac))
                .unwrap_or_default()
        };
        let config_files = setting(MasterAttribute::ConfigFiles);
        let contacts = setting(MasterAttribute::ContactsDirectory);
        self.overrides_directory = setting(MasterAttribute::OverridesDirectory);

        let mut applied = BTreeMap::new();
        for entry in split_file_list(&config_files) {
            let Some((path, plaintext)) = self.fetch(client, boot, &FileReference::parse(entry))?
            else {
                continue;
            };
            let Some(parameters) = readable(boot, params::parameters(&plaintext)) else {
                continue;
            };
            let key_is_new = !applied.contains_key(KEY_PARAMETER);
            for (name, value) in parameters {
                // The first occurrence across CONFIG_FILES wins [documented].
                applied.entry(name).or_insert(value);
            }
            if key_is_new && applied.contains_key(KEY_PARAMETER) {
                self.take_key(boot, &path, &plaintext);
            }
        }
        let directory = format!("{}-directory.xml", self.mac);
        self.fetch(
            client,
            boot,
            &FileReference::in_directory(&contacts, &directory),
        )?;
        let overrides = format!("{}-phone.cfg", self.mac);
        let reference = FileReference::in_directory(&self.overrides_directory, &overrides);
        if let Some((_, plaintext)) = self.fetch(client, boot, &reference)? {
            // Settings made on the phone win over the provisioning server's [documented].
            applied.extend(readable(boot, params::parameters(&plaintext)).unwrap_or_default());
        }
        self.applied = applied;
        Ok(())
    }

    /// `<mac>.cfg`, else `000000000000.cfg`, parsed with polyseal-provision.
    fn fetch_master(&self, client: &Client, boot: &mut Boot) -> Result<MasterConfig, BootEnd> {
        for name in [format!("{}.cfg", self.mac), DEFAULT_MASTER.to_owned()] {
            let response = client.get(&name).map_err(BootEnd::Unreachable)?;
            if response.status != 200 {
                boot.fetched.push(Fetch {
                    path: name,
                    got: Got::Status(response.status),
                });
                continue;
            }
            let parsed = MasterConfig::parse(Path::new(&name), &response.body);
            let got = match &parsed {
                // A phone cannot read an encrypted master and reboots [documented].
                Err(polyseal_provision::Error::Encrypted { key_desc, .. }) => {
                    let reason = format!("the master file is encrypted (KeyDesc {key_desc:?})");
                    boot.fetched.push(Fetch {
                        path: name.clone(),
                        got: Got::Undecryptable(reason.clone()),
                    });
                    return Err(BootEnd::Rebooted(RebootCause::CannotDecrypt {
                        path: name,
                        reason,
                    }));
                }
                Err(e) => Got::Unreadable(e.to_string()),
                Ok(_) => Got::Plaintext,
            };
            boot.fetched.push(Fetch { path: name, got });
            return parsed.map_err(|e| BootEnd::BadMaster(e.to_string()));
        }
        Err(BootEnd::NoMaster)
    }

    /// Requests one file and returns its plaintext, or None when the phone goes on without
    /// it; a file it cannot decrypt ends the boot with a reboot.
    fn fetch(
        &self,
        client: &Client,
        boot: &mut Boot,
        reference: &FileReference,
    ) -> Result<Option<Fetched>, BootEnd> {
        let Some(path) = reference.tree_path() else {
            boot.fetched.push(Fetch {
                path: reference.to_string(),
                got: Got::NotOnThisServer,
            });
            return Ok(None);
        };
        let path = path.to_string_lossy().into_owned();
        let response = client.get(&path).map_err(BootEnd::Unreachable)?;
        let (got, plaintext) = if response.status != 200 {
            (Got::Status(response.status), None)
        } else {
            match classify(Path::new(&path), &response.body) {
                Ok(FileKind::Encrypted { key_desc }) => match self.decrypt(&response.body) {
                    Ok(plaintext) => (Got::Decrypted(key_desc), Some(plaintext)),
                    Err(reason) => {
                        boot.fetched.push(Fetch {
                            path: path.clone(),
                            got: Got::Undecryptable(reason.clone()),
                        });
                        return Err(BootEnd::Rebooted(RebootCause::CannotDecrypt {
                            path,
                            reason,
                        }));
                    }
                },
                Ok(_) => (Got::Plaintext, Some(Zeroizing::new(response.body))),
                Err(e) => (Got::Unreadable(e.to_string()), None),
            }
        };
        boot.fetched.push(Fetch {
            path: path.clone(),
            got,
        });
        Ok(plaintext.map(|plaintext| (path, plaintext)))
    }

    fn decrypt(&self, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        let key = self.key.as_ref().ok_or("the phone holds no key")?;
        polyseal_crypto::decrypt_with(file, key, &self.layout).map_err(|e| e.to_string())
    }

    /// Applies the key a configuration file carries, with `device.set="1"` and its own
    /// `.set="1"` companion (checked by polyseal-provision, as the phone requires them).
    fn take_key(&mut self, boot: &mut Boot, path: &str, plaintext: &[u8]) {
        let key = match read_bootstrap_file(Path::new(path), plaintext) {
            Ok(key) => key,
            Err(e) => {
                boot.key_ignored = Some(e.to_string());
                return;
            }
        };
        boot.key_read = Some(key.key_desc().clone());
        if self.key.as_ref() == Some(&key) {
            // The key it holds, again (a bootstrap file is served on every boot).
            self.pending = None;
            return;
        }
        match self.timing {
            KeyTiming::Immediate => self.key = Some(key),
            KeyTiming::NextBoot => self.pending = Some(key),
        }
    }
}

/// The parameters of a file, or None (with the file marked unreadable) if it has none.
fn readable(
    boot: &mut Boot,
    parameters: Result<Vec<(String, String)>, String>,
) -> Option<Vec<(String, String)>> {
    match parameters {
        Ok(parameters) => Some(parameters),
        Err(reason) => {
            if let Some(last) = boot.fetched.last_mut() {
                last.got = Got::Unreadable(reason);
            }
            None
        }
    }
}
