//! Weighted quantiles by domain with R's rules (mirrors `survey::svyquantile`, survey >=
//! 4.1).  R's step rules (math, school) are read from a window of each domain's
//! distribution (a histogram places the level, one pass gathers the rows there), in
//! memory and streamed alike; the other rules, and windows whose sums cannot decide at
//! R's last bit, sort the domain's rows once per call, and every replicate's
//! distribution is read from that one order (only the weights differ).  The proportions
//! at or below the quantiles, whose intervals Woodruff's method inverts, go through the
//! fused estimate pass and the one variance engine.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::estimate::{estimate_by_domain, Estimator, Outcome, OUTSIDE};
use crate::long_double::{r_cumsum, r_mean, r_sum, LongDouble, RSum};
use crate::variance::{replicate_covariance, Variance};

/// R's rule for the quantile of a weighted step function (`qrule` of svyquantile): the
/// Hyndman-Fan types generalised to weights, and Shah & Vaish's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantileRule {
    /// hf1: the smallest value whose cumulative weight reaches p.
    Math,
    /// hf2: as Math, averaging the two values either side where the weight is exactly p.
    School,
    /// survey's hf3 (not R's `quantile(type = 3)`): the lower value only at an even position.
    Hf3,
    /// Linear interpolation between the values either side (hf4).
    Hf4,
    /// Interpolation at plotting positions (hf5 .. hf9).
    Hf5,
    Hf6,
    Hf7,
    Hf8,
    Hf9,
    /// Shah & Vaish (2006): a step at plotting positions of the normalised weights.
    ShahVaish,
}

impl QuantileRule {
    /// R's name of the rule (`hf1` and `hf2` are `math` and `school`).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "math" | "hf1" => QuantileRule::Math,
            "school" | "hf2" => QuantileRule::School,
            "hf3" => QuantileRule::Hf3,
            "hf4" => QuantileRule::Hf4,
            "hf5" => QuantileRule::Hf5,
            "hf6" => QuantileRule::Hf6,
            "hf7" => QuantileRule::Hf7,
            "hf8" => QuantileRule::Hf8,
            "hf9" => QuantileRule::Hf9,
            "shahvaish" => QuantileRule::ShahVaish,
            other => {
                return Err(CoreError::Value(format!(
                    "qrule={other:?}; use one of math, school, hf1 .. hf9, shahvaish"
                )))
            }
        })
    }
}

/// One domain's weighted distribution under one set of weights, as R's rule sees it:
/// the rows with non-zero weight, by value (R's `order`, ties in row order).
#[derive(Clone, Debug)]
struct Distribution {
    rule: QuantileRule,
    /// Step rules: the values (for hf3 the distinct values) ...
    x: Vec<f64>,
    /// ... their cumulative weights in that order (R's `cumsum`) ...
    cumw: Vec<f64>,
    /// ... and R's `sum` of the weights (row order; hf3: of the distinct values' sums).
    total: f64,
    /// No negative weight, so `cumw` never decreases.
    monotone: bool,
    /// Interpolating rules: R's `approx` knots (plotting positions) and the values
    /// there, after `regularize.values` (sorted, ties averaged).  Empty when the rule is
    /// undefined (hf7 with one value).
    knots: Vec<f64>,
    at_knots: Vec<f64>,
}

impl Distribution {
    /// `by_value`: the domain's (value, weight) pairs by value, ties in row order;
    /// `row_total`: R's `sum` of the weights in row order (for math, school and hf4).
    fn new(
        rule: QuantileRule,
        by_value: impl Iterator<Item = (f64, f64)>,
        row_total: f64,
    ) -> Distribution {
        // Every R rule first drops the rows of zero weight.
        let rows = by_value.size_hint().0;
        let (mut x, mut w) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        for (v, wt) in by_value {
            if wt != 0.0 {
                x.push(v);
                w.push(wt);
            }
        }
        let mut cumw = Vec::with_capacity(x.len());
        let mut dist = Distribution {
            rule,
            x: Vec::new(),
            cumw: Vec::new(),
            total: row_total,
            monotone: w.iter().all(|&v| v >= 0.0),
            knots: Vec::new(),
            at_knots: Vec::new(),
        };
        match rule {
            QuantileRule::Math | QuantileRule::School | QuantileRule::Hf4 => {
                r_cumsum(w.iter().copied(), &mut cumw);
                dist.x = x;
                dist.cumw = cumw;
            }
            QuantileRule::Hf3 => {
                // R's rowsum(w, x): each distinct value's weights added in double, in row
                // order; then qs over the distinct values.
                let mut distinct: Vec<f64> = Vec::new();
                let mut sums: Vec<f64> = Vec::new();
                for (&v, &wt) in x.iter().zip(&w) {
                    match (distinct.last(), sums.last_mut()) {
                        (Some(&last), Some(s)) if last == v => *s += wt,
                        _ => {
                            distinct.push(v);
                            sums.push(wt);
                        }
                    }
                }
                r_cumsum(sums.iter().copied(), &mut cumw);
                dist.monotone = sums.iter().all(|&v| v >= 0.0);
                dist.total = cumw.last().copied().unwrap_or(0.0);
                dist.x = distinct;
                dist.cumw = cumw;
            }
            _ => {
                r_cumsum(w.iter().copied(), &mut cumw);
                if let Some(knots) = plotting_positions(rule, &w, &cumw) {
                    (dist.knots, dist.at_knots) = regularize(knots, x);
                }
            }
        }
        dist
    }

    /// The p-th quantile; NaN when the domain has no row of non-zero weight (or, for
    /// hf7, only one) or p is NaN.
    fn quantile(&self, p: f64) -> f64 {
        if p.is_nan() {
            return f64::NAN;
        }
        match self.rule {
            QuantileRule::Math | QuantileRule::School | QuantileRule::Hf3 | QuantileRule::Hf4 => {
                self.step_quantile(p)
            }
            QuantileRule::ShahVaish => approx(&self.knots, &self.at_knots, p, true),
            _ => approx(&self.knots, &self.at_knots, p, false),
        }
    }

    /// R's `survey:::qs` and the step rules on it: `pos` is the last value whose
    /// cumulative weight is at most p * sum(w) (the first if none).
    fn step_quantile(&self, p: f64) -> f64 {
        let n = self.x.len();
        if n == 0 {
            return f64::NAN;
        }
        let bound = p * self.total;
        let last_at_or_below = if self.monotone {
            self.cumw.partition_point(|&c| c <= bound).checked_sub(1)
        } else {
            self.cumw.iter().rposition(|&c| c <= bound)
        };
        let pos = last_at_or_below.unwrap_or(0);
        let next = if pos + 1 == n { pos } else { pos + 1 };
        let (qlow, qup) = (self.x[pos], self.x[next]);
        let wlow = p - self.cumw[pos] / self.total;
        match self.rule {
            QuantileRule::Math => {
                if wlow == 0.0 {
                    qlow
                } else {
                    qup
                }
            }
            // R's (qlow + qup) / 2, overflowing where R's does.
            #[allow(clippy::manual_midpoint)]
            QuantileRule::School => {
                if wlow == 0.0 {
                    (qlow + qup) / 2.0
                } else {
                    qup
                }
            }
            // R's ilow is 1-based: pos + 1.
            QuantileRule::Hf3 => {
                if wlow == 0.0 && (pos + 1) % 2 == 0 {
                    qlow
                } else {
                    qup
                }
            }
            _ => {
                let wup = self.cumw[next] / self.total - p;
                let gamma = wlow / (wup + wlow);
                qlow * (1.0 - gamma) + qup * gamma
            }
        }
    }
}

