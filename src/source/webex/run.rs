//! The Webex v1 source at run time: tasks → captures → audio → four tables per window, and
//! its `ccetl check` and `auth status`.

use std::collections::{HashMap, HashSet};

use super::config::{Discovery, WebexConfig};
use super::merge::{self, Previous};
use super::model::Task;
use super::token_status::{self as status, Health};
use super::transcripts::Parsed;
use super::{
    captures, segments, tables, transcripts, WebexClient, WebexError, WindowCaptures,
    WindowTranscripts,
};
use crate::auth::login::LoginClient;
use crate::auth::AuthError;
use crate::extract::{Budget, CheckContext, Checked, Reparsing, Source, Webhooks};
use crate::extract::{Listing, RunError, SourceFailure, SourceRun, WindowOutput, WindowStages};
use crate::report::{SourceReport, WindowReport};
use crate::sink::audio::AudioState;
use crate::sink::parquet::TableRows;
use crate::window::Window;

impl Source for WebexConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn api(&self) -> Option<String> {
        Some(crate::http::redact_url(&self.base_url))
    }

    fn requests_per_minute(&self) -> Option<f64> {
        Some(f64::from(self.requests_per_minute) * 60.0 / self.rate_window.as_secs_f64())
    }

    /// Per client ID. Shards of one org share its 300 requests a minute, so more of them
    /// only speed up audio (bandwidth-bound): four with audio on, one without.
    fn budget(&self) -> Budget {
        Budget {
            key: super::client::budget_key(&self.base_url, &self.client_id),
            shards_at_once: if self.audio { 4 } else { 1 },
        }
    }

    async fn run(&self, run: &SourceRun<'_>, report: &mut SourceReport) -> Result<(), RunError> {
        let Some(windows) = run.plan(report)? else {
            return Ok(());
        };
        let cfg = self.sharing(run.rate_share());
        let client =
            WebexClient::connect(&cfg, run.tokens()).map_err(|e| run.fail(None, e.into()))?;
        let stages = Stages {
            client: &client,
            run,
        };
        let result = run.drive(&windows, report, &stages).await;
        report.record_http(&client.http);
        result
    }

    /// The tokens first (a renewal warning, or the advice once the refresh token expired),
    /// then one listing of the last minute.
    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Checked, SourceFailure> {
        let st = status::webex(self, ctx.state, ctx.now).map_err(WebexError::from)?;
        let advice = st.advice(&ctx.pipeline.display().to_string());
        let warnings = match (st.health, advice) {
            (Health::Expired | Health::Missing, Some(advice)) => {
                let e = AuthError::RenewalNeeded {
                    source_name: self.name.clone(),
                    advice,
                };
                return Err(WebexError::Auth(e).into());
            }
            (_, Some(a)) => vec![a],
            _ => Vec::new(),
        };
        let client = WebexClient::connect(self, ctx.tokens())?;
        let minute_ago = ctx.now - chrono::Duration::minutes(1);
        super::discover(&client, minute_ago, ctx.now).await?;
        let api = match self.discovery {
            Discovery::Tasks => "tasks API works",
            Discovery::Search(_) => "Search API accepts the filters",
        };
        Ok(Checked {
            line: format!("source {} (webex): token and {api}", self.name),
            warnings,
        })
    }

    fn credentials(&self, ctx: &CheckContext<'_>) -> Result<String, SourceFailure> {
        let st = status::webex(self, ctx.state, ctx.now).map_err(WebexError::from)?;
        let mut text = st.describe(ctx.now);
        if let Some(advice) = st.advice(&ctx.pipeline.display().to_string()) {
            text.push_str("\n  ");
            text.push_str(&advice);
        }
        Ok(text)
    }

    fn login(&self) -> Option<LoginClient<'_>> {
        Some(LoginClient {
            source: &self.name,
            authorize_url: &self.authorize_url,
            token_url: &self.token_url,
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            redirect_uri: &self.redirect_uri,
            scopes: &self.scopes,
            configured_refresh: self.refresh_token.as_ref(),
            read_timeout: self.read_timeout,
        })
    }

    fn webhooks(&self) -> Option<&dyn Webhooks> {
        Some(self)
    }

    fn reparse<'a>(&'a self, run: &'a SourceRun<'_>, w: Window) -> Option<Reparsing<'a>> {
        Some(Box::pin(super::reparse::window(run, w, Parsed::of)))
    }
}

