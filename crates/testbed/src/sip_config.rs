//! The per-phone configuration file every scenario serves: a phone's line registration, with
//! the values a test then finds applied on the simulated phone.

use polyseal_crypto::Mac;

/// `<mac>-sip.cfg`: line 1 registered as `mac`, with `password` as `reg.1.auth.password` and
/// `display_name` as `reg.1.displayName`.
///
/// ```
/// use polyseal_crypto::Mac;
/// let mac = Mac::parse("0004f2000001")?;
/// let file = polyseal_testbed::sip_config(&mac, "Long-Password-1", "Desk 1");
/// assert!(file.contains(r#"reg.1.auth.password="Long-Password-1""#));
/// # Ok::<(), polyseal_crypto::Error>(())
/// ```
pub fn sip_config(mac: &Mac, password: &str, display_name: &str) -> String {
    format!(
        r#"<?xml version="1.0" standalone="yes"?>
<polycomConfig>
  <reg reg.1.address="{mac}" reg.1.auth.userId="{mac}" reg.1.auth.password="{password}"
       reg.1.displayName="{display_name}"/>
</polycomConfig>
"#
    )
}
