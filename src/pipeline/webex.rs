//! The Webex v1 source in the run loop: tasks → captures → audio → four tables per window.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::commit;
use super::{RunError, SourceFailure, SourceReport, SourceRun, WindowOutput, WindowReport};
use crate::config::WebexConfig;
use crate::sink::audio::AudioState;
use crate::sink::parquet::TableRows;
use crate::source::webex::merge::{self, Previous};
use crate::source::webex::model::Task;
use crate::source::webex::{self, captures, segments, tables, WebexClient, WindowCaptures};
use crate::window::{self, Window};

pub(super) async fn run(
    run: &SourceRun<'_>,
    cfg: &WebexConfig,
    report: &mut SourceReport,
) -> Result<(), RunError> {
    let Some(windows) = run.plan(report)? else {
        return Ok(());
    };
    let client =
        WebexClient::connect(cfg, run.state.clone()).map_err(|e| run.fail(None, e.into()))?;
    let client = &client;
    let result = run
        .drive(
            &windows,
            report,
            |w| async move { Ok(webex::discover(client, w.start, w.end).await?) },
            |w, tasks| read(client, run, w, tasks),
            |_, r: Read| {
                output(
                    client,
                    run,
                    r.extracted,
                    r.previous,
                    Keep::Captures(r.settled),
                )
            },
        )
        .await;
    report.record_http(&client.http);
    result
}

impl super::stages::Listing for Vec<Task> {
    fn tasks(&self) -> usize {
        self.len()
    }
}

/// A window as read from the API, before audio and tables.
struct Read {
    extracted: webex::Extracted,
    previous: Option<Previous>,
    /// Tasks whose capture rows the window's files keep (not asked for again).
    settled: HashSet<String>,
}

/// Reads the captures of a window's listed `tasks`.
async fn read(
    client: &WebexClient,
    run: &SourceRun<'_>,
    w: Window,
    tasks: Vec<Task>,
) -> Result<Read, SourceFailure> {
    // A window read before (the lookback): tasks whose recordings are all stored keep the
    // capture rows the window holds instead of being asked again. Late recordings are on
    // the other tasks, which are asked.
    let tables = [tables::CAPTURES.name, tables::SEGMENTS.name];
    let previous = Previous::read(run.wh, run.name, run.stream, w, &tables).await?;
    let mut settled = match &previous {
        Some(p) => p.settled_tasks()?,
        None => HashSet::new(),
    };
    if !settled.is_empty() {
        let listed: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        settled.retain(|id| listed.contains(id.as_str()));
    }
    let extracted = webex::with_captures(client, tasks, &settled).await?;
    Ok(Read {
        extracted,
        previous,
        settled,
    })
}

/// Which rows of the window's previous files a read keeps (see [`merge`]).
enum Keep {
    /// The captures and segments of these tasks (not asked for again).
    Captures(HashSet<String>),
    /// Every row of every task but these (events name only some of a window's tasks).
    AllBut(HashSet<String>),
}

/// Audio, then the four tables, for extracted tasks and captures, with the rows `keep`
/// keeps of what the window held.
async fn output(
    client: &WebexClient,
    run: &SourceRun<'_>,
    ex: webex::Extracted,
    previous: Option<Previous>,
    keep: Keep,
) -> Result<WindowOutput, SourceFailure> {
    let webex::Extracted {
        tasks,
        mut captures,
        org_id,
    } = ex;
    let config = client.config();
    let settle = run.settle(config.audio, config.concurrency, false);
    let audio = webex::fetch_audio(client, &settle, &mut captures).await?;
    // A day of calls takes a while to turn into tables, all CPU: off the run's task, which
    // meanwhile reads the next window (see `SourceRun::drive`).
    crate::blocking::run("building the window's tables", move || {
        tables_of(
            tasks,
            org_id.as_deref(),
            &captures,
            &audio,
            previous.as_ref(),
            &keep,
        )
    })
    .await?
}

