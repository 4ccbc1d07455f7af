//! Certificates made at test time: a device CA standing in for Polycom's, a phone certificate
//! per MAC, a server certificate for 127.0.0.1 and localhost, and an unrelated CA whose
//! certificates no server should accept.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;
use polyseal_delivery::NginxConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// The organisation Polycom factory certificates name; test phone certificates copy it.
const PHONE_ORGANIZATION: &str = "Polycom Inc.";

/// A certificate chain and its private key, PEM, as a client presents them.
#[derive(Clone, Debug)]
pub struct Identity {
    chain_pem: String,
    key_pem: String,
}

impl Identity {
    /// The certificate followed by the intermediate CAs that issued it, PEM.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

/// A CA that signs certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The PEM of the CAs between this one and the root, this one first (empty for a root).
    chain_pem: String,
}

impl Ca {
    fn root(name: &str) -> Ca {
        let params = ca_params(name);
        let issuer = CertifiedIssuer::self_signed(params, new_key())
            .unwrap_or_else(|e| panic!("rcgen cannot self-sign the test CA {name:?}: {e}"));
        Ca {
            issuer,
            chain_pem: String::new(),
        }
    }

    fn intermediate(&self, name: &str) -> Ca {
        let issuer = CertifiedIssuer::signed_by(ca_params(name), new_key(), &self.issuer)
            .unwrap_or_else(|e| panic!("rcgen cannot sign the test CA {name:?}: {e}"));
        let chain_pem = issuer.pem() + &self.chain_pem;
        Ca { issuer, chain_pem }
    }

    /// A leaf certificate for `params`, with a new key, followed by the intermediate CAs.
    fn issue(&self, params: CertificateParams) -> Identity {
        let identity = self.issue_leaf_only(params);
        Identity {
            chain_pem: identity.chain_pem + &self.chain_pem,
            key_pem: identity.key_pem,
        }
    }

    /// A leaf certificate for `params`, with a new key, alone: as a phone presents its factory
    /// certificate (the server must hold the intermediates: docs/DELIVERY.md).
    fn issue_leaf_only(&self, params: CertificateParams) -> Identity {
        let key = new_key();
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("rcgen cannot sign a test certificate: {e}"));
        Identity {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }
}

/// The certificates of one test, with the files nginx reads written to a private directory.
///
/// - The **device CA** stands in for the Polycom device CA and has its shape: a root, a policy
///   CA under it and an issuing CA under that, which signs phone certificates. The file nginx
///   gets as `--client-ca` holds all three, and phones present their certificate alone (leaf
///   only), so the server must verify to depth 3 (docs/DELIVERY.md). Phone certificates carry
///   the MAC as subject CN, uppercase, and `O=Polycom Inc.`, like factory certificates.
/// - The **server CA** signs the server certificate (127.0.0.1 and localhost); clients trust it.
/// - The **foreign CA** is unrelated to both; its certificates must be refused.
///
/// ```no_run
/// use polyseal_testbed::Pki;
/// let pki = Pki::new();
/// let phone = pki.client_cert(&"0004f2abcdef".parse()?);
/// assert!(phone.chain_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// # Ok::<(), polyseal_crypto::Error>(())
/// ```
pub struct Pki {
    dir: TempDir,
    device_issuing: Ca,
    foreign: Ca,
    server_ca_pem: String,
}

