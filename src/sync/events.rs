//! The events path: long-poll the SQS queue SES's notifications arrive on, deliver what each
//! message names through the sync's ledger ([`Syncer::deliver_notices`]), and delete the
//! message only once its delivery is durable. A message that fails on its own (its object
//! unreadable, its body not a notification) is hidden for a growing while (30 s doubling, at
//! most 12 h) and received again; after the queue's `maxReceiveCount` its redrive policy moves
//! it to the dead-letter queue. When the delivery itself fails (S3, KMS or the mail root
//! down), the batch is kept and tried again, 1 s doubling up to a minute, its messages hidden
//! longer meanwhile without being received again: an outage does not spend their receives.
//! A queue that does not answer makes the loop wait the same way. Nothing loops hot.

use super::notice::{self, Parsed};
use super::{Handled, Syncer};
use crate::aws::sqs::{self, Message, Queue};
use std::time::Duration;

/// What one batch came to, for the log and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    pub messages: usize,
    /// Deleted from the queue: delivered, delivered already, or nothing to deliver.
    pub settled: usize,
    /// Left on the queue for a later try.
    pub postponed: usize,
}

/// Polls and delivers until `keep_going` says no (checked between polls).
pub fn run(syncer: &Syncer, queue: &Queue, keep_going: impl Fn() -> bool) {
    let mut pause = Duration::ZERO;
    while keep_going() {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        let m = crate::metrics::get();
        match queue.receive(sqs::LONG_POLL) {
            Ok(msgs) => {
                m.events_poll(Some(msgs.len() as u64), super::now_unix());
                pause = Duration::ZERO;
                if msgs.is_empty() {
                    continue;
                }
                let mut wait = Duration::ZERO;
                loop {
                    if let Some(b) = handle(syncer, queue, &msgs) {
                        crate::debug!(
                            "events",
                            "{} messages: {} settled, {} postponed",
                            b.messages,
                            b.settled,
                            b.postponed
                        );
                        break;
                    }
                    if !keep_going() {
                        break;
                    }
                    wait = grow(wait);
                    for msg in &msgs {
                        // Hidden past the next try; no receive is spent.
                        if let Err(e) = queue.postpone(msg, wait.as_secs() + 900) {
                            crate::warn!("events", "message {}: could not keep it: {e}", msg.id);
                        }
                    }
                    std::thread::sleep(wait);
                }
            }
            Err(e) => {
                m.events_poll(None, super::now_unix());
                pause = grow(pause);
                crate::warn!(
                    "events",
                    "{}: {e}; polling again in {} s",
                    queue.url(),
                    pause.as_secs()
                );
            }
        }
    }
}

fn grow(d: Duration) -> Duration {
    (d * 2).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Handles one batch; `None` when the delivery itself failed (nothing was deleted or
/// postponed: the caller keeps the batch and tries again).
pub fn handle(syncer: &Syncer, queue: &Queue, msgs: &[Message]) -> Option<BatchSummary> {
    // Which notices each message carries, in one list for one delivery run.
    let mut notices = Vec::new();
    let mut spans: Vec<Result<std::ops::Range<usize>, ()>> = Vec::with_capacity(msgs.len());
    for m in msgs {
        match notice::parse(&m.body) {
            Ok(Parsed::Notices(n)) => {
                let start = notices.len();
                notices.extend(n);
                spans.push(Ok(start..notices.len()));
            }
            Ok(Parsed::Ignore(why @ notice::Ignored::SnsControl)) => {
                crate::warn!(
                    "events",
                    "message {}: {why}; a subscription made in another account must be \
                     confirmed at the SubscribeURL in it",
                    m.id
                );
                spans.push(Ok(0..0));
            }
            Ok(Parsed::Ignore(why)) => {
                crate::debug!("events", "message {}: {why}; nothing to deliver", m.id);
                spans.push(Ok(0..0));
            }
            Err(e) => {
                crate::warn!(
                    "events",
                    "message {} (received {} times): {e}; left for the queue's redrive policy",
                    m.id,
                    m.receive_count
                );
                spans.push(Err(()));
            }
        }
    }
    let handled = if notices.is_empty() {
        Vec::new()
    } else {
        match syncer.deliver_notices(&notices) {
            Ok(h) => h,
            Err(e) => {
                crate::error!("events", "delivery failed, will try again: {e}");
                return None;
            }
        }
    };
    let mut sum = BatchSummary {
        messages: msgs.len(),
        ..Default::default()
    };
    for (m, span) in msgs.iter().zip(spans) {
        let settled = match span {
            Ok(r) => handled[r.clone()].iter().zip(&notices[r]).all(|(h, n)| {
                log_outcome(m, &n.key, h);
                h.settled()
            }),
            Err(()) => false,
        };
        if settled {
            sum.settled += 1;
            if let Err(e) = queue.delete(m) {
                // It comes back after its visibility timeout and is then found in the ledger.
                crate::warn!(
                    "events",
                    "message {}: delivered, but not deleted: {e}",
                    m.id
                );
            }
        } else {
            sum.postponed += 1;
            postpone(queue, m);
        }
    }
    Some(sum)
}

fn log_outcome(m: &Message, key: &str, h: &Handled) {
    match h {
        Handled::Delivered(to) => {
            crate::debug!("events", "{key}: delivered to {}", to.join(", "))
        }
        Handled::Known => crate::debug!("events", "{key}: delivered already"),
        Handled::Gone => crate::debug!("events", "{key}: no longer in the bucket"),
        Handled::NotOurs => crate::warn!(
            "events",
            "message {}: {key} is in another bucket, outside --prefix or under the move \
             prefix; not delivered here",
            m.id
        ),
        Handled::Refused(_) => {} // logged by the sync
        Handled::Failed(why) => crate::warn!(
            "events",
            "message {} ({key}, received {} times): {why}; trying again later",
            m.id,
            m.receive_count
        ),
    }
}

fn postpone(queue: &Queue, m: &Message) {
    if let Err(e) = queue.postpone(m, sqs::backoff_secs(m.receive_count)) {
        crate::warn!("events", "message {}: could not postpone it: {e}", m.id);
    }
}
