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
    /// The clock's API (the simulator's, `ccetl simulate`).
    base_url: String,
    /// Time between two ticks (default one hour).
    #[serde(default)]
    every: Option<String>,
    /// Whether each tick's recording is copied into the warehouse (default true). Named
    /// apart from the real kinds' `audio`, so messages listing a key's kinds stay theirs.
    #[serde(default)]
    recordings: Option<bool>,
}

/// The example source, checked.
#[derive(Debug, Clone)]
pub(crate) struct ExampleConfig {
    pub(crate) name: String,
    pub(crate) base_url: url::Url,
    pub(crate) every: Duration,
    pub(crate) recordings: bool,
}

impl RawExample {
    /// Checks every key; the first problem is returned, naming its key.
    pub(crate) fn validate(self, f: &Fields) -> Result<ExampleConfig, KeyError> {
        let hour = Duration::from_secs(3600);
        let every = f.duration("every", self.every.as_deref(), hour, Duration::from_secs(1))?;
        Ok(ExampleConfig {
            name: self.name,
            base_url: f.url("base_url", &self.base_url, true)?,
            every,
            recordings: self.recordings.unwrap_or(true),
        })
    }
}
