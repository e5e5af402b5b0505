//! Layer 2: bridges, bridge domains, port VLAN modes and MAC learning.
//!
//! A *bridge domain* is one broadcast domain: a (bridge, VLAN) pair. Control numbers the
//! domains densely ([`DomainId`]) and precomputes, per domain, which ports are members and
//! whether each sends tagged. Ingress classification is then one array index; flooding
//! walks a precomputed member list.

pub mod build;
pub mod fdb;
pub mod stage;

pub use build::{build_l2, BridgeSpec, VlanMode};
pub use fdb::{Fdb, FdbEvent, LearnEvent};
pub use stage::{classify, egress_vlan, Ingress, L2Counters, L2Decision, L2Out};

use crate::tables::PortIdx;
use crate::wire::MacAddr;

/// Dense bridge-domain number assigned by control.
pub type DomainId = u32;
/// No domain: the VLAN is not carried by the port.
pub const NO_DOMAIN: DomainId = DomainId::MAX;

/// How a port treats VLAN tags on ingress, resolved to bridge domains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PortVlan {
    /// Not attached to any bridge: every frame is dropped (`not_bridged`).
    #[default]
    Unbridged,
    /// Untagged (or priority-tagged, VID 0) frames belong to `domain`; other tagged frames
    /// are dropped.
    Access { vid: u16, domain: DomainId },
    /// Tagged frames belong to `domains[vid]`; untagged and priority-tagged frames to the
    /// native VLAN's domain when there is one.
    Trunk { native: Option<u16>, domains: Box<[DomainId; 4096]> },
}

/// A port in a domain and whether frames leave it tagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub port: PortIdx,
    pub tagged: bool,
}

/// One broadcast domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// Bridge index in [`L2Tables::bridges`].
    pub bridge: u16,
    /// The VLAN id frames carry inside the domain.
    pub vid: u16,
    /// Ports in the domain, in flood order.
    pub members: Box<[Member]>,
    /// The VRF of the bridged network this domain is, whose gateway sits in it.
    pub gateway: Option<crate::l3::VrfIdx>,
}

/// A MAC pinned to a port (never learned over, never aged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticMac {
    pub domain: DomainId,
    pub mac: MacAddr,
    pub port: PortIdx,
}

/// Per-bridge settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeInfo {
    pub name: String,
    /// Most dynamic MACs a worker learns for this bridge.
    pub mac_table_size: u32,
    /// Idle time after which a learned MAC is forgotten.
    pub mac_aging_ms: u64,
    pub static_macs: Box<[StaticMac]>,
}

/// Everything layer 2 in a published snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct L2Tables {
    /// VLAN mode per port, by [`PortIdx`].
    pub port_vlan: Box<[PortVlan]>,
    pub domains: Box<[Domain]>,
    pub bridges: Box<[BridgeInfo]>,
}

impl L2Tables {
    /// The domain of VLAN `vid` in the bridge named `bridge`.
    pub fn domain_of(&self, bridge: &str, vid: u16) -> Option<DomainId> {
        let b = self.bridges.iter().position(|b| b.name == bridge)?;
        self.domains.iter().position(|d| d.bridge as usize == b && d.vid == vid).map(|d| d as DomainId)
    }

    /// Whether frames of VLAN `vid` leave `port` tagged; `None` if the port does not
    /// carry that VLAN. O(1): the unicast path uses it instead of a member-list scan.
    #[inline]
    pub fn egress_tagged(&self, port: PortIdx, vid: u16) -> Option<bool> {
        match self.port_vlan.get(port as usize)? {
            PortVlan::Unbridged => None,
            PortVlan::Access { vid: v, .. } => (*v == vid).then_some(false),
            PortVlan::Trunk { native, domains } => {
                (domains[(vid & 0x0fff) as usize] != NO_DOMAIN).then_some(*native != Some(vid))
            }
        }
    }

    /// The domain an ingress frame belongs to, from its port and its tag's VID
    /// (`None` for untagged; VID 0 counts as untagged).
    #[inline]
    pub fn ingress_domain(&self, port: PortIdx, vid: Option<u16>) -> Result<DomainId, crate::DropReason> {
        use crate::DropReason;
        let vid = vid.filter(|v| *v != 0);
        match self.port_vlan.get(port as usize) {
            None | Some(PortVlan::Unbridged) => Err(DropReason::NotBridged),
            Some(PortVlan::Access { domain, .. }) => match vid {
                None => Ok(*domain),
                Some(_) => Err(DropReason::VlanNotAllowed),
            },
            Some(PortVlan::Trunk { native, domains }) => {
                let v = match (vid, native) {
                    (Some(v), _) => v,
                    (None, Some(n)) => *n,
                    (None, None) => return Err(DropReason::UntaggedOnTrunk),
                };
                match domains[(v & 0x0fff) as usize] {
                    NO_DOMAIN => Err(DropReason::VlanNotAllowed),
                    d => Ok(d),
                }
            }
        }
    }
}
