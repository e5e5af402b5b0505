use super::*;

const GOOD: &str = r#"
dpdk: {no_huge: true, log_level: error}
workers: {cores: [0]}
ports:
  - name: in0
    devargs: net_pcap0,rx_pcap=/tmp/in.pcap
  - name: out0
    devargs: net_null0,no-rx=1
    rx: false
bridges:
  - name: br0
    mac_aging_s: 60
    ports:
      - {port: in0, tag: 10}
      - {port: out0, vlan_mode: trunk, trunks: [10], native_vlan: 20}
    static_macs:
      - {mac: "02:00:00:00:00:02", port: out0, vlan: 10}
"#;

fn err(yaml: &str) -> ConfigError {
    Config::from_yaml(yaml).expect_err("config should be rejected")
}

fn with(find: &str, replace: &str) -> String {
    assert!(GOOD.contains(find), "{find}");
    GOOD.replacen(find, replace, 1)
}

#[test]
fn good_config_parses_with_defaults() {
    let c = Config::from_yaml(GOOD).unwrap();
    assert_eq!(c.ports[0].mtu, 1500);
    assert_eq!(c.ports[0].rx_desc, 1024);
    assert!(c.ports[0].rx && !c.ports[1].rx);
    assert_eq!(c.bridges[0].mac_table_size, 8192);
    assert_eq!(c.bridges[0].ports[1].vlan_mode, VlanModeConfig::Trunk);
    assert_eq!(c.stats.interval_s, 1);
    assert_eq!(c.mempool.data_room, 2048);
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let e = err(&with("rx: false", "rx: false\n    mtuu: 9000"));
    assert_eq!(e.path, "ports[1].mtuu");
    assert!(e.msg.contains("unknown field `mtuu`"), "{e}");
    let e = err(&with("dpdk: {no_huge: true", "dpdk: {no_hugepages: true"));
    assert_eq!(e.path, "dpdk.no_hugepages");
    assert!(e.to_string().starts_with("dpdk.no_hugepages: unknown field `no_hugepages`"), "{e}");
    let e = err(&format!("{GOOD}\nfoo: 1\n"));
    assert!(e.msg.contains("unknown field `foo`"), "{e}");
    let e = err(&with("{port: in0, tag: 10}", "{port: in0, tga: 10}"));
    assert_eq!(e.path, "bridges[0].ports[0].tga");
}

#[test]
fn wrong_types_name_the_key() {
    let e = err(&with("mac_aging_s: 60", "mac_aging_s: soon"));
    assert_eq!(e.path, "bridges[0].mac_aging_s");
    let e = err(&with("vlan_mode: trunk", "vlan_mode: hybrid"));
    assert_eq!(e.path, "bridges[0].ports[1].vlan_mode");
    let e = err(&with("cores: [0]", "cores: [-1]"));
    assert_eq!(e.path, "workers.cores[0]");
    assert!(err("ports: 3").path.starts_with("ports"));
}

#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("cores: [0]", "cores: []", "workers.cores"),
        ("cores: [0]", "cores: [0, 0]", "workers.cores[1]"),
        ("cores: [0]", "cores: [4096]", "workers.cores[0]"),
        ("log_level: error", "log_level: loud", "dpdk.log_level"),
        ("name: out0", "name: in0", "ports[1].name"),
        ("name: out0", "name: 'out 0'", "ports[1].name"),
        ("devargs: net_null0,no-rx=1", "devargs: null0", "ports[1].devargs"),
        ("devargs: net_null0,no-rx=1", "devargs: net_pcap0,rx_pcap=x", "ports[1].devargs"),
        ("devargs: net_null0,no-rx=1", "pci: 01:00", "ports[1].pci"),
        ("rx: false", "rx: false\n    mtu: 20", "ports[1].mtu"),
        ("rx: false", "rx: false\n    mtu: 9000", "ports[1].mtu"),
        ("rx: false", "rx: false\n    rx_desc: 1000", "ports[1].rx_desc"),
        ("name: br0", "name: ''", "bridges[0].name"),
        ("mac_aging_s: 60", "mac_aging_s: 0", "bridges[0].mac_aging_s"),
        ("{port: in0, tag: 10}", "{port: nope}", "bridges[0].ports[0].port"),
        ("{port: in0, tag: 10}", "{port: out0}", "bridges[0].ports[1].port"),
        ("{port: in0, tag: 10}", "{port: in0, tag: 4095}", "bridges[0].ports[0].tag"),
        ("{port: in0, tag: 10}", "{port: in0, trunks: [5]}", "bridges[0].ports[0].trunks"),
        ("trunks: [10]", "trunks: [10, 0]", "bridges[0].ports[1].trunks[1]"),
        ("trunks: [10], native_vlan: 20", "tag: 3", "bridges[0].ports[1].tag"),
        ("\"02:00:00:00:00:02\"", "\"01:00:00:00:00:02\"", "bridges[0].static_macs[0].mac"),
        ("\"02:00:00:00:00:02\"", "\"02:00:00:00:00\"", "bridges[0].static_macs[0].mac"),
        ("port: out0, vlan: 10", "port: in9, vlan: 10", "bridges[0].static_macs[0].port"),
    ];
    for (find, replace, path) in cases {
        let e = err(&with(find, replace));
        assert_eq!(e.path, *path, "{replace:?} gave {e}");
        assert!(!e.msg.is_empty());
    }
    let e = err(&format!("{GOOD}mempool: {{data_room: 100}}\n"));
    assert_eq!(e.path, "mempool.data_room");
    let e = err(&format!("{GOOD}mempool: {{mbufs: 10}}\n"));
    assert_eq!(e.path, "mempool.mbufs");
}

#[test]
fn missing_required_keys_are_named() {
    let e = err("workers: {cores: [0]}\n");
    assert!(e.msg.contains("missing field `ports`"), "{e}");
    let e = err("ports:\n  - {devargs: net_null0}\n");
    assert!(e.msg.contains("missing field `name`"), "{e}");
    assert_eq!(e.path, "ports[0]");
}
