//! Master files (`000000000000.cfg`, `<mac>.cfg`): the `<APPLICATION>` element that tells a
//! phone which files to fetch, with its per-model children.
//!
//! ```xml
//! <APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, site.cfg"
//!              CONTACTS_DIRECTORY="./contacts" OVERRIDES_DIRECTORY="./overrides">
//!   <APPLICATION_SPIP300 APP_FILE_PATH_SPIP300="sip_213.ld" CONFIG_FILES_SPIP300="…"/>
//! </APPLICATION>
//! ```
//!
//! A phone of a model with its own child element uses that child's `<ATTRIBUTE>_<MODEL>`
//! values in place of the generic ones (Polycom's templates repeat the full list in each model's
//! `CONFIG_FILES_<MODEL>`); any attribute a child does not carry falls back to `<APPLICATION>`.

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::xml::{Element, XmlText};
use crate::{Error, Position};

/// The root element of a master file.
const APPLICATION: &str = "APPLICATION";

/// The attributes of `<APPLICATION>` that polyseal reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MasterAttribute {
    /// `APP_FILE_PATH`: the firmware image.
    AppFilePath,
    /// `CONFIG_FILES`: the configuration files, fetched and read left to right.
    ConfigFiles,
    /// `MISC_FILES`: other files (ring tones, images).
    MiscFiles,
    /// `LOG_FILE_DIRECTORY`: where the phone uploads its logs.
    LogFileDirectory,
    /// `OVERRIDES_DIRECTORY`: where the phone's `<mac>-phone.cfg` override file lives.
    OverridesDirectory,
    /// `CONTACTS_DIRECTORY`: where the phone's `<mac>-directory.xml` contact list lives.
    ContactsDirectory,
    /// `LICENSE_DIRECTORY`: where feature licences live.
    LicenseDirectory,
}

impl MasterAttribute {
    /// Every attribute, in the order Polycom's templates write them.
    pub const ALL: [MasterAttribute; 7] = [
        MasterAttribute::AppFilePath,
        MasterAttribute::ConfigFiles,
        MasterAttribute::MiscFiles,
        MasterAttribute::LogFileDirectory,
        MasterAttribute::OverridesDirectory,
        MasterAttribute::ContactsDirectory,
        MasterAttribute::LicenseDirectory,
    ];

    /// The attribute's name on `<APPLICATION>`; on a model's child it is followed by
    /// `_<MODEL>`.
    pub fn name(self) -> &'static str {
        match self {
            MasterAttribute::AppFilePath => "APP_FILE_PATH",
            MasterAttribute::ConfigFiles => "CONFIG_FILES",
            MasterAttribute::MiscFiles => "MISC_FILES",
            MasterAttribute::LogFileDirectory => "LOG_FILE_DIRECTORY",
            MasterAttribute::OverridesDirectory => "OVERRIDES_DIRECTORY",
            MasterAttribute::ContactsDirectory => "CONTACTS_DIRECTORY",
            MasterAttribute::LicenseDirectory => "LICENSE_DIRECTORY",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for MasterAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One attribute value of a master file, as written (`[PHONE_MAC_ADDRESS]` not yet expanded).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// The attribute's name as written: `CONFIG_FILES`, or `CONFIG_FILES_SPIP300` on a
    /// model's child.
    pub attribute: String,
    /// The value, entities resolved.
    pub value: String,
    /// Where the attribute is.
    pub position: Position,
}

/// The attributes of `<APPLICATION>` or of one model's child element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings([Option<Setting>; 7]);

impl Settings {
    /// The value of `attribute`, if present.
    pub fn get(&self, attribute: MasterAttribute) -> Option<&Setting> {
        self.0[attribute.index()].as_ref()
    }
}

/// A model's child element, `<APPLICATION_<MODEL> CONFIG_FILES_<MODEL>="…"/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelApplication {
    /// The model as the element names it: `SPIP300`, `VVX500`…
    pub model: String,
    /// Where the element is.
    pub position: Position,
    /// The model's own values.
    pub settings: Settings,
}

/// Something in a master file that phones will probably not read the way its author meant,
/// without stopping polyseal from reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterWarning {
    /// A model's child element carries an attribute suffixed with another model, such as
    /// `<APPLICATION_SPIP320 CONFIG_FILES_SPIP501="…">` in Polycom's own template. A phone of
    /// the element's model looks for its own suffix, so the attribute is ignored and that model
    /// falls back to the generic value (inferred: the phone's behaviour is not documented).
    ForeignModelAttribute {
        /// The master file.
        path: PathBuf,
        /// The element's model.
        model: String,
        /// The attribute as written.
        attribute: String,
        /// Where the attribute is.
        position: Position,
    },
}

impl fmt::Display for MasterWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterWarning::ForeignModelAttribute {
                path,
                model,
                attribute,
                position,
            } => write!(
                f,
                "{}:{position}: <APPLICATION_{model}> carries {attribute}, which names another \
                 model; {model} phones ignore it and use the generic value (rename it with the \
                 suffix _{model})",
                path.display()
            ),
        }
    }
}

