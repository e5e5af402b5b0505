//! Connection tracking: the TCP state machine with window tracking, the UDP/ICMP/other
//! pseudo-states, and the idle timeout each state gets.
//!
//! The TCP machine follows Linux `nf_conntrack_proto_tcp`: one transition table indexed
//! by direction, segment kind (SYN, SYN-ACK, FIN, ACK, RST, none) and state, with the
//! same state names, and window tracking after Guido van Rooij's "Real Stateful TCP
//! Packet Filtering in IP Filter" as in Linux `tcp_in_window`, without SACK blocks, NAT
//! sequence offsets or retransmission counting (the caller does not parse SACK; sluice
//! does no sequence-rewriting NAT).
//!
//! Two modes ([`FlowConfig::tcp_strict`](super::FlowConfig)):
//! * liberal (default, Linux `tcp_be_liberal=1`, `tcp_loose=1`): a first segment that is
//!   not a SYN picks the connection up as Established; a segment the table has no
//!   transition for is accepted without changing state; only gross flag combinations are
//!   Invalid. Window tracking is skipped altogether (nothing would read it), which keeps
//!   the per-packet work to one table read.
//! * strict: only a SYN opens; segments with no transition are Invalid; the window is
//!   tracked and out-of-window segments are Invalid.

use super::key::Dir;

/// TCP header flag bits as in the header's 13th byte.
pub mod tcp_flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The ack field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer significant.
    pub const URG: u8 = 0x20;
}
use tcp_flags::{ACK, FIN, RST, SYN};

/// Per-protocol idle timeouts, milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP before the handshake completed (SynSent, SynSent2, SynRecv, and a fresh entry).
    pub tcp_syn_ms: u64,
    /// TCP Established.
    pub tcp_established_ms: u64,
    /// TCP after a FIN (FinWait, CloseWait, LastAck).
    pub tcp_closing_ms: u64,
    /// TCP TimeWait and Close (after RST).
    pub tcp_closed_ms: u64,
    /// UDP seen in the Orig direction only.
    pub udp_unreplied_ms: u64,
    /// UDP seen both ways.
    pub udp_ms: u64,
    /// ICMP / ICMPv6.
    pub icmp_ms: u64,
    /// Any other protocol.
    pub other_ms: u64,
}

impl Default for Timeouts {
    /// tcp_syn 30 s, established 7440 s (2 h 4 min, the RFC 5382 minimum VPP uses),
    /// closing 30 s, closed 10 s, UDP unreplied 30 s, UDP 120 s, ICMP 30 s, other 60 s.
    fn default() -> Self {
        Timeouts {
            tcp_syn_ms: 30_000,
            tcp_established_ms: 7_440_000,
            tcp_closing_ms: 30_000,
            tcp_closed_ms: 10_000,
            udp_unreplied_ms: 30_000,
            udp_ms: 120_000,
            icmp_ms: 30_000,
            other_ms: 60_000,
        }
    }
}

/// TCP connection state (Linux names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// No segment accounted yet: the entry was just inserted.
    #[default]
    None = 0,
    /// SYN seen from the originator.
    SynSent = 1,
    /// SYN-ACK seen from the responder.
    SynRecv = 2,
    /// Handshake completed (or picked up mid-stream in liberal mode).
    Established = 3,
    /// A FIN seen (from either side).
    FinWait = 4,
    /// A FIN seen and acknowledged.
    CloseWait = 5,
    /// FINs seen from both sides.
    LastAck = 6,
    /// Both FINs seen and the last one acknowledged.
    TimeWait = 7,
    /// Reset.
    Close = 8,
    /// Simultaneous open: SYNs seen from both sides.
    SynSent2 = 9,
}

impl TcpState {
    /// Indexed by the codes in [`TRANSITIONS`].
    const BY_CODE: [TcpState; 10] = [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::SynSent2,
    ];
}

/// Window tracking of one direction (the sender's view, Linux `ip_ct_tcp_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpDir {
    /// Highest sequence number sent + 1 (seq + len of the furthest segment).
    pub td_end: u32,
    /// Highest sequence number the receiver allowed (its ack + window).
    pub td_maxend: u32,
    /// Largest window the sender was seen to use (0: nothing seen yet).
    pub td_maxwin: u32,
    /// Window scale the sender announced (0 unless both sides announced one).
    pub wscale: u8,
    /// [`TcpDir::WSCALE_SEEN`] and friends.
    pub flags: u8,
}

