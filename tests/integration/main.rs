//! One integration-test binary. Every test runs graphs through the real cdylibs, built once per
//! test run by `support::build()`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abi;
mod errors;
mod faults;
mod graphs;
mod machines;
mod operate;
mod processes;
mod qos;
mod robot;
mod ros;
mod stepped;
mod support;
