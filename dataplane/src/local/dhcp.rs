//! The DHCPv4 server: hands each endpoint its configured address, the network's
//! gateway as router, the subnet mask, lease times and DNS servers (Contrail style:
//! no pool, no lease state; the configuration is the lease database).

use std::net::Ipv4Addr;

use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, DHCP_CLIENT_PORT as CLIENT_PORT, DHCP_SERVER_PORT as SERVER_PORT,
};

use super::icmp::TTL;
use super::Answer;
use crate::l3::{DhcpServer, Endpoint, Vrf};
use crate::packet::PacketBuf;
use crate::wire::checksum;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::ipv4;
use crate::wire::MacAddr;

/// Answers the DHCP message in `pkt` (IPv4 at `l2`, header `ip_hlen` bytes) for `ep`.
pub fn answer<B: PacketBuf>(pkt: &mut B, l2: usize, ip_hlen: usize, ep: &Endpoint, vrf: &Vrf, server: &DhcpServer) -> Answer {
    let (Some(&addr), Some(gw)) = (ep.ipv4.first(), vrf.gateway_v4) else { return Answer::Ignored };
    let udp = l2 + ip_hlen;
    let (xid, secs, broadcast, reply_type) = {
        let Some(body) = pkt.data().get(udp + 8..) else { return Answer::Malformed };
        let Ok(dp) = DhcpPacket::new_checked(body) else { return Answer::Malformed };
        let Ok(req) = DhcpRepr::parse(&dp) else { return Answer::Malformed };
        if req.client_hardware_address.0 != ep.mac.0 {
            // Only the endpoint's own MAC gets its address.
            return Answer::Ignored;
        }
        let reply = match req.message_type {
            DhcpMessageType::Discover => DhcpMessageType::Offer,
            DhcpMessageType::Request => {
                let other_server = req.server_identifier.is_some_and(|s| s != gw);
                if other_server {
                    return Answer::Ignored;
                }
                let asked = req.requested_ip.or((!req.client_ip.is_unspecified()).then_some(req.client_ip));
                if asked.is_some_and(|a| a != addr) {
                    DhcpMessageType::Nak
                } else {
                    DhcpMessageType::Ack
                }
            }
            _ => return Answer::Ignored,
        };
        (req.transaction_id, req.secs, req.broadcast, reply)
    };
    let nak = reply_type == DhcpMessageType::Nak;
    let mask = Ipv4Addr::from(if ep.dhcp_prefix_len == 0 { 0 } else { u32::MAX << (32 - ep.dhcp_prefix_len as u32) });
    let mut dns = heapless::Vec::new();
    for d in server.dns.iter().take(smoltcp::wire::DHCP_MAX_DNS_SERVER_COUNT) {
        let _ = dns.push(*d);
    }
    let lease = server.lease_s;
    let routes = [DhcpOption { kind: 121, data: &vrf.dhcp_routes_option }];
    let extra: &[DhcpOption<'_>] = if nak || vrf.dhcp_routes_option.is_empty() { &[] } else { &routes };
    let repr = DhcpRepr {
        message_type: reply_type,
        transaction_id: xid,
        secs,
        client_hardware_address: EthernetAddress(ep.mac.0),
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: if nak { Ipv4Addr::UNSPECIFIED } else { addr },
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: (!nak).then_some(gw),
        subnet_mask: (!nak).then_some(mask),
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(gw),
        parameter_request_list: None,
        dns_servers: (!nak && !dns.is_empty()).then_some(dns),
        max_size: None,
        lease_duration: (!nak).then_some(lease),
        renew_duration: (!nak).then_some(lease / 2),
        rebind_duration: (!nak).then_some(lease / 8 * 7),
        additional_options: extra,
    };
    let dhcp_len = repr.buffer_len();
    let udp_len = 8 + dhcp_len;
    if !pkt.resize(l2 + 20 + udp_len) {
        return Answer::Ignored;
    }
    // A client that asked for broadcast (or got a NAK) gets 255.255.255.255; otherwise the
    // offered address, to its MAC either way.
    let dst = if broadcast || nak { Ipv4Addr::BROADCAST } else { addr };
    let d = pkt.data_mut();
    ipv4::emit_header(&mut d[l2..], gw, dst, 17, TTL, udp_len as u16, 0);
    let u = &mut d[l2 + 20..l2 + 20 + udp_len];
    u[0..2].copy_from_slice(&SERVER_PORT.to_be_bytes());
    u[2..4].copy_from_slice(&CLIENT_PORT.to_be_bytes());
    u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    u[6..8].copy_from_slice(&[0, 0]);
    let mut dp = DhcpPacket::new_unchecked(&mut u[8..]);
    if repr.emit(&mut dp).is_err() {
        return Answer::Malformed;
    }
    let sum = checksum::pseudo_header_v4(gw.octets(), dst.octets(), 17, udp_len as u16) + checksum::sum(u);
    let c = match !checksum::fold(sum) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(if broadcast { MacAddr::BROADCAST } else { ep.mac });
    eth.set_src(vrf.gateway_mac);
    Answer::Replied
}

#[cfg(test)]
mod tests;
