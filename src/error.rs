//! What kind of failure an error is. Each module's error says its own kind (`kind()`, next
//! to the variants that decide it); the CLI edge (`commands::exit`) reads it from an error's
//! chain. This module imports nothing of the crate, so every module can use it without an
//! import cycle.

/// The kinds of failure a user acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The pipeline file or a flag is wrong: fix it (exit 2).
    Config,
    /// A server refused the credentials, or there are none: log in again (exit 3).
    Auth,
    /// A quota stopped part of the work; what was done is kept and a rerun resumes (exit 4).
    Quota,
    /// The network or the service failed after retries: run again later (exit 1).
    Transient,
    /// An answer could not be read: report it (exit 1).
    Data,
    /// Anything else (exit 1).
    Other,
}

impl ErrorKind {
    /// The process exit code the README documents for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Config => 2,
            ErrorKind::Auth => 3,
            ErrorKind::Quota => 4,
            ErrorKind::Transient | ErrorKind::Data | ErrorKind::Other => 1,
        }
    }

    /// How much a check that failed this way outweighs others: `ccetl check` exits with the
    /// worst of its lines (a wrong file first, then refused credentials, then the rest).
    pub fn severity(self) -> u8 {
        match self {
            ErrorKind::Config => 4,
            ErrorKind::Auth => 3,
            ErrorKind::Transient | ErrorKind::Data | ErrorKind::Other => 2,
            ErrorKind::Quota => 1,
        }
    }
}

/// `err` and its causes on one line, joined with ": ", each cause once: a message that
/// already quotes its cause (as `HttpError` does with the transport's chain) is not
/// followed by it again.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(text.as_str()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("GET /v1/tasks: connection refused (after 9 attempts)")]
    struct Outer {
        source: Inner,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Inner;

    #[test]
    fn each_cause_is_named_once() {
        let e = anyhow::Error::new(Outer { source: Inner }).context("source 'wx' (webex)");
        assert_eq!(
            one_line(&e),
            "source 'wx' (webex): GET /v1/tasks: connection refused (after 9 attempts)"
        );
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let codes: Vec<u8> = [
            ErrorKind::Config,
            ErrorKind::Auth,
            ErrorKind::Quota,
            ErrorKind::Transient,
            ErrorKind::Data,
            ErrorKind::Other,
        ]
        .map(ErrorKind::exit_code)
        .to_vec();
        assert_eq!(codes, [2, 3, 4, 1, 1, 1]);
    }
}
