use super::*;
use crate::l3::fixture::*;
use crate::l3::{forward, L3Out, L3State};
use crate::packet::HeapBuf;
use crate::wire::ipv4::Ipv4Packet;

/// A client message from `mac` as the kernel's DHCP client sends it: from 0.0.0.0 to
/// 255.255.255.255, L2 broadcast.
fn client_msg(mac: MacAddr, typ: DhcpMessageType, requested: Option<Ipv4Addr>, server: Option<Ipv4Addr>, broadcast: bool) -> Vec<u8> {
    let repr = DhcpRepr {
        message_type: typ,
        transaction_id: 0xdead_beef,
        secs: 3,
        client_hardware_address: EthernetAddress(mac.0),
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: Ipv4Addr::UNSPECIFIED,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast,
        requested_ip: requested,
        client_identifier: Some(EthernetAddress(mac.0)),
        server_identifier: server,
        parameter_request_list: Some(&[1, 3, 6, 51]),
        dns_servers: None,
        max_size: Some(1500),
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut body = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut body[..])).unwrap();
    let udp = udp4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 68, 67, &body);
    ipv4_frame(MacAddr::BROADCAST, mac, None, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 17, 64, &udp)
}

/// Runs a client message from endpoint a (port 0) and returns the reply, checked.
fn exchange(frame: &[u8]) -> Option<(MacAddr, Ipv4Addr, Vec<u8>)> {
    let t = tables();
    let mut st = L3State::default();
    let mut b = HeapBuf::new(frame);
    match forward::process(&t, &mut st, 0, &mut b, 0) {
        L3Out::Tx { port: 0, vlan: None } => {}
        L3Out::Drop(_) => return None,
        other => panic!("{other:?}"),
    }
    assert_eq!(st.counters.dhcp_replies, 1);
    let d = b.data();
    let e = EthernetFrame::new_checked(d).unwrap();
    assert_eq!(e.src(), GW_BLUE);
    let ip = Ipv4Packet::new_checked(&d[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src(), ip.protocol()), (ip4("10.1.0.1"), 17));
    let udp = ip.payload();
    assert_eq!(&udp[..4], &[0, 67, 0, 68]);
    let sum = checksum::pseudo_header_v4(ip.src().octets(), ip.dst().octets(), 17, udp.len() as u16) + checksum::sum(udp);
    assert_eq!(checksum::fold(sum), 0xffff, "UDP checksum valid");
    Some((e.dst(), ip.dst(), udp[8..].to_vec()))
}

#[test]
fn discover_gets_an_offer_of_the_configured_address() {
    let (l2_dst, ip_dst, body) = exchange(&client_msg(MAC_A, DhcpMessageType::Discover, None, None, false)).unwrap();
    assert_eq!((l2_dst, ip_dst), (MAC_A, ip4("10.1.0.10")));
    let dp = DhcpPacket::new_checked(&body[..]).unwrap();
    let r = DhcpRepr::parse(&dp).unwrap();
    assert_eq!(r.message_type, DhcpMessageType::Offer);
    assert_eq!(r.transaction_id, 0xdead_beef);
    assert_eq!(r.your_ip, ip4("10.1.0.10"));
    assert_eq!(r.router, Some(ip4("10.1.0.1")));
    assert_eq!(r.subnet_mask, Some(ip4("255.255.255.0")));
    assert_eq!(r.server_identifier, Some(ip4("10.1.0.1")));
    assert_eq!(r.lease_duration, Some(3600));
    assert_eq!(r.dns_servers.as_deref(), Some(&[ip4("10.1.0.1")][..]));
    // Option 121: 172.16/16 then the default route, both via the gateway.
    let dp = DhcpPacket::new_checked(&body[..]).unwrap();
    let o121 = dp.options().find(|o| o.kind == 121).expect("classless static routes");
    assert_eq!(o121.data, &[16, 172, 16, 10, 1, 0, 1, 0, 10, 1, 0, 1]);
}

#[test]
fn request_is_acked_or_nakked() {
    let ok = client_msg(MAC_A, DhcpMessageType::Request, Some(ip4("10.1.0.10")), Some(ip4("10.1.0.1")), true);
    let (l2_dst, ip_dst, body) = exchange(&ok).unwrap();
    assert_eq!((l2_dst, ip_dst), (MacAddr::BROADCAST, Ipv4Addr::BROADCAST), "broadcast flag honoured");
    let dp = DhcpPacket::new_checked(&body[..]).unwrap();
    let r = DhcpRepr::parse(&dp).unwrap();
    assert_eq!((r.message_type, r.your_ip), (DhcpMessageType::Ack, ip4("10.1.0.10")));

    let wrong = client_msg(MAC_A, DhcpMessageType::Request, Some(ip4("10.1.0.99")), None, false);
    let (_, ip_dst, body) = exchange(&wrong).unwrap();
    assert_eq!(ip_dst, Ipv4Addr::BROADCAST);
    let dp = DhcpPacket::new_checked(&body[..]).unwrap();
    let r = DhcpRepr::parse(&dp).unwrap();
    assert_eq!((r.message_type, r.your_ip, r.router), (DhcpMessageType::Nak, Ipv4Addr::UNSPECIFIED, None));
}

#[test]
fn other_servers_and_other_messages_are_ignored() {
    let other = client_msg(MAC_A, DhcpMessageType::Request, Some(ip4("10.1.0.10")), Some(ip4("10.1.0.254")), false);
    assert!(exchange(&other).is_none());
    assert!(exchange(&client_msg(MAC_A, DhcpMessageType::Release, None, None, false)).is_none());
    // A BOOTP body cut short (consistent IP/UDP lengths) is malformed, not a panic.
    let full = client_msg(MAC_A, DhcpMessageType::Discover, None, None, false);
    let udp = udp4(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 68, 67, &full[14 + 28..14 + 28 + 100]);
    let cut = ipv4_frame(MacAddr::BROADCAST, MAC_A, None, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 17, 64, &udp);
    let t = tables();
    let mut st = L3State::default();
    let mut b = HeapBuf::new(&cut);
    assert_eq!(forward::process(&t, &mut st, 0, &mut b, 0), L3Out::Drop(crate::DropReason::DhcpMalformed));
}
