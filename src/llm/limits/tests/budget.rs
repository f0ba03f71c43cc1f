use super::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// 2025-03-10T12:00:00Z and a clock that can be moved.
fn clock() -> (Clock, Arc<AtomicU64>) {
    let secs = Arc::new(AtomicU64::new(1_741_608_000));
    let read = secs.clone();
    (Arc::new(move || UNIX_EPOCH + Duration::from_secs(read.load(Ordering::SeqCst))), secs)
}

fn usage(prompt: u64, completion: u64) -> Usage {
    Usage { prompt_tokens: prompt, completion_tokens: completion }
}

fn budget(settings: BudgetSettings, store: Arc<dyn BudgetStore>) -> (Budget, Arc<AtomicU64>) {
    let (clock, secs) = clock();
    (Budget::with_clock(settings, store, clock), secs)
}

#[test]
fn prices_match_the_longest_name_and_overrides_win() {
    let s = BudgetSettings::default();
    assert_eq!(s.price("gpt-4.1-mini"), Some(Price { input: 0.40, output: 1.60 }));
    assert_eq!(s.price("gpt-4.1-mini-2025-04-14"), s.price("gpt-4.1-mini"), "dated names");
    assert_eq!(s.price("gpt-4.1-2025-04-14"), Some(Price { input: 2.0, output: 8.0 }));
    assert_eq!(s.price("claude-sonnet-4-5-20250929"), Some(Price { input: 3.0, output: 15.0 }));
    assert_eq!(s.price("llama3.1:8b"), None);
    let mut s = BudgetSettings::default();
    s.prices.insert("gpt-4.1-mini".into(), Price { input: 1.0, output: 1.0 });
    s.prices.insert("llama".into(), Price { input: 0.0, output: 0.0 });
    assert_eq!(s.price("gpt-4.1-mini-2025-04-14"), Some(Price { input: 1.0, output: 1.0 }));
    assert_eq!(s.price("llama3.1:8b"), Some(Price { input: 0.0, output: 0.0 }));
    assert_eq!(s.price("gpt-4o-mini"), Some(Price { input: 0.15, output: 0.60 }), "the rest of the table stays");
}

#[test]
fn charge_adds_tokens_and_cost() {
    let (b, _) = budget(BudgetSettings::default(), Arc::new(MemoryBudgetStore::default()));
    let spent = b.charge(usage(1_000_000, 500_000), "gpt-4.1-mini");
    assert!((spent.cost_usd - (0.40 + 0.80)).abs() < 1e-9, "{spent:?}");
    let spent = b.charge(usage(1000, 0), "some-local-model");
    assert_eq!((spent.input_tokens, spent.output_tokens, spent.calls), (1_001_000, 500_000, 2));
    assert!((spent.cost_usd - 1.2).abs() < 1e-9, "an unknown model costs nothing");
    assert_eq!(b.remaining(), Remaining { tokens: None, cost_usd: None });
    assert!(!b.exceeded() && b.check().is_ok(), "no cap");
}

#[test]
fn the_token_cap_is_reached_and_told_once() {
    let settings = BudgetSettings { daily_token_budget: Some(1000), ..BudgetSettings::default() };
    let (b, _) = budget(settings, Arc::new(MemoryBudgetStore::default()));
    b.charge(usage(600, 300), "gpt-4.1-mini");
    assert_eq!(b.remaining().tokens, Some(100));
    assert!(b.check().is_ok());
    b.charge(usage(150, 50), "gpt-4.1-mini"); // the call that crosses the cap completes
    assert!(b.exceeded());
    assert_eq!(b.remaining().tokens, Some(0));
    let first = b.check().unwrap_err();
    assert!(first.tell_user);
    assert_eq!(first.spent.tokens(), 1100);
    assert!(!b.check().unwrap_err().tell_user, "told once");
    assert!(!b.check().unwrap_err().tell_user);
    // Raising the cap lifts it; reaching the new one is told again.
    b.set_settings(BudgetSettings { daily_token_budget: Some(1200), ..BudgetSettings::default() });
    assert!(b.check().is_ok());
    b.charge(usage(100, 0), "gpt-4.1-mini");
    assert!(b.check().unwrap_err().tell_user);
}

#[test]
fn the_cost_cap() {
    let settings = BudgetSettings { daily_cost_budget_usd: Some(1.0), ..BudgetSettings::default() };
    let (b, _) = budget(settings, Arc::new(MemoryBudgetStore::default()));
    b.charge(usage(100_000, 20_000), "claude-sonnet-4-5"); // 0.30 + 0.30
    assert!((b.remaining().cost_usd.unwrap() - 0.4).abs() < 1e-9);
    assert!(!b.exceeded());
    b.charge(usage(100_000, 20_000), "claude-sonnet-4-5");
    assert!(b.exceeded());
    assert_eq!(b.remaining().cost_usd, Some(0.0));
    let err = b.check().unwrap_err();
    assert!(err.to_string().contains("$1.20 today"), "{err}");
}

