//! The desired state: what was applied, how a new one is checked against the running
//! switch, what changed, and how it survives a restart.
//!
//! An apply is all-or-nothing: the new configuration is parsed, validated and compiled to
//! tables before anything changes; only then are the tables published and the state
//! saved. Saving is atomic (write a temporary file, fsync it, rename it over the old one,
//! fsync the directory), so a crash leaves either the old or the new state, never half.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, ConfigError};

/// What an apply changed, by kind and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub added: BTreeMap<&'static str, Vec<String>>,
    pub removed: BTreeMap<&'static str, Vec<String>>,
    pub changed: BTreeMap<&'static str, Vec<String>>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compares two keyed lists.
fn diff_list<T: PartialEq>(kind: &'static str, old: &[T], new: &[T], key: impl Fn(&T) -> String, d: &mut Diff) {
    let find = |list: &[T], k: &str| list.iter().position(|x| key(x) == k);
    for n in new {
        let k = key(n);
        match find(old, &k) {
            None => d.added.entry(kind).or_default().push(k),
            Some(i) if old[i] != *n => d.changed.entry(kind).or_default().push(k),
            Some(_) => {}
        }
    }
    for o in old {
        let k = key(o);
        if find(new, &k).is_none() {
            d.removed.entry(kind).or_default().push(k);
        }
    }
}

/// The resources that can change while running, and how they differ.
pub fn diff(old: &Config, new: &Config) -> Diff {
    let mut d = Diff::default();
    diff_list("bridges", &old.bridges, &new.bridges, |b| b.name.clone(), &mut d);
    diff_list("networks", &old.networks, &new.networks, |n| n.name.clone(), &mut d);
    diff_list("endpoints", &old.endpoints, &new.endpoints, |e| e.name.clone(), &mut d);
    diff_list("routes", &old.routes, &new.routes, |r| crate::api::route_key(&r.network, &r.prefix), &mut d);
    diff_list("namespaces", &old.namespaces, &new.namespaces, |n| n.name.clone(), &mut d);
    diff_list("network_policies", &old.network_policies, &new.network_policies, |p| p.key(), &mut d);
    diff_list("global_rules", &old.global_rules, &new.global_rules, |g| g.name.clone(), &mut d);
    // A network whose VRF id (and so default gateway MAC) moved because the list was
    // reordered has changed too, even if its own entry did not.
    let vrf_ids = |c: &Config| -> Vec<(String, u32)> {
        c.networks.iter().enumerate().map(|(i, n)| (n.name.clone(), n.vrf.unwrap_or(i as u32 + 1))).collect()
    };
    for (name, id) in vrf_ids(new) {
        let moved = vrf_ids(old).iter().any(|(n, old_id)| *n == name && *old_id != id);
        let listed = d.changed.get("networks").is_some_and(|l| l.contains(&name));
        if moved && !listed {
            d.changed.entry("networks").or_default().push(name);
        }
    }
    // Ports by everything but their uplink (which is listed on its own).
    let ports = |c: &Config| -> Vec<crate::config::PortConfig> {
        c.ports.iter().map(|p| crate::config::PortConfig { uplink: None, ..p.clone() }).collect()
    };
    diff_list("ports", &ports(old), &ports(new), |p| p.name.clone(), &mut d);
    let uplinks = |c: &Config| -> Vec<(String, crate::config::UplinkConfig)> {
        c.ports.iter().filter_map(|p| Some((p.name.clone(), p.uplink.clone()?))).collect()
    };
    diff_list("uplinks", &uplinks(old), &uplinks(new), |(n, _)| n.clone(), &mut d);
    d
}

/// Checks that `new` changes only what can change while running: everything but the
/// DPDK, worker, mempool and flow settings and the settings of a port that stays (ports
/// may be added and removed; an existing port's `uplink` may change). Names the key.
pub fn check_runtime_change(old: &Config, new: &Config) -> Result<(), ConfigError> {
    let restart = |key: &str| ConfigError::new(key, "cannot change while running (restart sluice to change it)");
    if old.dpdk != new.dpdk {
        return Err(restart("dpdk"));
    }
    if old.main_core != new.main_core {
        return Err(restart("main_core"));
    }
    if old.workers != new.workers {
        return Err(restart("workers"));
    }
    if old.mempool != new.mempool {
        return Err(restart("mempool"));
    }
    if old.stats != new.stats {
        return Err(restart("stats"));
    }
    if old.flows != new.flows {
        return Err(restart("flows"));
    }
    for (i, n) in new.ports.iter().enumerate() {
        let Some(o) = old.ports.iter().find(|o| o.name == n.name) else { continue };
        let (mut o, mut n) = (o.clone(), n.clone());
        o.uplink = None;
        n.uplink = None;
        if o == n {
            continue;
        }
        // Name the first key that differs.
        let (ov, nv) = (serde_json::to_value(&o).unwrap_or_default(), serde_json::to_value(&n).unwrap_or_default());
        let key = nv
            .as_object()
            .and_then(|m| m.iter().find(|(k, v)| ov.get(k.as_str()) != Some(v)).map(|(k, _)| k.clone()))
            .or_else(|| ov.as_object().and_then(|m| m.keys().find(|k| nv.get(k.as_str()).is_none()).cloned()))
            .unwrap_or_default();
        return Err(ConfigError::new(
            format!("ports[{i}].{key}"),
            format!("cannot change on a running port (only `uplink` can): remove port {:?} and add it again", n.name),
        ));
    }
    Ok(())
}

/// Where the applied state is kept.
#[derive(Debug, Clone)]
pub struct StateFile {
    pub path: PathBuf,
}

