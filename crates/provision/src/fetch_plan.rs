//! A phone's fetch plan: the files it requests at boot, in order, and what each one is.

use std::fmt;
use std::path::{Path, PathBuf};

use polyseal_crypto::{KeyDesc, Mac};

use crate::mac_names::{expand_mac, macs_in_name, names_phone, phone_of_file_name};
use crate::{
    DEFAULT_MASTER, Error, Exposure, FileReference, FileState, Master, MasterAttribute,
    MasterConfig, Position, SourceTree, split_file_list,
};

/// What a file in a fetch plan is to the phone; it decides whether and how it may be
/// encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The master file (`<mac>.cfg` or `000000000000.cfg`). Never encrypted.
    Master,
    /// The phone's key file (`[PHONE_MAC_ADDRESS]-key.cfg` by default): the bootstrap file
    /// in plaintext over HTTPS, or a key-change file encrypted with the previous key.
    KeyFile,
    /// A `CONFIG_FILES` entry whose name holds the phone's MAC: encrypted with its key.
    PerPhoneConfig,
    /// A `CONFIG_FILES` entry without the phone's MAC: fetched by every phone, so it cannot
    /// carry a per-phone key; it stays plaintext and must hold no secret.
    SharedConfig,
    /// The phone's contact directory, `<CONTACTS_DIRECTORY>/<mac>-directory.xml`.
    Contacts,
    /// The phone's override file, `<OVERRIDES_DIRECTORY>/<mac>-phone.cfg`.
    Override,
}

impl Role {
    /// Who can read a file of this role once served; `encrypted` says whether polyseal will
    /// serve per-phone files (per-phone configuration, contacts, overrides) encrypted.
    pub fn exposure(self, encrypted: bool) -> Exposure {
        match self {
            Role::Master => Exposure::Master,
            Role::SharedConfig => Exposure::Shared,
            Role::KeyFile => Exposure::KeyFile,
            Role::PerPhoneConfig | Role::Contacts | Role::Override if encrypted => {
                Exposure::PerPhoneEncrypted
            }
            Role::PerPhoneConfig | Role::Contacts | Role::Override => Exposure::PerPhonePlaintext,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Master => "master",
            Role::KeyFile => "key file",
            Role::PerPhoneConfig => "per-phone config",
            Role::SharedConfig => "shared config",
            Role::Contacts => "contacts",
            Role::Override => "override",
        })
    }
}

/// One file of a fetch plan.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlannedFile {
    /// What the file is to the phone.
    pub role: Role,
    /// The file as the phone requests it, `[PHONE_MAC_ADDRESS]` expanded.
    pub reference: FileReference,
    /// Whether the source tree has it, plaintext or encrypted.
    pub state: FileState,
}

impl PlannedFile {
    /// The path relative to the tree root, for a file on the provisioning server.
    pub fn path(&self) -> Option<&Path> {
        self.reference.tree_path()
    }

    /// True if the source tree has the file.
    pub fn exists(&self) -> bool {
        !matches!(self.state, FileState::Missing | FileState::NotInTree)
    }
}

impl fmt::Display for PlannedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.reference, self.role, self.state)
    }
}

/// What makes a fetch plan dangerous or a phone unable to get its key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanIssue {
    /// The tree has neither `<mac>.cfg` nor `000000000000.cfg`: the phone has nothing to boot
    /// from.
    NoMaster,
    /// The master file is encrypted. Phones cannot read an encrypted master; they show an
    /// error and reboot until it is replaced.
    MasterEncrypted {
        /// The master file.
        path: PathBuf,
        /// The KeyDesc in its header, if it names one.
        key_desc: Option<KeyDesc>,
    },
    /// The tree has a `<mac>.cfg` that is a configuration file, not a master. Phones request
    /// `<mac>.cfg` first, as their master file, so this phone will probably not boot from
    /// `000000000000.cfg` as this plan assumes (inferred: the phone's behaviour with such a
    /// file is not documented).
    PhoneFileNotMaster {
        /// The file.
        path: PathBuf,
    },
    /// The master's file list for this phone does not list the phone's key file, so the phone
    /// never fetches its key and cannot read its encrypted files.
    KeyFileNotListed {
        /// The master file.
        master: PathBuf,
        /// The attribute read (`CONFIG_FILES`, or `CONFIG_FILES_<MODEL>`).
        attribute: String,
        /// Where it is, or where `<APPLICATION>` is when the attribute is absent.
        position: Position,
        /// The key file's name for this phone.
        key_file: String,
    },
    /// The master's file list names a per-phone file before the phone's key file: a phone
    /// that does not hold its key yet (new, factory-reset) fetches that file encrypted before
    /// it gets the key, cannot decrypt it, and reboots.
    KeyFileListedLate {
        /// The master file.
        master: PathBuf,
        /// The attribute read (`CONFIG_FILES`, or `CONFIG_FILES_<MODEL>`).
        attribute: String,
        /// Where it is.
        position: Position,
        /// The key file's name for this phone.
        key_file: String,
        /// The per-phone file listed before it.
        first: String,
    },
    /// A listed file is a URL or lies outside the tree: polyseal can neither check nor
    /// encrypt it.
    NotInTree {
        /// The attribute that lists it.
        attribute: String,
        /// The entry (URL passwords redacted).
        reference: FileReference,
    },
    /// A listed file is named after another phone, or after any phone in
    /// `000000000000.cfg`, which every phone without a master of its own reads. This phone
    /// fetches it too, so it cannot be encrypted with that phone's key without this one
    /// failing to read it, and in plaintext it hands this one that phone's settings.
    OtherPhonesFile {
        /// The attribute that lists it.
        attribute: String,
        /// The entry.
        reference: FileReference,
        /// The phone the name belongs to.
        owner: Mac,
    },
}

