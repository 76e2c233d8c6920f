//! An in-memory, keyed, sliding-window rate limiter.
//!
//! Each key keeps a log of the seconds in which it was allowed a request (with a count per
//! second), covering the longest window. A request is allowed when, for every limit, fewer
//! than `points` requests were allowed in the last `window_secs` seconds; it is then
//! logged. Refused requests are not logged, so a client that keeps knocking is let in again
//! as soon as its oldest counted request leaves the window (that instant is
//! [`RateLimited::reset`]) rather than being locked out for as long as it insists.
//!
//! Memory is bounded: a key's log holds at most the largest `points` entries, and at most
//! `max_keys` keys are tracked. When a new key finds the table full, keys with nothing left
//! in any window are dropped; if that frees nothing, the eighth of the keys that have been
//! idle longest are forgotten (their clients start afresh — the price of a bound, which an
//! attacker can only exploit by spending as many requests as there are keys).
//!
//! Whether limits apply at all (`rate_limits_enabled`) is the caller's decision.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The current time, UNIX seconds (the limiters' clock).
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One limit: at most `points` requests per `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub points: u32,
    pub window_secs: i64,
}

/// The reference's limits on `com.atproto.server.createSession`, per identifier and IP
/// address: 30 per five minutes and 300 per day.
pub const CREATE_SESSION_LIMITS: [RateLimit; 2] = [
    RateLimit {
        points: 30,
        window_secs: 5 * 60,
    },
    RateLimit {
        points: 300,
        window_secs: 24 * 60 * 60,
    },
];

/// The reference's limits on `com.atproto.identity.updateHandle`, per account: 10 per five
/// minutes and 50 per day.
pub const UPDATE_HANDLE_LIMITS: [RateLimit; 2] = [
    RateLimit {
        points: 10,
        window_secs: 5 * 60,
    },
    RateLimit {
        points: 50,
        window_secs: 24 * 60 * 60,
    },
];

/// The reference's limits on the methods that mail a token (`requestEmailConfirmation`,
/// `requestEmailUpdate`; applied here to every mailed token), per account and kind of
/// token: 5 per hour and 15 per day.
pub const MAIL_TOKEN_LIMITS: [RateLimit; 2] = [
    RateLimit {
        points: 5,
        window_secs: 60 * 60,
    },
    RateLimit {
        points: 15,
        window_secs: 24 * 60 * 60,
    },
];

/// Where a key stands against one limit after a request: what the `RateLimit-*` response
/// headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStatus {
    /// The limit (the most restrictive one, when several apply).
    pub limit: RateLimit,
    /// Points left in its window.
    pub remaining: u32,
    /// When (UNIX seconds) a point next frees up.
    pub reset: i64,
}

impl LimitStatus {
    /// Of two statuses, the one with fewer points left (the later reset on a tie).
    pub fn tighter(self, other: LimitStatus) -> LimitStatus {
        if (other.remaining, -other.reset) < (self.remaining, -self.reset) {
            other
        } else {
            self
        }
    }
}

/// A refused request: another will be allowed from `reset` (UNIX seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded, resets at {reset}")]
pub struct RateLimited {
    pub reset: i64,
}

/// The log of one key: (second, requests allowed in it), oldest first.
#[derive(Debug, Default)]
struct Log {
    hits: VecDeque<(i64, u32)>,
}

impl Log {
    fn last(&self) -> i64 {
        self.hits.back().map_or(i64::MIN, |&(at, _)| at)
    }

    /// Drops entries outside the longest window.
    fn trim(&mut self, now: i64, longest: i64) {
        let horizon = now.saturating_sub(longest);
        while self.hits.front().is_some_and(|&(at, _)| at <= horizon) {
            self.hits.pop_front();
        }
    }

    /// Points used within `limit`'s window at `now`, and the oldest second among them.
    fn used(&self, limit: RateLimit, now: i64) -> (u64, Option<i64>) {
        let horizon = now.saturating_sub(limit.window_secs);
        let mut in_window = self.hits.iter().filter(|&&(at, _)| at > horizon).peekable();
        let oldest = in_window.peek().map(|&&(at, _)| at);
        (in_window.map(|&(_, n)| u64::from(n)).sum(), oldest)
    }

    /// If `limit` cannot take `cost` more points at `now`, when enough of them free up.
    fn exhausted_until(&self, limit: RateLimit, now: i64, cost: u32) -> Option<i64> {
        let horizon = now.saturating_sub(limit.window_secs);
        let in_window = self.hits.iter().filter(|&&(at, _)| at > horizon);
        let used: u64 = in_window.clone().map(|&(_, n)| u64::from(n)).sum();
        if used + u64::from(cost) <= u64::from(limit.points) {
            return None;
        }
        // The request fits once `used + cost - points` of the oldest points have left.
        let mut to_leave = (used + u64::from(cost)).saturating_sub(u64::from(limit.points));
        for &(at, n) in in_window {
            to_leave = to_leave.saturating_sub(u64::from(n));
            if to_leave == 0 {
                return Some(at.saturating_add(limit.window_secs));
            }
        }
        // Unreachable with consistent counts; never answer with a time already past.
        Some(now.saturating_add(limit.window_secs))
    }

    fn record(&mut self, now: i64, cost: u32) {
        match self.hits.back_mut() {
            // Same second (or a clock that stepped back): count it with the newest entry.
            Some((at, n)) if *at >= now => *n = n.saturating_add(cost),
            _ => self.hits.push_back((now, cost)),
        }
    }
}

/// A keyed sliding-window rate limiter; see the module documentation. Share it (`Arc`)
/// between requests; `check` takes a short lock.
#[derive(Debug)]
pub struct RateLimiter {
    limits: Vec<RateLimit>,
    longest: i64,
    max_keys: usize,
    logs: Mutex<HashMap<String, Log>>,
}

impl RateLimiter {
    /// A limiter enforcing all of `limits` at once, tracking at most `max_keys` keys.
    pub fn new(limits: &[RateLimit], max_keys: usize) -> Self {
        RateLimiter {
            limits: limits.to_vec(),
            longest: limits.iter().map(|l| l.window_secs).max().unwrap_or(0),
            max_keys: max_keys.max(1),
            logs: Mutex::new(HashMap::new()),
        }
    }

    /// The key the reference uses for `createSession`: identifier and client address.
    pub fn create_session_key(identifier: &str, ip: &str) -> String {
        format!("{identifier}-{ip}")
    }

    /// Counts a request for `key` at `now` if every limit allows it; otherwise refuses it
    /// with the earliest time at which all limits would allow one.
    pub fn check(&self, key: &str, now: i64) -> Result<(), RateLimited> {
        self.consume(key, now, 1)
            .map(|_| ())
            .map_err(|refused| RateLimited {
                reset: refused.reset,
            })
    }

    /// Counts a request worth `cost` points for `key` at `now` if every limit can take
    /// it, answering with the tightest limit's status; otherwise refuses it with the status
    /// of the limit that frees up last (`remaining` 0, `reset` when the request would fit).
    /// A limiter without limits allows everything and answers `None`.
    pub fn consume(
        &self,
        key: &str,
        now: i64,
        cost: u32,
    ) -> Result<Option<LimitStatus>, LimitStatus> {
        let mut logs = self
            .logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !logs.contains_key(key) && logs.len() >= self.max_keys {
            self.evict(&mut logs, now);
        }
        let log = logs.entry(key.to_owned()).or_default();
        log.trim(now, self.longest);
        let refused = self
            .limits
            .iter()
            .filter_map(|&limit| {
                log.exhausted_until(limit, now, cost)
                    .map(|reset| LimitStatus {
                        limit,
                        remaining: 0,
                        reset,
                    })
            })
            .max_by_key(|status| status.reset);
        if let Some(refused) = refused {
            return Err(refused);
        }
        let status = self
            .limits
            .iter()
            .map(|&limit| {
                let (used, oldest) = log.used(limit, now);
                let left = u64::from(limit.points).saturating_sub(used + u64::from(cost));
                LimitStatus {
                    limit,
                    remaining: u32::try_from(left).unwrap_or(u32::MAX),
                    reset: oldest.unwrap_or(now).saturating_add(limit.window_secs),
                }
            })
            .reduce(LimitStatus::tighter);
        log.record(now, cost);
        Ok(status)
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(&self, logs: &mut HashMap<String, Log>, now: i64) {
        let horizon = now.saturating_sub(self.longest);
        logs.retain(|_, log| log.last() > horizon);
        if logs.len() < self.max_keys {
            return;
        }
        let mut idle: Vec<i64> = logs.values().map(Log::last).collect();
        let cut = (logs.len() / 8).max(1) - 1;
        // Forget every key idle at least as long as the `cut`-th longest-idle one.
        let (_, &mut threshold, _) = idle.select_nth_unstable(cut);
        logs.retain(|_, log| log.last() > threshold);
    }
}

#[cfg(test)]
#[path = "rate_limit_tests.rs"]
mod tests;
