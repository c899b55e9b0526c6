//! Feeds arbitrary bytes to every stored-form decoder in `ricochet_model::codec`
//! (changes, link records, domain settings, TLS changes). None may panic, and a
//! value that decodes must survive encoding and decoding again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ricochet_model::codec;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(change) = codec::decode_change(bytes) {
        let again = codec::decode_change(&codec::encode_change(&change))
            .expect("a re-encoded change decodes");
        assert_eq!(change, again);
    }
    if let Ok(record) = codec::decode_record(bytes) {
        let again = codec::decode_record(&codec::encode_record(&record))
            .expect("a re-encoded record decodes");
        assert_eq!(record, again);
    }
    if let Ok(settings) = codec::decode_domain(bytes) {
        let again = codec::decode_domain(&codec::encode_domain(&settings))
            .expect("re-encoded domain settings decode");
        assert_eq!(settings, again);
    }
    if let Ok(tls) = codec::decode_tls(bytes) {
        let again =
            codec::decode_tls(&codec::encode_tls(&tls)).expect("a re-encoded TLS change decodes");
        assert_eq!(tls, again);
    }
});
