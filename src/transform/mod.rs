//! Transforms over Arrow batches: the segment ↔ task join (and, later, activity chains).

pub mod segments;
