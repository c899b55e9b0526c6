//! Feeds arbitrary bytes to the import readers, once as CSV and once as JSON
//! Lines, and reads every row to the end. Reading must never panic, whatever
//! the rows are; a row's own checks (`LinkRow::extensions`) run too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ricochet_model::transfer::{TransferReader, TransferRow};

/// Reads every row; an I/O error ends the file as it does for importers.
fn drain<R: std::io::Read>(reader: TransferReader<R>) {
    for row in reader {
        let Ok((_line, Ok(row))) = row else {
            continue;
        };
        if let TransferRow::Link(link) = row {
            let _ = link.extensions();
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    drain(TransferReader::csv(bytes));
    drain(TransferReader::jsonl(bytes));
});