impl fmt::Display for PlanIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanIssue::NoMaster => write!(
                f,
                "no master file: the tree has neither <mac>.cfg nor {DEFAULT_MASTER}"
            ),
            PlanIssue::MasterEncrypted { path, key_desc } => {
                write!(f, "{}: the master file is encrypted", path.display())?;
                if let Some(desc) = key_desc {
                    write!(f, " (KeyDesc {desc})")?;
                }
                f.write_str(
                    "; phones cannot read an encrypted master and reboot again and again: \
                     replace it with the plaintext file",
                )
            }
            PlanIssue::KeyFileListedLate {
                master,
                attribute,
                position,
                key_file,
                first,
            } => write!(
                f,
                "{}:{position}: {attribute} lists {first} before the key file {key_file}: a phone \
                 without its key fetches it before the key, cannot decrypt it and reboots; list \
                 the key file first",
                master.display()
            ),
            PlanIssue::PhoneFileNotMaster { path } => write!(
                f,
                "{}: phones request <mac>.cfg first as their master file, but this one is a \
                 configuration file; rename it (for example to <mac>-sip.cfg) and list it in \
                 CONFIG_FILES",
                path.display()
            ),
            PlanIssue::KeyFileNotListed {
                master,
                attribute,
                position,
                key_file,
            } => write!(
                f,
                "{}:{position}: {attribute} does not list the key file {key_file}: the phone \
                 will never fetch its key; add it to {attribute}",
                master.display()
            ),
            PlanIssue::NotInTree {
                attribute,
                reference,
            } => write!(
                f,
                "{attribute} lists {reference}, which is not in the provisioning tree: polyseal \
                 can neither check nor encrypt it"
            ),
            PlanIssue::OtherPhonesFile {
                attribute,
                reference,
                owner,
            } => write!(
                f,
                "{attribute} lists {reference}, named after phone {owner}: every phone of this \
                 list fetches it, so it cannot be encrypted with {owner}'s key"
            ),
        }
    }
}

/// The files one phone requests at boot, in order: the master file, its `CONFIG_FILES` (or
/// the model's `CONFIG_FILES_<MODEL>`) left to right, its contact directory and its override
/// file; and what is wrong with them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchPlan {
    /// The phone.
    pub mac: Mac,
    /// The model whose `APPLICATION_<MODEL>` element the plan follows; `None` for phones of
    /// any model without one.
    pub model: Option<String>,
    /// The files, in request order.
    pub files: Vec<PlannedFile>,
    /// What is wrong, in the order found.
    pub issues: Vec<PlanIssue>,
}

impl FetchPlan {
    /// The planned file that is the phone's key file, if the master lists it.
    pub fn key_file(&self) -> Option<&PlannedFile> {
        self.files.iter().find(|file| file.role == Role::KeyFile)
    }
}

impl SourceTree {
    /// The fetch plan of `mac` for phones of `model` (`None`: the generic `<APPLICATION>`
    /// values, which phones of models without an element of their own use).
    ///
    /// Errors: only reading a listed file's first bytes can fail (I/O).
    pub fn fetch_plan(&self, mac: &Mac, model: Option<&str>) -> Result<FetchPlan, Error> {
        let mut plan = FetchPlan {
            mac: *mac,
            model: model.map(str::to_owned),
            files: Vec::new(),
            issues: Vec::new(),
        };
        if self.has_phone_file_not_master(mac) {
            plan.issues.push(PlanIssue::PhoneFileNotMaster {
                path: self.path_of(Path::new(&format!("{mac}.cfg"))),
            });
        }
        let Some(master) = self.master_for(mac) else {
            plan.issues.push(PlanIssue::NoMaster);
            return Ok(plan);
        };
        let master_name = if self.phone_master(mac).is_some() {
            format!("{mac}.cfg")
        } else {
            DEFAULT_MASTER.to_owned()
        };
        self.plan_file(&mut plan, Role::Master, FileReference::parse(&master_name))?;
        match master {
            Master::Encrypted { path, key_desc } => {
                plan.issues.push(PlanIssue::MasterEncrypted {
                    path: path.clone(),
                    key_desc: key_desc.clone(),
                });
            }
            Master::Plain(master) => self.plan_master(&mut plan, master)?,
        }
        Ok(plan)
    }

