//! A refresh that spends a refresh token, with the login's records in its store (the store
//! the user configured, or one in the cache's memory): what makes a rotated refresh token
//! presented once, fleet-wide, and a login never lost or mixed.
//!
//! Under the store's lock, each refresh:
//! 1. saves first a token it got earlier but could not save, unless the store holds a newer
//!    copy of the login;
//! 2. re-reads the login. Absent: a tombstone says it ended (a logout wins), else the store
//!    lost its data and the copy this process holds is put back, marked like a refresh in
//!    flight (one may have been, its record lost with the data), so that a process holding a
//!    newer copy replaces it first;
//! 3. refuses another login under its key (`LoginReplaced`), adopts a newer copy of its own,
//!    replaces an older one;
//! 4. finds out whether a refresh with this refresh token is in flight (the in-flight record):
//!    it waits for the holder's answer (the holder's bound), then follows [`LostRefresh`];
//! 5. writes its own in-flight record (a fenced write: a holder whose lease ran out fails
//!    here), asks the store whether its lock is still held, and sends, not later than half
//!    its bound after the record;
//! 6. saves the answer, or records that it was lost, or ends the login with a tombstone.
//!
//! [`LostRefresh`]: crate::LostRefresh

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::SystemTime;

use super::grant::{Grant, Persist, Settings};
use crate::clock::Clock;
use crate::error::Error;
use crate::login::{
    Ended, InFlight, Lineage, Next, Presentation, fingerprint, in_flight_bound, next_step,
    random_id, tombstone_key,
};
use crate::oauth_error::OAuthError;
use crate::retry::{Flight, may_have_been_processed};
use crate::token::{AccessToken, RefreshToken, Token};

/// A login's records, kept by the cache of a grant that spends refresh tokens.
#[derive(Debug)]
pub(super) struct Records {
    /// Where: the configured store, or one in the cache's memory.
    pub(super) persist: Persist,
    /// This cache's name in the in-flight records it writes.
    holder: String,
    /// The identity of this cache's login, once known.
    login_id: OnceLock<String>,
    /// A token the grant returned but the store failed to save. Its refresh token may be the
    /// only valid one left, so it is saved before anything else happens, unless the store
    /// meanwhile got a newer copy of the login.
    unsaved: Mutex<Option<Unsaved>>,
    /// An in-flight record this cache wrote and then did not send under: its lease ran out
    /// between the write and the lock check. Found again in the store, it is this cache's to
    /// take back, not a presentation whose answer others must wait for.
    unsent: Mutex<Option<InFlight>>,
}

/// A token the store failed to save.
#[derive(Debug, Clone)]
struct Unsaved {
    token: Token,
    /// The fingerprint of the refresh token spent to get it.
    spent: String,
}

/// What a refresh needs from its cache.
pub(super) struct Ask<'a> {
    pub(super) grant: &'a dyn Grant,
    pub(super) settings: Settings,
    pub(super) clock: &'a dyn Clock,
    /// The token the cache holds, if any.
    pub(super) current: Option<Arc<Token>>,
    pub(super) flight: &'a Flight,
    /// `true` when `grant` asks for a token other than the login's own (another resource or
    /// scope set, RFC 8707 §2.2): it spends the login's refresh token, and a rotated one in
    /// its answer becomes the login's; the token itself is not the login's.
    pub(super) other: bool,
}

/// What a refresh gives: the login as it now is in the store, and for a request for another
/// resource or scope set, that token (without a refresh token).
#[derive(Debug)]
pub(super) struct Served {
    pub(super) login: Arc<Token>,
    pub(super) other: Option<Token>,
}

/// The error a login ends with after `e`, if `e` ends it: a re-authorize error; or
/// `invalid_target` (RFC 8707) to a refresh, since some providers (oidc-provider 9) spend the
/// refresh token before they check the resource and never send the new one: presenting it
/// again would look like theft and revoke the whole grant (RFC 9700 §4.14.2).
pub(super) fn ends_login(e: &Error) -> Option<Error> {
    if e.requires_reauthorization() {
        return Some(e.clone());
    }
    e.oauth_error()
        .filter(|o| o.error == "invalid_target")
        .map(|_| ended(Some(Ended::Revoked)))
}

