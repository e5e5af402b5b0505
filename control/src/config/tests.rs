use super::*;
use sluice_dataplane::wire::MacAddr;

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
fn syntax_errors_say_where_without_a_bogus_key() {
    let e = err("ports:\n  - {name: a, devargs: net_null0\n");
    assert!(!e.path.contains('?'), "{e}");
    assert!(e.msg.contains("line"), "{e}");
}

#[test]
fn missing_required_keys_are_named() {
    let e = err("workers: {cores: [0]}\n");
    assert!(e.msg.contains("missing field `ports`"), "{e}");
    let e = err("ports:\n  - {devargs: net_null0}\n");
    assert!(e.msg.contains("missing field `name`"), "{e}");
    assert_eq!(e.path, "ports[0]");
}

const L3: &str = r#"
dpdk: {no_huge: true}
workers: {cores: [0]}
ports:
  - {name: pa, devargs: net_null0}
  - {name: pb, devargs: net_null1}
  - {name: up0, devargs: net_null2, uplink: {network: blue, ipv4: 192.0.2.2}}
networks:
  - name: blue
    subnets: ["10.1.0.0/24", "fd00:1::/64"]
    gateway: {ipv4: 10.1.0.1, ipv6: "fd00:1::1"}
  - name: red
    subnets: ["10.1.0.0/24"]
endpoints:
  - {name: a, network: blue, port: pa, mac: "02:00:00:00:00:0a", ips: [10.1.0.10, "fd00:1::10"]}
  - {name: b, network: red, port: pb, mac: "02:00:00:00:00:0b", ips: [10.1.0.10]}
routes:
  - {network: blue, prefix: 0.0.0.0/0, via: {gateway: 192.0.2.1, port: up0, mac: "02:00:00:00:aa:01"}}
  - {network: blue, prefix: 172.16.0.0/16, via: {network: red}}
  - {network: red, prefix: 10.9.0.0/16, via: {ecmp: [{endpoint: b}, {gateway: 192.0.2.9, port: up0, mac: "02:00:00:00:aa:02"}]}}
"#;

fn l3_with(find: &str, replace: &str) -> String {
    assert!(L3.contains(find), "{find}");
    L3.replacen(find, replace, 1)
}

#[test]
fn l3_config_parses_and_overlapping_tenants_are_fine() {
    let c = Config::from_yaml(L3).unwrap();
    assert_eq!(c.networks.len(), 2);
    assert!(c.networks[0].dhcp.enabled);
    assert_eq!(c.ports[2].uplink.as_ref().unwrap().network, "blue");
    crate::plan::Plan::new(&c).unwrap();
}

#[test]
fn l3_bad_values_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("name: red", "name: blue", "networks[1].name"),
        ("name: red\n", "name: red\n    vrf: 1\n", "networks[1].vrf"),
        ("name: red\n", "name: red\n    mode: bridged\n", "networks[1].bridge"),
        ("[\"10.1.0.0/24\"]\nendpoints", "[\"10.1.0.1/24\"]\nendpoints", "networks[1].subnets[0]"),
        ("network: blue, ipv4: 192.0.2.2", "network: green, ipv4: 192.0.2.2", "ports[2].uplink.network"),
        ("{name: b, network: red", "{name: a, network: red", "endpoints[1].name"),
        ("{name: b, network: red", "{name: b, network: pink", "endpoints[1].network"),
        ("port: pb, mac", "port: nope, mac", "endpoints[1].port"),
        ("port: pb, mac", "port: up0, mac", "endpoints[1].port"),
        ("mac: \"02:00:00:00:00:0b\"", "mac: \"ff:ff:ff:ff:ff:ff\"", "endpoints[1].mac"),
        ("ips: [10.1.0.10]}", "ips: [10.2.0.10]}", "endpoints[1].ips[0]"),
        ("ips: [10.1.0.10, \"fd00:1::10\"]", "ips: [10.1.0.1]", "endpoints[0].ips[0]"),
        ("{network: blue, prefix: 0.0.0.0/0", "{network: grey, prefix: 0.0.0.0/0", "routes[0].network"),
        ("prefix: 0.0.0.0/0", "prefix: 0.0.0.1/0", "routes[0].prefix"),
        ("via: {gateway: 192.0.2.1, port: up0,", "via: {gateway: 192.0.2.1, port: pa,", "routes[0].via.port"),
        ("port: up0, mac: \"02:00:00:00:aa:01\"}", "port: up0}", "routes[0].via.mac"),
        ("via: {gateway: 192.0.2.1,", "via: {gateway: \"2001:db8::1\",", "routes[0].via.gateway"),
        ("via: {network: red}", "via: {network: blue}", "routes[1].via.network"),
        ("via: {network: red}", "via: {network: red, blackhole: true}", "routes[1].via"),
        ("via: {network: red}", "via: {}", "routes[1].via"),
        ("{endpoint: b}, {gateway", "{endpoint: zz}, {gateway", "routes[2].via.ecmp[0].endpoint"),
        ("{endpoint: b}, {gateway", "{ecmp: [{endpoint: b}]}, {gateway", "routes[2].via.ecmp[0].ecmp"),
    ];
    for (find, replace, path) in cases {
        let e = err(&l3_with(find, replace));
        assert_eq!(e.path, *path, "{replace:?} gave {e}");
    }
    // The same address twice in one network is an error; across networks it is not.
    let dup = l3_with("ips: [10.1.0.10]}", "ips: [10.1.0.10]}\n  - {name: c, network: red, port: pb, mac: \"02:00:00:00:00:0c\", ips: [10.1.0.10]}");
    assert_eq!(err(&dup).path, "endpoints[2].ips[0]");
}