    /// One plan for the generic values, then one per model element of the phone's master
    /// file: every variant of what the phone may request, since polyseal does not know its
    /// model.
    pub fn fetch_plans(&self, mac: &Mac) -> Result<Vec<FetchPlan>, Error> {
        let models = match self.master_for(mac) {
            Some(Master::Plain(master)) => master.models.iter().map(|m| m.model.as_str()).collect(),
            _ => Vec::new(),
        };
        std::iter::once(None)
            .chain(models.into_iter().map(Some))
            .map(|model| self.fetch_plan(mac, model))
            .collect()
    }

    /// True if a run of 12 hex digits written out in a list names a phone: it has a Polycom
    /// OUI, or the tree names a file after it (`<mac>.cfg`, `<mac>-sip.cfg`). In
    /// `site-202401011200.cfg` it is a date.
    pub(crate) fn is_phone_mac(&self, mac: &Mac) -> bool {
        mac.is_polycom_oui()
            || self.files().any(|file| {
                file.file_name()
                    .and_then(|name| name.to_str())
                    .and_then(phone_of_file_name)
                    == Some(*mac)
            })
    }

    fn plan_master(&self, plan: &mut FetchPlan, master: &MasterConfig) -> Result<(), Error> {
        let mac = plan.mac;
        let model = plan.model.clone();
        let model = model.as_deref();
        let key_file = self.key_file_pattern().reference(&mac);
        let config_files = master.setting(MasterAttribute::ConfigFiles, model);
        let attribute = config_files.map_or_else(
            || MasterAttribute::ConfigFiles.name().to_owned(),
            |s| s.attribute.clone(),
        );
        let shared_master = self.phone_master(&mac).is_none();
        let mut key_file_listed = false;
        let mut first_per_phone: Option<String> = None;
        for entry in split_file_list(config_files.map_or("", |s| s.value.as_str())) {
            let reference = FileReference::parse(&expand_mac(entry, &mac));
            let name = reference.to_string();
            let role = if reference == key_file {
                key_file_listed = true;
                if let Some(first) = first_per_phone.take() {
                    plan.issues.push(PlanIssue::KeyFileListedLate {
                        master: master.path.clone(),
                        attribute: attribute.clone(),
                        position: config_files.map_or(master.position, |s| s.position),
                        key_file: key_file.to_string(),
                        first,
                    });
                }
                Role::KeyFile
            } else if names_phone(&name, &mac) {
                if !key_file_listed && first_per_phone.is_none() {
                    first_per_phone = Some(name.clone());
                }
                Role::PerPhoneConfig
            } else {
                Role::SharedConfig
            };
            // In 000000000000.cfg, every phone's list, any MAC written out is another
            // phone's for all but one of them (issue 12: refused even in a fleet of one, as
            // the next phone to boot would fetch it).
            let owner = if shared_master {
                // A run of 12 hex digits is a phone's MAC when it has a Polycom OUI or the tree
                // names a file after it (`<mac>.cfg`, `<mac>-sip.cfg`): in
                // `site-202401011200.cfg` it is a date.
                macs_in_name(entry).find(|named| self.is_phone_mac(named))
            } else {
                macs_in_name(&name).find(|owner| *owner != mac)
            };
            if let Some(owner) = owner {
                plan.issues.push(PlanIssue::OtherPhonesFile {
                    attribute: attribute.clone(),
                    reference: reference.clone(),
                    owner,
                });
            }
            self.plan_listed_file(plan, role, reference, &attribute)?;
        }
        if !key_file_listed {
            plan.issues.push(PlanIssue::KeyFileNotListed {
                master: master.path.clone(),
                attribute,
                position: config_files.map_or(master.position, |s| s.position),
                key_file: key_file.to_string(),
            });
        }
        for (role, directory, file_name) in [
            (
                Role::Contacts,
                MasterAttribute::ContactsDirectory,
                format!("{mac}-directory.xml"),
            ),
            (
                Role::Override,
                MasterAttribute::OverridesDirectory,
                format!("{mac}-phone.cfg"),
            ),
        ] {
            let setting = master.setting(directory, model);
            let reference = FileReference::in_directory(
                &expand_mac(setting.map_or("", |s| s.value.as_str()), &mac),
                &file_name,
            );
            let attribute =
                setting.map_or_else(|| directory.name().to_owned(), |s| s.attribute.clone());
            self.plan_listed_file(plan, role, reference, &attribute)?;
        }
        Ok(())
    }

    /// Adds a file a master attribute points to, noting when it is not in the tree.
    fn plan_listed_file(
        &self,
        plan: &mut FetchPlan,
        role: Role,
        reference: FileReference,
        attribute: &str,
    ) -> Result<(), Error> {
        if reference.tree_path().is_none() {
            plan.issues.push(PlanIssue::NotInTree {
                attribute: attribute.to_owned(),
                reference: reference.clone(),
            });
        }
        self.plan_file(plan, role, reference)
    }

    fn plan_file(
        &self,
        plan: &mut FetchPlan,
        role: Role,
        reference: FileReference,
    ) -> Result<(), Error> {
        let state = match reference.tree_path() {
            Some(path) => self.file_state(path)?,
            None => FileState::NotInTree,
        };
        plan.files.push(PlannedFile {
            role,
            reference,
            state,
        });
        Ok(())
    }
}
