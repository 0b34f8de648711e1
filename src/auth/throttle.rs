//! Login throttling, without I/O (time is passed in): failed logins counted per source address
//! (IPv6 by its /64) and per user name within a window. Each failure is answered after a delay
//! that doubles with the failures so far (from either count); an address with too many
//! failures is blocked for a while, its logins answered `NO [UNAVAILABLE]` without running
//! the password scheme. A user name is never blocked, only slowed: an attacker guessing one
//! user's password must not lock the real user out, who logs in from another address.
//!
//! A success clears the counts of that address and that user. Unknown and known user names
//! are counted alike, so the answer and its timing say nothing about which names exist.

use crate::imap::admission::AddrKey;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The numbers (see [`Policy::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// This many failures from one address within the window block it…
    pub block_after: u32,
    /// …for this long.
    pub block_for: Duration,
    /// The delay of a first failure; it doubles with each further one…
    pub first_delay: Duration,
    /// …up to this.
    pub max_delay: Duration,
}

impl Default for Policy {
    /// 10 failures in 10 minutes block the address for 15 minutes; failures are answered after
    /// 2 s, 4 s, 8 s… at most 16 s.
    fn default() -> Self {
        Policy {
            window: Duration::from_secs(10 * 60),
            block_after: 10,
            block_for: Duration::from_secs(15 * 60),
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(16),
        }
    }
}

/// Entries kept at most (each is a few dozen bytes); the oldest go first.
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    since: Instant,
    blocked_until: Option<Instant>,
}

/// User names are kept as a keyed hash: fixed size, whatever a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(AddrKey),
    User(u64),
}

/// What to do with a login attempt before checking its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Check,
    /// The address is blocked until then: answer without running the scheme.
    Blocked(Instant),
}

#[derive(Debug)]
pub struct Throttle {
    policy: Policy,
    entries: Mutex<HashMap<Key, Entry>>,
    /// Keys the user-name hash (random per process: names cannot be chosen to collide).
    hasher: std::collections::hash_map::RandomState,
}

impl Throttle {
    pub fn new(policy: Policy) -> Throttle {
        Throttle {
            policy,
            entries: Mutex::new(HashMap::new()),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn user_key(&self, user: &str) -> Key {
        use std::hash::BuildHasher;
        Key::User(self.hasher.hash_one(user.to_ascii_lowercase()))
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    fn live(&self, e: &Entry, now: Instant) -> bool {
        e.blocked_until.is_some_and(|t| t > now)
            || now.saturating_duration_since(e.since) < self.policy.window
    }

    /// Whether a login from `ip` may be checked now.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        let m = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match m.get(&Key::Addr(AddrKey::of(ip))) {
            Some(Entry {
                blocked_until: Some(t),
                ..
            }) if *t > now => Verdict::Blocked(*t),
            _ => Verdict::Check,
        }
    }

    /// A failed login of `user` from `ip`: how long to wait before answering it.
    pub fn failed(&self, ip: IpAddr, user: &str, now: Instant) -> Duration {
        let mut m = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= MAX_ENTRIES {
            m.retain(|_, e| self.live(e, now));
            if m.len() >= MAX_ENTRIES {
                // Still full (a flood of distinct names): forget the user counts first.
                m.retain(|k, _| matches!(k, Key::Addr(_)));
            }
        }
        let mut worst = 0;
        for key in [Key::Addr(AddrKey::of(ip)), self.user_key(user)] {
            let is_addr = matches!(key, Key::Addr(_));
            let e = m.entry(key).or_insert(Entry {
                failures: 0,
                since: now,
                blocked_until: None,
            });
            if now.saturating_duration_since(e.since) >= self.policy.window
                && e.blocked_until.is_none_or(|t| t <= now)
            {
                *e = Entry {
                    failures: 0,
                    since: now,
                    blocked_until: None,
                };
            }
            e.failures += 1;
            if is_addr && e.failures >= self.policy.block_after {
                e.blocked_until = Some(now + self.policy.block_for);
            }
            worst = worst.max(e.failures);
        }
        let doublings = worst.saturating_sub(1).min(16);
        self.policy
            .first_delay
            .saturating_mul(1 << doublings)
            .min(self.policy.max_delay)
    }

    /// A successful login: the user starts afresh. The address keeps its count (else anyone
    /// with an account could guess another's password from it and log in to their own
    /// between guesses, never reaching the block).
    pub fn succeeded(&self, _ip: IpAddr, user: &str) {
        let key = self.user_key(user);
        let mut m = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        m.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn delays_double_and_an_address_is_blocked_at_the_threshold() {
        let t = Throttle::new(Policy::default());
        let now = Instant::now();
        let a = ip("198.51.100.7");
        let delays: Vec<u64> = (0..5)
            .map(|i| t.failed(a, &format!("u{i}@x"), now).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 16]);
        for i in 5..9 {
            t.failed(a, &format!("u{i}@x"), now);
            assert_eq!(t.check(a, now), Verdict::Check);
        }
        t.failed(a, "u9@x", now);
        let Verdict::Blocked(until) = t.check(a, now) else {
            panic!("not blocked after 10 failures");
        };
        assert_eq!(until, now + Duration::from_secs(15 * 60));
        // The same /64 of IPv6 is one address; another address is not blocked.
        assert_eq!(t.check(ip("198.51.100.8"), now), Verdict::Check);
        // The block ends.
        assert_eq!(t.check(a, until + Duration::from_secs(1)), Verdict::Check);
    }

    #[test]
    fn a_user_is_slowed_but_never_blocked_and_success_clears() {
        let t = Throttle::new(Policy::default());
        let now = Instant::now();
        for i in 0..30 {
            t.failed(ip(&format!("203.0.113.{i}")), "Alice@x", now);
        }
        // From a fresh address the user is checked (slowed on failure only).
        let home = ip("192.0.2.1");
        assert_eq!(t.check(home, now), Verdict::Check);
        assert_eq!(t.failed(home, "alice@x", now), Duration::from_secs(16));
        t.succeeded(home, "alice@x");
        // The user starts afresh; the address keeps its one failure (so 4 s now).
        assert_eq!(t.failed(home, "alice@x", now), Duration::from_secs(4));
        assert_eq!(
            t.failed(ip("192.0.2.99"), "ALICE@x", now),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn old_failures_are_forgotten() {
        let t = Throttle::new(Policy::default());
        let now = Instant::now();
        let a = ip("2001:db8::1");
        for _ in 0..9 {
            t.failed(a, "x@y", now);
        }
        let later = now + Duration::from_secs(11 * 60);
        assert_eq!(
            t.failed(ip("2001:db8::2"), "z@y", later),
            Duration::from_secs(2)
        );
        assert_eq!(t.check(a, later), Verdict::Check);
    }
}
