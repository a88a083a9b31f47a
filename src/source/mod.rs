//! Extract: one module per external system, each turning API pages into rows.
//!
//! [`KINDS`] is the registry of source systems: a kind's `kind = "…"`, its config table,
//! its stream and the tables it writes. Whatever must know every system (the config
//! parser, `schemas/`, `ccetl query`, `state rebuild`) iterates it, so a system cannot be
//! half-registered.

pub mod legacy;
pub mod webex;
pub mod xima;

use crate::config::fields::{Fields, KeyError};
use crate::config::SourceConfig;
use crate::schema::TableDef;

/// A source system, as everything outside its directory needs to know it.
#[derive(Debug)]
pub struct SourceKind {
    /// Its `kind = "…"` in the pipeline file.
    pub name: &'static str,
    /// The stream its windows, manifests and watermark are kept under.
    pub stream: &'static str,
    /// The tables it writes.
    pub tables: &'static [&'static TableDef],
    /// The table listing its recordings, when it copies audio: `state rebuild` reads the
    /// audio ledger back from it.
    pub recordings: Option<RecordingsTable>,
    /// The keys its `[[source]]` table takes.
    pub(crate) keys: fn() -> &'static [&'static str],
    /// Its `[[source]]` table, read and checked.
    pub(crate) parse: fn(toml::Table, &Fields) -> Result<SourceConfig, KeyError>,
    /// Why a key some other kind takes does not apply to this one, where "not this kind"
    /// alone would not help.
    pub(crate) hints: &'static [(&'static str, &'static str)],
}

/// Where a source's recordings table keeps what the audio ledger holds.
#[derive(Debug, Clone, Copy)]
pub struct RecordingsTable {
    pub table: &'static TableDef,
    /// The recording's id column.
    pub id: &'static str,
    /// The column of the call (task) it belongs to.
    pub call: &'static str,
}

/// Every source system ccetl reads.
pub static KINDS: [&SourceKind; 3] = [&webex::KIND, &legacy::KIND, &xima::KIND];

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
                for c in [
                    r.id,
                    r.call,
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