#[test]
fn bridged_networks_bind_to_a_bridge_vlan() {
    let base = r#"
dpdk: {no_huge: true}
workers: {cores: [0]}
ports:
  - {name: p0, devargs: net_null0}
  - {name: p1, devargs: net_null1}
  - {name: p2, devargs: net_null2}
bridges:
  - name: br0
    ports:
      - {port: p0, tag: 10}
      - {port: p1, vlan_mode: trunk, trunks: [10, 20]}
networks:
  - name: lan
    mode: bridged
    bridge: br0
    vlan: 10
    subnets: ["10.5.0.0/24"]
    gateway: {ipv4: 10.5.0.1}
  - name: wan
    subnets: ["10.6.0.0/24"]
    gateway: {ipv4: 10.6.0.1}
endpoints:
  - {name: x, network: lan, port: p0, mac: "02:00:00:00:00:10", ips: [10.5.0.10]}
  - {name: y, network: lan, port: p1, mac: "02:00:00:00:00:11", ips: [10.5.0.11]}
  - {name: z, network: wan, port: p2, mac: "02:00:00:00:00:20", ips: [10.6.0.20]}
"#;
    let c = Config::from_yaml(base).unwrap();
    let plan = crate::plan::Plan::new(&c).unwrap();
    let t = plan.tables(&[MacAddr::ZERO; 3]).unwrap();
    let d = t.l2.domain_of("br0", 10).unwrap();
    assert_eq!(t.l2.domains[d as usize].gateway, Some(0));
    // y sits on a trunk: frames routed to it leave tagged with the network's VLAN.
    assert_eq!((t.l3.endpoints[0].vlan, t.l3.endpoints[1].vlan), (None, Some(10)));
    let bad: &[(&str, &str, &str)] = &[
        ("    bridge: br0\n", "", "networks[0].bridge"),
        ("bridge: br0\n    vlan: 10", "bridge: br9\n    vlan: 10", "networks[0].bridge"),
        ("bridge: br0\n    vlan: 10", "bridge: br0\n    vlan: 30", "networks[0].vlan"),
        ("{name: x, network: lan, port: p0,", "{name: x, network: lan, port: p2,", "endpoints[0].port"),
        ("{name: x, network: lan, port: p0,", "{name: x, network: lan, port: p0, vlan: 10,", "endpoints[0].vlan"),
        ("{name: z, network: wan, port: p2,", "{name: z, network: wan, port: p0,", "endpoints[2].port"),
        ("  - name: wan\n", "  - name: wan\n    bridge: br0\n", "networks[1].bridge"),
    ];
    for (find, replace, path) in bad {
        assert!(base.contains(find), "{find}");
        let e = err(&base.replacen(find, replace, 1));
        assert_eq!(e.path, *path, "{replace:?} gave {e}");
    }
}

const POLICY: &str = r#"
dpdk: {no_huge: true, log_level: error}
workers: {cores: [0]}
ports:
  - {name: p0, devargs: net_null0}
  - {name: p1, devargs: net_null1}
networks:
  - {name: blue, subnets: ["10.1.0.0/24"], gateway: {ipv4: 10.1.0.1}, max_flows: 1000}
namespaces:
  - {name: prod, labels: {env: prod}}
endpoints:
  - {name: a, network: blue, port: p0, mac: "02:00:00:00:00:0a", ips: [10.1.0.10], namespace: prod, labels: {app: web}, ports: [{name: http, port: 8080}]}
  - {name: b, network: blue, port: p1, mac: "02:00:00:00:00:0b", ips: [10.1.0.11], labels: {app: db}}
network_policies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web, namespace: prod, resourceVersion: "42", annotations: {x: y}}
    spec:
      podSelector: {matchLabels: {app: web}}
      policyTypes: [Ingress, Egress]
      ingress:
        - from:
            - namespaceSelector: {matchLabels: {env: prod}}
              podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}
            - ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.128/25]}
          ports: [{port: http}, {protocol: UDP, port: 5000, endPort: 5010}]
      egress: [{}]
    status: {}
  - name: db
    spec: {podSelector: {matchLabels: {app: db}}}
global_rules:
  - {name: no-telnet, priority: 10, action: deny, protocol: TCP, destination: {ports: [23, "2323-2330"]}}
  - {name: audit, action: log, source: {nets: ["10.0.0.0/8"], notNets: ["10.1.0.0/24"]}}
flows: {max_per_worker: 4096, tcp_strict: true, timeouts: {udp_s: 60}}
"#;

