//! What `NginxConfig::render` writes and what it refuses. nginx itself checks and runs these
//! configurations in polyseal-testbed's tests.

use std::path::{Path, PathBuf};

use polyseal_delivery::{Error, NginxConfig, Setting, Warning};

fn full() -> NginxConfig {
    let mut config = NginxConfig::new(
        "/srv/polyseal/published",
        "/etc/polyseal/tls/fullchain.pem",
        "/etc/polyseal/tls/privkey.pem",
    );
    config.server_name = Some("prov.example.com".into());
    config.client_ca = Some("/etc/polyseal/polycom-device-ca.pem".into());
    config.uploads = Some("/srv/polyseal/uploads".into());
    config
}

/// Compares with the file in tests/golden; `POLYSEAL_BLESS=1` rewrites it after a deliberate
/// change, to be reviewed in the diff.
fn assert_golden(name: &str, rendered: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("POLYSEAL_BLESS").is_some() {
        std::fs::write(&path, rendered).expect("write the golden file");
    }
    let golden = std::fs::read_to_string(&path).expect("golden file (POLYSEAL_BLESS=1 writes it)");
    assert_eq!(
        rendered, golden,
        "{name} changed; review, then POLYSEAL_BLESS=1"
    );
}

#[test]
fn full_configuration_is_as_reviewed() {
    assert_golden("full.conf", &full().render().expect("renders"));
}

#[test]
fn configuration_without_client_ca_is_as_reviewed() {
    let mut config = full();
    config.client_ca = None;
    config.server_name = None;
    config.listen = Some("127.0.0.1:8443".parse().expect("address"));
    assert_golden("no-client-ca.conf", &config.render().expect("renders"));
    assert_eq!(
        config.warnings(),
        [Warning::NoClientCa, Warning::UploadsWithoutClientCa]
    );
}

#[test]
fn tls_only_no_listing_no_plain_http() {
    for client_ca in [None, Some(PathBuf::from("/ca.pem"))] {
        let mut config = full();
        config.client_ca = client_ca;
        let text = config.render().expect("renders");
        let listens: Vec<&str> = text.lines().filter(|l| l.contains("listen ")).collect();
        assert!(!listens.is_empty());
        assert!(
            listens.iter().all(|l| l.trim_end().ends_with(" ssl;")),
            "{listens:?}"
        );
        assert!(text.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert!(text.contains("autoindex off;"));
        assert!(!text.contains("autoindex on"));
    }
}

#[test]
fn no_uploads_means_no_put_anywhere() {
    let mut config = full();
    config.uploads = None;
    let text = config.render().expect("renders");
    assert!(!text.contains("dav_methods"));
    assert!(text.contains("limit_except GET {"));
}

#[test]
fn every_path_must_be_absolute_and_plain() {
    type SetPath = fn(&mut NginxConfig, PathBuf);
    let cases: [(Setting, SetPath); 5] = [
        (Setting::Tree, |c, p| c.tree = p),
        (Setting::Cert, |c, p| c.cert = p),
        (Setting::Key, |c, p| c.key = p),
        (Setting::ClientCa, |c, p| c.client_ca = Some(p)),
        (Setting::Uploads, |c, p| c.uploads = Some(p)),
    ];
    for (setting, set) in cases {
        let refused = |path: &str| {
            let mut config = full();
            set(&mut config, PathBuf::from(path));
            config.render().expect_err(path)
        };
        assert_eq!(
            refused("relative/dir"),
            Error::RelativePath {
                setting,
                path: "relative/dir".into()
            }
        );
        assert_eq!(
            refused("/srv/./x"),
            Error::NotNormalized {
                setting,
                path: "/srv/./x".into()
            }
        );
        assert_eq!(
            refused("/srv/a/../b"),
            Error::NotNormalized {
                setting,
                path: "/srv/a/../b".into()
            }
        );
        for (path, character) in [
            ("/srv/x\";\n    autoindex on;#", '"'),
            ("/srv/x;y", ';'),
            ("/srv/x{", '{'),
            ("/srv/$document_root", '$'),
            ("/srv/x\ny", '\n'),
            ("/srv/x\\y", '\\'),
            ("/srv/it's", '\''),
        ] {
            assert_eq!(
                refused(path),
                Error::UnsafeCharacter {
                    setting,
                    value: path.into(),
                    character
                },
                "{path:?}"
            );
        }
    }
    // Spaces are fine: paths are quoted.
    let mut config = full();
    config.tree = "/srv/my tree".into();
    assert!(
        config
            .render()
            .expect("renders")
            .contains("root \"/srv/my tree\";")
    );
}

#[test]
fn errors_name_the_option_and_the_value() {
    let mut config = full();
    config.uploads = Some("/srv/x;y".into());
    let message = config.render().expect_err("refused").to_string();
    assert!(
        message.starts_with("--uploads \"/srv/x;y\" contains ';'"),
        "{message}"
    );
}

#[test]
fn served_directories_stay_apart_from_each_other_and_from_the_key() {
    let mut config = full();
    config.tree = "/".into();
    assert_eq!(config.render(), Err(Error::TreeIsRoot));

    for uploads in [
        "/srv/polyseal/published",
        "/srv/polyseal/published/up",
        "/srv/polyseal",
    ] {
        let mut config = full();
        config.uploads = Some(uploads.into());
        assert!(
            matches!(config.render(), Err(Error::UploadsOverlapTree { .. })),
            "{uploads}"
        );
    }
    // A sibling whose name merely starts the same is not inside.
    let mut config = full();
    config.uploads = Some("/srv/polyseal/published-uploads".into());
    assert!(config.render().is_ok());

    for key in [
        "/srv/polyseal/published/tls.key",
        "/srv/polyseal/uploads/k.pem",
    ] {
        let mut config = full();
        config.key = key.into();
        assert!(
            matches!(config.render(), Err(Error::KeyIsServed { .. })),
            "{key}"
        );
    }
}

#[test]
fn server_names_are_host_names() {
    for good in [
        "prov.example.com",
        "localhost",
        "*.example.com",
        "10.0.0.5",
        "a-b.c",
    ] {
        let mut config = full();
        config.server_name = Some(good.into());
        let text = config.render().unwrap_or_else(|e| panic!("{good}: {e}"));
        assert!(text.contains(&format!("server_name {good};")));
    }
    for bad in [
        "",
        "a..b",
        "-a.b",
        "a b",
        "a_b",
        "prov.example.com;",
        "*",
        "a.*.b",
        ".a",
    ] {
        let mut config = full();
        config.server_name = Some(bad.into());
        assert!(
            matches!(
                config.render(),
                Err(Error::ServerName { .. } | Error::UnsafeCharacter { .. })
            ),
            "{bad:?}"
        );
    }
}
