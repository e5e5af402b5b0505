//! Finds DPDK with pkg-config, links it dynamically, generates the bindings and
//! compiles the C shim.
//!
//! The allowlist keeps the bindings to what sluice calls (EAL, ethdev, mempool,
//! mbuf, lcore, hotplug) so bindgen output and compile time stay small.

use std::env;
use std::path::PathBuf;

/// The oldest DPDK whose ABI these bindings are written against.
const DPDK_MIN_VERSION: &str = "22.11";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-env-changed=SLUICE_FFI_LAYOUT_TESTS");

    // bindgen's layout checks (compile-time size/offset asserts against what
    // clang computed) cost compile time on every build; opt in with
    // SLUICE_FFI_LAYOUT_TESTS=1 after a DPDK upgrade or a bindgen bump.
    let layout_tests = env::var_os("SLUICE_FFI_LAYOUT_TESTS").is_some_and(|v| v != "0");

    // Emits rustc-link-lib / rustc-link-search for every -l/-L in `--libs`
    // (shared libraries: PMDs are loaded as plugins by EAL at init).
    let dpdk = pkg_config::Config::new()
        .atleast_version(DPDK_MIN_VERSION)
        .statik(false)
        .probe("libdpdk")
        .unwrap_or_else(|e| panic!("libdpdk >= {DPDK_MIN_VERSION} not found by pkg-config: {e}"));

    // The same preprocessor view for bindgen and cc: include paths, defines, and
    // the `-include rte_config.h` / `-march=...` the .pc file carries.
    let cflags = dpdk_cflags();

    for p in &dpdk.include_paths {
        println!("cargo:include={}", p.display());
    }

    let mut build = cc::Build::new();
    build
        .file(manifest_dir.join("src/shim.c"))
        .include(manifest_dir.join("src"))
        .opt_level(3)
        .warnings(true)
        .define("ALLOW_EXPERIMENTAL_API", None);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("sluice_shim");

    let bindings = bindgen::Builder::default()
        .header(manifest_dir.join("wrapper.h").to_string_lossy())
        .clang_arg(format!("-I{}", manifest_dir.display()))
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .clang_args(&cflags)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .rust_target(bindgen::RustTarget::stable(85, 0).expect("valid rust target"))
        .layout_tests(layout_tests)
        .derive_default(true)
        .derive_debug(false)
        .generate_comments(true)
        .prepend_enum_name(true)
        .default_enum_style(bindgen::EnumVariation::Consts)
        // Functions we call.
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_.*")
        .allowlist_function("rte_mempool_.*")
        .allowlist_function("rte_mbuf_.*")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_thread_register")
        .allowlist_function("rte_thread_unregister")
        .allowlist_function("rte_lcore_.*")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_socket_count")
        .allowlist_function("rte_get_tsc_hz")
        .allowlist_function("rte_dev_probe")
        .allowlist_function("rte_dev_remove")
        .allowlist_function("rte_dev_name")
        .allowlist_function("rte_version")
        .allowlist_function("sluice_.*")
        // Types we build or read field by field.
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_mempool")
        .allowlist_type("rte_eth_conf")
        .allowlist_type("rte_eth_dev_info")
        .allowlist_type("rte_eth_stats")
        .allowlist_type("rte_eth_link")
        .allowlist_type("rte_eth_rxconf")
        .allowlist_type("rte_eth_txconf")
        .allowlist_type("rte_eth_rx_mq_mode")
        .allowlist_type("rte_eth_tx_mq_mode")
        .allowlist_type("rte_ether_addr")
        .allowlist_type("rte_proc_type_t")
        // Constants: the plain-literal macros bindgen evaluates, plus the typed
        // re-statements in wrapper.h of those built from function-like macros.
        .allowlist_var("RTE_ETH_.*")
        .allowlist_var("RTE_MBUF_F_.*")
        .allowlist_var("RTE_MAX_.*")
        .allowlist_var("RTE_PKTMBUF_HEADROOM")
        .allowlist_var("RTE_MEMPOOL_CACHE_MAX_SIZE")
        .allowlist_var("RTE_ETHER_ADDR_LEN")
        .allowlist_var("RTE_ETHER_MTU")
        .allowlist_var("RTE_ETHER_MAX_LEN")
        .allowlist_var("RTE_ETHER_HDR_LEN")
        .allowlist_var("RTE_ETHER_CRC_LEN")
        .allowlist_var("SLUICE_.*")
        .allowlist_var("E_RTE_.*")
        .allowlist_var("RTE_MIN_ERRNO")
        .generate()
        .expect("bindgen failed on wrapper.h");

    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("cannot write bindings.rs");
}

/// `pkg-config --cflags libdpdk`, split into arguments.
///
/// The pkg-config crate only hands back include paths and defines; DPDK's
/// headers also need the forced `-include rte_config.h` (a two-token flag) and
/// the `-march` they were built with, so read the raw flags.
fn dpdk_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out = std::process::Command::new(pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("cannot run pkg-config");
    assert!(
        out.status.success(),
        "pkg-config --cflags libdpdk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("pkg-config output is not UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
