//! Real OS processes sharing one store: points 3, 4 and 5.

use std::time::Duration;

use crate::processes::Answer;
use crate::proxy::Fault;
use crate::redis_server::RedisServer;

use crate::harness::*;

/// Point 3: once one process learns that the refresh token is dead, no other presents it:
/// a login revoked at the server costs one `invalid_grant` across the fleet, and every
/// process gets the typed re-authorize error.
async fn dead_login_costs_one_invalid_grant(store: &str) {
    let h = Harness::start(0).await;
    let dir = TempDir::new("dead");
    let redis;
    let spec = if store == "redis" {
        redis = RedisServer::start();
        redis_spec(&h, &redis, Duration::from_secs(5), Duration::from_secs(2))
    } else {
        h.spec(
            format!("file:{}", dir.file().display()),
            "",
            Duration::from_secs(5),
            Duration::from_secs(2),
        )
    };
    seed(&h, &spec).await;
    let mut fleet = spawn(&spec, &["a", "b", "c", "d"]).await;
    h.server.revoke(&h.login.grant_id).await;
    let mut answers = Vec::new();
    for p in &mut fleet {
        answers.push(p.token().await);
    }
    // And each once more: nothing new is presented.
    for p in &mut fleet {
        answers.push(p.token().await);
    }
    let counts = h.counts().await;
    report(
        &format!("dead login ({store})"),
        &counts,
        &format!(
            "; answers {:?}",
            answers.iter().map(Answer::kind).collect::<Vec<_>>()
        ),
    );
    for p in fleet {
        p.quit().await;
    }
    assert_eq!(
        counts.invalid_grant, 1,
        "one invalid_grant for the whole fleet"
    );
    assert!(
        answers.iter().all(|a| matches!(
            a,
            Answer::Err {
                reauthorize: true,
                ..
            }
        )),
        "every process gets a re-authorize error: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_a_dead_login_costs_one_invalid_grant_fleet_wide_on_redis() {
    dead_login_costs_one_invalid_grant("redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_a_dead_login_costs_one_invalid_grant_fleet_wide_on_a_file() {
    dead_login_costs_one_invalid_grant("file").await;
}

/// Point 4: a lock holder stopped between its re-read and its token request, past its lease,
/// never sends once resumed: another process refreshed meanwhile, and the resumed holder
/// adopts that newer login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_a_holder_that_lost_its_lease_never_sends_and_adopts_the_newer_login() {
    let h = Harness::start(0).await;
    let redis = RedisServer::start();
    let spec = redis_spec(
        &h,
        &redis,
        Duration::from_secs(10),
        Duration::from_millis(500),
    );
    seed(&h, &spec).await;
    let mut fleet = spawn(&spec, &["a", "b"]).await;
    let [a, b] = &mut fleet[..] else {
        unreachable!()
    };

    a.send("stop-after-locked-load").await;
    let asked = a.ask().await;
    a.expect("a to stop itself", |l| l == "STOPPING").await;
    a.stopped().await;
    // a is stopped holding the lock; b gets it when the 500 ms lease runs out.
    let from_b = b.token().await;
    a.signal("-CONT").await;
    let from_a = a.answer(asked).await;
    let counts = h.counts().await;
    report(
        "lease lost",
        &counts,
        &format!(
            "; b {}, a after resuming {}; proxy {:?}",
            from_b.kind(),
            from_a.kind(),
            h.proxy.seen()
        ),
    );
    for p in fleet {
        p.quit().await;
    }
    assert!(matches!(from_b, Answer::Ok(_)));
    assert_eq!(
        counts.invalid_grant, 0,
        "the resumed holder presented a spent refresh token"
    );
    assert_eq!(counts.presented, 1);
    assert_eq!(counts.grant_alive, Some(true));
    assert_eq!(from_a, from_b, "the resumed holder adopts the newer login");
}

/// Point 4: a holder stopped after sending (its answer waiting in its socket), past its lease,
/// is given the in-flight bound: the next holder does not present the refresh token while
/// the stopped one may still read the answer; resumed, it saves the rotated login and both
/// use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_a_holder_stopped_after_sending_is_given_the_bound_and_its_answer_is_kept() {
    let h = Harness::start(0).await;
    let redis = RedisServer::start();
    // Timeout 10 s: the in-flight bound (twice that) is far longer than this test needs.
    let spec = redis_spec(
        &h,
        &redis,
        Duration::from_secs(10),
        Duration::from_millis(500),
    );
    seed(&h, &spec).await;
    let mut fleet = spawn(&spec, &["a", "b"]).await;
    let [a, b] = &mut fleet[..] else {
        unreachable!()
    };

    h.proxy.script([Fault::Hold]);
    let asked_a = a.ask().await;
    h.proxy
        .wait("a's refresh to be answered", |s| s.held == 1)
        .await;
    a.signal("-STOP").await;
    h.proxy.release();
    h.proxy
        .wait("the answer to be written to a's socket", |s| s.held == 0)
        .await;
    // b finds the lock free once a's lease ran out. Either b presents the same refresh
    // token (a second refresh request) or it sees the refresh in flight and lets go.
    let asked_b = b.ask().await;
    b.expect("b to take the lock", |l| l == "LOCKED").await;
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if h.proxy.seen().refresh_requests >= 2 {
                return "b presented the refresh token";
            }
            if b.log.iter().any(|l| l == "UNLOCKED") {
                return "b let go";
            }
            tokio::select! {
                line = b.expect("b's next line", |_| true) => { let _ = line; }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await
    .expect("b neither presented nor let go");
    a.signal("-CONT").await;
    let from_a = a.answer(asked_a).await;
    let from_b = b.answer(asked_b).await;
    let counts = h.counts().await;
    report(
        "stopped after sending",
        &counts,
        &format!("; b: {waited}; a {}, b {}", from_a.kind(), from_b.kind()),
    );
    for p in fleet {
        p.quit().await;
    }
    assert_eq!(counts.invalid_grant, 0);
    assert_eq!(counts.presented, 1);
    assert_eq!(counts.grant_alive, Some(true));
    assert!(matches!(from_a, Answer::Ok(_)), "{from_a:?}");
    assert_eq!(from_a, from_b);
}

/// Point 4, the one window no client can close: the holder is killed after the server rotated
/// and before it saved, on a server without a grace period. The new refresh token is gone
/// with the process. The fleet waits the in-flight bound, presents the old refresh token once
/// (one `invalid_grant` in all), and each process ends with the typed re-authorize error that
/// says the outcome was unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_the_unclosable_window_a_holder_killed_after_rotation_costs_at_most_one_invalid_grant() {
    let h = Harness::start(0).await;
    let redis = RedisServer::start();
    let spec = redis_spec(
        &h,
        &redis,
        Duration::from_secs(1),
        Duration::from_millis(500),
    );
    seed(&h, &spec).await;
    let mut fleet = spawn(&spec, &["a", "b", "c", "d"]).await;

    h.proxy.script([Fault::Hold]);
    fleet[0].ask().await;
    h.proxy
        .wait("a's refresh to be answered", |s| s.held == 1)
        .await;
    let a = fleet.remove(0);
    a.kill().await;
    h.proxy.release();
    let started = std::time::Instant::now();
    let mut asked = Vec::new();
    for p in &mut fleet {
        asked.push(p.ask().await);
    }
    let mut answers = Vec::new();
    for (p, seq) in fleet.iter_mut().zip(asked) {
        let mut answer = p.answer(seq).await;
        // A call that ran out of time while the bound was not over yet asks again.
        while answer.kind() == "timeout" || answer.kind() == "lock_timeout" {
            answer = p.token().await;
        }
        answers.push(answer);
    }
    let recovered_in = started.elapsed();
    // Asked again: the same typed error, nothing presented.
    for p in &mut fleet {
        answers.push(p.token().await);
    }
    let counts = h.counts().await;
    report(
        "killed after rotation",
        &counts,
        &format!(
            "; answers {:?}; settled {:.1} s after the kill",
            answers.iter().map(Answer::kind).collect::<Vec<_>>(),
            recovered_in.as_secs_f64()
        ),
    );
    for p in fleet {
        p.quit().await;
    }
    assert!(
        counts.invalid_grant <= 1,
        "at most one invalid_grant fleet-wide"
    );
    assert!(
        answers.iter().all(|a| matches!(
            a,
            Answer::Err { kind, reauthorize: true } if kind == "refresh_outcome_unknown"
        )),
        "{answers:?}"
    );
}

