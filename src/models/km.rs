//! Weighted survival curves, as R's `survey::svykm`: the product-limit estimate
//! (`svykm.fit`, what `se = FALSE` returns) and the Nelson–Aalen estimate exp(-H(t))
//! that `se = TRUE` returns instead (`survey:::km.stderr`), with the influence values of
//! log S(t) = -H(t) whose design-based variance is R's `varlog`.
//!
//! R forms `varlog` as a delta-method combination of the design covariance of two
//! vectors of totals (the weight of each event, the weight at risk at each event time),
//! an n x events matrix.  The same linear combination taken row by row gives influence
//! values with the same design covariance in O(n) per time, for the one variance engine.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::{CoreError, Result};

/// A survival curve: S(t) at each tabulated time, ascending.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub time: Vec<f64>,
    pub surv: Vec<f64>,
}

fn check(time: &[f64], event: &[bool], weights: &[f64]) -> Result<()> {
    if event.len() != time.len() || weights.len() != time.len() {
        return Err(CoreError::Shape(format!(
            "time, event and weights have {}, {} and {} rows",
            time.len(),
            event.len(),
            weights.len()
        )));
    }
    if let Some(i) = time.iter().position(|t| !(t.is_finite() && *t >= 0.0)) {
        return Err(CoreError::Value(format!(
            "survival time {} at row {i} is not a finite number >= 0",
            time[i]
        )));
    }
    if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(CoreError::Value(format!(
            "weight {} at row {i} is not a finite number >= 0",
            weights[i]
        )));
    }
    Ok(())
}

/// Row positions in ascending time, tied rows in row order (a stable sort).  The pairs
/// (time, row) are sorted together: sorting positions by looking their times up would
/// miss the cache at every comparison; the row breaks ties, so the order is unique and
/// the parallel sort gives it whatever the threads.
fn time_order(time: &[f64]) -> Vec<usize> {
    let mut pairs: Vec<(f64, usize)> = time.iter().copied().zip(0..).collect();
    pairs.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    pairs.into_iter().map(|(_, r)| r).collect()
}

/// The weighted product-limit estimate (R's `survey:::svykm.fit`): tabulated at 0 (where
/// S = 1) and at every distinct time, censored or not.  Where no weight is left at risk
/// the curve stays where it was (R would give 0/0 = NaN there).
pub fn product_limit(time: &[f64], event: &[bool], weights: &[f64]) -> Result<Curve> {
    check(time, event, weights)?;
    let total: f64 = weights.iter().sum();
    // The weight of all rows and of the events at each distinct time, added in row
    // order (as a stable sort by time would add them), then the times in order: one
    // pass over the rows instead of a sort of them.
    let mut at_time: HashMap<u64, (f64, f64)> = HashMap::new();
    for ((&t, &e), &w) in time.iter().zip(event).zip(weights) {
        // +0.0 makes -0.0 and 0.0 one time, as == does.
        let sums = at_time.entry((t + 0.0).to_bits()).or_insert((0.0, 0.0));
        sums.0 += w;
        if e {
            sums.1 += w;
        }
    }
    let mut times: Vec<(f64, f64, f64)> = at_time
        .into_iter()
        .map(|(bits, (all, died))| (f64::from_bits(bits), all, died))
        .collect();
    times.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut curve = Curve {
        time: vec![0.0],
        surv: vec![1.0],
    };
    // R's at-risk weight is sum(w) minus the running total of the earlier times' weight.
    let mut earlier = 0.0;
    let mut s = 1.0;
    for (t, all, died) in times {
        let at_risk = total - earlier;
        if at_risk > 0.0 {
            s *= 1.0 - died / at_risk;
        }
        curve.time.push(t);
        curve.surv.push(s.max(0.0));
        earlier += all;
    }
    Ok(curve)
}

/// Rows sorted by time, to total the weight at risk at any time.
struct RiskSets {
    order: Vec<usize>,
    sorted: Vec<f64>,
}

impl RiskSets {
    fn new(time: &[f64]) -> Self {
        let order = time_order(time);
        let sorted = order.iter().map(|&r| time[r]).collect();
        RiskSets { order, sorted }
    }

    /// For each t of `times`, the position in time order of the first row with time >= t.
    fn positions(&self, times: &[f64]) -> Vec<usize> {
        times
            .iter()
            .map(|&t| self.sorted.partition_point(|&s| s < t))
            .collect()
    }

    /// Weight of the rows at or after each of `positions`.
    fn at_risk(&self, weights: &[f64], positions: &[usize]) -> Vec<f64> {
        let mut suffix = vec![0.0; self.order.len() + 1];
        for (k, &r) in self.order.iter().enumerate().rev() {
            suffix[k] = suffix[k + 1] + weights[r];
        }
        positions.iter().map(|&k| suffix[k]).collect()
    }
}

/// Replicates whose weights are gathered into one contiguous block at a time.
const REPLICATE_BLOCK: usize = 64;

