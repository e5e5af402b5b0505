//! sluice control: configuration, the daemon that runs the dataplane, stats output and
//! the tools around it (pcap generator, embedded demo). The `sluice` binary is a thin
//! clap front end over this library.
#![forbid(unsafe_code)]

pub mod api;
pub mod capture;
pub mod cli;
pub mod config;
pub mod demo;
pub mod metrics;
pub mod pcapgen;
pub mod plan;
pub mod ports;
pub mod run;
pub mod show;
pub mod state;
pub mod stats;
pub mod trace;
