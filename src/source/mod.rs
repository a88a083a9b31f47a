//! Extract: one module per external system, each turning API pages into rows.

pub mod legacy;
pub mod webex;
pub mod xima;