/// The error a login that ended with a sign-out gives.
pub(crate) fn signed_out() -> Error {
    Error::TokenRevoked(
        OAuthError::new("invalid_grant")
            .with_description(Some("the login was signed out; sign in again")),
    )
}

/// Rounds of one refresh: each ends in a token, an error, or one more look after waiting for
/// another holder's answer (or after a lock lost before sending).
const MAX_ROUNDS: usize = 8;

enum Round {
    Done(Box<Served>),
    /// Another holder may still read an answer: look again when the store changes, or at
    /// this time.
    WaitUntil(SystemTime, Box<Token>),
    Again,
}

/// Gives a token from a sign-in its login identity (a new one, unless it carries one) and
/// drops any records it carries.
fn new_login(token: &mut Token) {
    let lineage = token.lineage_mut();
    match lineage {
        Some(l) => {
            l.refreshing = None;
            l.ended = None;
        }
        None => *lineage = Some(Lineage::new()),
    }
}

/// Removes the tombstone of the login under `p.key`, after a new sign-in saved a login there.
async fn remove_tombstone(p: &Persist) {
    if let Err(e) = p.store.delete(&tombstone_key(&p.key)).await {
        tracing::warn!(error = %e, "could not remove the ended login's record from the store");
    }
}

/// `token` with this in-flight record (or none), and a lineage made with `id` when it had
/// none (a login stored by an older version).
fn with_record(token: &Token, id: Option<&str>, record: Option<InFlight>) -> Token {
    let mut token = token.clone();
    let lineage = token.lineage_mut().get_or_insert_with(|| {
        let mut l = Lineage::new();
        if let Some(id) = id {
            id.clone_into(&mut l.id);
        }
        l
    });
    lineage.refreshing = record.map(Box::new);
    token
}

fn generation(token: &Token) -> u64 {
    token.lineage().map_or(0, |l| l.generation)
}

fn record_of(token: &Token) -> Option<&InFlight> {
    token
        .lineage()
        .and_then(|l| l.refreshing.as_deref())
        .filter(|r| r.is_for(token.refresh_token().map(RefreshToken::secret)))
}

/// The error of a login that ended for `reason`.
fn ended(reason: Option<Ended>) -> Error {
    match reason {
        Some(Ended::OutcomeUnknown) => Error::RefreshOutcomeUnknown {
            presented_again: true,
        },
        Some(Ended::Revoked) => {
            Error::TokenRevoked(OAuthError::new("invalid_grant").with_description(Some(
                "the provider revoked this login (another process sharing the store learned it)",
            )))
        }
        Some(Ended::SignedOut) | None => signed_out(),
    }
}

fn no_refresh_token() -> Error {
    // Nothing left to renew the login with: the same outcome as a revoked grant, so callers
    // handle one case (sign in again).
    Error::TokenRevoked(OAuthError::new("invalid_grant").with_description(Some(
        "the login has no valid token and no refresh token; sign in again",
    )))
}

impl Records {
    pub(super) fn new(persist: Persist) -> Self {
        Records {
            persist,
            holder: random_id(),
            login_id: OnceLock::new(),
            unsaved: Mutex::new(None),
            unsent: Mutex::new(None),
        }
    }

    fn unsent(&self) -> MutexGuard<'_, Option<InFlight>> {
        self.unsent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unsaved(&self) -> MutexGuard<'_, Option<Unsaved>> {
        self.unsaved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a token waits to be saved.
    pub(super) fn has_unsaved(&self) -> bool {
        self.unsaved().is_some()
    }

    /// Forgets a token waiting to be saved (the login ended).
    pub(super) fn drop_unsaved(&self) {
        *self.unsaved() = None;
    }

    /// Notes the identity of a token the cache installs.
    pub(super) fn note(&self, token: &Token) {
        if let Some(id) = token.login_id() {
            let _ = self.login_id.set(id.to_owned());
        }
    }

