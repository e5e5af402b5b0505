//! Every reason the dataplane drops a packet: one declared list, one counter each.
//!
//! A dropped packet is always counted under exactly one reason. The names are stable:
//! they appear in `--stats-json`, the CLI and metrics.

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $desc:literal;)*) => {
        /// Why a packet was dropped.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order (the index is `reason as usize`).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name used in stats output.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// One line for operators.
            pub const fn description(self) -> &'static str {
                match self { $(DropReason::$variant => $desc,)* }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header (14 bytes).
    Runt => "runt", "frame shorter than an Ethernet header";
    /// An 802.1Q/802.1ad tag announced but cut short.
    TruncatedVlan => "truncated_vlan", "VLAN tag announced but frame ends inside it";
    /// Longer than the ingress port's MTU plus L2 header allows.
    Oversize => "oversize", "frame longer than the port MTU allows";
    /// Spread over several mbuf segments (jumbo without a large enough mbuf).
    ChainedMbuf => "chained_mbuf", "multi-segment buffer (raise mempool data_room)";
    /// Source MAC is multicast, broadcast or all-zero.
    InvalidSrcMac => "invalid_src_mac", "source MAC is multicast or zero";
    /// A tagged frame whose VLAN the port does not carry (access port or trunk allow-list).
    VlanNotAllowed => "vlan_not_allowed", "VLAN not allowed on the ingress port";
    /// An untagged frame on a trunk port that has no native VLAN.
    UntaggedOnTrunk => "untagged_on_trunk", "untagged frame on a trunk without native VLAN";
    /// The destination is behind the ingress port itself (no hairpin).
    Hairpin => "hairpin", "destination is on the ingress port";
    /// Flooded, but the domain has no other port.
    NoOutput => "no_output", "no other port in the bridge domain";
    /// The ingress port is not attached to any bridge.
    NotBridged => "not_bridged", "ingress port belongs to no bridge";
    /// No mbuf left to copy a flooded frame.
    CopyFailed => "copy_failed", "mempool empty while copying a flooded frame";
    /// No headroom to push a VLAN tag.
    NoHeadroom => "no_headroom", "no headroom to push a VLAN tag";
    /// The transmit queue was full.
    TxFull => "tx_full", "transmit queue full";
    /// The egress port is being removed or is down.
    PortDown => "port_down", "egress port not running";
    /// Frame on an endpoint port whose (VLAN, source MAC) is no endpoint's.
    UnknownEndpoint => "unknown_endpoint", "no endpoint with this VLAN and source MAC on the port";
    /// Unicast to a MAC that is not sluice's on an L3 port.
    NotForUs => "not_for_us", "unicast frame not addressed to the gateway/uplink MAC";
    /// Neither ARP, IPv4 nor IPv6 on an L3 port.
    UnsupportedEthertype => "unsupported_ethertype", "ethertype not routed";
    /// ARP that sluice does not answer (not a request, or not for an address it answers).
    ArpIgnored => "arp_ignored", "ARP not answered";
    /// ARP with a bad format or length.
    ArpMalformed => "arp_malformed", "malformed ARP";
    /// IP header cut short.
    IpTruncated => "ip_truncated", "IP header or extension header cut short";
    /// Bad IP version or IHL.
    IpBadHeader => "ip_bad_header", "bad IP version or header length";
    /// IP total/payload length inconsistent with the frame.
    IpBadLength => "ip_bad_length", "IP length inconsistent with the frame";
    /// IPv4 header checksum wrong.
    IpBadChecksum => "ip_bad_checksum", "IPv4 header checksum wrong";
    /// IPv6 extension-header chain longer than sluice walks.
    Ipv6ExtChain => "ipv6_ext_chain", "IPv6 extension-header chain too long";
    /// Source MAC/IP not the endpoint's own (anti-spoofing).
    Spoofed => "spoofed", "source address not allowed for the endpoint";
    /// DHCP that sluice does not answer.
    DhcpIgnored => "dhcp_ignored", "DHCP message not answered";
    /// Malformed DHCP.
    DhcpMalformed => "dhcp_malformed", "malformed DHCP message";
    /// Neighbor-discovery or DAD traffic sluice does not answer.
    NdIgnored => "nd_ignored", "neighbor discovery not answered";
    /// Malformed neighbor discovery.
    NdMalformed => "nd_malformed", "malformed neighbor discovery";
    /// Multicast or broadcast IP (not routed).
    L3Multicast => "l3_multicast", "multicast/broadcast IP not routed";
    /// No route to the destination (ICMP unreachable sent if allowed).
    NoRoute => "no_route", "no route in the network's VRF";
    /// TTL or hop limit ran out (ICMP time exceeded sent if allowed).
    TtlExpired => "ttl_expired", "TTL/hop limit expired";
    /// Addressed to sluice but not something it answers.
    LocalUnhandled => "local_unhandled", "for a gateway address but not answered";
    /// A route leak that leads to another leak, or a nested ECMP group.
    RouteLoop => "route_loop", "route leaking more than one VRF hop";
    /// Blackhole route.
    Blackhole => "blackhole", "blackhole route";
    /// The destination is ingress-isolated by NetworkPolicy and no rule allows the connection.
    PolicyIngress => "policy_ingress", "denied by the destination's ingress NetworkPolicy";
    /// The source is egress-isolated by NetworkPolicy and no rule allows the connection.
    PolicyEgress => "policy_egress", "denied by the source's egress NetworkPolicy";
    /// A global rule with action deny matched.
    PolicyGlobal => "policy_global", "denied by a global rule";
    /// Connection tracking found the TCP segment invalid (bad flags; strict mode: no SYN
    /// to open, or out of window).
    CtInvalid => "ct_invalid", "invalid for connection tracking";
    /// The network already has its `max_flows` connections on this worker.
    NetworkFlowLimit => "network_flow_limit", "network's connection limit reached";
    /// The flow table has no room and nothing could be evicted.
    FlowTableFull => "flow_table_full", "flow table full";
    /// A non-first fragment whose first fragment was not seen (or timed out).
    FragmentUnknown => "fragment_unknown", "fragment without a known first fragment";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexed_in_order() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(!r.description().is_empty());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