/// The Nelson–Aalen curve as R's `svykm(se = TRUE)` tabulates it: one entry per event of
/// non-zero weight, in time order with tied events in row order, each adding its own
/// weight over the weight at risk, so the last of tied entries holds the full hazard.
#[derive(Clone, Debug)]
pub struct NelsonAalen {
    /// The event row of each entry.
    pub rows: Vec<usize>,
    pub time: Vec<f64>,
    /// Cumulative hazard H at each entry; S = exp(-H).
    pub cumhaz: Vec<f64>,
    /// Weight at risk at each entry's time.
    at_risk: Vec<f64>,
}

impl NelsonAalen {
    pub fn new(time: &[f64], event: &[bool], weights: &[f64]) -> Result<Self> {
        check(time, event, weights)?;
        let rows: Vec<usize> = time_order(time)
            .into_iter()
            .filter(|&r| event[r] && weights[r] != 0.0)
            .collect();
        let times: Vec<f64> = rows.iter().map(|&r| time[r]).collect();
        let sets = RiskSets::new(time);
        let at_risk = sets.at_risk(weights, &sets.positions(&times));
        let mut h = 0.0;
        let cumhaz = rows
            .iter()
            .zip(&at_risk)
            .map(|(&r, y)| {
                h += weights[r] / y;
                h
            })
            .collect();
        Ok(NelsonAalen {
            rows,
            time: times,
            cumhaz,
            at_risk,
        })
    }

    /// Influence values of log S = -H at the entries `at` (n x at.len(), row-major) for
    /// the rows, times and weights the curve was built from: row k's share of
    /// -sum_{j <= a} dN_j / Y_j linearised in the totals dN_j and Y_j, that is
    /// -w_k [1{k is entry j <= a} / Y_j - sum_{j <= a, t_j <= t_k} dN_j / Y_j^2].
    pub fn log_survival_influence(
        &self,
        time: &[f64],
        weights: &[f64],
        at: &[usize],
    ) -> Result<Vec<f64>> {
        if let Some(&a) = at.iter().find(|&&a| a >= self.rows.len()) {
            return Err(CoreError::Value(format!(
                "entry {a} asked for, the curve has {}",
                self.rows.len()
            )));
        }
        let n = time.len();
        // c[j]: sum over entries up to j of dN / Y^2.
        let mut c = Vec::with_capacity(self.rows.len());
        let mut acc = 0.0;
        for (&r, y) in self.rows.iter().zip(&self.at_risk) {
            acc += weights[r] / (y * y);
            c.push(acc);
        }
        let mut entry_of_row = vec![None; n];
        for (j, &r) in self.rows.iter().enumerate() {
            entry_of_row[r] = Some(j);
        }
        let m = at.len();
        let mut out = vec![0.0; n * m];
        for k in 0..n {
            if weights[k] == 0.0 {
                continue;
            }
            // Entries at times <= t_k: the event times at which row k was at risk.
            let seen = self.time.partition_point(|&t| t <= time[k]);
            for (col, &a) in at.iter().enumerate() {
                let mut v = if seen > 0 { c[(seen - 1).min(a)] } else { 0.0 };
                if let Some(j) = entry_of_row[k].filter(|&j| j <= a) {
                    v -= 1.0 / self.at_risk[j];
                }
                out[k * m + col] = weights[k] * v;
            }
        }
        Ok(out)
    }

