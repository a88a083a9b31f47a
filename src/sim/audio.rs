//! Deterministic audio files (WAV µ-law for Webex, OPUS in Ogg for Xima), generated in chunks
//! so that even a 50 MB recording costs the simulator no memory.

use bytes::Bytes;
use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;
/// Bytes of the WAV header before the samples.
pub const HEADER_LEN: u64 = 44;

/// The byte length of a recording's WAV file.
pub fn wav_len(duration_secs: u64, rate: u32) -> u64 {
    HEADER_LEN + duration_secs.max(1) * u64::from(rate)
}

fn header(data_len: u32, rate: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&7u16.to_le_bytes()); // µ-law
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&rate.to_le_bytes()); // byte rate: 1 byte per sample
    h[32..34].copy_from_slice(&1u16.to_le_bytes());
    h[34..36].copy_from_slice(&8u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// An audio body, streamed at `rate` bytes a second when given: each chunk is sent when the
/// bytes before it would have arrived at that rate.
pub fn paced(
    chunks: AudioChunks,
    rate: Option<u64>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    use futures::StreamExt;
    let start = tokio::time::Instant::now();
    let mut sent = 0u64;
    futures::stream::iter(chunks).then(move |chunk| {
        let due = rate
            .filter(|&r| r > 0)
            .map(|r| start + std::time::Duration::from_secs_f64(sent as f64 / r as f64));
        sent += chunk.len() as u64;
        async move {
            if let Some(due) = due {
                tokio::time::sleep_until(due).await;
            }
            Ok(chunk)
        }
    })
}

/// An audio file in chunks: a format header, then deterministic noise.
pub struct AudioChunks {
    header: Option<Vec<u8>>,
    remaining: u64,
    state: u64,
}

impl AudioChunks {
    /// The chunks of a recording's audio: deterministic in `seed`, `duration_secs` long at `rate` bytes a second.
    pub fn new(seed: u64, duration_secs: u64, rate: u32) -> Self {
        let data_len = wav_len(duration_secs, rate) - HEADER_LEN;
        AudioChunks {
            header: Some(header(data_len.min(u64::from(u32::MAX)) as u32, rate).to_vec()),
            remaining: data_len,
            state: seed | 1,
        }
    }

    /// An OPUS recording in an Ogg container, `rate` bytes per second (Xima's format).
    pub fn opus(seed: u64, duration_secs: u64, rate: u32) -> Self {
        AudioChunks {
            header: Some(OPUS_HEADER.to_vec()),
            remaining: opus_len(duration_secs, rate) - OPUS_HEADER.len() as u64,
            state: seed | 1,
        }
    }
}

/// An Ogg page carrying an `OpusHead` packet: enough for `file` to say "Ogg data, Opus audio".
const OPUS_HEADER: [u8; 47] = [
    b'O', b'g', b'g', b'S', 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x53, 0x49, 0x4d, 0x58, 0, 0, 0, 0, 0, 0,
    0, 0, 1, 19, b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 1, 0x38, 1, 0x80, 0xbb, 0, 0,
    0, 0, 0,
];

/// The byte length of an OPUS recording.
pub fn opus_len(duration_secs: u64, rate: u32) -> u64 {
    OPUS_HEADER.len() as u64 + duration_secs.max(1) * u64::from(rate)
}

impl Iterator for AudioChunks {
    type Item = Bytes;
    fn next(&mut self) -> Option<Bytes> {
        if let Some(h) = self.header.take() {
            return Some(Bytes::from(h));
        }
        if self.remaining == 0 {
            return None;
        }
        let n = (self.remaining as usize).min(CHUNK);
        let mut buf = Vec::with_capacity(n);
        while buf.len() < n {
            // xorshift64*: cheap, deterministic, incompressible enough to be honest audio-sized.
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let v = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            let take = (n - buf.len()).min(8);
            buf.extend_from_slice(&v[..take]);
        }
        self.remaining -= n as u64;
        Some(Bytes::from(buf))
    }
}

/// Size and sha256 of a recording's WAV file.
pub fn wav_digest(seed: u64, duration_secs: u64, rate: u32) -> (u64, String) {
    digest(AudioChunks::new(seed, duration_secs, rate))
}

/// Size and sha256 of a generated file.
pub fn digest(chunks: AudioChunks) -> (u64, String) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    for c in chunks {
        n += c.len() as u64;
        h.update(&c);
    }
    (n, hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_header() {
        let chunks: Vec<Bytes> = AudioChunks::new(9, 10, 800).collect();
        let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(all.len() as u64, wav_len(10, 800));
        assert_eq!(&all[0..4], b"RIFF");
        assert_eq!(&all[8..12], b"WAVE");
        assert_eq!(wav_digest(9, 10, 800).0, all.len() as u64);
        assert_ne!(wav_digest(9, 10, 800).1, wav_digest(10, 10, 800).1);
    }
}
