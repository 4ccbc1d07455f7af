//! nginx itself accepts every configuration `polyseal nginx-config` can write (`nginx -t`),
//! and a test's nginx never outlives it.

use std::net::TcpStream;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use polyseal_testbed::{Nginx, Pki};

#[test]
fn nginx_accepts_every_variant() {
    let pki = Pki::new();
    let tree = tempfile::tempdir().expect("tree");
    let uploads = tempfile::tempdir().expect("uploads");
    let nginx = Nginx::new();
    for client_ca in [None, Some(pki.device_ca_path())] {
        for uploads in [None, Some(uploads.path().to_owned())] {
            for server_name in [None, Some("prov.example.com".to_owned())] {
                for listen in [None, Some("127.0.0.1:8443".parse().expect("address"))] {
                    let mut config = pki.nginx_config(tree.path());
                    config.client_ca.clone_from(&client_ca);
                    config.uploads.clone_from(&uploads);
                    config.server_name.clone_from(&server_name);
                    config.listen = listen;
                    let text = config.render().expect("renders");
                    if let Err(complaint) = nginx.check_rendered(&text) {
                        panic!("nginx -t refuses:\n{text}\n{complaint}");
                    }
                }
            }
        }
    }
}

#[test]
fn nginx_check_reports_a_broken_configuration() {
    let pki = Pki::new();
    let mut config = pki.nginx_config(&PathBuf::from("/srv/tree"));
    config.cert = "/nonexistent/cert.pem".into();
    let complaint = Nginx::new()
        .check_rendered(&config.render().expect("renders"))
        .expect_err("a missing certificate is refused");
    assert!(complaint.contains("/nonexistent/cert.pem"), "{complaint}");
}

#[test]
fn a_server_stops_on_drop_and_when_its_lifetime_ends() {
    let pki = Pki::new();
    let tree = tempfile::tempdir().expect("tree");
    let config = pki.nginx_config(tree.path());

    let running = Nginx::start(&config);
    let addr = running.addr();
    assert!(TcpStream::connect(addr).is_ok());
    drop(running);
    assert!(
        TcpStream::connect(addr).is_err(),
        "nginx still listens after drop"
    );

    // Killed by its deadline even while its Running handle lives (as after a crashed test).
    let running = Nginx::new()
        .with_lifetime(Duration::from_secs(1))
        .serve(&config);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(running.addr()).is_ok() {
        assert!(Instant::now() < deadline, "nginx outlived its lifetime");
        thread::sleep(Duration::from_millis(50));
    }
}
