//! One integration-test binary. Every test runs graphs through the real cdylibs, built once per
//! test run by `support::build()`.

mod abi;
mod errors;
mod graphs;
mod qos;
mod robot;
mod stepped;
mod support;
