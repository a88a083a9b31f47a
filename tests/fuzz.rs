//! Mutation fuzzing of everything that reads outside input: the JSON pages of both JSON APIs
//! (decoded and turned into Arrow batches), the legacy CSV decoder (fed in random chunks,
//! then the activity chains), and the pipeline config. Each starts from a real response of
//! the simulator (`tests/corpus/`) and applies random byte edits: flips, insertions,
//! deletions, truncation, duplication. Nothing may panic, and every error is one line.
//!
//! Bounded for CI (`CCETL_FUZZ_CASES`, default 5000 per target); run longer locally with
//! e.g. `CCETL_FUZZ_CASES=200000 cargo test --release --test fuzz`.

use std::cell::Cell;

use ccetl::config::PipelineConfig;
use ccetl::sink::audio::AudioState;
use ccetl::source::legacy::csv::CsvDecoder;
use ccetl::source::legacy::tables;
use ccetl::source::webex::captures::{self, PageJoiner};
use ccetl::source::webex::model::{CapturePage, TaskPage};
use ccetl::source::xima::model::Call;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// One byte edit.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the formats, and any byte at all.
    let byte = prop_oneof![
        prop::sample::select(b"{}[]\",:0123456789-.eE \r\n\\;=#'\x00\xef\xbb\xbf\xff".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(byte, 1..8)).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let at = |i: usize, v: &Vec<u8>| if v.is_empty() { 0 } else { i % (v.len() + 1) };
        match e {
            Edit::Flip(i, b) if !v.is_empty() => {
                let i = i % v.len();
                v[i] = *b;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, b) => {
                let i = at(*i, &v);
                v.splice(i..i, b.iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = at(*i, &v);
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Truncate(i) => {
                let i = at(*i, &v);
                v.truncate(i);
            }
            Edit::Duplicate(i, n) => {
                let i = at(*i, &v);
                let end = (i + n).min(v.len());
                let copy = v[i..end].to_vec();
                v.splice(end..end, copy);
            }
        }
    }
    v
}

fn cases() -> u32 {
    std::env::var("CCETL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

/// Runs `target` on `cases()` mutations of `seed`; the seed itself must be accepted.
fn fuzz(seed: &[u8], target: impl Fn(&[u8]) -> Result<(), String>) {
    target(seed).expect("the unmutated corpus file is accepted");
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let (accepted, refused) = (Cell::new(0u32), Cell::new(0u32));
    let result = runner.run(&prop::collection::vec(edit(), 1..6), |edits| {
        let input = apply(seed, &edits);
        match target(&input) {
            Ok(()) => accepted.set(accepted.get() + 1),
            Err(msg) => {
                refused.set(refused.get() + 1);
                prop_assert!(!msg.contains('\n'), "a multi-line error: {msg}");
                prop_assert!(!msg.is_empty(), "an empty error");
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (accepted, refused) = (accepted.get(), refused.get());
    println!("{accepted} mutations accepted, {refused} refused with one line");
    assert!(
        refused > 0,
        "mutations were refused: the fuzzer reaches the errors"
    );
}

const TASKS: &[u8] = include_bytes!("corpus/tasks.json");
const CAPTURES: &[u8] = include_bytes!("corpus/captures.json");
const XIMA_CALLS: &[u8] = include_bytes!("corpus/xima_calls.json");
const CSRS: &[u8] = include_bytes!("corpus/csrs.csv");
const CARS: &[u8] = include_bytes!("corpus/cars.csv");
const PIPELINE: &[u8] = include_bytes!("corpus/pipeline.toml");
const TRANSCRIPT: &[u8] = include_bytes!("corpus/transcript.json");
const LEGACY_TRANSCRIPT: &[u8] = include_bytes!("corpus/legacy_transcript.json");
const DIGITAL_TRANSCRIPT: &[u8] = include_bytes!("corpus/digital_transcript.json");

#[test]
fn webex_task_pages() {
    fuzz(TASKS, |b| {
        let page: TaskPage = serde_json::from_slice(b).map_err(|e| e.to_string())?;
        let (batch, dates) = ccetl::source::webex::tables::tasks_batch(&page.data, None).unwrap();
        assert_eq!(batch.num_rows(), dates.len());
        Ok(())
    });
}

#[test]
fn webex_capture_pages() {
    fuzz(CAPTURES, |b| {
        let mut page: CapturePage = serde_json::from_slice(b).map_err(|e| e.to_string())?;
        let _ = ccetl::source::webex::transcripts::listed(&mut page.data, true);
        // What a window does with a page: columns, the window, both tables.
        let mut window = PageJoiner::default();
        window
            .add(0, captures::page_batch(page, true).unwrap())
            .map_err(|e| e.to_string())?;
        let window = window
            .finish(&Default::default())
            .map_err(|e| e.to_string())?;
        for url in window.urls().iter().flatten() {
            // What the audio step does with a file path: parse it as a URL, or refuse.
            let _ = url::Url::parse(url);
        }
        let audio = vec![AudioState::none(ccetl::state::AudioStatus::Disabled, None); window.len()];
        let (table, dates) = window.captures_table(&audio).map_err(|e| e.to_string())?;
        let (segments, seg_dates) =
            captures::segments_table(&table, &dates).map_err(|e| e.to_string())?;
        assert_eq!(segments.num_rows(), seg_dates.len());
        Ok(())
    });
}

/// A stored transcript, whatever its layout: read, then built into its row and its messages'
/// rows as a window does.
fn transcript(b: &[u8]) -> Result<(), String> {
    use ccetl::source::webex::transcripts::{self, Listed, Parsed, WindowTranscripts};
    let read = ccetl::source::webex::formats::read(b, Some(1_767_967_200_000))
        .map_err(|e| e.to_string())?;
    let listed = Listed {
        task_id: "t1".into(),
        id: "cfg".into(),
        file_name: "voiceTranscript.json".into(),
        source: Some("recording".into()),
        provider: None,
        language: None,
        start_ms: None,
        create_ms: None,
        url: None,
    };
    let n = read.messages.len();
    let window = WindowTranscripts::new(vec![listed], &Default::default());
    let stored = vec![AudioState::none(ccetl::state::AudioStatus::Disabled, None)];
    let parsed = vec![Parsed::Read(read)];
    let ((rows, _), (msgs, dates)) =
        transcripts::tables(&window, &stored, &parsed, &Default::default())
            .map_err(|e| e.to_string())?;
    assert_eq!((rows.num_rows(), msgs.num_rows(), dates.len()), (1, n, n));
    Ok(())
}

#[test]
fn vcon_transcripts() {
    fuzz(TRANSCRIPT, transcript);
}

#[test]
fn legacy_voice_transcripts() {
    fuzz(LEGACY_TRANSCRIPT, transcript);
}

#[test]
fn digital_transcripts() {
    fuzz(DIGITAL_TRANSCRIPT, transcript);
}

#[test]
fn xima_call_pages() {
    fuzz(XIMA_CALLS, |b| {
        let calls: Vec<Call> = serde_json::from_slice(b).map_err(|e| e.to_string())?;
        ccetl::source::xima::tables::calls_batch(&calls).map_err(|e| e.to_string())?;
        Ok(())
    });
}

/// Feeds `b` to a decoder in chunks of `split` bytes (a body arriving in pieces).
fn decode_csv(
    spec: &ccetl::source::legacy::csv::TableSpec,
    b: &[u8],
    split: usize,
) -> Result<arrow::array::RecordBatch, String> {
    let mut d = CsvDecoder::new(spec);
    for chunk in b.chunks(split.max(1)) {
        d.feed(chunk).map_err(|e| e.to_string())?;
    }
    d.finish().map_err(|e| e.to_string())
}

#[test]
fn legacy_csr_csv() {
    fuzz(CSRS, |b| {
        let one = decode_csv(&tables::CSR, b, b.len());
        let pieces = decode_csv(&tables::CSR, b, 7);
        // Chunking never changes the outcome.
        assert_eq!(one.is_ok(), pieces.is_ok(), "{one:?} vs {pieces:?}");
        one.map(|_| ())
    });
}

#[test]
fn legacy_car_csv_and_chains() {
    fuzz(CARS, |b| {
        let batch = decode_csv(&tables::CAR, b, 13)?;
        ccetl::source::legacy::chains::build(&batch).map_err(|e| e.to_string())?;
        Ok(())
    });
}

#[test]
fn pipeline_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline.toml");
    fuzz(PIPELINE, |b| {
        let text = String::from_utf8_lossy(b);
        let env = |k: &str| (k == "WXCC_CLIENT_SECRET").then(|| "s3cret".to_string());
        PipelineConfig::parse(&path, &text, &env)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
}
