//! Extract: one module per external system, each turning API pages into rows through the
//! boundary in [`crate::extract`].
//!
//! [`KINDS`] is the registry of source systems: a kind's `kind = "…"`, its config table,
//! its stream and the tables it writes. Whatever must know every system (the config
//! parser, `schemas/`, `ccetl query`, `state rebuild`) iterates it, so a system cannot be
//! half-registered.

#[cfg(test)]
pub(crate) mod example;
pub mod legacy;
pub mod webex;
pub mod xima;

use crate::extract::SourceKind;
use crate::schema::TableDef;

/// Every source system ccetl reads.
pub static KINDS: &[&SourceKind] = &[
    &webex::KIND,
    &legacy::KIND,
    &xima::KIND,
    #[cfg(test)]
    &example::KIND,
];

/// Every table ccetl writes, each once (two systems may not share a table).
pub fn tables() -> impl Iterator<Item = &'static TableDef> {
    KINDS.iter().flat_map(|k| k.tables.iter().copied())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn table_names_are_unique_and_unique_columns_exist() {
        let mut seen = HashSet::new();
        for t in tables() {
            assert!(seen.insert(t.name), "{} is declared twice", t.name);
            let schema = (t.schema)();
            for c in t.unique_columns.iter().chain(t.keys) {
                assert!(
                    schema.field_with_name(c).is_ok(),
                    "{}: column {c} is not in its schema",
                    t.name
                );
            }
            assert!(!t.docs.is_empty(), "{} has no docs", t.name);
        }
        let streams: HashSet<&str> = KINDS.iter().map(|k| k.stream).collect();
        assert_eq!(streams.len(), KINDS.len(), "two kinds share a stream");
        for k in KINDS {
            if let Some(r) = k.recordings {
                assert!(k.tables.iter().any(|t| std::ptr::eq(*t, r.table)));
                let schema = (r.table.schema)();
                // What the `recordings` view in `ccetl query` selects.
                for c in [
                    r.id,
                    r.call,
                    "start_time",
                    "stop_time",
                    "duration_ms",
                    "audio_uri",
                    "audio_bytes",
                    "audio_sha256",
                    "audio_status",
                ] {
                    assert!(schema.field_with_name(c).is_ok(), "{}: {c}", r.table.name);
                }
            }
        }
    }
}