/// Plotting positions pk of the interpolating rules, from the weights w and their
/// cumulative sums cw in value order (R's qrule_hf5 .. hf9 and qrule_shahvaish, operation
/// by operation); None where R's rule is undefined (hf7 with one value).
fn plotting_positions(rule: QuantileRule, w: &[f64], cw: &[f64]) -> Option<Vec<f64>> {
    let n = w.len();
    let (last_cw, last_w) = (*cw.last()?, *w.last()?);
    // R's c(0, cumw[-n]): the cumulative weight before each value.
    let before = |k: usize| if k == 0 { 0.0 } else { cw[k - 1] };
    let pk: Vec<f64> = match rule {
        QuantileRule::Hf5 => (0..n).map(|k| (cw[k] - w[k] / 2.0) / last_cw).collect(),
        QuantileRule::Hf6 => (0..n).map(|k| cw[k] / (last_cw + last_w)).collect(),
        QuantileRule::Hf7 => {
            let denom = *cw.get(n.checked_sub(2)?)?;
            (0..n).map(|k| before(k) / denom).collect()
        }
        QuantileRule::Hf8 => {
            let denom = last_cw + last_w / 3.0;
            (0..n)
                .map(|k| (before(k) / 3.0 + cw[k] * 2.0 / 3.0) / denom)
                .collect()
        }
        QuantileRule::Hf9 => {
            let denom = last_cw + last_w / 4.0;
            (0..n)
                .map(|k| (before(k) * 3.0 / 8.0 + cw[k] * 5.0 / 8.0) / denom)
                .collect()
        }
        QuantileRule::ShahVaish => {
            // R divides by the mean weight for the positions but subtracts half the raw weight.
            let mean = r_mean(w);
            let mut s = Vec::with_capacity(n);
            r_cumsum(w.iter().map(|&v| v / mean), &mut s);
            (0..n)
                .map(|k| (s[k] + 0.5 - w[k] / 2.0) / (n as f64 + 1.0))
                .collect()
        }
        _ => return None,
    };
    Some(pk)
}

/// R's `regularize.values(x, y, mean)`: sorted by x (stably), y averaged (R's `mean`)
/// over tied x.  Plotting positions of positive weights almost always increase already.
fn regularize(x: Vec<f64>, y: Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    if x.windows(2).all(|p| p[0] < p[1]) {
        return (x, y);
    }
    let mut order: Vec<usize> = (0..x.len()).collect();
    // NaN last, as R's order.
    order.sort_by(|&a, &b| {
        x[a].partial_cmp(&x[b])
            .unwrap_or_else(|| x[a].is_nan().cmp(&x[b].is_nan()))
    });
    let (mut knots, mut values) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < order.len() {
        let knot = x[order[start]];
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| x[i] == knot || (x[i].is_nan() && knot.is_nan()))
                .count();
        let tied: Vec<f64> = order[start..end].iter().map(|&i| y[i]).collect();
        knots.push(knot);
        values.push(if tied.len() == 1 {
            tied[0]
        } else {
            r_mean(&tied)
        });
        start = end;
    }
    (knots, values)
}

/// R's `approx(x, y, xout = v, method, rule = 2, f = 0)$y` at one point (C `approx1`):
/// the end values beyond the knots, linear or constant (left value) in between.
fn approx(x: &[f64], y: &[f64], v: f64, constant: bool) -> f64 {
    let n = x.len();
    if n == 0 {
        return f64::NAN;
    }
    let (mut i, mut j) = (0, n - 1);
    if v < x[i] {
        return y[i];
    }
    if v > x[j] {
        return y[j];
    }
    while i + 1 < j {
        let ij = i.midpoint(j);
        if v < x[ij] {
            j = ij;
        } else {
            i = ij;
        }
    }
    if v == x[j] {
        return y[j];
    }
    if v == x[i] || constant {
        return y[i];
    }
    y[i] + (y[j] - y[i]) * ((v - x[i]) / (x[j] - x[i]))
}