/// A window's stages: list its tasks, read their captures, then audio and tables.
struct Stages<'a> {
    client: &'a WebexClient,
    run: &'a SourceRun<'a>,
}

impl WindowStages for Stages<'_> {
    type Listing = Vec<Task>;
    type Read = Read;

    async fn list(&self, w: Window) -> Result<Vec<Task>, SourceFailure> {
        Ok(super::discover(self.client, w.start, w.end).await?)
    }

    async fn read(&self, w: Window, tasks: Vec<Task>) -> Result<Read, SourceFailure> {
        read(self.client, self.run, w, tasks).await
    }

    async fn finish(&self, _: Window, r: Read) -> Result<WindowOutput, SourceFailure> {
        let keep = Keep::Captures(r.settled);
        output(self.client, self.run, r.extracted, r.previous, keep).await
    }
}

impl Listing for Vec<Task> {
    fn tasks(&self) -> usize {
        self.len()
    }
}

/// A window as read from the API, before audio and tables.
struct Read {
    extracted: super::Extracted,
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
    let tables = [
        tables::CAPTURES.name,
        tables::SEGMENTS.name,
        transcripts::TRANSCRIPTS.name,
        transcripts::MESSAGES.name,
    ];
    let previous = Previous::read(run.warehouse(), run.name(), run.stream(), w, &tables).await?;
    // An org that never made a voice transcript (no AI Assistant or AI Quality Management)
    // will not make one late: its recorded tasks are not asked again for one. Its chats'
    // transcripts (the conversation, no AI needed) say nothing about that.
    let await_transcripts = client.config().transcripts
        && run.state().has_objects_like(
            run.name(),
            transcripts::LEDGER_PREFIX,
            transcripts::VOICE_FILE_SUFFIX,
        )?;
    let mut settled = match &previous {
        Some(p) => p.settled_tasks(await_transcripts)?,
        None => HashSet::new(),
    };
    if !settled.is_empty() {
        let listed: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        settled.retain(|id| listed.contains(id.as_str()));
    }
    let extracted = super::with_captures(client, tasks, &settled).await?;
    Ok(Read {
        extracted,
        previous,
        settled,
    })
}

/// A window's transcripts with their objects and what reading them gave, one each.
struct Transcribed {
    window: WindowTranscripts,
    objects: Vec<AudioState>,
    parsed: Vec<transcripts::Parsed>,
}

/// Which rows of the window's previous files a read keeps (see [`merge`]).
pub(super) enum Keep {
    /// The captures and segments of these tasks (not asked for again).
    Captures(HashSet<String>),
    /// Every row of every task but these (events name only some of a window's tasks).
    AllBut(HashSet<String>),
}

/// Audio, then the six tables, for extracted tasks and captures, with the rows `keep`
/// keeps of what the window held.
pub(super) async fn output(
    client: &WebexClient,
    run: &SourceRun<'_>,
    ex: super::Extracted,
    previous: Option<Previous>,
    keep: Keep,
) -> Result<WindowOutput, SourceFailure> {
    let super::Extracted {
        tasks,
        mut captures,
        mut transcripts,
        org_id,
    } = ex;
    let config = client.config();
    let copy = run.audio_copy(config.audio, config.concurrency, false);
    let audio = super::fetch_audio(client, &copy, &mut captures).await?;
    let copy = run.audio_copy(config.transcripts, config.concurrency, false);
    let objects = super::fetch_transcripts(client, &copy, &mut transcripts).await?;
    let parsed = super::read_transcripts(run.warehouse(), &transcripts, &objects).await?;
    let transcribed = Transcribed {
        window: transcripts,
        objects,
        parsed,
    };
    // A day of calls takes a while to turn into tables, all CPU: off the run's task, which
    // meanwhile reads the next window (see `SourceRun::drive`).
    crate::blocking::run("building the window's tables", move || {
        tables_of(
            tasks,
            org_id.as_deref(),
            &captures,
            &audio,
            &transcribed,
            previous.as_ref(),
            &keep,
        )
    })
    .await?
}

