//! Transforms over Arrow batches: the segment ↔ task join and the activity chains.

pub mod chains;
pub mod segments;
