//! Key Vault certificate secrets (PKCS#12 and PEM) through decoding and the certificate checks:
//! any input gives a value or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use routewarden_certs::{ContentType, Expectations, HostnamePolicy, KeyFormat, assemble, decode_secret};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let content_type = if selector & 1 == 0 { ContentType::Pem } else { ContentType::Pkcs12 };
    let value = String::from_utf8_lossy(rest);
    let Ok(material) = decode_secret(&value, content_type) else { return };
    let expect = Expectations {
        now: jiff_now(),
        hostname: Some("www.contoso.com"),
        hostname_policy: HostnamePolicy::Warn,
    };
    if let Ok(bundle) = assemble(material, &expect) {
        let _ = bundle.tls_crt(true);
        let _ = bundle.tls_key(KeyFormat::Traditional);
    }
});

fn jiff_now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_900_000_000).expect("a valid instant")
}
