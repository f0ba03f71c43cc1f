//! Owns the daily spend cap of one workspace: tokens and/or US dollars per day, what was spent
//! today, and telling the user once when the cap is reached.
//!
//! - The day is the **UTC** date: no time-zone database is needed, a restart on another machine
//!   agrees, and it matches how vendors meter. The cap resets at 00:00 UTC.
//! - Cost comes from a small built-in price table (USD per million tokens) for the default
//!   models. The figures are approximate list prices and go stale; `[budget.prices]` overrides
//!   them or adds models. A model matches the longest table name it starts with, so
//!   `gpt-4.1-mini-2025-04-14` is priced as `gpt-4.1-mini`. An unknown model costs nothing
//!   against the dollar cap (its tokens still count against the token cap).
//! - Spent amounts are persisted through [`BudgetStore`] on every charge, so they survive
//!   restarts; [`MemoryBudgetStore`] is the in-memory one (tests, no store).
//! - The check is on what was already spent: the call that crosses the cap completes, the next
//!   one is refused.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::llm::Usage;

/// A UTC calendar day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub i64);

impl Day {
    pub fn of(at: SystemTime) -> Day {
        let secs = match at.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64) - 1,
        };
        Day(secs.div_euclid(86_400))
    }
}

/// `YYYY-MM-DD` (Howard Hinnant's `civil_from_days`), e.g. for a store key.
impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

/// Where "now" comes from; tests move it across midnight.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

/// Approximate list prices (USD per million input / output tokens) of the default models, as
/// published by the vendors in 2025. Overridable with `[budget.prices]`.
pub const DEFAULT_PRICES: &[(&str, Price)] = &[
    ("gpt-4.1-mini", Price { input: 0.40, output: 1.60 }),
    ("gpt-4.1", Price { input: 2.00, output: 8.00 }),
    ("gpt-4o-mini", Price { input: 0.15, output: 0.60 }),
    ("claude-haiku-4-5", Price { input: 1.00, output: 5.00 }),
    ("claude-sonnet-4-5", Price { input: 3.00, output: 15.00 }),
    ("gemini-2.5-flash", Price { input: 0.30, output: 2.50 }),
    ("gemini-2.5-pro", Price { input: 1.25, output: 10.00 }),
];

/// `[budget]` settings. No cap by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetSettings {
    /// Prompt plus completion tokens per UTC day, over all models.
    pub daily_token_budget: Option<u64>,
    pub daily_cost_budget_usd: Option<f64>,
    /// Model name (or prefix) → price; wins over the built-in table.
    pub prices: BTreeMap<String, Price>,
}

impl BudgetSettings {
    /// The price of `model`: the longest matching name, overrides before the built-in table.
    pub fn price(&self, model: &str) -> Option<Price> {
        fn longest<'a>(pairs: impl Iterator<Item = (&'a str, Price)>, model: &str) -> Option<Price> {
            pairs.filter(|(name, _)| model.starts_with(name)).max_by_key(|(name, _)| name.len()).map(|(_, p)| p)
        }
        longest(self.prices.iter().map(|(k, v)| (k.as_str(), *v)), model)
            .or_else(|| longest(DEFAULT_PRICES.iter().copied(), model))
    }

    pub fn has_cap(&self) -> bool {
        self.daily_token_budget.is_some() || self.daily_cost_budget_usd.is_some()
    }
}

/// What one day cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub calls: u64,
}

impl Spent {
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Field by field, the larger: the store may already hold what this process charged
    /// since (last writer wins), so adding could count it twice.
    fn at_least(self, other: Spent) -> Spent {
        Spent {
            input_tokens: self.input_tokens.max(other.input_tokens),
            output_tokens: self.output_tokens.max(other.output_tokens),
            cost_usd: self.cost_usd.max(other.cost_usd),
            calls: self.calls.max(other.calls),
        }
    }
}

/// Persistence of the day's spend (the lead backs it with redb). Saving must not fail the call:
/// an implementation logs its own errors.
pub trait BudgetStore: Send + Sync {
    fn load(&self, day: Day) -> Option<Spent>;
    fn save(&self, day: Day, spent: &Spent);
}

#[derive(Debug, Default)]
pub struct MemoryBudgetStore {
    days: Mutex<HashMap<Day, Spent>>,
}

impl BudgetStore for MemoryBudgetStore {
    fn load(&self, day: Day) -> Option<Spent> {
        self.days.lock().unwrap_or_else(|e| e.into_inner()).get(&day).copied()
    }

    fn save(&self, day: Day, spent: &Spent) {
        self.days.lock().unwrap_or_else(|e| e.into_inner()).insert(day, *spent);
    }
}

/// What is left today; `None` where there is no cap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Remaining {
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// Refused: today's cap is reached. `tell_user` is true once per day (and after a settings
/// change), so the user hears it once, not on every skipped call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the daily LLM budget is spent ({} tokens, ${:.2} today); LLM review resumes tomorrow (UTC) or when [budget] is raised", spent.tokens(), spent.cost_usd)]
pub struct OverBudget {
    pub spent: Spent,
    pub tell_user: bool,
}

/// For stats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSnapshot {
    pub day: String,
    pub spent: Spent,
    pub remaining: Remaining,
    pub exceeded: bool,
}

pub struct Budget {
    /// Swapped when the workspace's store opens (after the gate was built).
    store: Mutex<Arc<dyn BudgetStore>>,
    clock: Clock,
    /// Shared with the thread that loads a new day's spend, so no caller waits for the disk.
    ledger: Arc<Mutex<Ledger>>,
}