impl TcpDir {
    /// The sender's SYN carried a window-scale option.
    pub const WSCALE_SEEN: u8 = 0x01;
}

/// TCP conntrack state of one connection with its window tracking (36 bytes). The flow
/// table keeps the state in the entry's hot lines and the windows apart, in its cold
/// array (only strict mode reads them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpConn {
    /// Connection state.
    pub state: TcpState,
    /// Window tracking per [`Dir`] (maintained in strict mode only).
    pub dirs: [TcpDir; 2],
}

/// Connection-tracking state, as the flow entry's hot line holds it (2 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// TCP (protocol 6): the state (window tracking is in [`TcpConn`]).
    Tcp(TcpState),
    /// UDP (17): `replied` once a packet was seen in the Reply direction.
    Udp { replied: bool },
    /// ICMP (1) and ICMPv6 (58).
    Icmp { replied: bool },
    /// Any other protocol.
    Other { replied: bool },
}

impl ConnState {
    /// The state of a new entry of IP protocol `proto`, before any packet.
    pub fn new(proto: u8) -> ConnState {
        match proto {
            6 => ConnState::Tcp(TcpState::None),
            17 => ConnState::Udp { replied: false },
            1 | 58 => ConnState::Icmp { replied: false },
            _ => ConnState::Other { replied: false },
        }
    }

    /// The idle timeout for this state.
    #[inline]
    pub fn timeout_ms(&self, t: &Timeouts) -> u64 {
        match *self {
            ConnState::Tcp(s) => match s {
                TcpState::None | TcpState::SynSent | TcpState::SynRecv | TcpState::SynSent2 => t.tcp_syn_ms,
                TcpState::Established => t.tcp_established_ms,
                TcpState::FinWait | TcpState::CloseWait | TcpState::LastAck => t.tcp_closing_ms,
                TcpState::TimeWait | TcpState::Close => t.tcp_closed_ms,
            },
            ConnState::Udp { replied: false } => t.udp_unreplied_ms,
            ConnState::Udp { replied: true } => t.udp_ms,
            ConnState::Icmp { .. } => t.icmp_ms,
            ConnState::Other { .. } => t.other_ms,
        }
    }
}

/// The TCP fields conntrack needs, parsed by the caller from a length-checked header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSegment {
    /// FIN=1, SYN=2, RST=4, PSH=8, ACK=16 (see [`tcp_flags`]).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Window field (unscaled, as on the wire).
    pub window: u16,
    /// TCP payload bytes.
    pub payload_len: u32,
    /// The window-scale option, on a SYN.
    pub wscale: Option<u8>,
}

/// Conntrack's verdict on one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtVerdict {
    /// Accepted (possibly without a state change).
    Ok,
    /// Not valid for the connection; the state was not changed.
    Invalid(InvalidReason),
}

/// Why conntrack found a packet invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    /// A flag combination no TCP sends (SYN+FIN, SYN+RST, FIN without ACK, none at all).
    BadFlags,
    /// Strict: sequence or acknowledgement number outside the tracked window.
    OutOfWindow,
    /// Strict: a SYN or SYN-ACK the state does not allow (e.g. a SYN-ACK before a SYN).
    UnexpectedSyn,
    /// Strict: the first segment of a connection was not a SYN.
    NotSyn,
    /// Strict: a segment the state does not allow (e.g. a RST before any SYN, an ACK from
    /// the originator before the SYN-ACK).
    BadTransition,
}

/// Whether a flag combination is one TCP sends (Linux `tcp_valid_flags`, PSH/URG/ECE/CWR
/// ignored).
#[inline]
fn valid_flags(flags: u8) -> bool {
    matches!(flags & (FIN | SYN | RST | ACK), SYN | 0x12 | RST | 0x14 | 0x11 | ACK)
}