/// The window's six tables from its tasks, recordings and their audio, merged with the
/// rows of its previous files that `keep` keeps.
fn tables_of(
    listed: Vec<Task>,
    org_id: Option<&str>,
    captures: &WindowCaptures,
    audio: &[AudioState],
    tr: &Transcribed,
    previous: Option<&Previous>,
    keep: &Keep,
) -> Result<WindowOutput, SourceFailure> {
    let (tasks, task_dates) = tables::tasks_batch(&listed, org_id)?;
    let channel: HashMap<&str, &str, ahash::RandomState> = listed
        .iter()
        .filter_map(|t| Some((t.id.as_str(), t.attributes.channel_type.as_deref()?)))
        .collect();
    let ((transcripts_batch, transcript_dates), (messages, message_dates)) =
        transcripts::tables(&tr.window, &tr.objects, &tr.parsed, &channel)?;
    drop(channel);
    drop(listed);
    let (captures_batch, capture_dates) = captures.captures_table(audio)?;
    let (segments, segment_dates) = captures::segments_table(&captures_batch, &capture_dates)?;
    let rows = |table, (batch, dates)| TableRows {
        table,
        batch,
        dates,
    };
    let mut tasks = rows(&tables::TASKS, (tasks, task_dates));
    let mut recordings = [
        rows(&tables::CAPTURES, (captures_batch, capture_dates)),
        rows(&tables::SEGMENTS, (segments, segment_dates)),
        rows(
            &transcripts::TRANSCRIPTS,
            (transcripts_batch, transcript_dates),
        ),
        rows(&transcripts::MESSAGES, (messages, message_dates)),
    ];
    if let Some(p) = previous {
        // A window's read lists every task again and keeps the recording rows of tasks not
        // asked for again; an events merge keeps every row of the tasks it did not read.
        match keep {
            Keep::Captures(ids) => p.keep_into(&|id| ids.contains(id), &mut recordings)?,
            Keep::AllBut(ids) => {
                let keep = |id: &str| !ids.contains(id);
                p.keep_into(&keep, std::slice::from_mut(&mut tasks))?;
                p.keep_into(&keep, &mut recordings)?;
            }
        }
    }
    let [captures_rows, segments_rows, transcripts_rows, messages_rows] = recordings;
    // The join runs after the merge, so kept segments get their task's current attributes.
    let joined = rows(
        &segments::TASK_SEGMENTS,
        (
            segments::join(&segments_rows.batch, &tasks.batch)?,
            segments_rows.dates.clone(),
        ),
    );
    let task_count = tasks.batch.num_rows() as u64;
    let captures_batch = captures_rows.batch.clone();
    let t = vec![
        tasks,
        captures_rows,
        joined,
        segments_rows,
        transcripts_rows,
        messages_rows,
    ];

    let mut wr = WindowReport {
        recordings: captures.len() as u64,
        ..Default::default()
    };
    wr.counts.add("tasks", task_count);
    wr.counts.add("segments", captures.segments() as u64);
    let (ids, task_ids) = (captures.ids(), captures.task_ids());
    let mut ledger = Vec::new();
    for (i, a) in audio.iter().enumerate() {
        wr.count_audio(a);
        ledger.extend(a.ledger(ids.value(i), task_ids.value(i)));
    }
    for (t, o) in tr.window.rows.iter().zip(&tr.objects) {
        wr.counts.add("transcripts", 1);
        if wr.count_object(o) {
            wr.counts.add("transcripts_stored", 1);
        }
        ledger.extend(o.ledger(&t.ledger_id(), &t.task_id));
    }
    // Recordings kept from the window's files count too: the manifest says what it holds.
    if previous.is_some() {
        let read: HashSet<&str> = ids.iter().flatten().collect();
        for kept in merge::recordings(&captures_batch)? {
            if !read.contains(kept.id) {
                wr.count_kept(kept.status);
                wr.counts.add("segments", u64::from(kept.segment));
            }
        }
    }
    Ok(WindowOutput {
        tables: t,
        ledger,
        rows: task_count,
        report: wr,
        partial: false,
    })
}
