//! Key Vault certificate URIs: never panic; whatever parses prints back to a URI that parses to
//! the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use routewarden_certs::parse_certificate_uri;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(uri) = parse_certificate_uri(s, "vault.azure.net") {
        let again = parse_certificate_uri(&uri.to_string(), "vault.azure.net").expect("a parsed URI prints back parseable");
        assert_eq!(uri, again);
    }
});
