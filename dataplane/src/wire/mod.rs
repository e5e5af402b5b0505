//! Zero-copy typed views over untrusted frame bytes.
//!
//! smoltcp's `wire` style: a view is `new_checked` once (every length the accessors
//! rely on is checked there) and after that no accessor panics. Fields are read by byte
//! offset, never by casting to packed structs.

pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

pub use ethernet::{EtherType, EthernetFrame, MacAddr, VlanTag, WireError};
pub use icmp::{IcmpError, IcmpHeader};
pub use ipv4::{Ipv4Error, Ipv4Packet};
pub use ipv6::{Frag, Ipv6Error, Ipv6Packet};
pub use tcp::{TcpError, TcpFlags, TcpPacket};
pub use udp::{UdpError, UdpPacket};