/// Point 5: Redis restarts empty while the holder's answer is on its way. The holder cannot
/// save (its lock is gone with the data); the other processes find the store empty, re-save
/// the login they hold under the lock without presenting its refresh token, the holder's
/// newer login replaces it, and every process adopts that one. Nothing is presented twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p5_redis_restarted_empty_at_a_refresh_answer_loses_nothing() {
    store_lost_at_an_answer("restart").await;
}

/// Point 5: Redis paused (`SIGSTOP`) while the holder's answer is on its way, past the lock's
/// lease and the command timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p5_redis_paused_at_a_refresh_answer_loses_nothing() {
    store_lost_at_an_answer("pause").await;
}

async fn store_lost_at_an_answer(how: &str) {
    let h = Harness::start(0).await;
    let mut redis = RedisServer::start();
    let spec = redis_spec(
        &h,
        &redis,
        Duration::from_secs(5),
        Duration::from_millis(500),
    );
    seed(&h, &spec).await;
    let mut fleet = spawn(&spec, &["a", "b", "c"]).await;

    h.proxy.script([Fault::Hold]);
    let asked_a = fleet[0].ask().await;
    h.proxy
        .wait("a's refresh to be answered", |s| s.held == 1)
        .await;
    match how {
        "restart" => redis.restart(),
        _ => redis.pause(),
    }
    h.proxy.release();
    let first_a = fleet[0].answer(asked_a).await;
    if how == "pause" {
        // a's save ran past the command timeout (1 s) and the lease (500 ms): resume.
        redis.resume();
    }
    let mut answers = vec![("a".to_owned(), first_a)];
    // The others first: they hold the login as it was before a's refresh.
    fleet.rotate_left(1);
    for round in 0..6 {
        for p in &mut fleet {
            // The first command on a connection Redis dropped fails; the next reconnects.
            let mut answer = p.token().await;
            for _ in 0..3 {
                if answer.kind() != "store" {
                    break;
                }
                answer = p.token().await;
            }
            answers.push((format!("{}{round}", p.name), answer));
        }
        if answers
            .iter()
            .rev()
            .take(3)
            .all(|(_, a)| matches!(a, Answer::Ok(_)))
        {
            break;
        }
    }
    let counts = h.counts().await;
    report(
        &format!("redis {how} at an answer"),
        &counts,
        &format!(
            "; answers {:?}",
            answers
                .iter()
                .map(|(n, a)| format!("{n}:{}", a.kind()))
                .collect::<Vec<_>>()
        ),
    );
    let last: Vec<_> = answers
        .iter()
        .rev()
        .take(3)
        .map(|(_, a)| a.clone())
        .collect();
    for p in fleet {
        p.quit().await;
    }
    assert_eq!(counts.invalid_grant, 0);
    assert_eq!(
        counts.presented_again, 0,
        "a refresh token was presented twice"
    );
    assert_eq!(counts.grant_alive, Some(true));
    assert!(last.iter().all(|a| matches!(a, Answer::Ok(_))), "{last:?}");
    assert!(
        last.windows(2).all(|w| w[0] == w[1]),
        "every process uses the one login"
    );
}