/// The window's four tables from its tasks, recordings and their audio, merged with the
/// rows of its previous files that `keep` keeps.
fn tables_of(
    listed: Vec<Task>,
    org_id: Option<&str>,
    captures: &WindowCaptures,
    audio: &[AudioState],
    previous: Option<&Previous>,
    keep: &Keep,
) -> Result<WindowOutput, SourceFailure> {
    let (tasks, task_dates) = tables::tasks_batch(&listed, org_id);
    drop(listed);
    let (captures_batch, capture_dates) = captures.captures_table(audio);
    let (segments, segment_dates) = captures::segments_table(&captures_batch, &capture_dates)?;
    let mut t = vec![
        TableRows {
            table: &tables::TASKS,
            batch: tasks,
            dates: task_dates,
        },
        TableRows {
            table: &tables::CAPTURES,
            batch: captures_batch,
            dates: capture_dates,
        },
        TableRows {
            table: &tables::SEGMENTS,
            batch: segments,
            dates: segment_dates,
        },
    ];
    let (from, keep): (usize, &(dyn Fn(&str) -> bool + Sync)) = match keep {
        Keep::Captures(ids) => (1, &|id: &str| ids.contains(id)),
        Keep::AllBut(ids) => (0, &|id: &str| !ids.contains(id)),
    };
    if let Some(p) = previous {
        p.keep_into(keep, &mut t[from..])?;
    }
    // The join runs after the merge, so kept segments get their task's current attributes.
    let joined = segments::join(&t[2].batch, &t[0].batch)?;
    let joined = TableRows {
        table: &segments::TASK_SEGMENTS,
        batch: joined,
        dates: t[2].dates.clone(),
    };
    t.insert(2, joined);

    let mut wr = WindowReport {
        tasks: t[0].batch.num_rows() as u64,
        recordings: captures.len() as u64,
        segments: captures.segments() as u64,
        ..Default::default()
    };
    let (ids, task_ids) = (captures.ids(), captures.task_ids());
    let mut ledger = Vec::new();
    for (i, a) in audio.iter().enumerate() {
        wr.count_audio(a);
        ledger.extend(a.ledger(ids.value(i), task_ids.value(i)));
    }
    // Recordings kept from the window's files count too: the manifest says what it holds.
    if previous.is_some() {
        let read: HashSet<&str> = ids.iter().flatten().collect();
        for kept in merge::recordings(&t[1].batch)? {
            if !read.contains(kept.id) {
                wr.count_kept(kept.status, kept.segment);
            }
        }
    }
    Ok(WindowOutput {
        tables: t,
        ledger,
        rows: wr.tasks,
        report: wr,
        partial: false,
    })
}

/// Commits the tasks events announced: looked up through the Search API (created in
/// `range`), their captures and audio fetched, each added to the grid window it belongs to,
/// merged with what that window holds. Returns the ids committed; an id not found (filtered
/// out, or not searchable yet) is not among them.
pub(super) async fn commit_events(
    run: &SourceRun<'_>,
    cfg: &WebexConfig,
    ids: &[String],
    range: (DateTime<Utc>, DateTime<Utc>),
    report: &mut SourceReport,
) -> Result<Vec<String>, RunError> {
    let client =
        WebexClient::connect(cfg, run.state.clone()).map_err(|e| run.fail(None, e.into()))?;
    let found = webex::search::tasks_by_id(&client, ids, range.0, range.1)
        .await
        .map_err(|e| run.fail(None, e.into()))?;
    let step = Duration::from_std(run.cfg.window).unwrap_or(Duration::days(1));
    let mut by_window: BTreeMap<Window, Vec<Task>> = BTreeMap::new();
    for t in found {
        let created = Utc
            .timestamp_millis_opt(t.attributes.created_time)
            .single()
            .unwrap_or(range.0);
        let start = window::align_down(created, step);
        by_window
            .entry(Window {
                start,
                end: start + step,
            })
            .or_default()
            .push(t);
    }
    let mut committed = Vec::new();
    for (w, tasks) in by_window {
        let ids: HashSet<String> = tasks.iter().map(|t| t.id.clone()).collect();
        let loaded = async {
            let ex = webex::with_captures(&client, tasks, &HashSet::new()).await?;
            let tables = [
                tables::TASKS.name,
                tables::CAPTURES.name,
                tables::SEGMENTS.name,
            ];
            let previous = Previous::read(run.wh, run.name, run.stream, w, &tables).await?;
            let keep = Keep::AllBut(ids.clone());
            let mut out = output(&client, run, ex, previous, keep).await?;
            out.partial = true;
            commit::load(run, w, None, out).await
        }
        .await;
        match loaded {
            Ok((wr, _)) => report.windows.push(wr),
            Err(e) => {
                report.record_http(&client.http);
                return Err(run.fail(Some(&w), e));
            }
        }
        committed.extend(ids);
    }
    report.record_http(&client.http);
    Ok(committed)
}