/// Key whose unsigned order is the order of the doubles, -0 and +0 as one value (as R's
/// `order`).  NaN never gets here.
fn order_key(x: f64) -> u64 {
    let bits = (x + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The double of an `order_key` (+0 for either zero).
fn key_value(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// (keys, rows) stably sorted by key: a least-significant-digit radix sort, 11 bits a
/// pass, skipping the passes on which every key has the same digit.
fn radix_sort(mut keys: Vec<u64>, mut rows: Vec<u32>) -> (Vec<u64>, Vec<u32>) {
    const BITS: usize = 11;
    const BUCKETS: usize = 1 << BITS;
    const PASSES: usize = 64usize.div_ceil(BITS);
    let n = keys.len();
    if n < 256 {
        let mut pairs: Vec<(u64, u32)> = keys.into_iter().zip(rows).collect();
        pairs.sort_by_key(|&(k, _)| k);
        return pairs.into_iter().unzip();
    }
    let digit = |k: u64, pass: usize| ((k >> (pass * BITS)) as usize) & (BUCKETS - 1);
    let mut counts = vec![[0usize; BUCKETS]; PASSES];
    for &k in &keys {
        for (pass, c) in counts.iter_mut().enumerate() {
            c[digit(k, pass)] += 1;
        }
    }
    let (mut keys_out, mut rows_out) = (vec![0u64; n], vec![0u32; n]);
    for (pass, c) in counts.iter().enumerate() {
        if c.contains(&n) {
            continue;
        }
        let mut next = [0usize; BUCKETS];
        let mut sum = 0;
        for (slot, &count) in next.iter_mut().zip(c.iter()) {
            *slot = sum;
            sum += count;
        }
        for (&k, &r) in keys.iter().zip(&rows) {
            let slot = &mut next[digit(k, pass)];
            keys_out[*slot] = k;
            rows_out[*slot] = r;
            *slot += 1;
        }
        std::mem::swap(&mut keys, &mut keys_out);
        std::mem::swap(&mut rows, &mut rows_out);
    }
    (keys, rows)
}

/// The rows of one domain, in row order and by value (ties in row order), and the
/// values in that order.
#[derive(Clone, Debug)]
struct DomainRows {
    by_row: Vec<u32>,
    by_value: Vec<u32>,
    sorted: Vec<f64>,
}

impl DomainRows {
    /// A domain's rows (in row order) sorted by value, and the values in that order.
    fn sort(by_row: &[u32], values: &[f64]) -> (Vec<u32>, Vec<f64>) {
        let keys = by_row
            .iter()
            .map(|&r| order_key(values[r as usize]))
            .collect();
        let (keys, by_value) = radix_sort(keys, by_row.to_vec());
        let sorted = keys
            .iter()
            .zip(&by_value)
            .map(|(&k, &r)| match key_value(k) {
                // The key made -0 into +0: the row's own zero.
                0.0 => values[r as usize],
                v => v,
            })
            .collect();
        (by_value, sorted)
    }
}

/// Rows per chunk of the parallel passes.
const CHUNK: usize = 1 << 16;

/// The histogram and window passes split the rows into this many parts (at least
/// `CHUNK` rows each), whatever the threads, and join them in order.
const PARTS: usize = 8;

/// Bins of a domain's histogram: about one per 16 rows, at most this many.
const MAX_BINS: usize = 1 << 12;

/// Domains of fewer rows of positive weight are sorted whole: a window's passes over
/// the rows cost more than sorting so few.
pub const MIN_WINDOW_ROWS: usize = 1 << 12;

/// The exponent of the lowest bit a positive double sets: it is a multiple of 2 to
/// that power.
fn lowest_bit(w: f64) -> i32 {
    let bits = w.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = (bits & ((1 << 52) - 1)) | if biased > 0 { 1 << 52 } else { 0 };
    biased.max(1) - 1075 + mantissa.trailing_zeros() as i32
}

/// A running sum of doubles kept to twice their precision (Knuth's two-sum): within a
/// rounding of the exact sum, whatever the number of terms.
#[derive(Clone, Copy, Debug, Default)]
struct TwoSum {
    hi: f64,
    lo: f64,
}

impl TwoSum {
    fn add(&mut self, x: f64) {
        let s = self.hi + x;
        let b = s - self.hi;
        self.lo += (self.hi - (s - b)) + (x - b);
        self.hi = s;
    }

    fn plus(mut self, x: f64) -> f64 {
        self.add(x);
        self.value()
    }

    fn value(self) -> f64 {
        self.hi + self.lo
    }
}

/// What one pass over the rows tells of a domain: its rows, and of those of positive
/// weight (the ones R's rules keep) what reading a window of its distribution needs.
#[derive(Clone, Copy, Debug)]
struct DomainFacts {
    n_rows: usize,
    n_positive: usize,
    min_key: u64,
    max_key: u64,
    min_weight: f64,
    max_weight: f64,
    /// Every positive weight, so every partial sum, is a multiple of 2^low_bit.
    low_bit: i32,
    /// A weight below zero or not finite (the cumulative weights are then no
    /// distribution function), a -0 value (its sign is a row's, which a window's keys do
    /// not keep) or one beyond half the largest double (R's school rule overflows adding
    /// two): the domain's rows are sorted.
    irregular: bool,
}

impl DomainFacts {
    const NONE: DomainFacts = DomainFacts {
        n_rows: 0,
        n_positive: 0,
        min_key: u64::MAX,
        max_key: 0,
        min_weight: f64::INFINITY,
        max_weight: f64::NEG_INFINITY,
        low_bit: i32::MAX,
        irregular: false,
    };

    fn add(&mut self, value: f64, weight: f64) {
        self.n_rows += 1;
        if weight == 0.0 {
            return;
        }
        let negative_zero = value == 0.0 && value.is_sign_negative();
        if !(weight > 0.0 && weight.is_finite()) || negative_zero || value.abs() > f64::MAX / 2.0 {
            self.irregular = true;
            return;
        }
        let key = order_key(value);
        self.n_positive += 1;
        self.min_key = self.min_key.min(key);
        self.max_key = self.max_key.max(key);
        self.min_weight = self.min_weight.min(weight);
        self.max_weight = self.max_weight.max(weight);
        self.low_bit = self.low_bit.min(lowest_bit(weight));
    }

    fn merge(self, o: DomainFacts) -> DomainFacts {
        DomainFacts {
            n_rows: self.n_rows + o.n_rows,
            n_positive: self.n_positive + o.n_positive,
            min_key: self.min_key.min(o.min_key),
            max_key: self.max_key.max(o.max_key),
            min_weight: self.min_weight.min(o.min_weight),
            max_weight: self.max_weight.max(o.max_weight),
            low_bit: self.low_bit.min(o.low_bit),
            irregular: self.irregular || o.irregular,
        }
    }
}

/// Each domain's facts (codes 0..n_domains, `OUTSIDE` for none).  Checks the codes and
/// that the value is present in every row of a domain.
fn domain_facts(
    values: &[f64],
    weights: &[f64],
    domain: &[u32],
    n_domains: usize,
) -> Result<Vec<DomainFacts>> {
    let bad = |r: usize| {
        let d = domain[r];
        d != OUTSIDE && (d as usize >= n_domains || values[r].is_nan())
    };
    let chunk_facts: Vec<Option<Vec<DomainFacts>>> = domain
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, codes)| {
            let mut facts = vec![DomainFacts::NONE; n_domains];
            for (i, &d) in codes.iter().enumerate() {
                let r = c * CHUNK + i;
                if d != OUTSIDE {
                    if bad(r) {
                        return None;
                    }
                    facts[d as usize].add(values[r], weights[r]);
                }
            }
            Some(facts)
        })
        .collect();
    if chunk_facts.iter().any(Option::is_none) {
        let r = (0..domain.len()).find(|&r| bad(r)).unwrap_or(0);
        return Err(if domain[r] as usize >= n_domains {
            CoreError::Value(format!(
                "domain code {} at row {r} is out of range",
                domain[r]
            ))
        } else {
            CoreError::Value(format!(
                "the quantile variable is missing at row {r}; pass na_rm=True to leave such rows out"
            ))
        });
    }
    let mut facts = vec![DomainFacts::NONE; n_domains];
    for chunk in chunk_facts.into_iter().flatten() {
        facts = facts.iter().zip(chunk).map(|(a, b)| a.merge(b)).collect();
    }
    Ok(facts)
}

/// R's `sum` of each domain's weights, in row order.
fn domain_weight_sums(weights: &[f64], domain: &[u32], n_domains: usize) -> Vec<f64> {
    let mut sums = vec![RSum::ZERO; n_domains];
    for (&w, &d) in weights.iter().zip(domain) {
        if let Some(s) = sums.get_mut(d as usize) {
            s.add(w);
        }
    }
    sums.into_iter().map(RSum::value).collect()
}

/// The rows of each `wanted` domain, in row order (none for the others).
fn rows_of_domains(domain: &[u32], wanted: &[bool], facts: &[DomainFacts]) -> Vec<Vec<u32>> {
    let mut rows: Vec<Vec<u32>> = wanted
        .iter()
        .zip(facts)
        .map(|(&w, f)| Vec::with_capacity(if w { f.n_rows } else { 0 }))
        .collect();
    for (r, &d) in domain.iter().enumerate() {
        if wanted.get(d as usize) == Some(&true) {
            rows[d as usize].push(r as u32);
        }
    }
    rows
}

/// A domain's rows of positive weight by value, in bins of `(order_key - low) >> shift`
/// with their weight: where its distribution reaches a level, to a bin.
#[derive(Clone, Debug)]
struct Histogram {
    low: u64,
    shift: u32,
    weight: Vec<f64>,
}

impl Histogram {
    fn empty(facts: &DomainFacts) -> Histogram {
        let bins = (facts.n_positive / 16)
            .next_power_of_two()
            .clamp(16, MAX_BINS);
        let span = facts.max_key - facts.min_key;
        let shift = (64 - span.leading_zeros()).saturating_sub(bins.trailing_zeros());
        Histogram {
            low: facts.min_key,
            shift,
            weight: vec![0.0; (span >> shift) as usize + 1],
        }
    }

    /// The keys (first, last) of the bins where the cumulative weight passes from
    /// `target - margin` to `target + margin`, up to `max_key`.
    fn window(&self, target: f64, margin: f64, max_key: u64) -> (u64, u64) {
        let last_bin = self.weight.len() - 1;
        let (mut first, mut last) = (None, last_bin);
        let mut end = 0.0;
        for (b, &w) in self.weight.iter().enumerate() {
            end += w;
            if first.is_none() && end > target - margin {
                first = Some(b);
            }
            if end > target + margin {
                last = b;
                break;
            }
        }
        let first = first.unwrap_or(last_bin).min(last);
        let lo = self.low + ((first as u64) << self.shift);
        let hi = u128::from(self.low) + ((last as u128 + 1) << self.shift) - 1;
        (lo, hi.min(u128::from(max_key)) as u64)
    }
}

/// The histograms of the domains read from windows (`None` for the others): one
/// parallel pass over the rows, in fixed parts added in order.
fn histograms(
    values: &[f64],
    weights: &[f64],
    domain: &[u32],
    facts: &[DomainFacts],
    windowed: &[bool],
) -> Vec<Option<Histogram>> {
    let empty: Vec<Option<Histogram>> = facts
        .iter()
        .zip(windowed)
        .map(|(f, &w)| w.then(|| Histogram::empty(f)))
        .collect();
    if !windowed.contains(&true) {
        return empty;
    }
    let part = CHUNK.max(domain.len().div_ceil(PARTS));
    let parts: Vec<Vec<Option<Histogram>>> = domain
        .par_chunks(part)
        .enumerate()
        .map(|(c, codes)| {
            let mut hist = empty.clone();
            for (i, &d) in codes.iter().enumerate() {
                let r = c * part + i;
                if let Some(Some(h)) = hist.get_mut(d as usize) {
                    if weights[r] > 0.0 {
                        h.weight[((order_key(values[r]) - h.low) >> h.shift) as usize] +=
                            weights[r];
                    }
                }
            }
            hist
        })
        .collect();
    let mut total = empty;
    for part in parts {
        for (t, p) in total.iter_mut().zip(part) {
            if let (Some(t), Some(p)) = (t, p) {
                t.weight.iter_mut().zip(p.weight).for_each(|(a, b)| *a += b);
            }
        }
    }
    total
}

/// How R's cumulative weights in a window are known.
#[derive(Clone, Copy, Debug)]
enum WindowSums {
    /// Every partial sum is a multiple of one power of two below 2^53 of it: exact in
    /// any order, so R's exactly.
    Exact,
    /// One weight: R's running sum of k of them depends on k only (`repeated_cumsum`).
    Equal(f64),
    /// R's to within this margin (its long double rounding at each row, ours of the
    /// window's sums); a cumulative weight that close to the level's point cannot
    /// decide, and the domain's rows are sorted.
    Bounded(f64),
}

/// A domain's rows sorted by value and its whole distribution.
#[derive(Clone, Debug)]
struct Sorted {
    rows: DomainRows,
    dist: Distribution,
}

/// Every domain's weighted distribution of one variable under the design's weights.
/// R's step rules (math, school) decide from the cumulative weights around the level's
/// point only, so for them a domain is read from a window: a histogram of its values
/// (one parallel pass, at construction) places each level to a bin, and one pass of
/// `window_counts` at the bins' keys gives the window that `window_quantiles` reads,
/// the rows below it standing as one entry with their cumulative weight.  A domain
/// whose window cannot decide (see `WindowSums`), any other rule, and the replicates
/// sort the domain's rows, once.
#[derive(Debug)]
pub struct DomainQuantiles {
    rule: QuantileRule,
    facts: Vec<DomainFacts>,
    /// The histograms of the domains read from windows.
    histograms: Vec<Option<Histogram>>,
    /// Each domain's rows sorted, when first needed.
    sorted: Vec<OnceLock<Sorted>>,
    /// Rows of each domain.
    pub n_rows: Vec<usize>,
    /// R's `sum` of each domain's weights, in row order.
    pub weight_sum: Vec<f64>,
}

impl DomainQuantiles {
    /// The distributions of `values` in each domain (codes 0..n_domains in `domain`,
    /// `OUTSIDE` for rows in none) under the design's weights with R's `rule`; domains
    /// of at least `min_window_rows` rows of positive weight are read from windows
    /// (`MIN_WINDOW_ROWS`; 0: every domain a window can read, `usize::MAX`: none).
    /// `values` must be present in every row of a domain.
    pub fn new(
        design: &Design,
        values: &[f64],
        domain: &[u32],
        n_domains: usize,
        rule: QuantileRule,
        min_window_rows: usize,
    ) -> Result<DomainQuantiles> {
        check_rows(design, values, domain)?;
        let weights: &[f64] = &design.weights;
        let step_rule = matches!(rule, QuantileRule::Math | QuantileRule::School);
        // R's sums, one long double chain through the rows, start first on this thread;
        // the parallel passes take the others.
        let (weight_sum, facts) = rayon::join(
            || domain_weight_sums(weights, domain, n_domains),
            || {
                let facts = domain_facts(values, weights, domain, n_domains)?;
                let windowed: Vec<bool> = facts
                    .iter()
                    .map(|f| {
                        step_rule
                            && !f.irregular
                            && f.n_positive > 0
                            && f.n_positive >= min_window_rows
                    })
                    .collect();
                let histograms = histograms(values, weights, domain, &facts, &windowed);
                Ok((facts, histograms))
            },
        );
        let (facts, histograms) = facts?;
        Ok(DomainQuantiles {
            rule,
            n_rows: facts.iter().map(|f| f.n_rows).collect(),
            sorted: (0..n_domains).map(|_| OnceLock::new()).collect(),
            facts,
            histograms,
            weight_sum,
        })
    }

    pub fn n_domains(&self) -> usize {
        self.facts.len()
    }

    /// The quantile of each domain at its own levels: `levels` is n_domains x k
    /// (row-major), and so is the result; NaN where a level is NaN or the domain has no
    /// row of non-zero weight.  `values` and `domain` are the ones the distributions
    /// were made of.
    pub fn at(
        &self,
        design: &Design,
        values: &[f64],
        domain: &[u32],
        levels: &[f64],
        k: usize,
    ) -> Result<Vec<f64>> {
        check_rows(design, values, domain)?;
        let n_dom = self.n_domains();
        if levels.len() != n_dom * k {
            return Err(CoreError::Shape(format!(
                "levels have {} values for {n_dom} domains x {k}",
                levels.len()
            )));
        }
        let mut out = vec![f64::NAN; levels.len()];
        // Each (domain, level) read from a window is a target of one window pass.
        let mut slot = vec![u32::MAX; n_dom * k];
        let (mut lo, mut hi, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for (d, h) in self.histograms.iter().enumerate() {
            let Some(h) = h else { continue };
            let (facts, total) = (&self.facts[d], self.weight_sum[d]);
            // The histogram's sums are a double's, in parts: far within this.
            let margin = total * (1e-9 + facts.n_positive as f64 * 2f64.powi(-50));
            for j in 0..k {
                let p = levels[d * k + j];
                if !p.is_nan() {
                    let (a, b) = h.window(p * total, margin, facts.max_key);
                    slot[d * k + j] = targets.len() as u32;
                    lo.push(a);
                    hi.push(b);
                    targets.push(d * k + j);
                }
            }
        }
        let mut unread = vec![false; n_dom];
        if !targets.is_empty() {
            let shift = vec![0; targets.len()];
            let counts =
                window_counts(values, &design.weights, domain, &slot, k, &lo, &hi, &shift)?;
            let (mut x, mut cumw, mut starts) = (Vec::new(), Vec::new(), vec![0]);
            let (mut totals, mut ps, mut cells) = (Vec::new(), Vec::new(), Vec::new());
            let mut e = 0;
            for (t, &cell) in targets.iter().enumerate() {
                let begin = e;
                while counts.target.get(e) == Some(&(t as u32)) {
                    e += 1;
                }
                let d = cell / k;
                match self.window(d, levels[cell], &counts, t, begin..e) {
                    Some((wx, wc)) => {
                        x.extend(wx);
                        cumw.extend(wc);
                        starts.push(x.len());
                        totals.push(self.weight_sum[d]);
                        ps.push(levels[cell]);
                        cells.push(cell);
                    }
                    None => unread[d] = true,
                }
            }
            let got = window_quantiles(self.rule, &x, &cumw, &starts, &totals, &ps)?;
            for (&cell, v) in cells.iter().zip(got) {
                out[cell] = v;
            }
        }
        // The other domains, and those a window could not decide, from all their rows.
        let asked = |d: usize| levels[d * k..(d + 1) * k].iter().any(|p| !p.is_nan());
        let rest: Vec<usize> = (0..n_dom)
            .filter(|&d| (self.histograms[d].is_none() || unread[d]) && asked(d))
            .collect();
        self.sort(design, values, domain, &rest);
        for d in rest {
            let dist = &self.sorted_domain(d)?.dist;
            for j in 0..k {
                out[d * k + j] = dist.quantile(levels[d * k + j]);
            }
        }
        Ok(out)
    }

    /// Target t's window (its `entries` of `counts`) as R's step rule reads it: values
    /// and R's cumulative weights (see `window_quantiles`), or None when it cannot decide
    /// at level p.
    fn window(
        &self,
        d: usize,
        p: f64,
        counts: &WindowCounts,
        t: usize,
        entries: std::ops::Range<usize>,
    ) -> Option<(Vec<f64>, Vec<f64>)> {
        let (facts, total) = (&self.facts[d], self.weight_sum[d]);
        let sums = if total * (1.0 + 1e-9) < 2f64.powi(facts.low_bit.saturating_add(53)) {
            WindowSums::Exact
        } else if facts.min_weight == facts.max_weight {
            WindowSums::Equal(facts.min_weight)
        } else {
            let rows = (facts.n_positive + 1) as f64;
            WindowSums::Bounded(total * (rows * 2f64.powi(-62) + 2f64.powi(-49)))
        };
        let n_below = counts.below_count[t];
        let above = counts.above_min[t] != u64::MAX;
        // The last row below, each distinct value's first row (when it has several) and
        // last row: tied rows between them change nothing in a step rule.
        let mut x = Vec::with_capacity(2 * entries.len() + 2);
        if n_below > 0 {
            x.push(key_value(counts.below_max[t]));
        }
        let mut cumw = Vec::with_capacity(x.capacity());
        if let WindowSums::Equal(w) = sums {
            let mut at_rows = Vec::with_capacity(x.capacity());
            if n_below > 0 {
                at_rows.push(n_below);
            }
            let mut rows = n_below;
            for e in entries {
                let v = key_value(counts.bin[e]);
                if counts.count[e] > 1 {
                    x.push(v);
                    at_rows.push(rows + 1);
                }
                rows += counts.count[e];
                x.push(v);
                at_rows.push(rows);
            }
            cumw = repeated_cumsum(w, &at_rows);
        } else {
            let mut sum = TwoSum::default();
            sum.add(counts.below_weight[t]);
            if n_below > 0 {
                cumw.push(sum.value());
            }
            for e in entries {
                let v = key_value(counts.bin[e]);
                if counts.count[e] > 1 {
                    x.push(v);
                    cumw.push(sum.plus(counts.first[e]));
                }
                sum.add(counts.weight[e]);
                x.push(v);
                cumw.push(sum.value());
            }
        }
        let bound = p * total;
        let below_ok = n_below == 0 || cumw[0] <= bound;
        let reaches = !above || cumw.last().is_some_and(|&c| c > bound);
        let clear = match sums {
            WindowSums::Bounded(margin) => cumw.iter().all(|&c| (c - bound).abs() > margin),
            _ => true,
        };
        if above {
            x.push(key_value(counts.above_min[t]));
            cumw.push(f64::INFINITY);
        }
        (below_ok && reaches && clear).then_some((x, cumw))
    }

    /// Sorts the rows of the domains `which` not sorted yet (in parallel).
    fn sort(&self, design: &Design, values: &[f64], domain: &[u32], which: &[usize]) {
        let mut wanted = vec![false; self.n_domains()];
        for &d in which {
            wanted[d] = self.sorted[d].get().is_none();
        }
        if !wanted.contains(&true) {
            return;
        }
        let weights: &[f64] = &design.weights;
        rows_of_domains(domain, &wanted, &self.facts)
            .into_par_iter()
            .enumerate()
            .filter(|&(d, _)| wanted[d])
            .for_each(|(d, by_row)| {
                let (by_value, sorted) = DomainRows::sort(&by_row, values);
                let pairs = sorted
                    .iter()
                    .zip(&by_value)
                    .map(|(&v, &r)| (v, weights[r as usize]));
                let dist = Distribution::new(self.rule, pairs, self.weight_sum[d]);
                let rows = DomainRows {
                    by_row,
                    by_value,
                    sorted,
                };
                // Another call may have sorted it meanwhile: the same rows.
                let _ = self.sorted[d].set(Sorted { rows, dist });
            });
    }

    fn sorted_domain(&self, d: usize) -> Result<&Sorted> {
        self.sorted[d]
            .get()
            .ok_or_else(|| CoreError::Value(format!("domain {d} was not sorted")))
    }

    /// Each replicate's quantiles at `probs`, domain by domain: n_domains x n_replicates x
    /// k (row-major).  R's `repCI`: the rule applied to the domain's values with the
    /// replicate's analysis weights; NaN where a replicate leaves no weight in the domain.
    pub fn replicate_quantiles(
        &self,
        design: &Design,
        values: &[f64],
        domain: &[u32],
        probs: &[f64],
    ) -> Result<Vec<f64>> {
        check_rows(design, values, domain)?;
        let rep = design
            .replicates()
            .ok_or_else(|| CoreError::Design("not a replicate design".into()))?;
        let n_rep = rep.n_replicates;
        let k = probs.len();
        let all: Vec<usize> = (0..self.n_domains()).collect();
        self.sort(design, values, domain, &all);
        let domains = all
            .iter()
            .map(|&d| self.sorted_domain(d).map(|s| &s.rows))
            .collect::<Result<Vec<_>>>()?;
        // Replicate r's analysis weight of a row: a multiplier of its unit times the
        // sampling weight (R's compressed weights), or the weight itself.
        let weight = |row: u32, r: usize| -> f64 {
            let row = row as usize;
            if rep.per_unit {
                rep.factors[design.unit_of_row[row] as usize * n_rep + r] * design.weights[row]
            } else {
                rep.factors[row * n_rep + r]
            }
        };
        let mut thetas = vec![0.0; self.n_domains() * n_rep * k];
        thetas
            .par_chunks_mut(k.max(1))
            .enumerate()
            .for_each(|(cell, out)| {
                let (d, r) = (cell / n_rep, cell % n_rep);
                let rows = domains[d];
                let total = r_sum(rows.by_row.iter().map(|&row| weight(row, r)));
                let pairs = rows
                    .sorted
                    .iter()
                    .zip(&rows.by_value)
                    .map(|(&v, &row)| (v, weight(row, r)));
                let dist = Distribution::new(self.rule, pairs, total);
                out.iter_mut()
                    .zip(probs)
                    .for_each(|(o, &p)| *o = dist.quantile(p));
            });
        Ok(thetas)
    }
}

/// Checks that `values` and `domain` have the design's rows, at most `u32::MAX`.
fn check_rows(design: &Design, values: &[f64], domain: &[u32]) -> Result<()> {
    let n = design.n_rows;
    if values.len() != n || domain.len() != n {
        return Err(CoreError::Shape(format!(
            "values have {} rows and domain codes {}, the design {n}",
            values.len(),
            domain.len()
        )));
    }
    if n > u32::MAX as usize {
        return Err(CoreError::Shape(format!(
            "quantiles take at most {} rows, not {n}",
            u32::MAX
        )));
    }
    Ok(())
}

/// The replicate variance of each domain's quantiles (n_domains x k) from their
/// replicate values (`thetas`, n_domains x n_replicates x k) and full-sample values
/// (`full`, n_domains x k), each quantile on its own (R's `repCI` calls `svrVar` per
/// quantile, so a replicate undefined for one quantile is dropped for that one only).
/// Also the number of replicates dropped for each.
pub fn replicate_variances(
    design: &Design,
    thetas: &[f64],
    full: &[f64],
    k: usize,
) -> Result<(Vec<f64>, Vec<usize>)> {
    let rep = design
        .replicates()
        .ok_or_else(|| CoreError::Design("not a replicate design".into()))?;
    let n_rep = rep.n_replicates;
    if k == 0 || full.len() % k != 0 || thetas.len() != full.len() * n_rep {
        return Err(CoreError::Shape(format!(
            "{} replicate quantiles for {} full-sample quantiles and {n_rep} replicates",
            thetas.len(),
            full.len()
        )));
    }
    let mut column = vec![0.0; n_rep];
    let mut var = Vec::with_capacity(full.len());
    let mut dropped = Vec::with_capacity(full.len());
    for (cell, &estimate) in full.iter().enumerate() {
        let (d, j) = (cell / k, cell % k);
        for (r, c) in column.iter_mut().enumerate() {
            *c = thetas[(d * n_rep + r) * k + j];
        }
        let (v, n_dropped) = replicate_covariance(rep, &column, &[estimate]);
        var.push(v[0]);
        dropped.push(n_dropped);
    }
    Ok((var, dropped))
}

/// The proportion of each domain at or below each of its quantiles, with its variance:
/// the mean of the indicator `value <= q[d, j]` (R's `svymean(x <= qhat, design)` in
/// `woodruffCI`), every domain at once, one estimate pass per quantile.  `q` is
/// n_domains x k; returns (estimates, variances), each n_domains x k.
pub fn proportions_at_or_below(
    design: &Design,
    values: &[f64],
    domain: &[u32],
    n_domains: usize,
    q: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = design.n_rows;
    if n_domains == 0 || q.is_empty() || q.len() % n_domains != 0 {
        return Err(CoreError::Shape(format!(
            "{} quantiles for {n_domains} domains",
            q.len()
        )));
    }
    if values.len() != n || domain.len() != n {
        return Err(CoreError::Shape(format!(
            "values have {} rows and domain codes {}, the design {n}",
            values.len(),
            domain.len()
        )));
    }
    let k = q.len() / n_domains;
    let (mut estimate, mut variance) = (vec![0.0; q.len()], vec![0.0; q.len()]);
    let mut indicator = vec![0.0; n];
    for j in 0..k {
        indicator
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                let start = c * CHUNK;
                for (i, o) in out.iter_mut().enumerate() {
                    let d = domain[start + i] as usize;
                    *o = if d < n_domains {
                        f64::from(u8::from(values[start + i] <= q[d * k + j]))
                    } else {
                        0.0
                    };
                }
            });
        let res = estimate_by_domain(
            design,
            Estimator::Mean,
            &[Outcome::Numeric(&indicator)],
            domain,
            n_domains,
            false,
        )?;
        for d in 0..n_domains {
            estimate[d * k + j] = res.estimate[d];
            variance[d * k + j] = res.vcov[d];
        }
    }
    Ok((estimate, variance))
}