/// A parsed master file.
///
/// ```
/// use polyseal_provision::{MasterAttribute, MasterConfig};
/// let xml = br#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, site.cfg">
///   <APPLICATION_VVX500 CONFIG_FILES_VVX500="[PHONE_MAC_ADDRESS]-key.cfg, vvx.cfg"/>
/// </APPLICATION>"#;
/// let master = MasterConfig::parse("000000000000.cfg".as_ref(), xml)?;
/// let generic = master.setting(MasterAttribute::ConfigFiles, None).map(|s| s.value.as_str());
/// assert_eq!(generic, Some("[PHONE_MAC_ADDRESS]-key.cfg, site.cfg"));
/// let vvx = master.setting(MasterAttribute::ConfigFiles, Some("VVX500")).map(|s| s.attribute.as_str());
/// assert_eq!(vvx, Some("CONFIG_FILES_VVX500"));
/// # Ok::<(), polyseal_provision::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MasterConfig {
    /// The file, as given to [`MasterConfig::parse`].
    pub path: PathBuf,
    /// Where `<APPLICATION>` starts.
    pub position: Position,
    /// The attributes of `<APPLICATION>`.
    pub settings: Settings,
    /// The per-model child elements, in file order.
    pub models: Vec<ModelApplication>,
    /// What phones will probably read differently from what the file seems to say.
    pub warnings: Vec<MasterWarning>,
}

impl MasterConfig {
    /// Parses a master file. `path` names it in messages.
    ///
    /// Errors: not UTF-8, an encrypted file (a master can never be encrypted), not well-formed
    /// XML, a root element other than `<APPLICATION>`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<MasterConfig, Error> {
        let text = XmlText::new(path, bytes)?;
        let mut master = None;
        text.for_each_element(|element| {
            match (element.depth, &mut master) {
                (0, _) if element.name != APPLICATION => {
                    return Err(Error::NotAMaster {
                        path: path.to_owned(),
                        root: element.name.to_owned(),
                        position: text.position(element.offset),
                    });
                }
                (0, _) => {
                    master = Some(MasterConfig {
                        path: path.to_owned(),
                        position: text.position(element.offset),
                        settings: read_settings(&text, element, "")?,
                        models: Vec::new(),
                        warnings: Vec::new(),
                    });
                }
                (1, Some(master)) => master.read_model(&text, element)?,
                _ => {}
            }
            Ok(ControlFlow::Continue(()))
        })?;
        // for_each_element fails on a document without a root, and the root is either
        // <APPLICATION> or an error, so `master` is set here.
        master.ok_or_else(|| text.error(0, "the document has no root element"))
    }

    fn read_model(&mut self, text: &XmlText<'_>, element: &Element<'_>) -> Result<(), Error> {
        let Some(model) = element.name.strip_prefix("APPLICATION_") else {
            return Ok(());
        };
        let suffix = format!("_{model}");
        for attribute in element.attributes {
            let foreign = MasterAttribute::ALL.iter().any(|known| {
                attribute
                    .name
                    .strip_prefix(known.name())
                    .is_some_and(|rest| rest.starts_with('_') && rest != suffix)
            });
            if foreign {
                self.warnings.push(MasterWarning::ForeignModelAttribute {
                    path: self.path.clone(),
                    model: model.to_owned(),
                    attribute: attribute.name.to_owned(),
                    position: text.position(attribute.offset),
                });
            }
        }
        self.models.push(ModelApplication {
            model: model.to_owned(),
            position: text.position(element.offset),
            settings: read_settings(text, element, &suffix)?,
        });
        Ok(())
    }

    /// The value of `attribute` for phones of `model` (`None`: phones without a child element
    /// of their own): the model's `<ATTRIBUTE>_<MODEL>` if its child element carries it, the
    /// generic one otherwise.
    pub fn setting(&self, attribute: MasterAttribute, model: Option<&str>) -> Option<&Setting> {
        model
            .and_then(|model| self.models.iter().find(|m| m.model == model))
            .and_then(|m| m.settings.get(attribute))
            .or_else(|| self.settings.get(attribute))
    }
}

/// Reads the known attributes, each named `<ATTRIBUTE><suffix>`, of `element`.
fn read_settings(
    text: &XmlText<'_>,
    element: &Element<'_>,
    suffix: &str,
) -> Result<Settings, Error> {
    let mut settings = Settings::default();
    for attribute in element.attributes {
        let known = MasterAttribute::ALL.into_iter().find(|known| {
            attribute
                .name
                .strip_prefix(known.name())
                .is_some_and(|rest| rest == suffix)
        });
        if let Some(known) = known {
            settings.0[known.index()] = Some(Setting {
                attribute: attribute.name.to_owned(),
                value: text.value(attribute)?.into_owned(),
                position: text.position(attribute.offset),
            });
        }
    }
    Ok(settings)
}
