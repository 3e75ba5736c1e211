//! The sign-ins already completed (or attempted) through a configuration's authorization
//! code flows, so that a copy of a pending authorization never sends its code twice. On the
//! ground floor: `config` holds one, shared by every flow built from it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// The sign-ins completed or attempted through every flow of one configuration: a second
/// completion of the same one is refused without a request, even from a copy of the
/// [`PendingAuthorization`](crate::PendingAuthorization) (a session store read twice) and through another flow.
///
/// Bounded by time, not count: a sign-in is remembered until its pending authorization
/// expires, after which a copy is refused as expired anyway. Keyed by the SHA-256 of `state`,
/// so neither the states nor the time a lookup takes say anything about them.
#[derive(Default)]
pub(crate) struct SpentSignIns(Mutex<Spent>);

#[derive(Default)]
struct Spent {
    /// SHA-256 of `state` → when its pending authorization expires.
    until: HashMap<[u8; 32], SystemTime>,
    /// How many entries were left by the last sweep of expired ones.
    after_sweep: usize,
}

impl SpentSignIns {
    /// Marks the sign-in of `state` spent until `expires_at`; `false` when it already was.
    /// Expired entries are swept whenever the memory has doubled since the last sweep, so it
    /// holds at most twice the sign-ins still within their lifetime, at amortized O(1).
    pub(crate) fn spend(&self, state: &str, expires_at: SystemTime, now: SystemTime) -> bool {
        let key = crate::jose::sha256(state.as_bytes());
        let mut spent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if spent.until.len() >= 2 * spent.after_sweep.max(64) {
            spent.until.retain(|_, until| *until >= now);
            spent.after_sweep = spent.until.len();
        }
        match spent.until.get(&key) {
            Some(until) if *until >= now => false,
            _ => {
                spent.until.insert(key, expires_at);
                true
            }
        }
    }
}

impl std::fmt::Debug for SpentSignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpentSignIns")
    }
}
