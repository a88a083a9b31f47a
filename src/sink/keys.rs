//! Object keys built from API data, made safe.
//!
//! Ids come from remote APIs; a key segment built from one must never climb out of its
//! prefix (`..`), be absolute, or smuggle separators or control characters. Unsafe ids keep
//! a readable part plus a hash of the original, so two different ids never share a key.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

const MAX_SEGMENT: usize = 128;

/// One key segment for an id: `[A-Za-z0-9._-]`, no leading dot, at most 128 bytes.
pub fn safe_segment(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed == id && !id.is_empty() && id.len() <= MAX_SEGMENT {
        return id.to_string();
    }
    let digest = hex::encode(Sha256::digest(id.as_bytes()));
    let head: String = trimmed.chars().take(MAX_SEGMENT - 14).collect();
    let head = if head.is_empty() {
        "id".to_string()
    } else {
        head
    };
    format!("{head}-{}", &digest[..12])
}

/// `part-20260131T000000Z`: the start of every file name a window writes.
pub fn part_stem(window_start: DateTime<Utc>) -> String {
    format!("part-{}", window_stamp(window_start))
}

/// `part-20260131T000000Z.parquet`: a Hive table's one file per window, named by the window
/// start, so a replayed window replaces it.
pub fn part_file(window_start: DateTime<Utc>) -> String {
    format!("{}.parquet", part_stem(window_start))
}

/// `part-20260131T000000Z-{16 hex}.parquet`: a Delta table's file, named by its window and
/// its content, so a file a snapshot references is never overwritten with other bytes.
pub fn content_part_file(window_start: DateTime<Utc>, sha256_hex: &str) -> String {
    let digest = sha256_hex.get(..16).unwrap_or(sha256_hex);
    format!("{}-{digest}.parquet", part_stem(window_start))
}

/// `20260131T000000Z`: a window start in file and key names.
pub fn window_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `{table}/source={name}/date={YYYY-MM-DD}/{file}`.
pub fn table_file(table: &str, source: &str, date: chrono::NaiveDate, file: &str) -> String {
    format!("{table}/{}/{file}", partition_dir(source, date))
}

/// `source={name}/date={YYYY-MM-DD}`: a file's partition, relative to its table.
pub fn partition_dir(source: &str, date: chrono::NaiveDate) -> String {
    format!("{}/date={}", source_dir(source), date.format("%Y-%m-%d"))
}

/// `source={name}`: a source's first directory in a table.
pub fn source_dir(source: &str) -> String {
    format!("source={}", safe_segment(source))
}

/// A part file's name read back: its window stamp, and the content digest a Delta-era name
/// carries ([`content_part_file`]; a Hive-era one, [`part_file`], has none). `None` for any
/// other name (staging leftovers `…parquet#3` among them).
pub fn parse_part_file(name: &str) -> Option<(&str, Option<&str>)> {
    let rest = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (stamp, digest) = match rest.split_once('-') {
        Some((stamp, digest)) => (stamp, Some(digest)),
        None => (rest, None),
    };
    (stamp.len() == 16 && digest != Some("")).then_some((stamp, digest))
}

/// `audio/{source}/{YYYY}/{MM}/{DD}/{call}/{recording}.{ext}`, dated by the call's own time.
pub fn audio_key(
    source: &str,
    call_time: DateTime<Utc>,
    call_id: &str,
    recording_id: &str,
    ext: &str,
) -> String {
    format!(
        "audio/{}/{}/{}/{}.{}",
        safe_segment(source),
        call_time.format("%Y/%m/%d"),
        safe_segment(call_id),
        safe_segment(recording_id),
        ext
    )
}

/// `_ccetl/manifests/{source}/{stream}/{window}.json`.
pub fn manifest_key(source: &str, stream: &str, window_start: DateTime<Utc>) -> String {
    format!(
        "{}/{}.json",
        manifest_dir(source, stream),
        window_stamp(window_start)
    )
}

/// `_ccetl/manifests/{source}/{stream}`: where a stream's manifests are.
pub fn manifest_dir(source: &str, stream: &str) -> String {
    format!(
        "_ccetl/manifests/{}/{}",
        safe_segment(source),
        safe_segment(stream)
    )
}

/// `transcripts/{source}/{YYYY}/{MM}/{DD}/{call}/{transcript}/{file}`, dated by the call's
/// time. The file name is part of the key: a voice transcript's id is the org's CCAI config
/// id, the same for every transcript of the org, and one task may have several.
pub fn transcript_key(
    source: &str,
    call_time: DateTime<Utc>,
    call_id: &str,
    transcript_id: &str,
    file_name: &str,
) -> String {
    format!(
        "transcripts/{}/{}/{}/{}/{}",
        safe_segment(source),
        call_time.format("%Y/%m/%d"),
        safe_segment(call_id),
        safe_segment(transcript_id),
        safe_segment(file_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_ids_stay_inside() {
        for id in [
            "../../etc/passwd",
            "/abs",
            "a\\b",
            "a\0b",
            "..",
            ".",
            "",
            "x\ny",
            &"z".repeat(500),
        ] {
            let s = safe_segment(id);
            assert!(
                !s.contains('/') && !s.contains('\\') && !s.starts_with('.'),
                "{id:?} -> {s}"
            );
            assert!(!s.is_empty() && s.len() <= MAX_SEGMENT, "{id:?} -> {s}");
        }
        assert_ne!(safe_segment("a/b"), safe_segment("a_b"));
        assert_eq!(safe_segment("5d1c9a40-1111-4e2b"), "5d1c9a40-1111-4e2b");
    }

    #[test]
    fn part_file_names_read_back() {
        let t = chrono::DateTime::from_timestamp(1_769_817_600, 0).unwrap(); // 2026-01-31
        let stamp = window_stamp(t);
        assert_eq!(parse_part_file(&part_file(t)), Some((stamp.as_str(), None)));
        let sha = "0123456789abcdef0123";
        assert_eq!(
            parse_part_file(&content_part_file(t, sha)),
            Some((stamp.as_str(), Some("0123456789abcdef")))
        );
        for other in [
            "part-20260131T000000Z.parquet#3",
            "part-20260131T000000Z-.parquet",
            "part-2026.parquet",
            "other.parquet",
        ] {
            assert_eq!(parse_part_file(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn any_id_is_one_safe_segment(id in ".*") {
            let s = safe_segment(&id);
            prop_assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
            prop_assert!(!s.starts_with('.') && !s.is_empty() && s.len() <= MAX_SEGMENT);
        }
    }
}
