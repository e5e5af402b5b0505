//! The control API (HTTP/1.1 + JSON on a unix socket, docs/openapi.yaml) against a real
//! running sluice: the resource contract, validation errors naming their field,
//! all-or-nothing applies, traffic across applies, restart from the saved state, the
//! socket's protection, the CLI and Prometheus metrics.
//!
//! Every daemon runs on net_null/net_pcap vdevs without hugepages, with its own socket in
//! the test's scratch directory, and is stopped with SIGTERM; every final report must
//! show no leaked mbuf.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::api::*;
use sluice_tests::*;

/// The configuration most tests start from: a bridge with a VLAN port, a routed network
/// with an endpoint, an uplink with a default route, a spare port. No port receives
/// anything (`no-rx=1`): these tests are about the control plane.
fn base_yaml() -> String {
    format!(
        r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: p0, devargs: "net_null0,no-rx=1"}}
  - {{name: p1, devargs: "net_null1,no-rx=1", rx: false}}
  - {{name: p2, devargs: "net_null2,no-rx=1", rx: false}}
  - {{name: p3, devargs: "net_null3,no-rx=1", rx: false, uplink: {{network: blue, ipv4: 192.0.2.2}}}}
  - {{name: p4, devargs: "net_null4,no-rx=1", rx: false}}
bridges:
  - name: br0
    ports: [{{port: p0}}, {{port: p1, tag: 10}}]
networks:
  - {{name: blue, subnets: ["10.1.0.0/24"], gateway: {{ipv4: 10.1.0.1}}}}
endpoints:
  - {{name: e1, network: blue, port: p2, mac: "02:00:00:00:01:01", ips: [10.1.0.10], labels: {{app: web, tier: front, team: a}}}}
routes:
  - {{network: blue, prefix: 0.0.0.0/0, via: {{gateway: 192.0.2.1, port: p3, mac: "02:00:00:00:aa:01"}}}}
  - {{network: blue, prefix: 10.9.0.0/16, via: {{blackhole: true}}}}
stats: {{interval_s: 0}}
"#
    )
}

/// Ok statuses of the contract.
const OK: StatusCode = StatusCode::OK;
const CREATED: StatusCode = StatusCode::CREATED;
const BAD: StatusCode = StatusCode::BAD_REQUEST;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const CONFLICT: StatusCode = StatusCode::CONFLICT;
const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

fn epoch(a: &Value) -> u64 {
    a["epoch"].as_u64().unwrap_or_else(|| panic!("no epoch in {a}"))
}

/// One resource kind's walk through the contract.
struct Walk {
    kind: &'static str,
    /// The item's name (routes: `network:prefix`) and its URL.
    name: &'static str,
    path: String,
    item: Value,
    replacement: Value,
    /// A body naming another item than `path`.
    other: Value,
}

/// list / create / create again / get / replace / replace with another name / delete /
/// get and delete again, for bridges, networks, endpoints and routes; afterwards the
/// configuration is back to what it was.
#[test]
fn crud_contract_for_every_kind() {
    let sb = Sandbox::new("api-crud");
    let d = Daemon::start(&sb, "crud", &base_yaml(), &[]);
    let initial = d.config();
    let walks = [
        Walk {
            kind: "bridges",
            name: "br1",
            path: "/v1/bridges/br1".into(),
            item: json!({"name": "br1", "ports": [{"port": "p4"}]}),
            replacement: json!({"name": "br1", "mac_aging_s": 60, "ports": [{"port": "p4", "vlan_mode": "trunk", "trunks": [20, 30]}],
                                "static_macs": [{"mac": "02:00:00:00:02:01", "port": "p4", "vlan": 20}]}),
            other: json!({"name": "br2", "ports": [{"port": "p4"}]}),
        },
        Walk {
            kind: "networks",
            name: "red",
            path: "/v1/networks/red".into(),
            item: json!({"name": "red", "subnets": ["10.2.0.0/24"], "gateway": {"ipv4": "10.2.0.1"}}),
            replacement: json!({"name": "red", "vrf": 77, "subnets": ["10.2.0.0/24", "fd00:2::/64"],
                                "gateway": {"ipv4": "10.2.0.1", "ipv6": "fd00:2::1"}, "dhcp": {"enabled": false}}),
            other: json!({"name": "green", "subnets": ["10.3.0.0/24"]}),
        },
        Walk {
            kind: "endpoints",
            name: "e2",
            path: "/v1/endpoints/e2".into(),
            item: json!({"name": "e2", "network": "blue", "port": "p2", "mac": "02:00:00:00:01:02", "ips": ["10.1.0.11"], "labels": {"app": "db"}}),
            replacement: json!({"name": "e2", "network": "blue", "port": "p2", "mac": "02:00:00:00:01:02", "ips": ["10.1.0.12"],
                                "allowed_address_pairs": [{"ip": "10.1.0.99"}], "labels": {}}),
            other: json!({"name": "e3", "network": "blue", "port": "p2", "mac": "02:00:00:00:01:03"}),
        },
        Walk {
            kind: "routes",
            name: "blue:10.7.0.0/16",
            path: route_path("blue", "10.7.0.0/16"),
            item: json!({"network": "blue", "prefix": "10.7.0.0/16", "via": {"endpoint": "e1"}}),
            replacement: json!({"network": "blue", "prefix": "10.7.0.0/16", "via": {"ecmp": [{"endpoint": "e1"}, {"gateway": "192.0.2.1", "port": "p3", "mac": "02:00:00:00:aa:01"}]}}),
            other: json!({"network": "blue", "prefix": "10.6.0.0/16", "via": {"blackhole": true}}),
        },
        Walk {
            kind: "namespaces",
            name: "prod",
            path: "/v1/namespaces/prod".into(),
            item: json!({"name": "prod", "labels": {"env": "prod"}}),
            replacement: json!({"name": "prod", "labels": {"env": "prod", "team": "a"}}),
            other: json!({"name": "dev"}),
        },
        Walk {
            kind: "network_policies",
            name: "default/web-in",
            path: "/v1/network_policies/default%2Fweb-in".into(),
            item: json!({"name": "web-in", "namespace": "default",
                         "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": []}}),
            replacement: json!({"name": "web-in", "namespace": "default",
                                "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                                         "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"protocol": "TCP", "port": 80}]}]}}),
            other: json!({"name": "web-out", "namespace": "default", "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}),
        },
        Walk {
            kind: "global_rules",
            name: "deny-ssh",
            path: "/v1/global_rules/deny-ssh".into(),
            item: json!({"name": "deny-ssh", "action": "deny", "source": {"nets": ["172.16.0.0/12"]}}),
            replacement: json!({"name": "deny-ssh", "action": "deny", "source": {"nets": ["172.16.0.0/12", "192.168.0.0/16"]}}),
            other: json!({"name": "allow-dns", "action": "allow", "source": {"nets": ["10.0.0.0/8"]}}),
        },
    ];
    let mut ep = epoch(&d.json(Method::POST, "/v1/apply?dry_run=true", &initial).expect(OK, "dry run of the same state").clone());
    for w in &walks {
        let k = w.kind;
        let list = format!("/v1/{k}");
        let ctx = |step: &str| format!("{k}: {step}");
        // List.
        let before = d.get(&list).expect(OK, &ctx("list")).clone();
        let before = before.as_array().unwrap_or_else(|| panic!("{k}: the list is not an array: {before}")).clone();
        // Create.
        let a = d.json(Method::POST, &list, &w.item);
        let v = a.expect(CREATED, &ctx("POST")).clone();
        assert_eq!(v["applied"], json!(true), "{k}: POST answer {v}");
        assert_eq!(diff_names(&v, "added", k), [w.name], "{k}: the diff names the new item: {v}");
        assert_eq!(diff_len(&v), 1, "{k}: nothing else changed: {v}");
        assert_eq!(epoch(&v), ep + 1, "{k}: one apply, one epoch: {v}");
        ep += 1;
        d.json(Method::POST, &list, &w.item).expect_error(CONFLICT, "name", &ctx("POST again"));
        // Get: what was sent plus defaults.
        let got = d.get(&w.path).expect(OK, &ctx("GET")).clone();
        assert_subset(&w.item, &got, &ctx("GET after POST"));
        let after = d.get(&list).expect(OK, &ctx("list after POST")).clone();
        let after = after.as_array().unwrap().clone();
        assert_eq!(after.len(), before.len() + 1, "{k}: list after POST: {after:?}");
        assert!(after.contains(&got), "{k}: the list holds the item as GET shows it");
        // Replace (sent as YAML: JSON text is YAML flow syntax).
        let a = d.call(Method::PUT, &w.path, Some(("application/yaml", w.replacement.to_string().into_bytes())));
        let v = a.expect(OK, &ctx("PUT")).clone();
        assert_eq!(v["applied"], json!(true), "{k}: PUT answer {v}");
        assert_eq!(diff_names(&v, "changed", k), [w.name], "{k}: the diff names the changed item: {v}");
        assert_eq!(diff_len(&v), 1, "{k}: {v}");
        assert_eq!(epoch(&v), ep + 1, "{k}: {v}");
        ep += 1;
        assert_subset(&w.replacement, &d.get(&w.path).expect(OK, &ctx("GET")).clone(), &ctx("GET after PUT"));
        // The same PUT again changes nothing.
        let v = d.json(Method::PUT, &w.path, &w.replacement).expect(OK, &ctx("PUT again")).clone();
        assert_eq!((v["applied"].clone(), diff_len(&v), epoch(&v)), (json!(false), 0, ep), "{k}: idempotent PUT: {v}");
        // A body naming another item.
        d.json(Method::PUT, &w.path, &w.other).expect_error(BAD, "name", &ctx("PUT naming another item"));
        assert_subset(&w.replacement, &d.get(&w.path).expect(OK, &ctx("GET")).clone(), &ctx("GET after refused PUT"));
        let other_name = w.other.get("name").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
            format!("{}:{}", w.other["network"].as_str().unwrap(), w.other["prefix"].as_str().unwrap().replace('/', "%2F"))
        });
        d.get(&format!("{list}/{other_name}")).expect_error(NOT_FOUND, "", &ctx("the other item was not created"));
        // Delete.
        let v = d.delete(&w.path).expect(OK, &ctx("DELETE")).clone();
        assert_eq!(v["applied"], json!(true), "{k}: DELETE answer {v}");
        assert_eq!(diff_names(&v, "removed", k), [w.name], "{k}: the diff names the removed item: {v}");
        assert_eq!(diff_len(&v), 1, "{k}: {v}");
        ep += 1;
        d.get(&w.path).expect_error(NOT_FOUND, "", &ctx("GET after DELETE"));
        d.delete(&w.path).expect_error(NOT_FOUND, "", &ctx("DELETE again"));
        assert_eq!(d.get(&list).expect(OK, &ctx("list")).as_array().unwrap(), &before, "{k}: list back to before");
    }
    assert_eq!(d.config(), initial, "after create + replace + delete of every kind the configuration is back to the start");
    d.stop();
}

