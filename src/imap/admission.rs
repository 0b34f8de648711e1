//! Who may connect, without I/O: the server's connection slots, counted per address (IPv6 by
//! its /64, the way one host or one customer's network shows up) and by whether the
//! connection has logged in. A connection is admitted unauthenticated, counted as such until
//! its login succeeds, and freed when its [`Ticket`] drops.
//!
//! The rules (defaults in [`Limits::default`]): at most `max` connections in all; at most
//! `per_address` from one address and at most `unauthenticated_per_address` of those not
//! logged in; and unauthenticated connections never hold more than `max - reserved`, so the
//! last `reserved` slots stay for sessions that have logged in. One client that opens
//! connections without logging in (a scanner, a slowloris) fills its own small share only;
//! everyone else still gets in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max: usize,
    pub per_address: usize,
    pub unauthenticated_per_address: usize,
    /// Slots only logged-in sessions may hold.
    pub reserved: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_max(1000)
    }
}

impl Limits {
    /// The defaults for a server of `max` connections: 100 per address (a household behind
    /// one NAT, each device with several sessions), 10 of them unauthenticated, a tenth of
    /// the slots (at least one) kept for logged-in sessions.
    pub fn for_max(max: usize) -> Limits {
        Limits {
            max,
            per_address: 100.min(max),
            unauthenticated_per_address: 10.min(max),
            reserved: (max / 10).max(1).min(max.saturating_sub(1)),
        }
    }
}

/// Why a connection was not let in (the client gets `* BYE` with this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken.
    Full,
    /// The slots not reserved for logged-in sessions are taken.
    TooManyUnauthenticated,
    /// This address has its share.
    AddressFull,
    /// This address has its share of connections that have not logged in.
    AddressUnauthenticated,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Full | Refusal::TooManyUnauthenticated => {
                "Too many connections, try again later"
            }
            Refusal::AddressFull => "Too many connections from your address",
            Refusal::AddressUnauthenticated => {
                "Too many connections from your address that have not logged in"
            }
        })
    }
}

/// An address as the limits count it: IPv4 whole, IPv6 by its /64 (an IPv4-mapped IPv6
/// address is the IPv4 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKey {
    V4(u32),
    V6Prefix(u64),
}

impl AddrKey {
    pub fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(u32::from(v4)),
                None => AddrKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    unauthenticated: usize,
    by_addr: HashMap<AddrKey, (usize, usize)>,
}

/// The server's slots.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
}

/// One admitted connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    addr: AddrKey,
    authenticated: bool,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections now: (all, not logged in).
    pub fn counts(&self) -> (usize, usize) {
        let c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (c.total, c.unauthenticated)
    }

    /// A new connection from `ip`, not logged in yet.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let addr = AddrKey::of(ip);
        let l = self.limits;
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let (here, here_unauth) = c.by_addr.get(&addr).copied().unwrap_or((0, 0));
        if c.total >= l.max {
            return Err(Refusal::Full);
        }
        if c.unauthenticated >= l.max - l.reserved {
            return Err(Refusal::TooManyUnauthenticated);
        }
        if here >= l.per_address {
            return Err(Refusal::AddressFull);
        }
        if here_unauth >= l.unauthenticated_per_address {
            return Err(Refusal::AddressUnauthenticated);
        }
        c.total += 1;
        c.unauthenticated += 1;
        let e = c.by_addr.entry(addr).or_insert((0, 0));
        e.0 += 1;
        e.1 += 1;
        Ok(Ticket {
            admission: Arc::clone(self),
            addr,
            authenticated: false,
        })
    }
}

impl Ticket {
    /// The connection logged in: it no longer counts against the unauthenticated limits.
    pub fn logged_in(&mut self) {
        if self.authenticated {
            return;
        }
        self.authenticated = true;
        let mut c = self
            .admission
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        c.unauthenticated = c.unauthenticated.saturating_sub(1);
        if let Some(e) = c.by_addr.get_mut(&self.addr) {
            e.1 = e.1.saturating_sub(1);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut c = self
            .admission
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if !self.authenticated {
            c.unauthenticated = c.unauthenticated.saturating_sub(1);
        }
        if let Some(e) = c.by_addr.get_mut(&self.addr) {
            e.0 = e.0.saturating_sub(1);
            if !self.authenticated {
                e.1 = e.1.saturating_sub(1);
            }
            if e.0 == 0 {
                c.by_addr.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_fills_only_its_share() {
        let a = Admission::new(Limits {
            max: 20,
            per_address: 8,
            unauthenticated_per_address: 3,
            reserved: 5,
        });
        let mut held: Vec<Ticket> = (0..3).map(|_| a.admit(ip("10.0.0.2")).unwrap()).collect();
        assert_eq!(
            a.admit(ip("10.0.0.2")).unwrap_err(),
            Refusal::AddressUnauthenticated
        );
        // Another address still gets in; a login frees the address's unauthenticated share.
        let other = a.admit(ip("10.0.0.1")).unwrap();
        held[0].logged_in();
        held.push(a.admit(ip("10.0.0.2")).unwrap());
        assert_eq!(a.counts(), (5, 4));
        drop(held);
        drop(other);
        assert_eq!(a.counts(), (0, 0));
    }

    #[test]
    fn reserved_slots_are_for_logged_in_sessions() {
        let a = Admission::new(Limits {
            max: 10,
            per_address: 10,
            unauthenticated_per_address: 10,
            reserved: 3,
        });
        let mut t: Vec<Ticket> = (0..7)
            .map(|i| a.admit(ip(&format!("10.0.1.{i}"))).unwrap())
            .collect();
        assert_eq!(
            a.admit(ip("10.0.2.1")).unwrap_err(),
            Refusal::TooManyUnauthenticated
        );
        // Sessions that log in move out of the unauthenticated count: room again.
        for x in &mut t[..3] {
            x.logged_in();
        }
        for i in 0..3 {
            t.push(a.admit(ip(&format!("10.0.3.{i}"))).unwrap());
        }
        assert_eq!(a.admit(ip("10.0.4.1")).unwrap_err(), Refusal::Full);
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:192.0.2.7")),
            AddrKey::of(ip("192.0.2.7"))
        );
        let a = Admission::new(Limits {
            max: 100,
            per_address: 100,
            unauthenticated_per_address: 2,
            reserved: 1,
        });
        let _x = a.admit(ip("2001:db8::1")).unwrap();
        let _y = a.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(
            a.admit(ip("2001:db8::3")).unwrap_err(),
            Refusal::AddressUnauthenticated
        );
    }
}
