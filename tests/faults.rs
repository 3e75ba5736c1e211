//! The fault harness of issue 17: refresh-token rotation under partial failure, against a real
//! authorization server that rotates refresh tokens and revokes the whole login when a spent
//! one comes again (npm oidc-provider, interop/server.mjs, counting from the server's side),
//! a loopback proxy in front of it that breaks answers *after* the server processed them
//! (tests/support/proxy.rs), a real `redis-server` that the tests kill, restart empty and
//! pause, and real OS processes that the tests stop (`SIGSTOP`) and kill (`SIGKILL`).
//!
//! Run it with `scripts/faults` (installs redis-server and the server's npm packages, prints
//! `N passed, M failed`); built only with the `faults` feature. Every wait is for an event
//! (a line from a child, a counter of the proxy or the server); the bounds are only failure
//! timeouts.
#![cfg(unix)]

#[path = "support/oidc.rs"]
mod oidc;
#[path = "support/processes.rs"]
mod processes;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/redis_server.rs"]
mod redis_server;

/// Real processes sharing a store (points 3, 4 and 5).
#[path = "faults/fleet.rs"]
mod fleet;
/// The server, the proxy, the login, and what the tests share.
#[path = "faults/harness.rs"]
mod harness;
/// One process against the server (points 1 and 2, the window measured).
#[path = "faults/one_process.rs"]
mod one_process;

/// The child side of the multi-process tests. Does nothing unless started by one of them.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn fault_child() {
    processes::child_main();
}
