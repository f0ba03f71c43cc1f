//! The dispatcher's bookkeeping: pending jobs by key, debounce timers, ready lanes and
//! running jobs. Stale timer and lane entries are skipped lazily (by sequence number), so
//! superseding a job is O(1) whatever the queue holds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Job, Lane, Task};

struct Entry {
    seq: u64,
    version: i64,
    lane: Lane,
    due: Instant,
    enqueued: Instant,
    parent: Option<CancellationToken>,
    task: Task,
}

struct Running {
    seq: u64,
    version: i64,
    token: CancellationToken,
}

/// A job a worker may start now.
pub(super) struct Ready {
    pub key: String,
    pub seq: u64,
    pub lane: Lane,
    pub enqueued: Instant,
    pub token: CancellationToken,
    pub task: Task,
}

#[derive(Default)]
pub(super) struct Queue {
    pending: HashMap<String, Entry>,
    timers: BinaryHeap<Reverse<(Instant, u64, String)>>,
    ready: [VecDeque<(u64, String)>; 3],
    running: HashMap<String, Running>,
    depth: [usize; 3],
    active_key: Option<String>,
    next_seq: u64,
    pub superseded: u64,
}

impl Queue {
    pub fn push(&mut self, job: Job, now: Instant) {
        let Job { key, version, lane, delay, parent, task } = job;
        if let Some(run) = self.running.get(&key) {
            if run.version < version {
                run.token.cancel();
            }
        }
        if let Some(old) = self.pending.remove(&key) {
            self.superseded += 1;
            self.depth[old.lane as usize] -= 1;
        }
        if lane == Lane::Active && self.active_key.as_deref() != Some(key.as_str()) {
            if let Some(previous) = self.active_key.replace(key.clone()) {
                self.demote(&previous, now);
            }
        }
        let seq = self.bump();
        let due = now + delay;
        self.depth[lane as usize] += 1;
        self.pending.insert(key.clone(), Entry { seq, version, lane, due, enqueued: now, parent, task });
        self.arm(key, seq, lane, due, now);
    }

    /// The previously active document is now just open: its queued job moves lanes.
    fn demote(&mut self, key: &str, now: Instant) {
        let seq = self.bump();
        let Some(entry) = self.pending.get_mut(key) else { return };
        if entry.lane != Lane::Active {
            return;
        }
        self.depth[Lane::Active as usize] -= 1;
        self.depth[Lane::Open as usize] += 1;
        entry.lane = Lane::Open;
        entry.seq = seq;
        let due = entry.due;
        self.arm(key.to_string(), seq, Lane::Open, due, now);
    }

    fn arm(&mut self, key: String, seq: u64, lane: Lane, due: Instant, now: Instant) {
        if due <= now {
            self.ready[lane as usize].push_back((seq, key));
        } else {
            self.timers.push(Reverse((due, seq, key)));
        }
    }

    fn bump(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn is_current(&self, key: &str, seq: u64) -> bool {
        self.pending.get(key).is_some_and(|e| e.seq == seq)
    }

    /// When the dispatcher must wake for a debounce to expire.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((due, seq, key))) = self.timers.peek() {
            if self.is_current(key, *seq) {
                return Some(*due);
            }
            self.timers.pop();
        }
        None
    }

    pub fn pop_ready(&mut self, now: Instant) -> Option<Ready> {
        while self.timers.peek().is_some_and(|Reverse((due, _, _))| *due <= now) {
            let Some(Reverse((_, seq, key))) = self.timers.pop() else { break };
            if let Some(entry) = self.pending.get(&key).filter(|e| e.seq == seq) {
                self.ready[entry.lane as usize].push_back((seq, key));
            }
        }
        for lane in Lane::ALL {
            let mut skipped = Vec::new();
            let mut found = None;
            while let Some((seq, key)) = self.ready[lane as usize].pop_front() {
                if !self.is_current(&key, seq) {
                    continue;
                }
                if self.running.contains_key(&key) {
                    // One review per document at a time; it runs when the older one ends.
                    skipped.push((seq, key));
                    continue;
                }
                found = Some(key);
                break;
            }
            for item in skipped.into_iter().rev() {
                self.ready[lane as usize].push_front(item);
            }
            if let Some(key) = found {
                return self.start(key);
            }
        }
        None
    }

    fn start(&mut self, key: String) -> Option<Ready> {
        let entry = self.pending.remove(&key)?;
        self.depth[entry.lane as usize] -= 1;
        let token = entry.parent.as_ref().map_or_else(CancellationToken::new, CancellationToken::child_token);
        self.running.insert(key.clone(), Running { seq: entry.seq, version: entry.version, token: token.clone() });
        Some(Ready { key, seq: entry.seq, lane: entry.lane, enqueued: entry.enqueued, token, task: entry.task })
    }

    pub fn finished(&mut self, key: &str, seq: u64) {
        if self.running.get(key).is_some_and(|r| r.seq == seq) {
            self.running.remove(key);
        }
    }

    pub fn depths(&self) -> [usize; 3] {
        self.depth
    }
}