    /// The cumulative hazard at the entries `at` recomputed with other weights
    /// (`weights`: n x r row-major, one column per replicate): r x at.len().  An entry
    /// whose event lost its weight adds nothing.
    pub fn replicate_cumhaz(
        &self,
        time: &[f64],
        weights: &[f64],
        r: usize,
        at: &[usize],
    ) -> Result<Vec<f64>> {
        let n = time.len();
        if weights.len() != n * r {
            return Err(CoreError::Shape(format!(
                "replicate weights have {} values, expected {n} rows x {r}",
                weights.len()
            )));
        }
        if let Some(&a) = at.iter().find(|&&a| a >= self.rows.len()) {
            return Err(CoreError::Value(format!(
                "entry {a} asked for, the curve has {}",
                self.rows.len()
            )));
        }
        let sets = RiskSets::new(time);
        let positions = sets.positions(&self.time);
        let m = at.len();
        let mut out = vec![0.0; r * m];
        // Columns of a row-major matrix are far apart in memory: copy a block of
        // replicates into contiguous rows first.
        let mut block = vec![0.0; REPLICATE_BLOCK * n];
        let mut h_at = vec![0.0; self.rows.len()];
        for first in (0..r).step_by(REPLICATE_BLOCK) {
            let width = REPLICATE_BLOCK.min(r - first);
            for i in 0..n {
                for b in 0..width {
                    block[b * n + i] = weights[i * r + first + b];
                }
            }
            for b in 0..width {
                let w = &block[b * n..(b + 1) * n];
                let y = sets.at_risk(w, &positions);
                let mut h = 0.0;
                for (j, &row) in self.rows.iter().enumerate() {
                    if w[row] != 0.0 {
                        h += w[row] / y[j];
                    }
                    h_at[j] = h;
                }
                let rep = first + b;
                for (o, &a) in out[rep * m..(rep + 1) * m].iter_mut().zip(at) {
                    *o = h_at[a];
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-14 * b.abs().max(1.0), "{a} != {b}");
    }

    #[test]
    fn product_limit_by_hand() {
        // Times 1, 2, 2+, 3, 4+ with weights 1, 2, 1, 1, 3 (total 8).
        let time = [1.0, 2.0, 2.0, 3.0, 4.0];
        let event = [true, true, false, true, false];
        let w = [1.0, 2.0, 1.0, 1.0, 3.0];
        let c = product_limit(&time, &event, &w).unwrap();
        assert_eq!(c.time, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        let s1 = 1.0 - 1.0 / 8.0;
        let s2 = s1 * (1.0 - 2.0 / 7.0);
        let s3 = s2 * (1.0 - 1.0 / 4.0);
        for (g, w) in c.surv.iter().zip([1.0, s1, s2, s3, s3]) {
            close(*g, w);
        }
    }

    #[test]
    fn product_limit_takes_rows_in_any_order_and_signed_zero_as_one_time() {
        // The rows of product_limit_by_hand shuffled, and a death at -0.0 and 0.0.
        let time = [3.0, 2.0, 4.0, 1.0, 2.0, -0.0, 0.0];
        let event = [true, false, false, true, true, true, true];
        let w = [1.0, 1.0, 3.0, 1.0, 2.0, 1.0, 1.0];
        let c = product_limit(&time, &event, &w).unwrap();
        assert_eq!(c.time, vec![0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        let s0 = 1.0 - 2.0 / 10.0;
        let s1 = s0 * (1.0 - 1.0 / 8.0);
        let s2 = s1 * (1.0 - 2.0 / 7.0);
        let s3 = s2 * (1.0 - 1.0 / 4.0);
        for (g, w) in c.surv.iter().zip([1.0, s0, s1, s2, s3, s3]) {
            close(*g, w);
        }
    }

    #[test]
    fn nelson_aalen_tabulates_each_event() {
        let time = [2.0, 1.0, 2.0, 3.0, 2.0];
        let event = [true, true, true, false, true];
        let w = [1.0, 1.0, 2.0, 1.0, 0.0];
        let na = NelsonAalen::new(&time, &event, &w).unwrap();
        // The zero-weight event is not tabulated; the tied events at 2 follow row order.
        assert_eq!(na.rows, vec![1, 0, 2]);
        close(na.cumhaz[0], 1.0 / 5.0);
        close(na.cumhaz[1], 1.0 / 5.0 + 1.0 / 4.0);
        close(na.cumhaz[2], 1.0 / 5.0 + 3.0 / 4.0);
    }

    #[test]
    fn influence_is_the_derivative_in_the_weights() {
        // Influence values of a total-based estimator are w_k times its derivative with
        // respect to the weight of row k: check against a finite difference.
        let time = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0];
        let event = [true, false, true, true, true, false];
        let w = [1.5, 2.0, 1.0, 0.5, 3.0, 1.0];
        let na = NelsonAalen::new(&time, &event, &w).unwrap();
        let at: Vec<usize> = (0..na.rows.len()).collect();
        let infl = na.log_survival_influence(&time, &w, &at).unwrap();
        let h = 1e-6;
        for k in 0..time.len() {
            let mut up = w;
            up[k] *= 1.0 + h;
            let mut down = w;
            down[k] *= 1.0 - h;
            let hu = NelsonAalen::new(&time, &event, &up).unwrap().cumhaz;
            let hd = NelsonAalen::new(&time, &event, &down).unwrap().cumhaz;
            for a in 0..at.len() {
                let numeric = -(hu[a] - hd[a]) / (2.0 * h);
                let got = infl[k * at.len() + a];
                assert!(
                    (got - numeric).abs() < 1e-8,
                    "row {k} entry {a}: {got} vs {numeric}"
                );
            }
        }
    }

    #[test]
    fn replicates_with_the_full_weights_give_the_curve() {
        let time = [1.0, 2.0, 2.0, 3.0];
        let event = [true, true, false, true];
        let w = [1.0, 2.0, 1.0, 1.0];
        let na = NelsonAalen::new(&time, &event, &w).unwrap();
        // Two replicates: the full weights, and the first row dropped.
        let reps = [1.0, 0.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0];
        let h = na.replicate_cumhaz(&time, &reps, 2, &[0, 1, 2]).unwrap();
        for (g, w) in h[..3].iter().zip(&na.cumhaz) {
            close(*g, *w);
        }
        close(h[3], 0.0);
        close(h[4], 2.0 / 4.0);
        close(h[5], 2.0 / 4.0 + 1.0);
        // Only the entries asked for, in the order asked.
        let h = na.replicate_cumhaz(&time, &reps, 2, &[2, 0]).unwrap();
        close(h[0], na.cumhaz[2]);
        close(h[3], 0.0);
    }

    #[test]
    fn refuses_negative_times() {
        let err = product_limit(&[1.0, -2.0], &[true, false], &[1.0, 1.0]).unwrap_err();
        assert!(matches!(err, CoreError::Value(_)));
    }
}
