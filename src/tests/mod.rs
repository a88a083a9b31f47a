//! Tests of the whole crate that need its test-only parts (the example source), so they
//! cannot be integration tests under `tests/`.

mod example_source;
mod reparse;
