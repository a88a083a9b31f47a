//! Every table in a warehouse: each source kind's, and ccetl's own run history. What
//! `ccetl query` shows, `ccetl vacuum` cleans and `schemas/` documents.

use crate::schema::TableDef;

/// Every table ccetl writes, each once.
pub fn all() -> impl Iterator<Item = &'static TableDef> {
    crate::source::tables().chain(std::iter::once(&crate::history::RUNS))
}