#[test]
fn a_new_utc_day_starts_from_zero() {
    let settings = BudgetSettings { daily_token_budget: Some(100), ..BudgetSettings::default() };
    let (b, secs) = budget(settings, Arc::new(MemoryBudgetStore::default()));
    assert_eq!(b.today().to_string(), "2025-03-10");
    b.charge(usage(100, 0), "gpt-4.1");
    assert!(b.check().unwrap_err().tell_user);
    secs.fetch_add(11 * 3600 + 59 * 60, Ordering::SeqCst); // 23:59 UTC, same day
    assert!(b.check().is_err());
    secs.fetch_add(60, Ordering::SeqCst); // midnight UTC
    assert_eq!(b.today().to_string(), "2025-03-11");
    assert!(b.check().is_ok());
    assert_eq!(b.spent(), Spent::default());
    b.charge(usage(100, 0), "gpt-4.1");
    assert!(b.check().unwrap_err().tell_user, "a new day, a new notice");
}

#[test]
fn spend_survives_a_restart_through_the_store() {
    let store: Arc<dyn BudgetStore> = Arc::new(MemoryBudgetStore::default());
    let settings = BudgetSettings { daily_token_budget: Some(1000), ..BudgetSettings::default() };
    let (b, _) = budget(settings.clone(), store.clone());
    b.charge(usage(400, 100), "gpt-4.1-mini");
    let day = b.today();
    assert_eq!(store.load(day).map(|s| s.tokens()), Some(500));
    drop(b);
    let (again, _) = budget(settings, store.clone());
    assert_eq!(again.spent().tokens(), 500);
    assert_eq!(again.remaining().tokens, Some(500));
    assert_eq!(store.load(Day(day.0 - 1)), None);
}

#[test]
fn days_are_utc_dates() {
    assert_eq!(Day::of(UNIX_EPOCH).to_string(), "1970-01-01");
    assert_eq!(Day::of(UNIX_EPOCH + Duration::from_secs(86_399)), Day(0));
    assert_eq!(Day::of(UNIX_EPOCH + Duration::from_secs(1_709_164_800)).to_string(), "2024-02-29");
    assert_eq!(Day::of(UNIX_EPOCH - Duration::from_secs(1)), Day(-1));
    assert_eq!(Day(-1).to_string(), "1969-12-31");
}

#[test]
fn settings_read_from_toml() {
    let s: BudgetSettings = toml::from_str(
        "daily_token_budget = 2000000\ndaily_cost_budget_usd = 5.0\n[prices.\"gpt-4.1-mini\"]\ninput = 0.5\noutput = 2.0\n",
    )
    .unwrap();
    assert_eq!(s.daily_token_budget, Some(2_000_000));
    assert_eq!(s.daily_cost_budget_usd, Some(5.0));
    assert_eq!(s.price("gpt-4.1-mini"), Some(Price { input: 0.5, output: 2.0 }));
    assert_eq!(toml::from_str::<BudgetSettings>("").unwrap(), BudgetSettings::default());
    assert!(!BudgetSettings::default().has_cap());
}

/// A store whose reads take as long as a redb file held by another process can.
struct SlowStore {
    inner: MemoryBudgetStore,
    delay: Duration,
}

impl BudgetStore for SlowStore {
    fn load(&self, day: Day) -> Option<Spent> {
        std::thread::sleep(self.delay);
        self.inner.load(day)
    }

    fn save(&self, day: Day, spent: &Spent) {
        self.inner.save(day, spent);
    }
}

/// Gate checks, the status poll and metrics scrapes run on async threads: a new day must not
/// make them wait for the store (before, the first check of a day read it under the lock).
#[test]
fn a_new_day_never_waits_for_the_store_and_its_stored_spend_still_counts() {
    let settings = BudgetSettings { daily_token_budget: Some(1000), ..BudgetSettings::default() };
    let (b, secs) = budget(settings, Arc::new(MemoryBudgetStore::default()));
    let tomorrow = Day(b.today().0 + 1);
    let slow_store = Arc::new(SlowStore { inner: MemoryBudgetStore::default(), delay: Duration::from_millis(500) });
    slow_store.inner.save(tomorrow, &Spent { input_tokens: 1000, ..Spent::default() });
    b.set_store(slow_store);
    secs.fetch_add(24 * 3600, Ordering::SeqCst);
    let started = std::time::Instant::now();
    assert!(b.check().is_ok(), "counting from zero until the stored spend is read");
    assert!(started.elapsed() < Duration::from_millis(100), "waited {:?} for the store", started.elapsed());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while b.check().is_ok() {
        assert!(std::time::Instant::now() < deadline, "the stored spend never counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.spent().tokens(), 1000);
}