/// What loading a state file found.
#[derive(Debug)]
pub enum Loaded {
    /// No state file: start from the configuration.
    Missing,
    Found(Box<Config>),
    /// Unreadable or invalid: moved aside to `kept_at`, never deleted.
    Corrupt { error: String, kept_at: PathBuf },
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateFile { path: path.into() }
    }

    /// Saves `cfg` atomically.
    pub fn save(&self, cfg: &Config) -> std::io::Result<()> {
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let text = serde_yaml_ng::to_string(cfg).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("yaml.tmp");
        {
            use std::os::unix::fs::OpenOptionsExt;
            // The state holds the whole configuration: owner-only, like the API socket.
            let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(b"# sluice applied state: written by sluice, do not edit while it runs\n")?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        File::open(dir)?.sync_all()
    }

    /// Loads the state, moving a corrupt file aside (`<path>.corrupt-<unix time>`).
    pub fn load(&self) -> Loaded {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => return self.keep_aside(format!("cannot read: {e}")),
        };
        match Config::from_yaml(&text) {
            Ok(c) => Loaded::Found(Box::new(c)),
            Err(e) => self.keep_aside(e.to_string()),
        }
    }

    fn keep_aside(&self, error: String) -> Loaded {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut kept = self.path.clone().into_os_string();
        kept.push(format!(".corrupt-{secs}"));
        let kept_at = PathBuf::from(kept);
        match fs::rename(&self.path, &kept_at) {
            Ok(()) => Loaded::Corrupt { error, kept_at },
            Err(e) => Loaded::Corrupt { error: format!("{error} (and could not move it aside: {e})"), kept_at: self.path.clone() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
dpdk: {no_huge: true}
workers: {cores: [0]}
ports:
  - {name: pa, devargs: net_null0}
  - {name: up0, devargs: net_null1, uplink: {network: blue, ipv4: 192.0.2.2}}
networks:
  - {name: blue, subnets: ["10.1.0.0/24"], gateway: {ipv4: 10.1.0.1}}
endpoints:
  - {name: a, network: blue, port: pa, mac: "02:00:00:00:00:0a", ips: [10.1.0.10]}
routes:
  - {network: blue, prefix: 0.0.0.0/0, via: {gateway: 192.0.2.1, port: up0, mac: "02:00:00:00:aa:01"}}
"#;

    fn cfg(text: &str) -> Config {
        Config::from_yaml(text).unwrap()
    }

    #[test]
    fn diff_names_what_changed() {
        let old = cfg(BASE);
        let new = cfg(&BASE.replace("ips: [10.1.0.10]", "ips: [10.1.0.11]").replace(
            "routes:\n",
            "routes:\n  - {network: blue, prefix: 10.9.0.0/16, via: {blackhole: true}}\n",
        ));
        let d = diff(&old, &new);
        assert_eq!(d.changed["endpoints"], vec!["a"]);
        assert_eq!(d.added["routes"], vec!["blue:10.9.0.0/16"]);
        assert!(d.removed.is_empty());
        assert!(diff(&old, &old).is_empty());
        let d = diff(&new, &old);
        assert_eq!(d.removed["routes"], vec!["blue:10.9.0.0/16"]);
    }

    #[test]
    fn runtime_changes_add_and_remove_ports_but_keep_port_settings_and_dpdk() {
        let old = cfg(BASE);
        assert!(check_runtime_change(&old, &cfg(&BASE.replace("192.0.2.2", "192.0.2.3"))).is_ok(), "uplink may change");
        assert_eq!(check_runtime_change(&old, &cfg(&BASE.replace("net_null0", "net_null5"))).unwrap_err().path, "ports[0].devargs");
        let more = BASE.replace("ports:\n", "ports:\n  - {name: pz, devargs: net_null7}\n");
        assert!(check_runtime_change(&old, &cfg(&more)).is_ok(), "a port may be added");
        assert!(check_runtime_change(&cfg(&more), &old).is_ok(), "and removed");
        let d = diff(&old, &cfg(&more));
        assert_eq!((d.added["ports"].clone(), d.added.get("uplinks")), (vec!["pz".to_string()], None));
        assert_eq!(diff(&cfg(&more), &old).removed["ports"], vec!["pz"]);
        let mtu = more.replace("net_null7}", "net_null7, mtu: 1400}");
        assert_eq!(check_runtime_change(&cfg(&more), &cfg(&mtu)).unwrap_err().path, "ports[0].mtu");
        assert_eq!(check_runtime_change(&old, &cfg(&BASE.replace("cores: [0]", "cores: [1]"))).unwrap_err().path, "workers");
        assert_eq!(
            check_runtime_change(&old, &cfg(&BASE.replace("no_huge: true", "no_huge: false"))).unwrap_err().path,
            "dpdk"
        );
    }

    #[test]
    fn state_round_trips_and_corruption_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let sf = StateFile::new(dir.path().join("state.yaml"));
        assert!(matches!(sf.load(), Loaded::Missing));
        let c = cfg(BASE);
        sf.save(&c).unwrap();
        match sf.load() {
            Loaded::Found(back) => assert_eq!(*back, c),
            other => panic!("{other:?}"),
        }
        fs::write(&sf.path, "ports: [{name: x, devargs: net_null0, bogus: 1}]\n").unwrap();
        let Loaded::Corrupt { error, kept_at } = sf.load() else { panic!("corrupt file not reported") };
        assert!(error.contains("bogus"), "{error}");
        assert!(kept_at.exists() && !sf.path.exists(), "moved aside, not deleted");
        assert!(fs::read_to_string(kept_at).unwrap().contains("bogus"));
    }
}
