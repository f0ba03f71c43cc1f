//! An in-memory cache of report rows keyed by region.

use std::collections::HashMap;

/// One row of the weekly report.
#[derive(Clone, Debug)]
pub struct Row {
    pub region: String,
    pub total: f64,
}

/// Rows grouped by region.
#[derive(Default)]
pub struct Cache {
    rows: HashMap<String, Vec<Row>>,
}

impl Cache {
    /// Adds a row.
    pub fn insert(&mut self, row: Row) {
        self.rows.entry(row.region.clone()).or_default().push(row);
    }

    /// Number of regions with at least one large order.
    pub fn regions_with_large_orders(&self, threshold: f64) -> usize {
        self.rows
            .values()
            .filter(|rows| rows.iter().any(|r| r.total >= threshold))
            .collect::<Vec<_>>()
            .len()
    }

    /// Grand total across regions.
    pub fn grand_total(&self) -> f64 {
        let total: f64 = self.rows.values().flatten().map(|r| r.total).sum();
        dbg!(total)
    }

    /// The first row of `region`, without bounds checks.
    pub fn first_row(&self, region: &str) -> Option<&Row> {
        let rows = self.rows.get(region)?;
        if rows.is_empty() {
            return None;
        }
        Some(unsafe { rows.get_unchecked(0) })
    }
}