/// One batch's counts in the windows of its domains' distributions (see `window_counts`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowCounts {
    /// Entries by (target, bin): the target, its bin (`order_key >> shift`) ...
    pub target: Vec<u32>,
    pub bin: Vec<u64>,
    /// ... the rows in it, their weight (added in row order, to twice a double's
    /// precision, then rounded), the first row's weight ...
    pub count: Vec<u64>,
    pub weight: Vec<f64>,
    pub first: Vec<f64>,
    /// ... and the smallest and largest key in it (one value: the bin cannot be split).
    pub low: Vec<u64>,
    pub high: Vec<u64>,
    /// Per target: the rows below its window and their weight (added as the entries'), ...
    pub below_count: Vec<u64>,
    pub below_weight: Vec<f64>,
    /// ... the largest key below (0: none) and the smallest key above (`u64::MAX`: none).
    pub below_max: Vec<u64>,
    pub above_min: Vec<u64>,
}

/// The rows of a window pass (see `window_counts`): those inside each target's window
/// as (target, bin, weight, key) in row order, and per target the rows below (count,
/// weight, largest key) and the smallest key above.
struct Scan {
    inside: Vec<(u32, u64, f64, u64)>,
    below_count: Vec<u64>,
    below: Vec<TwoSum>,
    below_max: Vec<u64>,
    above_min: Vec<u64>,
}