    /// Whether `token` belongs to this login (or either's identity is unknown).
    pub(super) fn owns(&self, token: &Token) -> bool {
        match (self.login_id.get(), token.login_id()) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => true,
        }
    }

    /// Saves a token a sign-in returned as a new login under the key: it gets an identity
    /// (unless it carries one), replaces whatever login was stored there, and removes the
    /// key's tombstone. With the store's lock held, like a refresh: a refresh in another
    /// process about to delete a revoked login then sees this new one, and keeps it.
    pub(super) async fn seed(&self, mut token: Token) -> Result<Token, Error> {
        new_login(&mut token);
        let p = &self.persist;
        let _lock = p.store.lock(&p.key).await?;
        p.store.save(&p.key, &token).await?;
        remove_tombstone(p).await;
        self.drop_unsaved();
        Ok(token)
    }

    /// One refresh of a login (see the module documentation): the token to install, already
    /// saved. A re-authorize error means the login ended.
    pub(super) async fn refresh(&self, ask: &Ask<'_>) -> Result<Served, Error> {
        let p = &self.persist;
        let mut waited = false;
        for _ in 0..MAX_ROUNDS {
            match self.round(p, ask, waited).await? {
                Round::Done(served) => return Ok(*served),
                Round::WaitUntil(at, seen) => {
                    self.wait_for_change(p, ask, at, &seen).await;
                    waited = true;
                }
                Round::Again => {}
            }
        }
        Err(Error::store(std::io::Error::other(
            "the login in the token store kept changing during a refresh",
        )))
    }

    async fn round(&self, p: &Persist, ask: &Ask<'_>, waited: bool) -> Result<Round, Error> {
        let lock = p.store.lock(&p.key).await?;
        if let Some(token) = self.save_unsaved(p).await?
            && !ask.other
        {
            return Ok(Round::Done(Box::new(Served {
                login: token,
                other: None,
            })));
        }
        let mine = ask.current.clone();
        let mut stored = match p.store.load(&p.key).await? {
            Some(stored) => stored,
            None => self.put_back(p, ask, mine.as_deref()).await?,
        };
        if let (Some(ours), Some(theirs)) = (self.login_id.get(), stored.login_id())
            && ours != theirs
        {
            tracing::warn!("another login was saved under this login's key; this source ends");
            return Err(Error::LoginReplaced);
        }
        if let Some(mine) = &mine
            && let Some(my_refresh_token) = mine.refresh_token()
            && generation(mine) > generation(&stored)
        {
            // The store holds an older copy of this login (put back by a process after the
            // store lost its data): this newer one replaces it, keeping the wait of the
            // put-back record.
            tracing::warn!(
                "the token store holds an older copy of this login; saving the newer one"
            );
            let kept = record_of(&stored)
                .filter(|r| r.presentation == Presentation::Restored)
                .map(|r| InFlight {
                    spent: fingerprint(my_refresh_token.secret()),
                    ..r.clone()
                });
            let newer = with_record(mine, self.login_id.get().map(String::as_str), kept);
            p.store.save(&p.key, &newer).await?;
            stored = newer;
        }
        let now = ask.clock.now();
        let changed = mine
            .as_ref()
            .is_none_or(|m| m.access_token() != stored.access_token());
        if changed && !ask.other && stored.is_valid_at(now, &ask.settings.policy) {
            // Another process (or an earlier run) saved a newer token of this login.
            tracing::debug!("using the token another process saved");
            return Ok(Round::Done(Box::new(Served {
                login: Arc::new(with_record(&stored, None, None)),
                other: None,
            })));
        }
        let Some(refresh_token) = stored.refresh_token().cloned() else {
            return Err(no_refresh_token());
        };
        let unsent = self.unsent().take();
        let presentation = match record_of(&stored) {
            None => Presentation::First,
            // This cache's own record of a refresh it never sent: nothing is in flight.
            Some(record) if unsent.as_ref() == Some(record) => {
                tracing::debug!("the store holds this cache's unsent record; sending now");
                record.presentation
            }
            Some(record) => match next_step(record, now, ask.settings.lost_refresh) {
                Next::Wait(at) => {
                    drop(lock);
                    return Ok(Round::WaitUntil(at, Box::new(stored)));
                }
                Next::Present => Presentation::Again,
                Next::End => {
                    let presented_again = record.presentation == Presentation::Again;
                    self.bury(p, &stored, Ended::OutcomeUnknown).await;
                    return Err(Error::RefreshOutcomeUnknown { presented_again });
                }
            },
        };
        if presentation == Presentation::Again && waited && !ask.flight.wanted() {
            // Presenting once more is the next demand's to do, and nobody is waiting now.
            return Err(Error::Timeout {
                waited: ask.settings.timeout,
            });
        }

        // Record the presentation (a fenced write: a holder whose lease ran out fails here),
        // and check the lock once more right before sending.
        let bound = in_flight_bound(ask.settings.timeout);
        let record = InFlight::new(
            refresh_token.secret(),
            now,
            bound,
            &self.holder,
            presentation,
        );
        let id = self.login_id.get().map(String::as_str);
        let marked = with_record(&stored, id, Some(record.clone()));
        // A lease that ran out (a process stopped past it) fails the write or the check:
        // another holder may have refreshed meanwhile. Nothing is sent; look again under a
        // new lock.
        let lost_lock = match p.store.save(&p.key, &marked).await {
            Ok(()) => !p.store.lock_is_held(&p.key).await?,
            Err(e) if p.store.lock_is_held(&p.key).await.unwrap_or(true) => return Err(e),
            Err(_) => true,
        };
        if lost_lock {
            tracing::warn!(
                "the token store's lock ran out before the refresh was sent; not sending"
            );
            *self.unsent() = Some(record);
            return Ok(Round::Again);
        }
        let sending = ask
            .flight
            .refresh(bound, tokio::time::Instant::now() + bound / 2);
        // Sent with this process's copy when it holds the same refresh token: its DPoP key
        // remembers the servers' nonces, which a copy read back from the store does not.
        let base = mine
            .as_deref()
            .filter(|m| m.refresh_token() == stored.refresh_token())
            .unwrap_or(&stored);
        let result = ask.grant.fetch(Some(base), now, &sending).await;
        match self.answered(p, &marked, record, result, ask.other).await {
            Ok(served) => Ok(Round::Done(Box::new(served))),
            // The answer came, and the save failed because the lease ran out meanwhile: save
            // it under a new lock (the next round saves the unsaved token first).
            Err(e @ Error::Store(_)) if self.has_unsaved() => {
                if p.store.lock_is_held(&p.key).await.unwrap_or(true) {
                    return Err(e);
                }
                drop(lock);
                Ok(Round::Again)
            }
            Err(e) => Err(e),
        }
    }

    /// What the answer to a presentation means for the login.
    async fn answered(
        &self,
        p: &Persist,
        marked: &Token,
        mut record: InFlight,
        result: Result<Token, Error>,
        other: bool,
    ) -> Result<Served, Error> {
        match result {
            Ok(mut token) if other => {
                // A token for another resource: a rotated refresh token in it is the login's.
                let rotated = token.take_refresh_token();
                let mut login = with_record(marked, None, None);
                if let Some(rotated) = rotated {
                    login = login.with_refresh_token(Some(rotated));
                    if let Some(l) = login.lineage_mut() {
                        l.generation += 1;
                    }
                    if let Err(e) = p.store.save(&p.key, &login).await {
                        tracing::warn!(error = %e, "could not save the rotated refresh token; it is kept in memory and saved before anything else");
                        let spent = record.spent.clone();
                        *self.unsaved() = Some(Unsaved {
                            token: login,
                            spent,
                        });
                        return Err(e);
                    }
                } else if let Err(e) = p.store.save(&p.key, &login).await {
                    tracing::debug!(error = %e, "could not clear the in-flight record");
                }
                Ok(Served {
                    login: Arc::new(login),
                    other: Some(token),
                })
            }
            Ok(mut token) => {
                token.keep_refresh_token_from(marked);
                let mut lineage = marked.lineage().cloned().unwrap_or_else(Lineage::new);
                lineage.generation += 1;
                lineage.refreshing = None;
                *token.lineage_mut() = Some(lineage);
                if let Err(e) = p.store.save(&p.key, &token).await {
                    tracing::warn!(error = %e, "could not save the new token; it is kept in memory and saved before anything else");
                    let spent = record.spent.clone();
                    *self.unsaved() = Some(Unsaved { token, spent });
                    return Err(e);
                }
                tracing::debug!(token_type = token.token_type(), "new token");
                Ok(Served {
                    login: Arc::new(token),
                    other: None,
                })
            }
            Err(e) if e.is_revoked() => {
                // Revoked means stop: no process presents this refresh token again.
                if record.presentation == Presentation::First {
                    self.bury(p, marked, Ended::Revoked).await;
                    Err(e)
                } else {
                    self.bury(p, marked, Ended::OutcomeUnknown).await;
                    Err(Error::RefreshOutcomeUnknown {
                        presented_again: true,
                    })
                }
            }
            Err(e) if ends_login(&e).is_some() => {
                // invalid_target to a refresh: the refresh token may be spent, with its
                // successor never sent. Not presented again, by any process.
                self.bury(p, marked, Ended::Revoked).await;
                Err(e)
            }
            Err(e) if may_have_been_processed(&e) => {
                if record.presentation == Presentation::Again {
                    // Presented once more, and that answer is lost too.
                    self.bury(p, marked, Ended::OutcomeUnknown).await;
                    return Err(Error::RefreshOutcomeUnknown {
                        presented_again: true,
                    });
                }
                // Nobody is reading the answer any more: the next demand need not wait for
                // it. (If this write fails, the others wait the bound instead.)
                tracing::warn!(error = %e, "the answer to a refresh was lost; its refresh token is not presented again before the next demand");
                record.lost = true;
                let lost = with_record(marked, None, Some(record));
                if let Err(save) = p.store.save(&p.key, &lost).await {
                    tracing::debug!(error = %save, "could not record that the answer was lost");
                }
                Err(e)
            }
            Err(e) => {
                // The provider did not act on it: the refresh token is as it was.
                let unchanged = with_record(marked, None, None);
                if let Err(save) = p.store.save(&p.key, &unchanged).await {
                    tracing::debug!(error = %save, "could not clear the in-flight record");
                }
                Err(e)
            }
        }
    }

    /// Saves first a token this cache got but could not save, unless the store holds the
    /// same or a newer copy of the login (then that one is used), or a recovery by another
    /// process is deciding, or the login ended.
    async fn save_unsaved(&self, p: &Persist) -> Result<Option<Arc<Token>>, Error> {
        let Some(Unsaved {
            token: unsaved,
            spent,
        }) = self.unsaved().clone()
        else {
            return Ok(None);
        };
        let keep = match p.store.load(&p.key).await? {
            None => {
                if let Some(tomb) = p.store.load(&tombstone_key(&p.key)).await? {
                    self.drop_unsaved();
                    return Err(ended(tomb.lineage().and_then(|l| l.ended)));
                }
                true
            }
            Some(stored) => {
                if let (Some(ours), Some(theirs)) = (unsaved.login_id(), stored.login_id())
                    && ours != theirs
                {
                    self.drop_unsaved();
                    return Err(Error::LoginReplaced);
                }
                let recovering = record_of(&stored).is_some_and(|r| {
                    r.presentation == Presentation::Again && r.holder != self.holder
                });
                if stored.lineage().is_some() {
                    generation(&stored) < generation(&unsaved) && !recovering
                } else {
                    // Saved by a writer that keeps no records (an older version of this
                    // crate): ours is newer only if it still holds the refresh token we spent.
                    stored
                        .refresh_token()
                        .is_some_and(|r| fingerprint(r.secret()) == spent)
                }
            }
        };
        if !keep {
            tracing::warn!(
                "another process saved a newer login; dropping the token this one could not save"
            );
            self.drop_unsaved();
            return Ok(None);
        }
        p.store.save(&p.key, &unsaved).await?;
        self.drop_unsaved();
        tracing::debug!("saved the token an earlier refresh could not save");
        Ok(Some(Arc::new(unsaved)))
    }

    /// The login is not in the store. A tombstone says it ended (a logout, a revoked grant,
    /// a lost one): that wins. Otherwise the store lost its data: the copy this process
    /// holds goes back, marked as if a refresh were in flight, since one may have been.
    async fn put_back(
        &self,
        p: &Persist,
        ask: &Ask<'_>,
        mine: Option<&Token>,
    ) -> Result<Token, Error> {
        if let Some(tomb) = p.store.load(&tombstone_key(&p.key)).await? {
            let ours = match (self.login_id.get(), tomb.login_id()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            return Err(if ours {
                ended(tomb.lineage().and_then(|l| l.ended))
            } else {
                Error::LoginReplaced
            });
        }
        let Some((mine, refresh_token)) = mine.and_then(|m| Some((m, m.refresh_token()?))) else {
            return Err(signed_out());
        };
        tracing::warn!(
            "the token store lost this login (a restart without persistence, a deleted file); putting back the copy this process holds"
        );
        let bound = in_flight_bound(ask.settings.timeout);
        let record = InFlight::new(
            refresh_token.secret(),
            ask.clock.now(),
            bound,
            &self.holder,
            Presentation::Restored,
        );
        let copy = with_record(mine, self.login_id.get().map(String::as_str), Some(record));
        p.store.save(&p.key, &copy).await?;
        Ok(copy)
    }

    /// Ends the login in the store: a tombstone says how (so that no process that still holds
    /// it presents its refresh token, or takes an empty store for a lost one), and the login
    /// is deleted if it still holds this refresh token (a newer login saved meanwhile, by a
    /// new sign-in or another process, survives).
    async fn bury(&self, p: &Persist, token: &Token, reason: Ended) {
        let tomb = self.tombstone(token, reason);
        if let Err(e) = p.store.save(&tombstone_key(&p.key), &tomb).await {
            tracing::warn!(error = %e, "could not record in the store that the login ended");
        }
        if let Some(rejected) = token.refresh_token() {
            match p.store.delete_if_refresh_token(&p.key, rejected).await {
                Ok(true) => tracing::debug!("removed the ended login from the store"),
                Ok(false) => tracing::debug!("the store holds a newer login; kept it"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not delete the ended login from the store")
                }
            }
        }
    }

    /// A sign-out: the tombstone, then the login's removal.
    pub(super) async fn bury_signed_out(&self, stored: &Token) -> Result<(), Error> {
        let p = &self.persist;
        p.store
            .save(
                &tombstone_key(&p.key),
                &self.tombstone(stored, Ended::SignedOut),
            )
            .await?;
        p.store.delete(&p.key).await
    }

    fn tombstone(&self, token: &Token, reason: Ended) -> Token {
        let mut lineage = token.lineage().cloned().unwrap_or_else(Lineage::new);
        if let Some(id) = self.login_id.get() {
            id.clone_into(&mut lineage.id);
        }
        lineage.refreshing = None;
        lineage.ended = Some(reason);
        Token::new(AccessToken::new("")).with_lineage(Some(lineage))
    }

    /// Waits, without the lock, until the login in the store changes from `seen` or `until`
    /// comes: another holder's answer, a newer copy, the end of its bound.
    async fn wait_for_change(&self, p: &Persist, ask: &Ask<'_>, until: SystemTime, seen: &Token) {
        let poll = std::time::Duration::from_millis(250);
        // Measured on Tokio's clock from here: the configured clock may be one a test sets.
        let left = until.duration_since(ask.clock.now()).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + left;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep((deadline - now).min(poll)).await;
            match p.store.load(&p.key).await {
                Ok(Some(now)) if now == *seen => {}
                _ => return,
            }
        }
    }
}