/// Whether a TCP segment may open a new connection under `strict` (liberal: anything but
/// RST and bad flag combos; strict: SYN without ACK only).
#[inline]
pub fn tcp_may_open(flags: u8, strict: bool) -> bool {
    if strict {
        flags & (FIN | SYN | RST | ACK) == SYN
    } else {
        valid_flags(flags) && flags & RST == 0
    }
}

/// Segment kinds, the middle index of [`TRANSITIONS`].
const K_SYN: usize = 0;
const K_SYNACK: usize = 1;
const K_FIN: usize = 2;
const K_ACK: usize = 3;
const K_RST: usize = 4;
const K_NONE: usize = 5;

#[inline]
fn kind(flags: u8) -> usize {
    if flags & RST != 0 {
        K_RST
    } else if flags & SYN != 0 {
        if flags & ACK != 0 { K_SYNACK } else { K_SYN }
    } else if flags & FIN != 0 {
        K_FIN
    } else if flags & ACK != 0 {
        K_ACK
    } else {
        K_NONE
    }
}

// Table codes: 0..=9 are `TcpState as u8`; these three are not states.
/// No transition: Invalid in strict mode, accepted unchanged in liberal mode.
const IV: u8 = 10;
/// Accepted, no state change (retransmitted or late handshake segments).
const IG: u8 = 11;
/// First segment is not a SYN: Established in liberal mode, NotSyn in strict.
const PU: u8 = 12;

const NO: u8 = TcpState::None as u8;
const SS: u8 = TcpState::SynSent as u8;
const SR: u8 = TcpState::SynRecv as u8;
const ES: u8 = TcpState::Established as u8;
const FW: u8 = TcpState::FinWait as u8;
const CW: u8 = TcpState::CloseWait as u8;
const LA: u8 = TcpState::LastAck as u8;
const TW: u8 = TcpState::TimeWait as u8;
const CL: u8 = TcpState::Close as u8;
const S2: u8 = TcpState::SynSent2 as u8;
const _: () = assert!(NO == 0 && S2 == 9);