impl Scan {
    fn new(n_targets: usize) -> Scan {
        Scan {
            inside: Vec::new(),
            below_count: vec![0; n_targets],
            below: vec![TwoSum::default(); n_targets],
            below_max: vec![0; n_targets],
            above_min: vec![u64::MAX; n_targets],
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rows(
        &mut self,
        values: &[f64],
        weights: &[f64],
        domain: &[u32],
        slot: &[u32],
        per_domain: usize,
        lo: &[u64],
        hi: &[u64],
        shift: &[u32],
    ) {
        let n_domains = slot.len() / per_domain.max(1);
        for ((&v, &w), &d) in values.iter().zip(weights).zip(domain) {
            if d as usize >= n_domains || w <= 0.0 || v.is_nan() {
                continue;
            }
            let key = order_key(v);
            for &t in &slot[d as usize * per_domain..(d as usize + 1) * per_domain] {
                if t == u32::MAX {
                    continue;
                }
                let ti = t as usize;
                if key < lo[ti] {
                    self.below_count[ti] += 1;
                    self.below[ti].add(w);
                    self.below_max[ti] = self.below_max[ti].max(key);
                } else if key > hi[ti] {
                    self.above_min[ti] = self.above_min[ti].min(key);
                } else {
                    self.inside.push((t, key >> shift[ti], w, key));
                }
            }
        }
    }

    /// The next rows' scan after these.
    fn join(&mut self, next: Scan) {
        self.inside.extend(next.inside);
        for t in 0..self.below.len() {
            self.below_count[t] += next.below_count[t];
            self.below[t].add(next.below[t].hi);
            self.below[t].add(next.below[t].lo);
            self.below_max[t] = self.below_max[t].max(next.below_max[t]);
            self.above_min[t] = self.above_min[t].min(next.above_min[t]);
        }
    }
}

/// The windows a pass reads of a batch of rows (streamed) or of all of them (in memory,
/// `DomainQuantiles::at`): target t holds the rows of its domain
/// with `order_key(value)` in `lo[t]..=hi[t]`, counted in bins of `key >> shift[t]`;
/// `slot` (n_domains x `per_domain`) names each domain's targets (`u32::MAX`: none).
/// Rows in no domain (`OUTSIDE`) or of zero weight (which R's rules drop) are not read.
#[allow(clippy::too_many_arguments)]
pub fn window_counts(
    values: &[f64],
    weights: &[f64],
    domain: &[u32],
    slot: &[u32],
    per_domain: usize,
    lo: &[u64],
    hi: &[u64],
    shift: &[u32],
) -> Result<WindowCounts> {
    let n_targets = lo.len();
    let n_domains = slot.len().checked_div(per_domain).unwrap_or(0);
    if values.len() != weights.len()
        || values.len() != domain.len()
        || hi.len() != n_targets
        || shift.len() != n_targets
        || slot.len() != n_domains * per_domain
        || slot
            .iter()
            .any(|&t| t != u32::MAX && t as usize >= n_targets)
        || shift.iter().any(|&s| s >= 64)
    {
        return Err(CoreError::Shape(format!(
            "window counts: {} values, {} weights, {} domain codes, {} slots for {n_targets} targets",
            values.len(),
            weights.len(),
            domain.len(),
            slot.len()
        )));
    }
    // The rows scanned in parallel, in parts fixed by their number, joined in order.
    let part = CHUNK.max(values.len().div_ceil(PARTS));
    let scans: Vec<Scan> = values
        .par_chunks(part)
        .zip(weights.par_chunks(part))
        .zip(domain.par_chunks(part))
        .map(|((v, w), d)| {
            let mut scan = Scan::new(n_targets);
            scan.rows(v, w, d, slot, per_domain, lo, hi, shift);
            scan
        })
        .collect();
    let mut scan = Scan::new(n_targets);
    for part in scans {
        scan.join(part);
    }
    let mut out = WindowCounts {
        below_count: scan.below_count,
        below_weight: scan.below.into_iter().map(TwoSum::value).collect(),
        below_max: scan.below_max,
        above_min: scan.above_min,
        ..WindowCounts::default()
    };
    let mut inside = scan.inside;
    // Stable: each entry's rows stay in row order.
    inside.sort_by_key(|&(t, b, _, _)| (t, b));
    let mut sums: Vec<TwoSum> = Vec::new();
    for (t, b, w, key) in inside {
        let same = out.target.last() == Some(&t) && out.bin.last() == Some(&b);
        match (
            out.count.last_mut(),
            sums.last_mut(),
            out.low.last_mut(),
            out.high.last_mut(),
        ) {
            (Some(c), Some(s), Some(low), Some(high)) if same => {
                *c += 1;
                s.add(w);
                *low = (*low).min(key);
                *high = (*high).max(key);
            }
            _ => {
                out.target.push(t);
                out.bin.push(b);
                out.count.push(1);
                sums.push(TwoSum { hi: w, lo: 0.0 });
                out.first.push(w);
                out.low.push(key);
                out.high.push(key);
            }
        }
    }
    out.weight = sums.into_iter().map(TwoSum::value).collect();
    Ok(out)
}

/// Quantiles read from windows of domains' distributions (a streamed design's last
/// pass, where the rows never meet in memory).  Window `t` is `x[starts[t]..starts[t +
/// 1]]` with `cumw` alike: values in R's order, each with its cumulative weight as R's
/// `cumsum` gives it on all the rows (the rows below the window are its first entry,
/// the last row below with the weight of all of them; the first row above follows with
/// an infinite `cumw`), `totals[t]` R's `sum` of the domain's weights and `levels[t]`
/// the probability.  R's step rule on the window picks the value it picks on all the
/// rows, since only the entries around `p * total` take part in its decision; for the
/// step rules `math` and `school` only (the others read every weight).
pub fn window_quantiles(
    rule: QuantileRule,
    x: &[f64],
    cumw: &[f64],
    starts: &[usize],
    totals: &[f64],
    levels: &[f64],
) -> Result<Vec<f64>> {
    if !matches!(rule, QuantileRule::Math | QuantileRule::School) {
        return Err(CoreError::Value(format!(
            "qrule {rule:?} reads every weight: only math and school read a window"
        )));
    }
    let n_windows = totals.len();
    if x.len() != cumw.len()
        || starts.len() != n_windows + 1
        || levels.len() != n_windows
        || starts.windows(2).any(|s| s[0] > s[1])
        || starts.last().is_some_and(|&end| end > x.len())
    {
        return Err(CoreError::Shape(format!(
            "{} window values, {} cumulative weights, {} starts for {n_windows} windows",
            x.len(),
            cumw.len(),
            starts.len()
        )));
    }
    Ok((0..n_windows)
        .map(|t| {
            let (a, b) = (starts[t], starts[t + 1]);
            Distribution {
                rule,
                x: x[a..b].to_vec(),
                cumw: cumw[a..b].to_vec(),
                total: totals[t],
                monotone: true,
                knots: Vec::new(),
                at_knots: Vec::new(),
            }
            .quantile(levels[t])
        })
        .collect())
}

/// R's `cumsum` of one weight repeated, read after each of `counts` (increasing)
/// additions: the running long-double sum of a domain of equal weights, whatever the
/// rows' order, so the cumulative weight of the first k rows is known from k alone.
pub fn repeated_cumsum(weight: f64, counts: &[u64]) -> Vec<f64> {
    let mut sum = LongDouble::ZERO;
    let mut done = 0u64;
    counts
        .iter()
        .map(|&k| {
            while done < k {
                sum = sum.add_f64(weight);
                done += 1;
            }
            sum.to_f64()
        })
        .collect()
}

/// The quantiles at `levels` of one domain's rows (`values` and `weights` in row order):
/// the in-memory rule (R's order, `cumsum` and `sum`), for the rows a streamed design
/// collects when the sums of its windows cannot decide at the last bit.
pub fn rows_quantiles(
    rule: QuantileRule,
    values: &[f64],
    weights: &[f64],
    levels: &[f64],
) -> Result<Vec<f64>> {
    if values.len() != weights.len() || values.len() > u32::MAX as usize {
        return Err(CoreError::Shape(format!(
            "{} values and {} weights",
            values.len(),
            weights.len()
        )));
    }
    if let Some(r) = values.iter().position(|v| v.is_nan()) {
        return Err(CoreError::Value(format!(
            "the quantile variable is missing at row {r}"
        )));
    }
    let by_row: Vec<u32> = (0..values.len() as u32).collect();
    let (by_value, sorted) = DomainRows::sort(&by_row, values);
    let pairs = sorted
        .iter()
        .zip(&by_value)
        .map(|(&v, &r)| (v, weights[r as usize]));
    let dist = Distribution::new(rule, pairs, r_sum(weights.iter().copied()));
    Ok(levels.iter().map(|&p| dist.quantile(p)).collect())
}

/// Degrees of freedom of each domain of a linearisation design (R's `degf` of the domain
/// as a subset): first-stage PSUs minus strata among the domain's rows of non-zero weight.
pub fn domain_degf(design: &Design, domain: &[u32], n_domains: usize) -> Result<Vec<usize>> {
    let stage = match &design.variance {
        Variance::Linearization(lin) => lin.stages.first(),
        Variance::Replicates(_) => None,
    }
    .ok_or_else(|| CoreError::Design("the design has no sampling stages".into()))?;
    if domain.len() != design.n_rows {
        return Err(CoreError::Shape(format!(
            "domain codes have {} rows, the design {}",
            domain.len(),
            design.n_rows
        )));
    }
    let n_clusters = stage.n_clusters;
    let cluster_of_row = |r: usize| stage.cluster_of_unit[design.unit_of_row[r] as usize] as usize;
    let used = |r: usize| (domain[r] as usize) < n_domains && design.weights[r] != 0.0;
    // (domain, PSU) pairs present: a bit table when it is small, else sorted keys.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let bits = n_domains.saturating_mul(n_clusters);
    if bits <= 1 << 28 {
        let mut seen = vec![0u64; bits.div_ceil(64)];
        for r in (0..design.n_rows).filter(|&r| used(r)) {
            let key = domain[r] as usize * n_clusters + cluster_of_row(r);
            if seen[key / 64] & (1 << (key % 64)) == 0 {
                seen[key / 64] |= 1 << (key % 64);
                pairs.push((domain[r] as usize, cluster_of_row(r)));
            }
        }
    } else {
        let mut keys: Vec<(usize, usize)> = (0..design.n_rows)
            .filter(|&r| used(r))
            .map(|r| (domain[r] as usize, cluster_of_row(r)))
            .collect();
        keys.par_sort_unstable();
        keys.dedup();
        pairs = keys;
    }
    let mut n_psu = vec![0usize; n_domains];
    let mut strata: Vec<(usize, u32)> = Vec::with_capacity(pairs.len());
    for &(d, c) in &pairs {
        n_psu[d] += 1;
        strata.push((d, stage.group_of_cluster[c]));
    }
    strata.sort_unstable();
    strata.dedup();
    let mut n_strata = vec![0usize; n_domains];
    for &(d, _) in &strata {
        n_strata[d] += 1;
    }
    Ok(n_psu
        .iter()
        .zip(&n_strata)
        .map(|(&p, &h)| p.saturating_sub(h))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile(rule: QuantileRule, x: &[f64], w: &[f64], p: f64) -> f64 {
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by(|&a, &b| x[a].partial_cmp(&x[b]).unwrap());
        let total = r_sum(w.iter().copied());
        Distribution::new(rule, order.iter().map(|&i| (x[i], w[i])), total).quantile(p)
    }

    const ONE_TO_TEN: [f64; 10] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];

    #[test]
    fn step_rules_by_hand() {
        // x = 1..10 with weight 1: the cumulative weight reaches 5 = 0.5 x 10 exactly at 5.
        let w = [1.0; 10];
        assert_eq!(quantile(QuantileRule::Math, &ONE_TO_TEN, &w, 0.5), 5.0);
        assert_eq!(quantile(QuantileRule::School, &ONE_TO_TEN, &w, 0.5), 5.5);
        assert_eq!(quantile(QuantileRule::Math, &ONE_TO_TEN, &w, 0.55), 6.0);
        // hf3 takes the lower value at an even position only: 5 is the 5th.
        assert_eq!(quantile(QuantileRule::Hf3, &ONE_TO_TEN, &w, 0.5), 6.0);
        assert_eq!(quantile(QuantileRule::Hf3, &ONE_TO_TEN, &w, 0.4), 4.0);
        // hf4 interpolates: at 0.55 the weight is half-way from 5 (cum 5) to 6 (cum 6).
        assert!((quantile(QuantileRule::Hf4, &ONE_TO_TEN, &w, 0.55) - 5.5).abs() < 1e-12);
        // R: survey:::qrule_math(1:10, rep(1, 10), 0.05) is 2: when no cumulative weight
        // is at most p * sum(w), survey's last() gives the first position, and its
        // weight is above p, so the next value.
        assert_eq!(quantile(QuantileRule::Math, &ONE_TO_TEN, &w, 0.05), 2.0);
    }

    #[test]
    fn weights_move_the_step() {
        // Weights 1, 1, 2 on 1, 2, 3: half the total (2) is reached exactly at 2.
        let (x, w) = ([3.0, 1.0, 2.0], [2.0, 1.0, 1.0]);
        assert_eq!(quantile(QuantileRule::Math, &x, &w, 0.5), 2.0);
        assert_eq!(quantile(QuantileRule::School, &x, &w, 0.5), 2.5);
        assert_eq!(quantile(QuantileRule::Math, &x, &w, 0.6), 3.0);
        // A row of zero weight is not there at all: a quarter of the weight is reached
        // at 1, not at 0.5.
        let (x0, w0) = ([3.0, 1.0, 2.0, 0.5], [2.0, 1.0, 1.0, 0.0]);
        assert_eq!(quantile(QuantileRule::Math, &x0, &w0, 0.25), 1.0);
    }

    #[test]
    fn hf3_merges_tied_values() {
        // 1, 1, 2, 3 with weight 1: distinct 1 (weight 2), 2, 3; the cumulative weight
        // reaches 2 = 0.5 x 4 at the first distinct value (odd position): the next one.
        let x = [1.0, 2.0, 1.0, 3.0];
        assert_eq!(quantile(QuantileRule::Hf3, &x, &[1.0; 4], 0.5), 2.0);
        // At 0.75 it reaches 3 at the second distinct value (even): that one.
        assert_eq!(quantile(QuantileRule::Hf3, &x, &[1.0; 4], 0.75), 2.0);
    }

    #[test]
    fn interpolating_rules_are_hyndman_fan_with_equal_weights() {
        // x = 1..10: type 7 at p is 1 + 9p; type 6 is p (n + 1); type 5 is n p + 1/2;
        // type 8 is (n + 1/3) p + 1/3; type 9 is (n + 1/4) p + 3/8 (Hyndman & Fan 1996).
        let w = [1.0; 10];
        let q = |rule, p| quantile(rule, &ONE_TO_TEN, &w, p);
        assert_eq!(q(QuantileRule::Hf7, 0.5), 5.5);
        assert!((q(QuantileRule::Hf7, 0.25) - 3.25).abs() < 1e-14);
        assert!((q(QuantileRule::Hf6, 0.25) - 2.75).abs() < 1e-14);
        assert!((q(QuantileRule::Hf5, 0.25) - 3.0).abs() < 1e-14);
        assert!((q(QuantileRule::Hf8, 0.25) - (10.0 + 1.0 / 3.0) * 0.25 - 1.0 / 3.0).abs() < 1e-14);
        assert!((q(QuantileRule::Hf9, 0.25) - (10.25 * 0.25 + 0.375)).abs() < 1e-14);
        // Beyond the plotting positions: the end values (R's rule = 2).
        assert_eq!(q(QuantileRule::Hf6, 0.01), 1.0);
        assert_eq!(q(QuantileRule::Hf6, 0.99), 10.0);
    }

    #[test]
    fn shah_vaish_steps_at_normalised_positions() {
        // Equal weights: pk = (k + 1/2 - 1/2) / (n + 1) = k / 11 for the k-th value; between
        // two positions the step keeps the value on the left.
        let w = [1.0; 10];
        let q = |p| quantile(QuantileRule::ShahVaish, &ONE_TO_TEN, &w, p);
        assert_eq!(q(5.0 / 11.0), 5.0);
        assert_eq!(q(5.9 / 11.0), 5.0);
        assert_eq!(q(4.9 / 11.0), 4.0);
        assert_eq!(q(0.01), 1.0);
    }

    #[test]
    fn undefined_cases_are_nan() {
        assert!(quantile(QuantileRule::Math, &[], &[], 0.5).is_nan());
        assert!(quantile(QuantileRule::Math, &[1.0], &[0.0], 0.5).is_nan());
        // hf7 needs two values (R's cumw[n - 1]).
        assert!(quantile(QuantileRule::Hf7, &[1.0], &[1.0], 0.5).is_nan());
        assert_eq!(quantile(QuantileRule::Hf6, &[1.0], &[1.0], 0.5), 1.0);
        assert!(quantile(QuantileRule::Math, &[1.0, 2.0], &[1.0, 1.0], f64::NAN).is_nan());
    }

    #[test]
    fn approx_averages_tied_knots() {
        // R: approx(c(0, 1, 1, 2), c(0, 10, 20, 30), xout = 0.5)$y is 7.5 (the tie is 15).
        let (x, y) = regularize(vec![0.0, 1.0, 1.0, 2.0], vec![0.0, 10.0, 20.0, 30.0]);
        assert_eq!(x, vec![0.0, 1.0, 2.0]);
        assert_eq!(approx(&x, &y, 0.5, false), 7.5);
        assert_eq!(approx(&x, &y, 1.5, true), 15.0);
    }

    #[test]
    fn radix_sort_is_stable_and_orders_signs() {
        let values: Vec<f64> = (0..1000)
            .map(|i| f64::from((i * 7919) % 101) - 50.0 + if i % 3 == 0 { -0.0 } else { 0.0 })
            .collect();
        let rows: Vec<u32> = (0..values.len() as u32).collect();
        let keys = rows
            .iter()
            .map(|&r| order_key(values[r as usize]))
            .collect();
        let (sorted_keys, sorted) = radix_sort(keys, rows);
        assert!(sorted_keys.windows(2).all(|k| k[0] <= k[1]));
        for pair in sorted.windows(2) {
            let (a, b) = (values[pair[0] as usize], values[pair[1] as usize]);
            assert!(a < b || (a == b && pair[0] < pair[1]));
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
        for x in [-2.5, -0.0, 0.0, 1e-300, 7.0, f64::INFINITY] {
            assert_eq!(key_value(order_key(x)), x + 0.0);
        }
        assert!(order_key(-1.0) < order_key(-0.5) && order_key(1.0) < order_key(f64::INFINITY));
    }

    #[test]
    fn a_window_decides_as_all_rows() {
        // 1..10 with weight 1: the window 4..6 below which 3 rows weigh 3 (the row 3
        // stands for them), then 7 with an infinite cumulative weight.
        let x = [3.0, 4.0, 5.0, 6.0, 7.0];
        let cumw = [3.0, 4.0, 5.0, 6.0, f64::INFINITY];
        for (rule, p) in [
            (QuantileRule::Math, 0.5),
            (QuantileRule::School, 0.5),
            (QuantileRule::Math, 0.55),
        ] {
            let w = window_quantiles(rule, &x, &cumw, &[0, 5], &[10.0], &[p]).unwrap();
            assert_eq!(w[0], quantile(rule, &ONE_TO_TEN, &[1.0; 10], p));
        }
        assert!(window_quantiles(QuantileRule::Hf7, &x, &cumw, &[0, 5], &[10.0], &[0.5]).is_err());
    }

    #[test]
    fn repeated_weights_sum_as_r() {
        // R: cumsum(rep(0.1, 10))[c(3, 10)] is 0.3 and 1 in long double, rounded once.
        let c = repeated_cumsum(0.1, &[3, 10]);
        assert_eq!(c, vec![r_sum([0.1; 3]), r_sum([0.1; 10])]);
        assert_eq!(c[1], 1.0);
    }

    #[test]
    fn rows_quantiles_are_the_in_memory_rule() {
        let (x, w) = ([3.0, 1.0, 2.0, 2.0], [2.0, 1.0, 0.5, 0.5]);
        let got = rows_quantiles(QuantileRule::Math, &x, &w, &[0.25, 0.5, 0.6]).unwrap();
        let want: Vec<f64> = [0.25, 0.5, 0.6]
            .iter()
            .map(|&p| quantile(QuantileRule::Math, &x, &w, p))
            .collect();
        assert_eq!(got, want);
    }

    fn srs(weights: &[f64]) -> Design {
        use crate::design::DesignSpec;
        Design::new(&DesignSpec {
            ..DesignSpec::weighted(weights)
        })
        .unwrap()
    }

    #[test]
    fn windows_read_what_all_rows_sorted_give() {
        // 3,000 rows in 3 domains and none; values with many ties, weights of every kind
        // the windows know (integer: exact sums; one weight: R's repeated sum; any: to a
        // bound) with zero weights among them; levels that hit steps exactly.
        let n = 3000;
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let values: Vec<f64> = (0..n).map(|_| (next() * 40.0).floor() - 10.0).collect();
        let domain: Vec<u32> = (0..n)
            .map(|i| if i % 7 == 0 { OUTSIDE } else { (i % 3) as u32 })
            .collect();
        let kinds: [Vec<f64>; 3] = [
            (0..n).map(|i| f64::from((i % 5) as u32)).collect(),
            (0..n)
                .map(|i| if i % 11 == 0 { 0.0 } else { 0.1 })
                .collect(),
            (0..n)
                .map(|i| {
                    if i % 13 == 0 {
                        0.0
                    } else {
                        1.0 + next() * 30.0
                    }
                })
                .collect(),
        ];
        let levels: Vec<f64> = (0..3)
            .flat_map(|_| [0.0, 0.01, 0.25, 0.5, 0.5 + 1e-9, 0.75, 0.999])
            .collect();
        for (kind, weights) in kinds.iter().enumerate() {
            let design = srs(weights);
            for rule in [QuantileRule::Math, QuantileRule::School] {
                let windows = DomainQuantiles::new(&design, &values, &domain, 3, rule, 0).unwrap();
                let sorted =
                    DomainQuantiles::new(&design, &values, &domain, 3, rule, usize::MAX).unwrap();
                assert!(windows.histograms.iter().all(Option::is_some));
                assert!(sorted.histograms.iter().all(Option::is_none));
                let bits = |levels: &[f64], k| {
                    let got = windows.at(&design, &values, &domain, levels, k).unwrap();
                    let want = sorted.at(&design, &values, &domain, levels, k).unwrap();
                    assert_eq!(
                        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    );
                };
                bits(&levels, 7);
                // Every window decided.
                assert!(windows.sorted.iter().all(|s| s.get().is_none()));
                // At level 1 the last cumulative weight is the total: bounded sums
                // cannot decide, and the domain's rows are sorted.
                bits(&[1.0; 3], 1);
                let unsorted = windows.sorted.iter().filter(|s| s.get().is_none()).count();
                assert_eq!(unsorted, if kind == 2 { 0 } else { 3 });
            }
        }
    }

    #[test]
    fn window_counts_by_hand() {
        // Domain 0 (weights 1..6 on 1..6, one row outside, one of zero weight), one
        // target: keys of 2..4 counted at full resolution.
        let values = [1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 9.0, 2.5];
        let weights = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0];
        let domain = [0, 0, 0, 0, 0, 0, OUTSIDE, 0];
        let (lo, hi) = (order_key(2.0), order_key(4.0));
        let c = window_counts(&values, &weights, &domain, &[0], 1, &[lo], &[hi], &[0]).unwrap();
        assert_eq!(c.bin, vec![order_key(2.0), order_key(3.0), order_key(4.0)]);
        assert_eq!(
            (c.count, c.weight, c.first),
            (vec![1, 2, 1], vec![2.0, 7.0, 5.0], vec![2.0, 3.0, 5.0])
        );
        assert_eq!(c.low, c.bin);
        assert_eq!(c.high, c.bin);
        assert_eq!((c.below_count, c.below_weight), (vec![1], vec![1.0]));
        assert_eq!(
            (c.below_max, c.above_min),
            (vec![order_key(1.0)], vec![order_key(5.0)])
        );
    }
}
