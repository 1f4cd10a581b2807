//! The domain without Kubernetes or I/O: member addresses, firmware facts, and who owns a
//! device object.

pub mod address;
pub mod firmware;
pub mod ownership;

pub use address::MemberAddress;
pub use firmware::Firmware;
pub use ownership::{Holder, Owner, has_marker};