/// `[dir][kind][state] -> code`, after Linux's `tcp_conntracks`. Columns: NO SS SR ES FW
/// CW LA TW CL S2. Differences: the None column picks up (PU) instead of Linux's
/// loose-mode special case, and a SYN from the originator on TimeWait/Close reopens.
#[rustfmt::skip]
const TRANSITIONS: [[[u8; 10]; 6]; 2] = [
    [ // Orig
        /* syn    */ [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
        /* synack */ [PU, IV, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin    */ [PU, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [PU, IV, ES, ES, CW, CW, TW, TW, CL, IV],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
    [ // Reply
        /* syn    */ [IV, S2, IV, IV, IV, IV, IV, IV, IV, S2],
        /* synack */ [PU, SR, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin    */ [PU, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [PU, IG, SR, ES, CW, CW, TW, TW, CL, IG],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
];

impl TcpConn {
    /// Accounts one segment in `dir`. On Invalid nothing changed.
    #[inline]
    pub fn update(&mut self, dir: Dir, seg: &TcpSegment, strict: bool) -> CtVerdict {
        if !valid_flags(seg.flags) {
            return CtVerdict::Invalid(InvalidReason::BadFlags);
        }
        let k = kind(seg.flags);
        let code = TRANSITIONS[dir.index()][k][self.state as usize];
        let new = match code {
            IG => return CtVerdict::Ok,
            IV if !strict => return CtVerdict::Ok,
            IV if k == K_SYN || k == K_SYNACK => return CtVerdict::Invalid(InvalidReason::UnexpectedSyn),
            IV => return CtVerdict::Invalid(InvalidReason::BadTransition),
            PU if strict => return CtVerdict::Invalid(InvalidReason::NotSyn),
            PU => TcpState::Established,
            c => TcpState::BY_CODE[usize::from(c) % 10],
        };
        if new == TcpState::SynSent && matches!(self.state, TcpState::TimeWait | TcpState::Close) {
            // Port reuse: a new connection with the same addresses and ports.
            self.dirs = [TcpDir::default(); 2];
        }
        if strict && !self.in_window(dir, seg) {
            return CtVerdict::Invalid(InvalidReason::OutOfWindow);
        }
        self.state = new;
        CtVerdict::Ok
    }

    /// Linux `tcp_in_window` without SACK, NAT offsets and retransmission counting:
    /// checks that the segment's sequence range overlaps what the receiver could accept
    /// and that its ack is not for data never sent nor too far behind, then widens the
    /// tracked windows with what the segment shows.
    fn in_window(&mut self, dir: Dir, seg: &TcpSegment) -> bool {
        let [mut sender, mut receiver] = match dir {
            Dir::Orig => self.dirs,
            Dir::Reply => [self.dirs[1], self.dirs[0]],
        };
        let syn = seg.flags & SYN != 0;
        let has_ack = seg.flags & ACK != 0;
        let rst = seg.flags & RST != 0;
        let mut seq = seg.seq;
        let mut end = seq.wrapping_add(seg.payload_len).wrapping_add(u32::from(syn)).wrapping_add(u32::from(seg.flags & FIN != 0));
        let mut win = u32::from(seg.window);
        let mut ack = seg.ack;

        if sender.td_maxwin == 0 {
            // First segment seen from this side.
            if syn {
                sender.td_end = end;
                sender.td_maxend = end;
                sender.td_maxwin = win.max(1);
                sender.flags = 0;
                sender.wscale = 0;
                if let Some(s) = seg.wscale {
                    sender.flags |= TcpDir::WSCALE_SEEN;
                    sender.wscale = s.min(14);
                }
                // Scaling is on only if both SYNs carried the option.
                if sender.flags & receiver.flags & TcpDir::WSCALE_SEEN == 0 {
                    sender.wscale = 0;
                    receiver.wscale = 0;
                }
                if !has_ack {
                    self.store(dir, sender, receiver);
                    return true;
                }
            } else {
                sender.td_end = end;
                sender.td_maxwin = (win << sender.wscale).max(1);
                sender.td_maxend = end.wrapping_add(sender.td_maxwin);
                if receiver.td_maxwin == 0 {
                    receiver.td_end = ack;
                    receiver.td_maxend = ack;
                }
            }
        } else if ((self.state == TcpState::SynSent && dir == Dir::Orig)
            || (self.state == TcpState::SynRecv && dir == Dir::Reply))
            && after(end, sender.td_end)
        {
            // A SYN (or SYN-ACK) retransmitted with a new initial sequence number.
            sender.td_end = end;
            sender.td_maxend = end;
            sender.td_maxwin = win.max(1);
            if let Some(s) = seg.wscale {
                sender.flags |= TcpDir::WSCALE_SEEN;
                sender.wscale = s.min(14);
            }
        }

        if !has_ack || (rst && ack == 0) {
            ack = receiver.td_end;
        }
        if seq == end && (!rst || (seq == 0 && self.state == TcpState::SynSent)) {
            // Pure ACKs carry no sequence space: check them at the sender's edge.
            seq = sender.td_end;
            end = sender.td_end;
        }
        let max_ack_window = sender.td_maxwin.max(66_000);
        let ok = !after(seq, sender.td_maxend)
            && !before(end, sender.td_end.wrapping_sub(receiver.td_maxwin))
            && !after(ack, receiver.td_end)
            && !before(ack, receiver.td_end.wrapping_sub(max_ack_window));
        if !ok {
            return false;
        }
        if !syn {
            win <<= sender.wscale;
        }
        sender.td_maxwin = sender.td_maxwin.max(win);
        if after(end, sender.td_end) {
            sender.td_end = end;
        }
        if receiver.td_maxwin != 0 && after(end, sender.td_maxend) {
            receiver.td_maxwin = receiver.td_maxwin.wrapping_add(end.wrapping_sub(sender.td_maxend));
        }
        let limit = ack.wrapping_add(win);
        if !before(limit, receiver.td_maxend) {
            receiver.td_maxend = limit.wrapping_add(u32::from(win == 0));
        }
        self.store(dir, sender, receiver);
        true
    }

    #[inline]
    fn store(&mut self, dir: Dir, sender: TcpDir, receiver: TcpDir) {
        self.dirs = match dir {
            Dir::Orig => [sender, receiver],
            Dir::Reply => [receiver, sender],
        };
    }
}

/// `a` comes before `b` in sequence space (RFC 1982 serial arithmetic).
#[inline(always)]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` comes after `b` in sequence space.
#[inline(always)]
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}