struct Ledger {
    settings: BudgetSettings,
    day: Option<Day>,
    spent: Spent,
    told: bool,
}

impl Budget {
    pub fn new(settings: BudgetSettings, store: Arc<dyn BudgetStore>) -> Budget {
        Budget::with_clock(settings, store, system_clock())
    }

    /// Blocking: reads today's spend from `store`.
    pub fn with_clock(settings: BudgetSettings, store: Arc<dyn BudgetStore>, clock: Clock) -> Budget {
        let today = Day::of(clock());
        let spent = store.load(today).unwrap_or_default();
        Budget {
            store: Mutex::new(store),
            clock,
            ledger: Arc::new(Mutex::new(Ledger { settings, day: Some(today), spent, told: false })),
        }
    }

    pub fn today(&self) -> Day {
        Day::of((self.clock)())
    }

    fn store(&self) -> Arc<dyn BudgetStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Persists from now on in `store`, and takes today's spend from it: what an earlier run
    /// spent today counts. Blocking (it reads the store): call it off the async threads.
    pub fn set_store(&self, store: Arc<dyn BudgetStore>) {
        let today = self.today();
        // Read before the ledger is locked: gate checks on async threads never wait for it.
        let stored = store.load(today).unwrap_or_default();
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = store;
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        ledger.day = Some(today);
        ledger.spent = stored;
        ledger.told = false;
    }

    /// The ledger, rolled over to today. A new day starts from zero at once, and what another
    /// process already spent today is added when a background read of the store returns: the
    /// callers (every gate check, the status poll, a metrics scrape) run on async threads and
    /// must never wait for the disk.
    fn ledger(&self) -> (MutexGuard<'_, Ledger>, Day) {
        let today = self.today();
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        if ledger.day != Some(today) {
            ledger.day = Some(today);
            ledger.spent = Spent::default();
            ledger.told = false;
            let (store, shared) = (self.store(), Arc::clone(&self.ledger));
            let spawned = std::thread::Builder::new().name("budget-load".into()).spawn(move || {
                let Some(stored) = store.load(today) else { return };
                let mut ledger = shared.lock().unwrap_or_else(|e| e.into_inner());
                if ledger.day == Some(today) {
                    ledger.spent = ledger.spent.at_least(stored);
                }
            });
            if let Err(e) = spawned {
                tracing::warn!("cannot read today's stored spend ({e}); counting from zero");
            }
        }
        (ledger, today)
    }

    /// New caps or prices; the user is told again if the new cap is reached too.
    pub fn set_settings(&self, settings: BudgetSettings) {
        let (mut ledger, _) = self.ledger();
        ledger.settings = settings;
        ledger.told = false;
    }

    /// Adds a call's usage to today's spend and saves it. Returns today's total.
    pub fn charge(&self, usage: Usage, model: &str) -> Spent {
        let (mut ledger, today) = self.ledger();
        let cost = ledger
            .settings
            .price(model)
            .map_or(0.0, |p| (usage.prompt_tokens as f64 * p.input + usage.completion_tokens as f64 * p.output) / 1e6);
        let spent = &mut ledger.spent;
        spent.input_tokens += usage.prompt_tokens;
        spent.output_tokens += usage.completion_tokens;
        spent.cost_usd += cost;
        spent.calls += 1;
        let spent = *spent;
        self.store().save(today, &spent);
        spent
    }

    /// The daily caps: (tokens, USD).
    pub fn settings_caps(&self) -> (Option<u64>, Option<f64>) {
        let (ledger, _) = self.ledger();
        (ledger.settings.daily_token_budget, ledger.settings.daily_cost_budget_usd)
    }

    pub fn spent(&self) -> Spent {
        self.ledger().0.spent
    }

    pub fn remaining(&self) -> Remaining {
        remaining(&self.ledger().0)
    }

    pub fn exceeded(&self) -> bool {
        exceeded(&self.ledger().0)
    }

    /// `Ok` while under the cap; the first refusal of the day has `tell_user` set.
    pub fn check(&self) -> Result<(), OverBudget> {
        let (mut ledger, _) = self.ledger();
        if !exceeded(&ledger) {
            return Ok(());
        }
        let tell_user = !std::mem::replace(&mut ledger.told, true);
        Err(OverBudget { spent: ledger.spent, tell_user })
    }

    pub fn snapshot(&self) -> BudgetSnapshot {
        let (ledger, today) = self.ledger();
        BudgetSnapshot {
            day: today.to_string(),
            spent: ledger.spent,
            remaining: remaining(&ledger),
            exceeded: exceeded(&ledger),
        }
    }
}

fn remaining(ledger: &Ledger) -> Remaining {
    let s = &ledger.settings;
    Remaining {
        tokens: s.daily_token_budget.map(|cap| cap.saturating_sub(ledger.spent.tokens())),
        cost_usd: s.daily_cost_budget_usd.map(|cap| (cap - ledger.spent.cost_usd).max(0.0)),
    }
}

fn exceeded(ledger: &Ledger) -> bool {
    let s = &ledger.settings;
    s.daily_token_budget.is_some_and(|cap| ledger.spent.tokens() >= cap)
        || s.daily_cost_budget_usd.is_some_and(|cap| ledger.spent.cost_usd >= cap)
}

#[cfg(test)]
#[path = "tests/budget.rs"]
mod tests;
