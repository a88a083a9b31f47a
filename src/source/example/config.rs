//! `kind = "example"`: the test-only source's `[[source]]` table.

use std::time::Duration;

use serde::Deserialize;

use crate::extract::fields::{Fields, KeyError};

/// A `[[source]]` with `kind = "example"`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExample {
    /// Unique within the pipeline; names the source's state file, logs and report.
    name: String,
    /// Time between two ticks (default one hour).
    #[serde(default)]
    every: Option<String>,
}

/// The example source, checked.
#[derive(Debug, Clone)]
pub(crate) struct ExampleConfig {
    pub(crate) name: String,
    pub(crate) every: Duration,
}

impl RawExample {
    /// Checks every key; the first problem is returned, naming its key.
    pub(crate) fn validate(self, f: &Fields) -> Result<ExampleConfig, KeyError> {
        let hour = Duration::from_secs(3600);
        let every = f.duration("every", self.every.as_deref(), hour, Duration::from_secs(1))?;
        Ok(ExampleConfig {
            name: self.name,
            every,
        })
    }
}
