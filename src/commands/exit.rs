//! The exit code of a failed command: the kind of the first error in its chain that knows
//! its kind. It lives at the edge, the one place that knows every public error type, so no
//! module below needs to import the others' errors.

use crate::error::ErrorKind;

/// Exit codes: 0 done, 1 failed, 2 bad config or usage, 3 auth failed, 4 partial.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    kind_of(err).exit_code()
}

/// The kind of the first error in `err`'s chain that knows its kind; `Other` if none does.
pub(crate) fn kind_of(err: &anyhow::Error) -> ErrorKind {
    err.chain().find_map(classify).unwrap_or(ErrorKind::Other)
}

/// The kind of one link of a chain, for the public error types a command can return.
fn classify(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    use crate::{auth, config, extract};
    Some(if let Some(e) = e.downcast_ref::<config::ConfigError>() {
        e.kind()
    } else if let Some(e) = e.downcast_ref::<extract::RunError>() {
        e.kind()
    } else if let Some(e) = e.downcast_ref::<auth::AuthError>() {
        e.kind()
    } else if let Some(e) = e.downcast_ref::<auth::login::LoginError>() {
        e.kind()
    } else if let Some(e) = e.downcast_ref::<extract::SourceFailure>() {
        e.kind()
    } else if let Some(e) = e.downcast_ref::<crate::http::HttpError>() {
        e.kind()
    } else if let Some(e) = e.downcast_ref::<crate::commands::CheckFailed>() {
        e.kind
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_that_knows_no_kind_is_other_and_one_that_does_is_found_in_the_chain() {
        let plain = anyhow::anyhow!("disk full").context("writing");
        assert_eq!(kind_of(&plain), ErrorKind::Other);
        let config = crate::config::ConfigError::Invalid {
            path: "p.toml".into(),
            key: "warehouse".into(),
            message: "empty".into(),
        };
        let e = anyhow::Error::new(config).context("source 'wx'");
        assert_eq!(exit_code(&e), 2);
    }
}