/// Ports over the API: list and get; a PUT that changes nothing applies nothing; what
/// needs a restart is 409 naming the field; an uplink changes in place; a port is added
/// and removed (hot-plugged) with the diff naming it; an unknown kind or item is 404
/// with the error schema.
#[test]
fn ports_change_at_runtime_and_unknown_kinds_are_404() {
    let sb = Sandbox::new("api-ports");
    let d = Daemon::start(&sb, "ports", &base_yaml(), &[]);
    let initial = d.config_bytes();
    let ports = d.get("/v1/ports").expect(OK, "GET /v1/ports").clone();
    let names: Vec<&str> = ports.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"]);
    let p3 = d.get("/v1/ports/p3").expect(OK, "GET /v1/ports/p3").clone();
    assert_subset(&json!({"name": "p3", "devargs": "net_null3,no-rx=1", "rx": false, "uplink": {"network": "blue", "ipv4": "192.0.2.2"}}), &p3, "p3");
    d.get("/v1/ports/nosuch").expect_error(NOT_FOUND, "", "GET of an unknown port");

    let mut p0 = ports[0].clone();
    let a = d.json(Method::PUT, "/v1/ports/p0", &p0).expect(OK, "PUT of a port, unchanged").clone();
    assert_eq!(a["applied"], json!(false), "{a}");
    p0["mtu"] = json!(1400);
    d.json(Method::PUT, "/v1/ports/p0", &p0).expect_error(CONFLICT, "ports[0].mtu", "PUT of a port, new mtu");
    assert_eq!(d.config_bytes(), initial, "nothing changed");
    let mut p3u = p3.clone();
    p3u["uplink"]["ipv4"] = json!("192.0.2.9");
    let a = d.json(Method::PUT, "/v1/ports/p3", &p3u).expect(OK, "PUT of a port's uplink").clone();
    assert_eq!(diff_names(&a, "changed", "uplinks"), ["p3"], "{a}");
    let a = d.json(Method::POST, "/v1/ports", &json!({"name": "p9", "devargs": "net_null9"})).expect(CREATED, "POST of a port").clone();
    assert_eq!(diff_names(&a, "added", "ports"), ["p9"], "{a}");
    d.delete("/v1/ports/p0").expect_error(INVALID, "bridges[0].ports[0].port", "DELETE of a bridged port");
    let a = d.delete("/v1/ports/p9").expect(OK, "DELETE of a port").clone();
    assert_eq!(diff_names(&a, "removed", "ports"), ["p9"], "{a}");
    let initial = d.config_bytes();

    for (m, path) in [(Method::GET, "/v1/widgets"), (Method::GET, "/v1/widgets/x"), (Method::DELETE, "/v1/widgets/x")] {
        d.call(m.clone(), path, None).expect_error(NOT_FOUND, "", &format!("{m} {path}"));
    }
    d.json(Method::POST, "/v1/widgets", &json!({"name": "x"})).expect_error(NOT_FOUND, "", "POST /v1/widgets");
    d.json(Method::PUT, "/v1/widgets/x", &json!({"name": "x"})).expect_error(NOT_FOUND, "", "PUT /v1/widgets/x");
    // Outside the API's paths and methods: plain HTTP answers.
    assert_eq!(d.get("/v2/config").status, NOT_FOUND);
    assert_eq!(d.get("/v1/routes/a/b").status, NOT_FOUND);
    assert_eq!(d.call(Method::POST, "/v1/config", None).status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(d.call(Method::DELETE, "/v1/bridges", None).status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(d.config_bytes(), initial, "nothing changed");
    d.stop();
}

/// Each invalid change is refused with 422 naming its key (in the whole desired state),
/// unparsable bodies with 400; nothing changes. /v1/apply takes JSON and YAML.
#[test]
fn validation_errors_name_their_field() {
    let sb = Sandbox::new("api-valid");
    let d = Daemon::start(&sb, "valid", &base_yaml(), &[]);
    let initial = d.config_bytes();
    let cfg = d.config();
    let ep = |extra: Value| {
        let mut e = json!({"name": "bad", "network": "blue", "port": "p2", "mac": "02:00:00:00:01:09", "ips": ["10.1.0.20"]});
        e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        e
    };
    let route = |prefix: &str, network: &str, via: Value| json!({"network": network, "prefix": prefix, "via": via});
    let mut dup_net = cfg.clone();
    let blue = dup_net["networks"][0].clone();
    dup_net["networks"].as_array_mut().unwrap().push(blue);
    let mut two_bad = cfg.clone();
    two_bad["endpoints"][0]["ips"] = json!(["10.1.0.10", "10.99.0.1"]);
    // (what, method, path, body, status, field)
    let cases: Vec<(&str, Method, String, Value, StatusCode, &str)> = vec![
        ("endpoint IP outside every subnet", Method::POST, "/v1/endpoints".into(), ep(json!({"ips": ["192.168.7.7"]})), INVALID, "endpoints[1].ips[0]"),
        ("endpoint's second IP outside (apply)", Method::POST, "/v1/apply".into(), two_bad, INVALID, "endpoints[0].ips[1]"),
        ("endpoint IP is the gateway", Method::POST, "/v1/endpoints".into(), ep(json!({"ips": ["10.1.0.1"]})), INVALID, "endpoints[1].ips[0]"),
        ("endpoint IP of another endpoint", Method::POST, "/v1/endpoints".into(), ep(json!({"ips": ["10.1.0.10"]})), INVALID, "endpoints[1].ips[0]"),
        ("endpoint in an unknown network", Method::POST, "/v1/endpoints".into(), ep(json!({"network": "nosuch"})), INVALID, "endpoints[1].network"),
        ("endpoint on an unknown port", Method::POST, "/v1/endpoints".into(), ep(json!({"port": "p9"})), INVALID, "endpoints[1].port"),
        ("endpoint on a bridge port", Method::POST, "/v1/endpoints".into(), ep(json!({"port": "p0"})), INVALID, "endpoints[1].port"),
        ("endpoint with a multicast MAC", Method::POST, "/v1/endpoints".into(), ep(json!({"mac": "01:00:5e:00:00:01"})), INVALID, "endpoints[1].mac"),
        ("endpoint with e1's MAC", Method::POST, "/v1/endpoints".into(), ep(json!({"mac": "02:00:00:00:01:01"})), INVALID, "endpoints[1].mac"),
        ("route in an unknown network", Method::POST, "/v1/routes".into(), route("10.5.0.0/16", "nosuch", json!({"blackhole": true})), INVALID, "routes[2].network"),
        ("route prefix with host bits", Method::POST, "/v1/routes".into(), route("10.9.0.1/16", "blue", json!({"blackhole": true})), INVALID, "routes[2].prefix"),
        ("route prefix length 33", Method::POST, "/v1/routes".into(), route("10.5.0.0/33", "blue", json!({"blackhole": true})), INVALID, "routes[2].prefix"),
        ("route via an unknown endpoint", Method::POST, "/v1/routes".into(), route("10.5.0.0/16", "blue", json!({"endpoint": "ghost"})), INVALID, "routes[2].via.endpoint"),
        ("route with two next hops", Method::POST, "/v1/routes".into(), route("10.5.0.0/16", "blue", json!({"endpoint": "e1", "blackhole": true})), INVALID, "routes[2].via"),
        ("route via a gateway on a non-uplink", Method::POST, "/v1/routes".into(), route("10.5.0.0/16", "blue", json!({"gateway": "192.0.2.1", "port": "p4", "mac": "02:00:00:00:aa:01"})), INVALID, "routes[2].via.port"),
        ("IPv6 gateway for an IPv4 prefix", Method::POST, "/v1/routes".into(), route("10.5.0.0/16", "blue", json!({"gateway": "fd00::1", "port": "p3", "mac": "02:00:00:00:aa:01"})), INVALID, "routes[2].via.gateway"),
        ("VLAN 4095 on a bridge port", Method::PUT, "/v1/bridges/br0".into(), json!({"name": "br0", "ports": [{"port": "p0"}, {"port": "p1", "tag": 4095}]}), INVALID, "bridges[0].ports[1].tag"),
        ("trunk VLAN 0", Method::PUT, "/v1/bridges/br0".into(), json!({"name": "br0", "ports": [{"port": "p0"}, {"port": "p1", "vlan_mode": "trunk", "trunks": [0]}]}), INVALID, "bridges[0].ports[1].trunks[0]"),
        ("bridge on an unknown port", Method::POST, "/v1/bridges".into(), json!({"name": "br1", "ports": [{"port": "p9"}]}), INVALID, "bridges[1].ports[0].port"),
        ("port in two bridges", Method::POST, "/v1/bridges".into(), json!({"name": "br1", "ports": [{"port": "p0"}]}), INVALID, "bridges[1].ports[0].port"),
        ("duplicate network name (apply)", Method::POST, "/v1/apply".into(), dup_net, INVALID, "networks[1].name"),
        ("network subnet with host bits", Method::POST, "/v1/networks".into(), json!({"name": "red", "subnets": ["10.2.0.1/24"]}), INVALID, "networks[1].subnets[0]"),
        ("network DHCP lease of 10 s", Method::POST, "/v1/networks".into(), json!({"name": "red", "dhcp": {"lease_s": 10}}), INVALID, "networks[1].dhcp.lease_s"),
        // Deleting what others refer to.
        ("deleting a network in use", Method::DELETE, "/v1/networks/blue".into(), Value::Null, INVALID, "ports[3].uplink.network"),
        // Existing names.
        ("network that exists", Method::POST, "/v1/networks".into(), json!({"name": "blue"}), CONFLICT, "name"),
        ("route that exists", Method::POST, "/v1/routes".into(), route("10.9.0.0/16", "blue", json!({"blackhole": true})), CONFLICT, "name"),
    ];
    let mut failures = Vec::new();
    for (what, m, path, body, status, field) in cases {
        let a = if body.is_null() { d.call(m.clone(), &path, None) } else { d.json(m.clone(), &path, &body) };
        if a.status != status || a.field() != field || a.json.pointer("/error/message").and_then(Value::as_str).unwrap_or("").is_empty() {
            failures.push(format!("{what}: {m} {path}: want {status} {field:?}, got {} {}", a.status, a.text()));
        }
        if d.config_bytes() != initial {
            failures.push(format!("{what}: the refused change changed the configuration"));
            break;
        }
    }
    assert!(failures.is_empty(), "{} case(s) misbehaved:\n{}", failures.len(), failures.join("\n"));

    // An endpoint that a route uses goes only with the route.
    d.json(Method::POST, "/v1/routes", &route("10.5.0.0/16", "blue", json!({"endpoint": "e1"}))).expect(CREATED, "route via e1");
    let e1_path = "/v1/endpoints/e1";
    d.delete(e1_path).expect_error(INVALID, "routes[2].via.endpoint", "deleting an endpoint a route uses");
    d.delete(&route_path("blue", "10.5.0.0/16")).expect(OK, "delete the route again");
    assert_eq!(d.config_bytes(), initial);

    // Bodies that do not parse: 400, the field when there is one.
    let apply = |ct: &str, body: &[u8]| d.call(Method::POST, "/v1/apply", Some((ct, body.to_vec())));
    let a = apply("application/json", br#"{"ports": [{"name": "x""#);
    assert_eq!(a.status, BAD, "malformed JSON: {}", a.text());
    assert!(a.json.pointer("/error/message").is_some(), "malformed JSON answers the error schema: {}", a.text());
    let a = apply("application/yaml", b"ports: [{name: x, devargs: net_null0\nbridges: {");
    assert_eq!(a.status, BAD, "malformed YAML: {}", a.text());
    assert!(a.json.pointer("/error/message").is_some(), "malformed YAML answers the error schema: {}", a.text());
    apply("application/json", br#"{"ports": [{"name": "x", "devargs": "net_null0", "mtu": "big"}]}"#).expect_error(BAD, "ports[0].mtu", "JSON: wrong type");
    apply("application/yaml", b"ports:\n  - {name: x, devargs: net_null0, mtuu: 1500}\n").expect_error(BAD, "ports[0].mtuu", "YAML: unknown key");
    apply("application/json", b"[1, 2]").expect(BAD, "JSON: a list");
    apply("application/json", b"").expect(BAD, "empty body");
    apply("application/json", &[0xff, 0xfe, b'{']).expect(BAD, "not UTF-8");
    d.json(Method::POST, "/v1/endpoints", &ep(json!({"bogus": 1}))).expect_error(BAD, "bogus", "item with an unknown key");
    d.json(Method::POST, "/v1/endpoints", &json!({"network": "blue"})).expect_error(BAD, "name", "item without a name");
    d.json(Method::POST, "/v1/routes", &json!({"network": "blue", "via": {"blackhole": true}})).expect_error(BAD, "prefix", "route without a prefix");
    d.json(Method::POST, "/v1/endpoints", &ep(json!({"ips": ["10.1.0.300"]}))).expect(BAD, "an IP that does not parse");
    assert_eq!(d.call(Method::POST, "/v1/apply?dry_run=maybe", Some(("application/json", b"{}".to_vec()))).status, BAD);
    assert_eq!(d.config_bytes(), initial, "nothing changed");

    // JSON and YAML desired states: the same state either way is no change.
    let v = apply("application/json", &initial).expect(OK, "the current state as JSON").clone();
    assert_eq!((v["applied"].clone(), diff_len(&v)), (json!(false), 0), "{v}");
    let v = apply("application/json; charset=utf-8", &initial).expect(OK, "JSON with a charset").clone();
    assert_eq!(diff_len(&v), 0, "{v}");
    let v = d.yaml(Method::POST, "/v1/apply", &base_yaml()).expect(OK, "the starting YAML").clone();
    assert_eq!((v["applied"].clone(), diff_len(&v)), (json!(false), 0), "the YAML it started from is the current state: {v}");
    // No content type: YAML.
    let more = base_yaml().replace("prefix: 10.9.0.0/16, via: {blackhole: true}", "prefix: 10.4.0.0/16, via: {endpoint: e1}");
    assert_ne!(more, base_yaml());
    let v = d.call(Method::POST, "/v1/apply", Some(("", more.into_bytes()))).expect(OK, "YAML without a content type").clone();
    assert_eq!(diff_names(&v, "added", "routes"), ["blue:10.4.0.0/16"], "{v}");
    assert_eq!(diff_names(&v, "removed", "routes"), ["blue:10.9.0.0/16"], "{v}");
    assert_eq!(diff_len(&v), 2, "{v}");
    let v = apply("application/json", &initial).expect(OK, "back to the start, as JSON").clone();
    assert_eq!(diff_len(&v), 2, "{v}");
    assert_eq!(d.config(), serde_json::from_slice::<Value>(&initial).unwrap());
    d.stop();
}

/// A desired state with five valid changes and one bad object is refused as a whole:
/// the configuration (byte for byte) and the state file stay as they were. A dry run
/// answers the diff and changes nothing. What needs a restart is 409 naming the key.
#[test]
fn apply_is_all_or_nothing() {
    let sb = Sandbox::new("api-atomic");
    let state = sb.file("state.yaml");
    let state_arg = state.display().to_string();
    let d = Daemon::start(&sb, "atomic", &base_yaml(), &["--state", &state_arg]);
    let c0 = d.config_bytes();
    let s0 = std::fs::read(&state).expect("sluice saves the state it starts with");
    let cur: Value = serde_json::from_slice(&c0).unwrap();
    let ep0 = epoch(&d.json(Method::POST, "/v1/apply?dry_run=true", &cur).expect(OK, "dry run").clone());

    // Five valid changes.
    let mut want = cur.clone();
    want["networks"].as_array_mut().unwrap().push(json!({"name": "red", "subnets": ["10.2.0.0/24"]}));
    want["endpoints"][0]["ips"] = json!(["10.1.0.10", "10.1.0.13"]);
    want["endpoints"].as_array_mut().unwrap().push(json!({"name": "e2", "network": "blue", "port": "p2", "mac": "02:00:00:00:01:02", "ips": ["10.1.0.11"]}));
    want["routes"].as_array_mut().unwrap().retain(|r| r["prefix"] != "10.9.0.0/16");
    want["routes"].as_array_mut().unwrap().push(json!({"network": "blue", "prefix": "10.7.0.0/16", "via": {"endpoint": "e2"}}));
    let check_unchanged = |what: &str| {
        assert!(d.config_bytes() == c0, "{what}: GET /v1/config is not byte-identical to before");
        assert!(std::fs::read(&state).unwrap() == s0, "{what}: the state file changed");
    };
    // ... and one bad object, in several places.
    let bad_last = {
        let mut b = want.clone();
        b["routes"].as_array_mut().unwrap().push(json!({"network": "blue", "prefix": "10.8.0.0/16", "via": {"endpoint": "ghost"}}));
        b
    };
    d.json(Method::POST, "/v1/apply", &bad_last).expect_error(INVALID, "routes[2].via.endpoint", "5 good + a route via an unknown endpoint");
    check_unchanged("bad route");
    let bad_first = {
        let mut b = want.clone();
        b["bridges"][0]["ports"][1]["tag"] = json!(4095);
        b
    };
    d.json(Method::POST, "/v1/apply", &bad_first).expect_error(INVALID, "bridges[0].ports[1].tag", "5 good + VLAN 4095");
    check_unchanged("bad bridge");
    let bad_ep = {
        let mut b = want.clone();
        b["endpoints"][1]["ips"] = json!(["10.2.0.5"]);
        b
    };
    d.json(Method::POST, "/v1/apply", &bad_ep).expect_error(INVALID, "endpoints[1].ips[0]", "5 good + an endpoint IP in another network's subnet");
    check_unchanged("bad endpoint");
    // Also refused on a dry run.
    d.json(Method::POST, "/v1/apply?dry_run=true", &bad_last).expect_error(INVALID, "routes[2].via.endpoint", "dry run of a bad state");
    check_unchanged("dry run of a bad state");

    // Dry run: the diff, nothing else.
    let check_diff = |v: &Value| {
        assert_eq!(diff_names(v, "added", "networks"), ["red"], "{v}");
        assert_eq!(diff_names(v, "added", "endpoints"), ["e2"], "{v}");
        assert_eq!(diff_names(v, "changed", "endpoints"), ["e1"], "{v}");
        assert_eq!(diff_names(v, "added", "routes"), ["blue:10.7.0.0/16"], "{v}");
        assert_eq!(diff_names(v, "removed", "routes"), ["blue:10.9.0.0/16"], "{v}");
        assert_eq!(diff_len(v), 5, "{v}");
    };
    let v = d.json(Method::POST, "/v1/apply?dry_run=true", &want).expect(OK, "dry run").clone();
    assert_eq!((v["applied"].clone(), epoch(&v)), (json!(false), ep0), "{v}");
    check_diff(&v);
    check_unchanged("dry run");
    let v = d.json(Method::POST, "/v1/apply?dry_run=false", &want).expect(OK, "apply").clone();
    assert_eq!((v["applied"].clone(), epoch(&v)), (json!(true), ep0 + 1), "{v}");
    check_diff(&v);
    let want = normalized(&want);
    assert_eq!(d.config(), want, "GET /v1/config is the applied state");
    let saved = std::fs::read_to_string(&state).unwrap();
    let saved = sluice_control::config::Config::from_yaml(&saved).unwrap_or_else(|e| panic!("state file: {e}\n{saved}"));
    assert_eq!(serde_json::to_value(&saved).unwrap(), want, "the state file holds the applied state");

    // What only a restart changes: 409 naming the key, nothing changed.
    let c1 = d.config_bytes();
    let s1 = std::fs::read(&state).unwrap();
    let restart_cases: Vec<(&str, Value, &str)> = vec![
        ("worker cores", json!({"workers": {"cores": [0]}}), "workers"),
        ("a second worker", json!({"workers": {"cores": [0, 1]}}), "workers"),
        ("dpdk memory", json!({"dpdk": {"memory_mb": 512}}), "dpdk"),
        ("mempool size", json!({"mempool": {"mbufs": 4096}}), "mempool"),
        ("main core", json!({"main_core": 0}), "main_core"),
    ];
    for (what, patch, field) in restart_cases {
        let mut b = want.clone();
        for (k, v) in patch.as_object().unwrap() {
            match (b[k].as_object_mut(), v.as_object()) {
                (Some(o), Some(p)) => o.extend(p.clone()),
                _ => b[k] = v.clone(),
            }
        }
        d.json(Method::POST, "/v1/apply", &b).expect_error(CONFLICT, field, what);
        d.json(Method::POST, "/v1/apply?dry_run=true", &b).expect_error(CONFLICT, field, &format!("{what} (dry run)"));
    }
    for (what, key, value) in [("devargs", "devargs", json!("net_null7,no-rx=1")), ("mtu", "mtu", json!(1400)), ("rx", "rx", json!(true))] {
        let mut b = want.clone();
        b["ports"][1][key] = value;
        d.json(Method::POST, "/v1/apply", &b).expect_error(CONFLICT, &format!("ports[1].{key}"), &format!("a port's {what}"));
    }
    // Ports come and go while running, but a device that cannot attach changes nothing.
    let mut b = want.clone();
    b["ports"].as_array_mut().unwrap().push(json!({"name": "p5", "devargs": "net_nosuchdriver5"}));
    d.json(Method::POST, "/v1/apply", &b).expect_error(INVALID, "ports[5].devargs", "a new port that cannot attach");
    let mut b = want.clone();
    b["ports"].as_array_mut().unwrap().pop();
    let v = d.json(Method::POST, "/v1/apply?dry_run=true", &b).expect(OK, "a port removed (dry run)").clone();
    assert_eq!((v["applied"].clone(), diff_names(&v, "removed", "ports")), (json!(false), vec!["p4".to_string()]), "{v}");
    assert!(d.config_bytes() == c1 && std::fs::read(&state).unwrap() == s1, "a refused restart-only change changed something");

    // A port's uplink may change while running.
    let mut b = want.clone();
    b["ports"][3]["uplink"]["ipv4"] = json!("192.0.2.3");
    let v = d.json(Method::POST, "/v1/apply", &b).expect(OK, "an uplink address").clone();
    assert_eq!(diff_names(&v, "changed", "uplinks"), ["p3"], "{v}");
    assert_eq!(d.config(), b);
    d.stop();
}

/// The pcap-replay demo setup (pcap → bridge → null sink with a static MAC) keeps
/// forwarding every packet while 200 applies change the routed part of the configuration:
/// no drop, rx == tx, the learned MAC survives (learned once), no leak.
#[test]
fn traffic_keeps_flowing_across_200_applies() {
    let sb = Sandbox::new("api-traffic");
    let frames: Vec<Vec<u8>> = (0..64).map(|i| frame(mac(2), mac(1), None, 60, i)).collect();
    sb.write_pcap("in.pcap", &frames);
    let pcap = sb.arg("in.pcap");
    // The desired state: the demo's bridge plus a routed network with churning routes.
    let yaml = |routes: &BTreeSet<u8>, e2: bool| {
        let mut s = format!(
            r#"{DPDK_HEADER}workers: {{cores: [1]}}
ports:
  - {{name: in0, devargs: "net_pcap0,rx_pcap={pcap},infinite_rx=1"}}
  - {{name: out0, devargs: "net_null0,no-rx=1", rx: false}}
  - {{name: ep0, devargs: "net_null1,no-rx=1", rx: false}}
bridges:
  - name: br0
    ports: [{{port: in0}}, {{port: out0}}]
    static_macs:
      - {{mac: "02:00:00:00:00:02", port: out0}}
networks:
  - {{name: blue, subnets: ["10.1.0.0/24"], gateway: {{ipv4: 10.1.0.1}}}}
endpoints:
  - {{name: e1, network: blue, port: ep0, mac: "02:00:00:00:01:01", ips: [10.1.0.10]}}
"#
        );
        if e2 {
            s.push_str("  - {name: e2, network: blue, port: ep0, mac: \"02:00:00:00:01:02\", ips: [10.1.0.11]}\n");
        }
        s.push_str("routes:\n");
        for r in routes {
            s.push_str(&format!("  - {{network: blue, prefix: 10.{r}.0.0/16, via: {{endpoint: e1}}}}\n"));
        }
        s.push_str("stats: {interval_s: 0}\n");
        s
    };
    let mut routes = BTreeSet::new();
    let mut e2 = false;
    let d = Daemon::start(&sb, "traffic", &yaml(&routes, e2), &[]);
    let stats = |what: &str| d.get("/v1/stats").expect(OK, what).clone();
    let mut ep = epoch(&d.json(Method::POST, "/v1/apply?dry_run=true", &d.config()).expect(OK, "dry run").clone());
    let mut last_rx = stats("stats")["totals"]["rx_packets"].as_u64().unwrap();
    let (mut cli_applies, mut raw_applies) = (0, 0);
    for i in 0..200u32 {
        if i % 40 == 7 {
            // The CLI with a whole desired state, YAML or JSON, toggling a route.
            let r = 200 + (i % 8) as u8;
            if !routes.remove(&r) {
                routes.insert(r);
            }
            let file = if i % 80 == 7 {
                sb.write_config(&format!("desired{i}.yaml"), &yaml(&routes, e2))
            } else {
                let mut v = d.config();
                v["routes"] = routes.iter().map(|r| json!({"network": "blue", "prefix": format!("10.{r}.0.0/16"), "via": {"endpoint": "e1"}})).collect();
                sb.write_config(&format!("desired{i}.json"), &v.to_string())
            };
            let f = d.cli(&sb, &format!("cli{i}"), &["apply", "-f", &file.display().to_string()]);
            assert_eq!(f.code, Some(0), "apply {i} via the CLI\n{}", f.context());
            assert!(f.stdout.starts_with(&format!("applied (epoch {})", ep + 1)), "apply {i}: {}", f.stdout);
            cli_applies += 1;
        } else if i % 10 == 9 {
            // Toggle an endpoint.
            let v = if e2 {
                d.delete("/v1/endpoints/e2").expect(OK, &format!("apply {i}: delete e2")).clone()
            } else {
                let body = json!({"name": "e2", "network": "blue", "port": "ep0", "mac": "02:00:00:00:01:02", "ips": ["10.1.0.11"]});
                d.json(Method::POST, "/v1/endpoints", &body).expect(CREATED, &format!("apply {i}: create e2")).clone()
            };
            e2 = !e2;
            assert_eq!((v["applied"].clone(), epoch(&v)), (json!(true), ep + 1), "apply {i}: {v}");
            raw_applies += 1;
        } else {
            // Add or remove a route the traffic does not use, alternating next-hop kinds.
            let r = 200 + (i % 8) as u8;
            let prefix = format!("10.{r}.0.0/16");
            let v = if routes.remove(&r) {
                d.delete(&route_path("blue", &prefix)).expect(OK, &format!("apply {i}: delete {prefix}")).clone()
            } else {
                routes.insert(r);
                let body = json!({"network": "blue", "prefix": prefix, "via": {"endpoint": "e1"}});
                d.json(Method::POST, "/v1/routes", &body).expect(CREATED, &format!("apply {i}: add {prefix}")).clone()
            };
            assert_eq!((v["applied"].clone(), epoch(&v)), (json!(true), ep + 1), "apply {i}: {v}");
            raw_applies += 1;
        }
        ep += 1;
        if i % 50 == 49 {
            // Traffic is flowing (the worker shares CPU 1 with other tests' workers: give
            // it up to 2 s), nothing is dropped.
            let t0 = std::time::Instant::now();
            let (mut s, mut rx) = (Value::Null, 0);
            while t0.elapsed() < Duration::from_secs(2) {
                s = stats("stats");
                rx = s["totals"]["rx_packets"].as_u64().unwrap();
                if rx > last_rx {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(rx > last_rx, "after apply {i}: no packet received for 2 s ({rx})\n{s}");
            assert_eq!(s["totals"]["drops_total"], json!(0), "after apply {i}: {s}");
            last_rx = rx;
        }
    }
    assert_eq!((cli_applies, raw_applies), (5, 195));
    // What runs is the model's desired state.
    let cfg = d.config();
    let mut names: Vec<String> = cfg["routes"].as_array().unwrap().iter().map(|r| r["prefix"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, routes.iter().map(|r| format!("10.{r}.0.0/16")).collect::<Vec<_>>());
    assert_eq!(cfg["endpoints"].as_array().unwrap().len(), 1 + e2 as usize);
    let r = d.stop();
    let ctx = &r.context;
    r.assert_consistent();
    let rx = r.u("/totals/rx_packets");
    println!("traffic across 200 applies: rx = {rx}, epoch {ep}");
    assert!(rx >= 10_000, "too little traffic to mean anything: {rx}\n{ctx}");
    assert_eq!(r.u("/totals/drops_total"), 0, "packets dropped while applying: {:?}\n{ctx}", r.drops());
    assert_eq!(r.u("/totals/tx_packets"), rx, "rx != tx\n{ctx}");
    assert_eq!(r.port("out0", "/tx_packets"), rx, "{ctx}");
    assert_eq!(r.port("out0", "/ethdev/opackets"), rx, "{ctx}");
    assert_eq!(r.port("in0", "/ethdev/ipackets"), rx, "{ctx}");
    assert_eq!(r.u("/workers/0/flooded"), 0, "known unicast only\n{ctx}");
    assert_eq!(r.u("/workers/0/mac_learned"), 1, "the source MAC was learned once: the MAC table survived every apply\n{ctx}");
}

/// The applied state survives `kill -9` and wins over a different --config; a corrupt
/// state file is kept aside (and named on stderr) and sluice starts from --config.
#[test]
fn restart_restores_the_applied_state() {
    let sb = Sandbox::new("api-restart");
    let state = sb.file("state.yaml");
    let state_arg = state.display().to_string();
    let sock = sb.file("api.sock");
    let cfg1 = sb.write_config("one.yaml", &base_yaml());
    let d = Daemon::start_at(&sb, "first", &cfg1, &sock, &["--state", &state_arg]);
    let ep = json!({"name": "e2", "network": "blue", "port": "p2", "mac": "02:00:00:00:01:02", "ips": ["10.1.0.11"], "labels": {"a": "1", "b": "2", "c": "3"}});
    d.json(Method::POST, "/v1/endpoints", &ep).expect(CREATED, "add e2");
    d.json(Method::POST, "/v1/routes", &json!({"network": "blue", "prefix": "10.7.0.0/16", "via": {"endpoint": "e2"}})).expect(CREATED, "add a route");
    // Ports added and removed at runtime are part of the saved state.
    d.json(Method::POST, "/v1/ports", &json!({"name": "p7", "devargs": "net_null7,no-rx=1", "rx": false})).expect(CREATED, "add p7");
    d.delete("/v1/ports/p4").expect(OK, "remove p4");
    let before = d.config();
    let f = d.kill9();
    assert_eq!(f.code, None, "killed by SIGKILL\n{}", f.context());
    assert!(sock.exists(), "a killed sluice leaves its socket file (the next start replaces it)");

    // Another configuration: no networks, no uplink. The state wins.
    let other = base_yaml()
        .replace(", uplink: {network: blue, ipv4: 192.0.2.2}", "")
        .split("networks:")
        .next()
        .unwrap()
        .to_string()
        + "stats: {interval_s: 3}\n";
    let cfg2 = sb.write_config("two.yaml", &other);
    let d = Daemon::start_at(&sb, "second", &cfg2, &sock, &["--state", &state_arg]);
    assert_eq!(d.config(), before, "after kill -9 and a restart with another --config, the applied state is back");
    assert!(d.sluice.stderr_now().contains("restoring applied state"), "{}", d.output());
    let ports: Vec<String> = d.get("/v1/stats").expect(OK, "stats")["ports"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(ports, ["p0", "p1", "p2", "p3", "p7"], "the ports running are the restored ones");
    d.stop();

    // A corrupt state file: kept aside, named on stderr; sluice starts from --config.
    let garbage = "\u{1}\u{2} this is not a sluice state: [[[\n";
    std::fs::write(&state, garbage).unwrap();
    let d = Daemon::start_at(&sb, "third", &cfg2, &sock, &["--state", &state_arg]);
    let from_cfg2 = sluice_control::config::Config::from_yaml(&other).unwrap();
    assert_eq!(d.config(), serde_json::to_value(&from_cfg2).unwrap(), "started from --config\n{}", d.output());
    let kept: Vec<_> = std::fs::read_dir(sb.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("state.yaml.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "one state.yaml.corrupt-<secs> file: {kept:?}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), garbage, "the corrupt file is kept as it was");
    let err = d.sluice.stderr_now();
    assert!(err.contains("sluice: state file corrupt"), "stderr does not say the state is corrupt\n{}", d.output());
    assert!(err.contains(&format!("kept at {}", kept[0].display())), "stderr names where it was kept\n{}", d.output());
    // What runs now is saved again.
    let saved = sluice_control::config::Config::from_yaml(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved, from_cfg2);
    d.stop();
}

/// The socket is the owner's only (0600); a second sluice on the same socket does not take
/// it over (it warns and runs without API) nor removes it when it exits.
#[test]
fn socket_is_private_and_not_stolen() {
    let sb = Sandbox::new("api-sock");
    let sock = sb.file("api.sock");
    let cfg = sb.write_config("c.yaml", &base_yaml());
    let a = Daemon::start_at(&sb, "first", &cfg, &sock, &[]);
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket(), "{} is not a socket", sock.display());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "socket mode {:o}", meta.permissions().mode());

    let mut b = spawn_daemon(&sb, "second", &cfg, &sock, &[]);
    assert!(b.sluice.wait_for_stderr("API not available", READY), "the second sluice did not warn\n{}", b.output());
    assert!(!b.exited(), "the second sluice runs without its API\n{}", b.output());
    a.get("/v1/stats").expect(OK, "the first still answers");
    b.stop();
    assert!(sock.exists(), "the second sluice removed the first one's socket");
    a.get("/v1/stats").expect(OK, "the first answers after the second exited");
    a.json(Method::POST, "/v1/routes", &json!({"network": "blue", "prefix": "10.7.0.0/16", "via": {"blackhole": true}})).expect(CREATED, "and applies");
    a.stop();
    assert!(!sock.exists(), "sluice removes its socket at exit");
}

/// Regression (fixed): `bind_unix` used to remove whatever was at --api-socket if nothing
/// accepted connections there, so a regular file was deleted. Only a stale socket may be
/// removed.
#[test]
fn a_regular_file_at_the_socket_path_is_not_deleted() {
    let sb = Sandbox::new("api-notsock");
    let path = sb.file("precious.txt");
    std::fs::write(&path, "keep me\n").unwrap();
    let cfg = sb.write_config("c.yaml", &base_yaml());
    let mut d = spawn_daemon(&sb, "notsock", &cfg, &path, &[]);
    assert!(d.sluice.wait_for_stderr("API", READY), "no API line on stderr\n{}", d.output());
    let out = d.output();
    d.stop();
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some("keep me\n"),
        "sluice deleted the regular file at --api-socket {}\n{out}",
        path.display()
    );
}

/// The CLI against a running switch (exit 0; a rejected apply exits 2 naming the field)
/// and Prometheus metrics over TCP.
#[test]
fn cli_and_metrics() {
    let sb = Sandbox::new("api-cli");
    let addr = free_port();
    let d = Daemon::start(&sb, "cli", &base_yaml(), &["--metrics", &addr.to_string()]);
    let ok = |tag: &str, args: &[&str]| {
        let f = d.cli(&sb, tag, args);
        assert_eq!(f.code, Some(0), "sluice {args:?}\n{}", f.context());
        f.stdout
    };
    let out = ok("workers", &["show", "workers"]);
    let row = out.lines().nth(1).unwrap_or_default().split_whitespace().take(2).collect::<Vec<_>>();
    assert!(out.starts_with(&format!("{:>6} {:>4}", "worker", "cpu")) && row == ["0", "1"], "show workers:\n{out}");
    let drops: Value = serde_json::from_str(&ok("drops", &["show", "drops", "-o", "json"])).expect("show drops -o json is JSON");
    assert!(drops.is_object(), "{drops}");
    let ports: Value = serde_json::from_str(&ok("ports", &["show", "ports", "-o", "json"])).expect("JSON");
    assert_eq!(ports["ports"].as_array().map(Vec::len), Some(5), "{ports}");
    let stats = ok("stats", &["show", "stats"]);
    assert!(stats.starts_with("total: rx ") && stats.contains("counters since start"), "{stats}");
    assert_eq!(ok("routes", &["get", "routes"]).lines().collect::<Vec<_>>(), ["blue:0.0.0.0/0", "blue:10.9.0.0/16"]);
    let r: Value = serde_json::from_str(&ok("route", &["get", "routes", "blue:10.9.0.0/16", "-o", "json"])).expect("JSON");
    let described: Value = serde_json::from_str(&ok("describe", &["describe", "routes", "blue:10.9.0.0/16", "-o", "json"])).expect("JSON");
    assert_eq!(described, r, "describe is get");
    assert_eq!((r["prefix"].as_str(), r["via"]["blackhole"].as_bool()), (Some("10.9.0.0/16"), Some(true)));
    let c: Value = serde_json::from_str(&ok("config", &["get", "config", "-o", "json"])).expect("JSON");
    assert_eq!(c, d.config());
    ok("log-debug", &["log", "debug"]);
    ok("log-info", &["log", "info"]);

    // apply: dry run, then for real, then delete.
    let mut want = d.config();
    want["routes"].as_array_mut().unwrap().push(json!({"network": "blue", "prefix": "10.7.0.0/16", "via": {"endpoint": "e1"}}));
    let file = sb.write_config("want.json", &want.to_string());
    let file = file.display().to_string();
    let out = ok("dry", &["apply", "-f", &file, "--dry-run"]);
    assert!(out.starts_with("would apply") && out.contains("  + routes/blue:10.7.0.0/16"), "{out}");
    assert_eq!(ok("routes2", &["get", "routes"]).lines().count(), 2, "a dry run changes nothing");
    let out = ok("apply", &["apply", "-f", &file]);
    assert!(out.starts_with("applied") && out.contains("  + routes/blue:10.7.0.0/16"), "{out}");
    assert!(ok("again", &["apply", "-f", &file]).starts_with("no change"));
    assert_eq!(d.config(), normalized(&want));
    assert_eq!(ok("delete", &["delete", "routes", "blue:10.7.0.0/16"]).trim(), "deleted routes/blue:10.7.0.0/16");

    // Rejected: exit 2 and the field on stderr, YAML and JSON files alike.
    let bad_yaml = sb.write_config("bad.yaml", &base_yaml().replace("ips: [10.1.0.10]", "ips: [10.77.0.1]"));
    let mut bad = d.config();
    bad["routes"][1]["prefix"] = json!("10.9.0.1/16");
    let bad_json = sb.write_config("bad.json", &bad.to_string());
    for (tag, file, field) in [("bad-yaml", &bad_yaml, "endpoints[0].ips[0]"), ("bad-json", &bad_json, "routes[1].prefix")] {
        let f = d.cli(&sb, tag, &["apply", "-f", &file.display().to_string()]);
        assert_eq!(f.code, Some(2), "{}", f.context());
        assert!(f.stderr.contains("422") && f.stderr.contains(&format!("{field}: ")), "stderr names {field}\n{}", f.context());
    }
    let f = d.cli(&sb, "badkind", &["get", "widgets"]);
    assert_eq!(f.code, Some(2), "{}", f.context());
    let f = d.cli(&sb, "badlog", &["log", "warn,[[["]);
    assert!(f.code == Some(2) && f.stderr.contains("level"), "{}", f.context());
    // Nobody at the socket: exit 1.
    let f = run_sluice(sb.path(), "nobody", &["show", "stats", "--socket", &sb.arg("nobody.sock")], Duration::from_secs(20));
    assert!(f.code == Some(1) && f.stderr.contains("cannot reach sluice"), "{}", f.context());

    // Prometheus over TCP, only /metrics there.
    let (status, headers, body) = http_get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{headers}\n{body}");
    assert!(headers.contains("content-type: text/plain; version=0.0.4"), "{headers}");
    assert!(body.contains("sluice_worker_rx_packets_total{worker=\"0\",cpu=\"1\"} "), "{body}");
    // The flow table's size is reported next to its fill (default max_per_worker).
    assert!(body.contains("sluice_worker_flows_capacity{worker=\"0\",cpu=\"1\"} 1048576\n"), "{body}");
    let families: BTreeSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    assert!(families.len() >= 10, "{body}");
    for fam in &families {
        let typ = body.lines().filter(|l| l.starts_with(&format!("# TYPE {fam} "))).count();
        assert_eq!(typ, 1, "one # TYPE line for {fam}\n{body}");
        assert!(body.contains(&format!("# HELP {fam} ")), "# HELP for {fam}");
    }
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {l:?}"));
        assert!(v.parse::<f64>().is_ok(), "bad sample value in {l:?}");
    }
    assert!(http_get(addr, "/v1/config").0.contains(" 404 "), "the API is not served over TCP");
    // Also on the socket.
    let a = d.get("/metrics");
    assert!(a.status == OK && a.text().contains("# TYPE sluice_worker_rx_packets_total counter"));
    d.stop();
}

/// Regression (fixed): routes were named by their prefix text and validation did not look
/// for two routes of the same network and prefix, so the same prefix could be routed twice
/// with different next hops: through another spelling of it in a POST (`10.9.0.0/016`,
/// `FD00:0::/64`), or twice in an apply.
#[test]
fn one_route_per_network_and_prefix() {
    let sb = Sandbox::new("api-dupe");
    let d = Daemon::start(&sb, "dupe", &base_yaml(), &[]);
    let mut failures = Vec::new();
    for (prefix, existing) in [("10.9.0.0/016", "10.9.0.0/16"), (" 10.9.0.0/16", "10.9.0.0/16")] {
        let a = d.json(Method::POST, "/v1/routes", &json!({"network": "blue", "prefix": prefix, "via": {"endpoint": "e1"}}));
        if !a.status.is_client_error() {
            failures.push(format!("POST of {prefix} while {existing} exists: {} {}", a.status, a.text()));
        }
    }
    d.json(Method::POST, "/v1/routes", &json!({"network": "blue", "prefix": "fd00::/64", "via": {"blackhole": true}})).expect(CREATED, "v6");
    let a = d.json(Method::POST, "/v1/routes", &json!({"network": "blue", "prefix": "FD00:0::/64", "via": {"endpoint": "e1"}}));
    if !a.status.is_client_error() {
        failures.push(format!("POST of FD00:0::/64 while fd00::/64 exists: {} {}", a.status, a.text()));
    }
    let mut want = d.config();
    want["routes"] = json!([
        {"network": "blue", "prefix": "10.7.0.0/16", "via": {"blackhole": true}},
        {"network": "blue", "prefix": "10.7.0.0/16", "via": {"endpoint": "e1"}},
    ]);
    let a = d.json(Method::POST, "/v1/apply", &want);
    if a.status != INVALID || !a.field().starts_with("routes[1]") {
        failures.push(format!("apply with blue:10.7.0.0/16 twice: want 422 naming routes[1], got {} {}", a.status, a.text()));
    }
    let routes = d.get("/v1/routes").json.clone();
    d.stop();
    assert!(failures.is_empty(), "the same prefix is routed twice:\n{}\nroutes now: {routes}", failures.join("\n"));
}

/// Regression (fixed): an apply whose only change was in `stats` answered 200 `applied:
/// false` with an empty diff and dropped the change (GET /v1/config and the state file kept
/// the old value). It must be applied (and returned by GET /v1/config) or refused with 409
/// naming `stats`.
#[test]
fn a_stats_only_change_is_not_silently_dropped() {
    let sb = Sandbox::new("api-statsonly");
    let d = Daemon::start(&sb, "statsonly", &base_yaml(), &[]);
    let mut want = d.config();
    want["stats"]["interval_s"] = json!(5);
    let a = d.json(Method::POST, "/v1/apply", &want);
    let got = d.config();
    d.stop();
    let refused = a.status == CONFLICT && a.field() == "stats";
    let applied = a.status.is_success() && got["stats"] == want["stats"];
    assert!(
        refused || applied,
        "apply of stats.interval_s 0 -> 5 answered {} {} but GET /v1/config has stats {}",
        a.status,
        a.text(),
        got["stats"]
    );
}

/// The optional TCP API: loopback only, and every request needs the bearer token.
#[test]
fn tcp_api_needs_the_bearer_token() {
    let sb = Sandbox::new("api-tcp");
    let token = "s3cret-token-0123456789abcdef";
    let tok = sb.file("token");
    std::fs::write(&tok, format!("{token}\n")).unwrap();
    let tok = tok.display().to_string();
    let addr = free_port();
    let d = Daemon::start(&sb, "tcp", &base_yaml(), &["--api-tcp", &addr.to_string(), "--api-token-file", &tok]);

    let (status, headers, body) = http_get(addr, "/v1/config");
    assert!(status.contains(" 401 "), "no token: {status}");
    assert!(headers.contains("www-authenticate: bearer"), "{headers}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["field"], "authorization");
    let (status, ..) = http_get_with(addr, "/v1/config", &[("Authorization", "Bearer s3cret-token-0123456789abcdeX")]);
    assert!(status.contains(" 401 "), "wrong token: {status}");
    let (status, ..) = http_get_with(addr, "/v1/config", &[("Authorization", token)]);
    assert!(status.contains(" 401 "), "token without the Bearer scheme: {status}");

    let bearer = format!("Bearer {token}");
    let (status, _, body) = http_get_with(addr, "/v1/config", &[("Authorization", &bearer)]);
    assert!(status.contains(" 200 "), "right token: {status}");
    let over_tcp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(over_tcp, d.config(), "the TCP API serves the same state as the socket");
    d.stop();

    // Refused before anything starts: a non-loopback address, a short token, no token file.
    let bad: &[&[&str]] = &[
        &["--api-tcp", "0.0.0.0:9", "--api-token-file", &tok],
        &["--api-tcp", "127.0.0.1:9"],
    ];
    for (i, extra) in bad.iter().enumerate() {
        let mut args = vec!["run", "--config", "nonexistent.yaml"];
        args.extend_from_slice(extra);
        let f = run_sluice(sb.path(), &format!("bad{i}"), &args, Duration::from_secs(20));
        assert_eq!(f.code, Some(2), "{extra:?}: {}", f.stderr);
        assert!(f.stderr.contains("--api-tcp") || f.stderr.contains("api-token-file"), "{extra:?}: {}", f.stderr);
    }
    std::fs::write(sb.file("short"), "short\n").unwrap();
    let short = sb.file("short").display().to_string();
    let f = run_sluice(sb.path(), "short", &["run", "--api-tcp", "127.0.0.1:9", "--api-token-file", &short], Duration::from_secs(20));
    assert_eq!(f.code, Some(2), "{}", f.stderr);
    assert!(f.stderr.contains("--api-token-file: the token must be at least 16 characters"), "{}", f.stderr);
}

/// The log filter changes while sluice runs (`PUT /v1/log`, as `sluice log LEVEL`): an
/// apply is logged at info, so under `--log warn` it is not, and after switching to
/// info the next one is; a filter that does not parse is refused naming `level`.
#[test]
fn log_level_changes_at_runtime() {
    let sb = Sandbox::new("api-log");
    let mut d = Daemon::start(&sb, "log", &base_yaml(), &["--log", "warn"]);
    let route = |p: &str| json!({"network": "blue", "prefix": p, "via": {"blackhole": true}});
    d.json(Method::POST, "/v1/routes", &route("10.7.0.0/16")).expect(CREATED, "first route (under warn)");
    let r = d.json(Method::PUT, "/v1/log", &json!({"level": "info"}));
    assert_eq!(r.status, StatusCode::NO_CONTENT, "PUT /v1/log: {}", r.text());
    d.json(Method::POST, "/v1/routes", &route("10.8.0.0/16")).expect(CREATED, "second route (under info)");
    assert!(d.sluice.wait_for_stderr("applied", READY), "the apply under info was not logged\n{}", d.output());
    let logged = d.sluice.stderr_now().matches("applied").count();
    assert_eq!(logged, 1, "only the apply made under info is logged\n{}", d.output());
    d.json(Method::PUT, "/v1/log", &json!({"level": "info,[bad"})).expect_error(INVALID, "level", "an unparsable filter");
    // A malformed body is an API error naming the field too, like every other body.
    d.json(Method::PUT, "/v1/log", &json!({"level": 3})).expect_error(BAD, "level", "a level that is not a string");
    d.json(Method::PUT, "/v1/log", &json!({"levle": "info"})).expect_error(BAD, "levle", "an unknown key");
    d.stop();
}