fn policy_with(find: &str, replace: &str) -> String {
    assert!(POLICY.contains(find), "{find}");
    POLICY.replacen(find, replace, 1)
}

#[test]
fn policies_parse_as_manifests_and_short_form() {
    let c = Config::from_yaml(POLICY).unwrap();
    let spec = c.policy_spec().unwrap();
    assert_eq!(spec.policies.len(), 2);
    assert_eq!((spec.policies[0].namespace.as_str(), spec.policies[0].name.as_str()), ("prod", "web"));
    assert_eq!((spec.policies[1].namespace.as_str(), spec.policies[1].name.as_str()), ("default", "db"));
    assert_eq!(spec.policies[0].ingress[0].ports.len(), 2);
    assert_eq!(spec.policies[0].egress.len(), 1, "egress: [{{}}] is one allow-all rule");
    assert_eq!(spec.endpoints[0].named_ports[0].port, 8080);
    assert_eq!(spec.endpoints[1].namespace, "default");
    assert_eq!(spec.global[0].dst_ports, vec![(23, 23), (2323, 2330)]);
    assert_eq!(c.network_policies[0].key(), "prod/web");
    let f = c.flows.flow_config();
    assert_eq!((f.capacity, f.tcp_strict, f.timeouts.udp_ms, f.timeouts.tcp_syn_ms), (4096, true, 60_000, 30_000));
    // It compiles into the published tables.
    let plan = crate::plan::Plan::new(&c).unwrap();
    assert_eq!(plan.flows.capacity, 4096);
}

#[test]
fn policy_errors_name_the_key() {
    for (find, replace, path) in [
        ("apiVersion: networking.k8s.io/v1", "apiVersion: networking.k8s.io/v1beta1", "network_policies[0].apiVersion"),
        ("kind: NetworkPolicy", "kind: Policy", "network_policies[0].kind"),
        ("operator: In", "operator: Among", "network_policies[0].spec.ingress[0].from[0].podSelector.matchExpressions[0].operator"),
        ("values: [web, api]", "values: []", "network_policies[0].spec.ingress[0].from[0].podSelector.matchExpressions[0].values"),
        ("except: [192.0.2.128/25]", "except: [198.51.100.0/25]", "network_policies[0].spec.ingress[0].from[1].ipBlock.except[0]"),
        ("cidr: 192.0.2.0/24", "cidr: 192.0.2.1/24", "network_policies[0].spec.ingress[0].from[1].ipBlock.cidr"),
        ("endPort: 5010", "endPort: 4000", "network_policies[0].spec.ingress[0].ports[1].endPort"),
        ("{port: http}", "{port: HTTP}", "network_policies[0].spec.ingress[0].ports[0].port"),
        ("{port: http}", "{port: 70000}", "network_policies[0].spec.ingress[0].ports[0].port"),
        ("{protocol: UDP, port: 5000", "{protocol: ICMP, port: 5000", "network_policies[0].spec.ingress[0].ports[1].protocol"),
        ("policyTypes: [Ingress, Egress]", "policyTypes: [Ingress, Sideways]", "network_policies[0].spec.policyTypes[1]"),
        ("{matchLabels: {env: prod}}", "{matchLabels: {\"bad key!\": prod}}", "network_policies[0].spec.ingress[0].from[0].namespaceSelector.matchLabels"),
        ("- name: db\n", "- name: Db\n", "network_policies[1].name"),
        ("{name: prod, labels", "{name: prod_1, labels", "namespaces[0].name"),
        ("namespace: prod, labels: {app: web}", "namespace: prod, labels: {app: \"-web\"}", "endpoints[0].labels.app"),
        ("[{name: http, port: 8080}]", "[{name: http, port: 0}]", "endpoints[0].ports[0].port"),
        ("action: deny", "action: reject", "global_rules[0].action"),
        ("protocol: TCP, destination", "protocol: GRE, destination", "global_rules[0].protocol"),
        ("\"2323-2330\"", "\"2330-2323\"", "global_rules[0].destination.ports[1]"),
        ("notNets: [\"10.1.0.0/24\"]", "notNets: [\"10.1.0.0/33\"]", "global_rules[1].source.notNets[0]"),
        ("name: audit", "name: no-telnet", "global_rules[1].name"),
        ("max_per_worker: 4096", "max_per_worker: 0", "flows.max_per_worker"),
        ("timeouts: {udp_s: 60}", "timeouts: {udp_s: 0}", "flows.timeouts.udp_s"),
        ("max_flows: 1000", "max_flows: 0", "networks[0].max_flows"),
    ] {
        let e = err(&policy_with(find, replace));
        assert_eq!(e.path, path, "{find} -> {replace}: {e}");
    }
    // Both peers kinds in one peer, and a policy named twice.
    let e = err(&policy_with("- ipBlock: {cidr", "  ipBlock: {cidr"));
    assert_eq!(e.path, "network_policies[0].spec.ingress[0].from[0].ipBlock", "{e}");
    let e = err(&policy_with("- name: db\n", "- name: web\n    namespace: prod\n"));
    assert_eq!(e.path, "network_policies[1].name", "{e}");
}
