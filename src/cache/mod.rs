//! The content-addressed cache: fingerprints (what a node depends on) and the store (entries
//! written atomically, verified on read, locked while computed).

pub mod fingerprint;
pub mod store;

pub use fingerprint::{Fingerprint, Reason};
pub use store::Store;
