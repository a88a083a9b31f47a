//! A source system as everything outside its directory knows it ([`SourceKind`]): its
//! tables, and its part of what must know every kind (the `calls` and `recordings` views,
//! the run's figures, `state rebuild`, the config parser).

use std::sync::Arc;

use super::fields::{self, Fields, KeyError};
use super::{DynSource, Source};
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
    /// Other tables whose rows own objects in the ledger (Webex's transcripts): `state
    /// rebuild` reads those back too.
    pub objects: &'static [ObjectsTable],
    /// Its part of the `calls` view, if its rows are calls.
    pub calls: Option<CallsSql>,
    /// Views of `ccetl query` it adds to beyond `calls` and `recordings` (Webex's
    /// `transcripts`).
    pub views: &'static [ViewSql],
    /// Its own figures of a window (in the run report and the run's summary), beyond the
    /// ones every source has.
    pub counters: &'static [Counter],
    /// Its API's documented default budget, requests a minute, where a source may be given
    /// more (the summary then says what its calls take at the default).
    pub default_rate: Option<u32>,
    /// The API endpoints a run reads (method and path, relative to the source's `api`):
    /// the inputs lineage names.
    pub reads: &'static [&'static str],
    /// The keys its `[[source]]` table takes.
    pub(crate) keys: fn() -> &'static [&'static str],
    /// Its `[[source]]` table, read and checked.
    pub(crate) parse: ParseFn,
    /// Why a key some other kind takes does not apply to this one, where "not this kind"
    /// alone would not help.
    pub(crate) hints: &'static [(&'static str, &'static str)],
}

/// A kind's part of `ccetl query`'s `calls` view: one row per call it saw.
#[derive(Debug, Clone, Copy)]
pub struct CallsSql {
    /// A SELECT over its tables naming the view's columns it has (`call_id`, `source`,
    /// `date`, `start_time`, `end_time`, `channel_type`, `direction`, `status`, `ani`,
    /// `dnis`, `queue_name`, `agent_name`, `team_name`, `entrypoint_name`); the others are
    /// null.
    pub select: &'static str,
    /// Calls of this kind with the same id as a call of that kind are the same call (the
    /// legacy API's sessions are Webex's tasks): they make one row, whose `systems` names
    /// both.
    pub same_calls_as: Option<&'static str>,
    /// Where two kinds saw a call, whose values win: lower first.
    pub rank: u8,
    /// Its `end_time` is a real end (the legacy CSR's): it wins over the others' whatever
    /// the rank.
    pub real_end: bool,
    /// The view's column naming this kind's source beside the merged `source`
    /// (`webex_source`), if it has one.
    pub source_column: Option<&'static str>,
}

/// A view of `ccetl query` a kind adds to, over its tables and the shared views (`calls`):
/// the SELECTs of every kind adding to one name are unioned by column name.
#[derive(Debug, Clone, Copy)]
pub struct ViewSql {
    /// The view.
    pub name: &'static str,
    /// The kind's rows of it.
    pub select: &'static str,
    /// What a row is (`COMMENT ON VIEW`), from the first kind that adds to it.
    pub docs: &'static str,
}

impl CallsSql {
    /// The calls of a kind that shares them with no other: `select`, ranked first, its end
    /// as good as any, no source column of its own.
    pub const fn alone(select: &'static str) -> Self {
        CallsSql {
            select,
            same_calls_as: None,
            rank: 0,
            real_end: false,
            source_column: None,
        }
    }
}

/// One of a source's own figures of a window: its key in the run report's windows
/// ([`WindowReport::counts`](crate::report::WindowReport::counts)) and its name in the summary.
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    /// The key.
    pub key: &'static str,
    /// How the run's summary names it (`"tasks"`, `"chain rows flagged"`).
    pub label: &'static str,
    /// What a window lists (Webex's tasks, Xima's calls): a dry run's estimate counts
    /// requests per listed item. At most one per kind.
    pub listed: bool,
}

/// Reads and checks a `[[source]]` table of one kind (`kind` already taken out).
pub(crate) type ParseFn = fn(toml::Table, &Fields) -> Result<Arc<dyn DynSource>, KeyError>;

/// Where a source's recordings table keeps what the audio ledger holds.
#[derive(Debug, Clone, Copy)]
pub struct RecordingsTable {
    /// The table holding one row per recording.
    pub table: &'static TableDef,
    /// The recording's id column.
    pub id: &'static str,
    /// The column of the call (task) it belongs to.
    pub call: &'static str,
}

/// A table whose rows own objects copied like audio, beside the recordings: where `state
/// rebuild` finds them. Each field is a SQL expression over the table's columns.
#[derive(Debug, Clone, Copy)]
pub struct ObjectsTable {
    /// The table.
    pub table: &'static TableDef,
    /// Each row's id in the ledger.
    pub ledger_id: &'static str,
    /// The call (task) it belongs to.
    pub call: &'static str,
    /// The object's URI, size and SHA-256.
    pub object: [&'static str; 3],
    /// True when the object is stored.
    pub stored: &'static str,
}

/// A source's table read as its kind's raw struct `R` and validated: what a kind's
/// [`SourceKind::parse`] is made of.
pub(crate) fn parse_as<R: serde::de::DeserializeOwned, C: Source>(
    table: toml::Table,
    fields: &Fields,
    validate: fn(R, &Fields) -> Result<C, KeyError>,
) -> Result<Arc<dyn DynSource>, KeyError> {
    let raw: R = fields::deserialize(table)?;
    Ok(Arc::new(validate(raw, fields)?))
}
