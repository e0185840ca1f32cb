//! Leaf helpers shared by every layer: byte sizes for people, digests, text cutting.
//! Nothing here imports from the crate; everything above may import from here.

pub mod digest;
pub mod root_cause;
pub mod text;
pub mod units;
pub mod words;
