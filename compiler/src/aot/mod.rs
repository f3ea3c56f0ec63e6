//! Ahead-of-time translation of whole guest binaries into host objects (`vmc translate`).
//!
//! [`discover`] finds the guest code, [`translate`] partitions it into regions and compiles
//! them in parallel, [`image`] defines the image format that `vmrun IMAGE` loads, and
//! [`cache`] keeps translated images content-addressed.

pub mod cache;
pub mod discover;
pub mod image;
pub mod pgo;
pub mod sign;
pub mod translate;
