//! Zero-copy typed views over untrusted frame bytes.
//!
//! smoltcp's `wire` style: a view is `new_checked` once (every length the accessors
//! rely on is checked there) and after that no accessor panics. Fields are read by byte
//! offset, never by casting to packed structs.

pub mod ethernet;

pub use ethernet::{EtherType, EthernetFrame, MacAddr, VlanTag, WireError};
