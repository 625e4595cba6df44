//! Figures by name, one value per round, as the benchmark binaries (`timers`, `pg`)
//! write them to `target/bench-results/` for `report`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Figures by name, one value per round.
#[derive(Debug, Default)]
pub struct Results(BTreeMap<String, Vec<f64>>);

impl Results {
    /// Adds a round's `value` of figure `key`.
    pub fn push(&mut self, key: &str, value: f64) {
        self.0.entry(key.to_owned()).or_default().push(value);
    }

    /// Whether figure `key` has a value.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The median of figure `key`'s rounds.
    pub fn median(&self, key: &str) -> Option<f64> {
        let mut values = self.0.get(key)?.clone();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    }

    /// One line per figure: its name, then its values.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for (key, values) in &self.0 {
            let _ = write!(text, "{key}");
            for value in values {
                let _ = write!(text, " {value:.6}");
            }
            text.push('\n');
        }
        text
    }
}

/// The `q` quantile of `values` (sorted in place), in milliseconds; NaN when empty.
pub fn quantile_ms(values: &mut [Duration], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1].as_secs_f64() * 1e3
}
