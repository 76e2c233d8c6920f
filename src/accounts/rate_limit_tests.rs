use super::*;

fn limiter(points: u32, window_secs: i64) -> RateLimiter {
    RateLimiter::new(
        &[RateLimit {
            points,
            window_secs,
        }],
        1000,
    )
}

fn refused(limiter: &RateLimiter, key: &str, now: i64) -> i64 {
    match limiter.check(key, now) {
        Err(RateLimited { reset }) => reset,
        Ok(()) => panic!("{key} at {now} was allowed"),
    }
}

#[test]
fn sliding_window() {
    let limiter = limiter(3, 10);
    for now in [100, 101, 102] {
        assert_eq!(limiter.check("k", now), Ok(()));
    }
    // Full: a point frees when the request at 100 leaves the window, at 110.
    assert_eq!(refused(&limiter, "k", 103), 110);
    assert_eq!(refused(&limiter, "k", 109), 110);
    assert_eq!(limiter.check("k", 110), Ok(()));
    // Now 101, 102, 110 are in the window: next frees at 111.
    assert_eq!(refused(&limiter, "k", 110), 111);
    assert_eq!(limiter.check("k", 111), Ok(()));
    assert_eq!(refused(&limiter, "k", 111), 112);
}

#[test]
fn refused_requests_are_not_counted() {
    let limiter = limiter(2, 60);
    assert_eq!(limiter.check("k", 0), Ok(()));
    assert_eq!(limiter.check("k", 30), Ok(()));
    for now in 31..60 {
        assert_eq!(refused(&limiter, "k", now), 60);
    }
    assert_eq!(limiter.check("k", 60), Ok(()));
    assert_eq!(refused(&limiter, "k", 61), 90);
}

#[test]
fn same_second_requests() {
    let limiter = limiter(3, 10);
    for _ in 0..3 {
        assert_eq!(limiter.check("k", 5), Ok(()));
    }
    assert_eq!(refused(&limiter, "k", 5), 15);
    // All three leave together.
    for _ in 0..3 {
        assert_eq!(limiter.check("k", 15), Ok(()));
    }
    assert_eq!(refused(&limiter, "k", 15), 25);
}

#[test]
fn keys_are_independent() {
    let limiter = limiter(1, 10);
    assert_eq!(limiter.check("a", 0), Ok(()));
    assert_eq!(limiter.check("b", 0), Ok(()));
    assert_eq!(refused(&limiter, "a", 1), 10);
    assert_eq!(refused(&limiter, "b", 1), 10);
    assert_eq!(limiter.len(), 2);
    assert!(!limiter.is_empty());
}

#[test]
fn create_session_limits() {
    assert_eq!(
        CREATE_SESSION_LIMITS,
        [
            RateLimit {
                points: 30,
                window_secs: 300
            },
            RateLimit {
                points: 300,
                window_secs: 86_400
            }
        ]
    );
    assert_eq!(
        RateLimiter::create_session_key("alice.test", "192.0.2.7"),
        "alice.test-192.0.2.7"
    );
    let limiter = RateLimiter::new(&CREATE_SESSION_LIMITS, 100);
    let key = "alice.test-192.0.2.7";
    // 30 in five minutes, then refused until the first leaves.
    for i in 0..30 {
        assert_eq!(limiter.check(key, i), Ok(()));
    }
    assert_eq!(refused(&limiter, key, 30), 300);
    // 30 more in each later five minutes: 300 in the day, then the daily limit holds.
    for block in 1..10 {
        for i in 0..30 {
            assert_eq!(limiter.check(key, block * 300 + i), Ok(()), "{block} {i}");
        }
    }
    // Both limits exhausted (the five-minute one until 3000): the later reset is reported.
    assert_eq!(refused(&limiter, key, 2710), 86_400);
    assert_eq!(refused(&limiter, key, 3000), 86_400);
    assert_eq!(refused(&limiter, key, 86_399), 86_400);
    assert_eq!(limiter.check(key, 86_400), Ok(()));
}

#[test]
fn no_limits_allow_everything() {
    let limiter = RateLimiter::new(&[], 10);
    for now in 0..100 {
        assert_eq!(limiter.check("k", now), Ok(()));
    }
}

#[test]
fn memory_is_bounded() {
    let limiter = RateLimiter::new(
        &[RateLimit {
            points: 1,
            window_secs: 10,
        }],
        4,
    );
    for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
        assert_eq!(limiter.check(key, i as i64), Ok(()));
    }
    assert_eq!(limiter.len(), 4);
    // Full, nothing expired: the longest-idle key ("a") is forgotten.
    assert_eq!(limiter.check("e", 5), Ok(()));
    assert_eq!(limiter.len(), 4);
    assert_eq!(refused(&limiter, "b", 6), 11);
    // "a" starts afresh, and "b" (now the longest idle) is forgotten in turn.
    assert_eq!(limiter.check("a", 6), Ok(()));
    assert_eq!(limiter.check("b", 7), Ok(()));
    assert_eq!(limiter.len(), 4);
    // Much later everything has expired and is dropped at once.
    assert_eq!(limiter.check("f", 100), Ok(()));
    assert_eq!(limiter.len(), 1);

    // One log never outgrows its largest limit.
    let limiter = RateLimiter::new(
        &[RateLimit {
            points: 5,
            window_secs: 1000,
        }],
        4,
    );
    for now in 0..1000 {
        let _ = limiter.check("k", now);
    }
    let logs = limiter.logs.lock().unwrap();
    assert_eq!(logs["k"].hits.len(), 5);
}

#[test]
fn weighted_points_and_status() {
    let limiter = RateLimiter::new(
        &[
            RateLimit {
                points: 10,
                window_secs: 60,
            },
            RateLimit {
                points: 12,
                window_secs: 600,
            },
        ],
        100,
    );
    let ok = |now, cost| limiter.consume("did", now, cost).unwrap().unwrap();
    // 3 + 2 + 1 points: the minute window has 4 left, resetting a minute after the first.
    assert_eq!(ok(0, 3).remaining, 7);
    assert_eq!(ok(1, 2).remaining, 5);
    let status = ok(2, 1);
    assert_eq!(
        (status.limit.points, status.remaining, status.reset),
        (10, 4, 60)
    );
    assert_eq!(ok(3, 3).remaining, 1);
    // 9 of 10 used: 3 more fit once 2 points leave, i.e. with the request made at 0.
    let refused = limiter.consume("did", 4, 3).unwrap_err();
    assert_eq!(
        (refused.remaining, refused.reset, refused.limit.points),
        (0, 60, 10)
    );
    // The refused request was not counted: 1 point still fits.
    assert_eq!(ok(4, 1).remaining, 0);
    // After a minute the 10-minute window (12 points, 10 used) is the tighter one.
    let status = ok(61, 2);
    assert_eq!(
        (status.limit.points, status.remaining, status.reset),
        (12, 0, 600)
    );
    let refused = limiter.consume("did", 62, 1).unwrap_err();
    assert_eq!((refused.limit.points, refused.reset), (12, 600));
}
