//! Owns the scheduler's counters: queue depth, time waited and run time per lane, kept
//! cheap enough to update on every job.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use super::Lane;

/// How many recent run times each lane keeps for percentiles.
const RECENT: usize = 512;

#[derive(Clone, Debug, Default, Serialize)]
pub struct LaneStats {
    /// Jobs queued or debouncing now.
    pub depth: usize,
    pub started: u64,
    pub finished: u64,
    pub waited_ms_total: u64,
    pub waited_ms_max: u64,
    #[serde(skip)]
    recent_ms: VecDeque<f64>,
}

impl LaneStats {
    pub(super) fn record_wait(&mut self, waited: Duration) {
        let ms = waited.as_millis() as u64;
        self.started += 1;
        self.waited_ms_total += ms;
        self.waited_ms_max = self.waited_ms_max.max(ms);
    }

    pub(super) fn record_run(&mut self, ran: Duration) {
        self.finished += 1;
        if self.recent_ms.len() == RECENT {
            self.recent_ms.pop_front();
        }
        self.recent_ms.push_back(ran.as_secs_f64() * 1000.0);
    }

    /// The `p`th percentile (0–100) of recent run times in ms, if any ran.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.recent_ms.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.recent_ms.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v.get(rank).copied()
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SchedulerStats {
    pub active: LaneStats,
    pub open: LaneStats,
    pub workspace: LaneStats,
    /// Queued jobs replaced by a newer version before they ran.
    pub superseded: u64,
    /// Jobs that may run at once (`[review] workers`), and how many run now.
    pub workers: usize,
    pub running: usize,
}

impl SchedulerStats {
    pub fn lane(&self, lane: Lane) -> &LaneStats {
        match lane {
            Lane::Active => &self.active,
            Lane::Open => &self.open,
            Lane::Workspace => &self.workspace,
        }
    }

    pub(super) fn lane_mut(&mut self, lane: Lane) -> &mut LaneStats {
        match lane {
            Lane::Active => &mut self.active,
            Lane::Open => &mut self.open,
            Lane::Workspace => &mut self.workspace,
        }
    }
}