impl Pki {
    /// Makes the CAs and the server certificate, and writes `device-ca.pem`, `server.pem` and
    /// `server.key` (mode 0600) to a private temporary directory.
    ///
    /// # Panics
    /// If a key cannot be made or a file cannot be written.
    #[allow(clippy::new_without_default)] // Making keys and files is not a default value.
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("polyseal-pki-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for the PKI: {e}"));
        let device_root = Ca::root("polyseal test device root CA (stands in for Polycom's)");
        let device_policy = device_root.intermediate("polyseal test device policy CA");
        let device_issuing = device_policy.intermediate("polyseal test device issuing CA");
        let server_ca = Ca::root("polyseal test server CA");
        let foreign = Ca::root("unrelated test CA");

        let mut params = leaf_params("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        params.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName(
                "localhost"
                    .try_into()
                    .unwrap_or_else(|e| panic!("localhost is a DNS name: {e}")),
            ),
        ];
        let server = server_ca.issue(params);

        let pki = Pki {
            dir,
            device_issuing,
            foreign,
            server_ca_pem: server_ca.pem(),
        };
        let device_chain = [&device_root, &device_policy, &pki.device_issuing]
            .map(Ca::pem)
            .concat();
        write_file(&pki.device_ca_path(), &device_chain);
        write_file(&pki.server_cert_path(), &server.chain_pem);
        write_file(&pki.server_key_path(), &server.key_pem);
        pki
    }

    /// A phone's factory-style certificate from the device CA: subject
    /// `CN=<MAC, 12 uppercase hex digits>, O=Polycom Inc.`.
    pub fn client_cert(&self, mac: &Mac) -> Identity {
        self.client_cert_with_cn(&mac.to_string().to_ascii_uppercase())
    }

    /// A certificate from the device CA whose subject CN is `cn`, to try other subject forms.
    pub fn client_cert_with_cn(&self, cn: &str) -> Identity {
        self.device_issuing.issue_leaf_only(phone_params(cn))
    }

    /// A factory-shaped certificate from the device CA whose CN is `cn`, in the ASN.1 string
    /// type of its [`DnValue`] (BMPString, TeletexString, UniversalString…): subjects OpenSSL
    /// converts to UTF-8 for nginx.
    pub fn client_cert_with_cn_value(&self, cn: DnValue) -> Identity {
        let mut params = phone_params("unused");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, PHONE_ORGANIZATION);
        params.distinguished_name.push(DnType::CommonName, cn);
        self.device_issuing.issue_leaf_only(params)
    }

    /// A certificate from the device CA whose subject is `subject`, attribute by attribute in
    /// the order the certificate encodes them (nginx's `$ssl_client_s_dn` lists them last
    /// first): crafted subjects that try to name a phone they are not.
    pub fn client_cert_with_subject(&self, subject: &[(DnType, &str)]) -> Identity {
        let mut params = leaf_params("unused", ExtendedKeyUsagePurpose::ClientAuth);
        params.distinguished_name = DistinguishedName::new();
        for (kind, value) in subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        self.device_issuing.issue_leaf_only(params)
    }

    /// A certificate from the device CA whose subject is `subject` in OpenSSL's form
    /// (`/O=Polycom Inc./CN=…/CN=…`, `+` joining attributes of one RDN), made by the real
    /// `openssl` command: subjects rcgen cannot make, with two CNs or multi-valued RDNs.
    ///
    /// # Panics
    /// If `openssl` is missing or fails.
    pub fn client_cert_with_openssl_subject(&self, subject: &str) -> Identity {
        let dir = self.dir.path();
        let (ca_cert, ca_key) = (dir.join("issuing-ca.pem"), dir.join("issuing-ca.key"));
        if !ca_cert.exists() {
            write_file(&ca_cert, &self.device_issuing.pem());
            write_file(&ca_key, &self.device_issuing.issuer.key().serialize_pem());
        }
        let key = new_key();
        let (key_path, csr, cert, ext) = (
            dir.join("crafted.key"),
            dir.join("crafted.csr"),
            dir.join("crafted.pem"),
            dir.join("crafted.ext"),
        );
        for path in [&key_path, &csr, &cert, &ext] {
            let _ = fs::remove_file(path);
        }
        write_file(&key_path, &key.serialize_pem());
        write_file(
            &ext,
            "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n",
        );
        let run = |args: &[&std::ffi::OsStr]| {
            let output = std::process::Command::new("openssl")
                .args(args)
                .output()
                .unwrap_or_else(|e| {
                    panic!("openssl must be installed to make test certificates: {e}")
                });
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        run(&[
            "req".as_ref(),
            "-new".as_ref(),
            "-key".as_ref(),
            key_path.as_os_str(),
            "-subj".as_ref(),
            subject.as_ref(),
            "-out".as_ref(),
            csr.as_os_str(),
        ]);
        run(&[
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            csr.as_os_str(),
            "-CA".as_ref(),
            ca_cert.as_os_str(),
            "-CAkey".as_ref(),
            ca_key.as_os_str(),
            "-set_serial".as_ref(),
            "7".as_ref(),
            "-days".as_ref(),
            "30".as_ref(),
            "-extfile".as_ref(),
            ext.as_os_str(),
            "-out".as_ref(),
            cert.as_os_str(),
        ]);
        Identity {
            chain_pem: fs::read_to_string(&cert)
                .unwrap_or_else(|e| panic!("{}: {e}", cert.display())),
            key_pem: key.serialize_pem(),
        }
    }

    /// A certificate for `mac`, just like [`Pki::client_cert`]'s, but issued by the foreign CA.
    pub fn foreign_client_cert(&self, mac: &Mac) -> Identity {
        self.foreign
            .issue(phone_params(&mac.to_string().to_ascii_uppercase()))
    }

    /// The device CA chain (root, policy and issuing CA certificates), PEM: nginx's
    /// `--client-ca`.
    pub fn device_ca_path(&self) -> PathBuf {
        self.dir.path().join("device-ca.pem")
    }

    /// The server certificate, PEM: nginx's `--cert`.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server's private key, PEM, mode 0600: nginx's `--key`.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The CA certificate clients trust the server by, PEM.
    pub fn server_ca_pem(&self) -> &str {
        &self.server_ca_pem
    }

    /// An [`NginxConfig`] serving `tree` with this PKI's server certificate and requiring
    /// device-CA client certificates.
    pub fn nginx_config(&self, tree: &Path) -> NginxConfig {
        let mut config = NginxConfig::new(tree, self.server_cert_path(), self.server_key_path());
        config.client_ca = Some(self.device_ca_path());
        config
    }
}

/// A new ECDSA P-256 key (rcgen's default): fast to make, accepted by nginx and rustls.
fn new_key() -> KeyPair {
    KeyPair::generate().unwrap_or_else(|e| panic!("rcgen cannot generate a key: {e}"))
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn leaf_params(cn: &str, usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    params
}

/// A phone certificate's parameters. The subject is encoded O first, then CN, so that nginx's
/// RFC 2253 `$ssl_client_s_dn` reads `CN=…,O=Polycom Inc.` as a factory certificate's does.
fn phone_params(cn: &str) -> CertificateParams {
    let mut params = leaf_params(cn, ExtendedKeyUsagePurpose::ClientAuth);
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, PHONE_ORGANIZATION);
    params.distinguished_name.push(DnType::CommonName, cn);
    params
}

/// Writes a PKI file readable by its owner only (it may hold a private key).
fn write_file(path: &Path, contents: &str) {
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()));
    if let Err(e) = written {
        panic!("cannot write {}: {e}", path.display());
    }
}
