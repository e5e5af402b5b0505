//! Local answers: ARP, IPv6 neighbor discovery, ICMP echo, ICMP errors and DHCPv4,
//! built in place in the received buffer (as VPP's arp-reply and ip4-icmp-echo-request
//! nodes do): no allocation, the request's buffer leaves as the reply.
//!
//! ARP, NDP and DHCP formats come from `smoltcp::wire`; IP/ICMP headers from our own
//! views in `crate::wire`.

pub mod arp;
pub mod dhcp;
pub mod icmp;
pub mod ndp;

/// What a local handler did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The buffer now holds the reply, to send back out of the ingress port.
    Replied,
    /// Well-formed, but not something to answer.
    Ignored,
    /// Not parseable.
    Malformed,
}
