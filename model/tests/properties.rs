//! Properties of the parsers that take hostile input, checked on generated
//! input in the normal suite (the fuzz targets in `fuzz/` check the same
//! for hours): decoding change records never panics and round-trips what
//! was encoded; import rows of any text never panic; CSV cell escaping
//! gives back exactly what it escaped.

use std::io::Cursor;

use proptest::prelude::*;
use ricochet_model::LinkRecord;
use ricochet_model::codec::{
    decode_change, decode_domain, decode_record, decode_tls, encode_record,
};
use ricochet_model::transfer::{TransferReader, escape_cell, unescape_cell};

proptest! {
    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_change(&bytes);
        let _ = decode_record(&bytes);
        let _ = decode_domain(&bytes);
        let _ = decode_tls(&bytes);
    }

    #[test]
    fn a_link_record_decodes_to_what_was_encoded(
        id in 1u64..u64::MAX,
        code in "[A-Za-z0-9_-]{1,40}",
        path in "[a-z0-9/._~-]{0,80}",
        title in proptest::option::of("\\PC{0,60}"),
        tags in proptest::collection::vec("[a-z0-9-]{1,12}", 0..5),
        now in 0i64..4_000_000_000_000,
    ) {
        let mut record =
            LinkRecord::new(id, "localhost", &code, &format!("https://example.com/{path}"), now)
                .expect("a valid record");
        record.title = title;
        record.tags = tags;
        let decoded = decode_record(&encode_record(&record)).expect("decodes");
        prop_assert_eq!(decoded, record);
    }

    #[test]
    fn import_rows_of_any_text_never_panic(text in "\\PC{0,400}") {
        for row in TransferReader::csv(Cursor::new(text.clone().into_bytes())) {
            let _ = row;
        }
        for row in TransferReader::jsonl(Cursor::new(text.into_bytes())) {
            let _ = row;
        }
    }

    #[test]
    fn escaping_a_cell_is_undone_exactly(cell in "\\PC{0,40}") {
        let escaped = escape_cell(&cell);
        prop_assert_eq!(unescape_cell(&escaped), cell.as_str());
    }
}