/// Point 5: the token file is deleted while every process holds the login in memory. The
/// first process to need a refresh puts its copy back under the lock and waits the in-flight
/// bound (a refresh may have been in flight; its record went with the file), then refreshes;
/// the others adopt that login. Nothing is presented twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p5_a_deleted_token_file_is_refilled_and_nothing_is_presented_twice() {
    // Four-second access tokens: a refresh is due two seconds after each.
    let h = Harness::start_with_ttl(4, 0).await;
    let dir = TempDir::new("deleted");
    let spec = h.spec(
        format!("file:{}", dir.file().display()),
        "",
        Duration::from_secs(2),
        Duration::from_secs(2),
    );
    seed(&h, &spec).await;
    let mut fleet = spawn(&spec, &["a", "b", "c"]).await;
    let mut held = Vec::new();
    for p in &mut fleet {
        held.push(p.token().await);
    }
    assert!(held.windows(2).all(|w| w[0] == w[1]), "{held:?}");
    std::fs::remove_file(dir.file()).unwrap();
    let mut answers = Vec::new();
    for p in &mut fleet {
        answers.push(until_renewed(p, &held[0]).await);
    }
    let counts = h.counts().await;
    report(
        "token file deleted",
        &counts,
        &format!(
            "; answers {:?}",
            answers.iter().map(Answer::kind).collect::<Vec<_>>()
        ),
    );
    for p in fleet {
        p.quit().await;
    }
    assert_eq!(counts.invalid_grant, 0);
    assert_eq!(counts.presented_again, 0);
    assert_eq!(counts.grant_alive, Some(true));
    assert!(
        answers.iter().all(|a| matches!(a, Answer::Ok(_))),
        "{answers:?}"
    );
    assert!(dir.file().exists(), "the login is back in the file");
}

/// Point 5: a logout by one process still wins: the others, which hold the login in memory,
/// find the key empty with a record that it was signed out, and end with a re-authorize
/// error instead of putting the login back. Nothing is presented after the logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p5_a_logout_by_another_process_still_wins() {
    let h = Harness::start_with_ttl(4, 0).await;
    let redis = RedisServer::start();
    let spec = redis_spec(&h, &redis, Duration::from_secs(2), Duration::from_secs(2));
    seed(&h, &spec).await;
    let mut fleet = spawn(&spec, &["a", "b", "c"]).await;
    let mut held = Vec::new();
    for p in &mut fleet {
        held.push(p.token().await);
    }
    fleet[0].send("logout").await;
    let out = fleet[0]
        .expect("the logout", |l| l.starts_with("LOGGED_OUT"))
        .await;
    let presented_at_logout = h.counts().await.presented;
    let mut answers = Vec::new();
    for (p, old) in fleet.iter_mut().zip(&held).skip(1) {
        answers.push(until_renewed(p, old).await);
    }
    let counts = h.counts().await;
    report(
        "logout wins",
        &counts,
        &format!(
            "; {out}; others {:?}",
            answers.iter().map(Answer::kind).collect::<Vec<_>>()
        ),
    );
    for p in fleet {
        p.quit().await;
    }
    assert_eq!(out, "LOGGED_OUT ok");
    assert!(
        answers.iter().all(|a| matches!(
            a,
            Answer::Err {
                reauthorize: true,
                ..
            }
        )),
        "{answers:?}"
    );
    assert_eq!(
        counts.presented, presented_at_logout,
        "a signed-out login was refreshed"
    );
    assert_eq!(counts.invalid_grant, 0);
}
