//! Weighted survival curves, as R's `survey::svykm`: the product-limit estimate
//! (`svykm.fit`, what `se = FALSE` returns) and the Nelson–Aalen estimate exp(-H(t))
//! that `se = TRUE` returns instead (`survey:::km.stderr`), with the design-based
//! variance of log S(t) = -H(t) (R's `varlog`) through the design's one engine.
//!
//! Both curves come from the rows summed at each distinct time ([`TimeTable`]): one pass
//! over the rows, in chunks whose tables are merged in chunk order (a batch of a
//! streamed data set is such a chunk).  R forms `varlog` as a delta-method combination
//! of the design covariance of two vectors of totals (the weight of each event, the
//! weight at risk at each event time), an n x events matrix; the same linear
//! combination taken row by row gives influence values, and their totals per variance
//! unit at the entries asked for come from one more pass over the rows.

use rayon::prelude::*;

use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::estimate::OUTSIDE;
use crate::variance::{Influence, Variance};

/// A survival curve: S(t) at each tabulated time, ascending.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub time: Vec<f64>,
    pub surv: Vec<f64>,
}

/// Survival rows and the curve each belongs to.
#[derive(Clone, Copy, Debug)]
pub struct SurvivalRows<'a> {
    pub time: &'a [f64],
    /// 1 for an event, 0 for a censored time.
    pub event: &'a [f64],
    pub weights: &'a [f64],
    /// The curve of each row (0..n_curves; `OUTSIDE`: in none, its values unread);
    /// None: every row is in curve 0.
    pub curve: Option<&'a [u32]>,
    pub n_curves: usize,
}

impl SurvivalRows<'_> {
    fn len(&self) -> usize {
        self.time.len()
    }

    #[inline]
    fn curve_of(&self, k: usize) -> Option<usize> {
        match self.curve {
            None => Some(0),
            Some(c) if c[k] == OUTSIDE => None,
            Some(c) => Some(c[k] as usize),
        }
    }

    fn check_shape(&self) -> Result<()> {
        let n = self.len();
        let curve_len = self.curve.map_or(n, <[u32]>::len);
        if self.event.len() != n || self.weights.len() != n || curve_len != n {
            return Err(CoreError::Shape(format!(
                "time, event, weights and curve codes have {n}, {}, {} and {curve_len} rows",
                self.event.len(),
                self.weights.len()
            )));
        }
        if let Some(&c) = self.curve.and_then(|c| {
            c.iter()
                .find(|&&c| c != OUTSIDE && c as usize >= self.n_curves)
        }) {
            return Err(CoreError::Shape(format!(
                "curve code {c} for {} curves",
                self.n_curves
            )));
        }
        Ok(())
    }

    /// Row k's (time, event, weight), checked; time -0.0 read as 0.0.
    #[inline]
    fn row(&self, k: usize) -> Result<(f64, bool, f64)> {
        let (t, e, w) = (self.time[k], self.event[k], self.weights[k]);
        // One test of all three on the path every row takes; the message is made apart
        // (a Result built in the loop went through the stack on every row).
        if t.is_finite() && t >= 0.0 && (e == 0.0 || e == 1.0) && w.is_finite() && w >= 0.0 {
            Ok((t + 0.0, e == 1.0, w))
        } else {
            Err(Self::bad_row(k, t, e, w))
        }
    }

    #[cold]
    #[inline(never)]
    fn bad_row(k: usize, t: f64, e: f64, w: f64) -> CoreError {
        if !(t.is_finite() && t >= 0.0) {
            CoreError::Value(format!(
                "survival time {t} at row {k} is not a finite number >= 0"
            ))
        } else if e != 0.0 && e != 1.0 {
            CoreError::Value(format!(
                "event {e} at row {k} is not 0 (censored) or 1 (event)"
            ))
        } else {
            CoreError::Value(format!("weight {w} at row {k} is not a finite number >= 0"))
        }
    }
}

/// What one pass finds wrong or missing in survival columns: the counts of missing
/// (NaN), infinite and negative times, and of missing events and events other than 0
/// and 1 (an infinite event among them).  Every check of a survival outcome reads these,
/// so a complete outcome costs one pass and the messages are made only for a problem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SurvivalCensus {
    pub missing_time: u64,
    pub infinite_time: u64,
    pub negative_time: u64,
    pub missing_event: u64,
    pub non_binary_event: u64,
}

impl SurvivalCensus {
    /// The census of `time` (None: no time column) and `event`, in parallel over fixed
    /// chunks (counts: the same whatever the threads).
    pub fn of(time: Option<&[f64]>, event: &[f64]) -> Result<Self> {
        if let Some(t) = time.filter(|t| t.len() != event.len()) {
            return Err(CoreError::Shape(format!(
                "{} times and {} events",
                t.len(),
                event.len()
            )));
        }
        let count = |c: usize| {
            let range = c * CHUNK..event.len().min((c + 1) * CHUNK);
            let mut census = SurvivalCensus::default();
            for &e in &event[range.clone()] {
                census.missing_event += u64::from(e.is_nan());
                census.non_binary_event += u64::from(e != 0.0 && e != 1.0 && !e.is_nan());
            }
            for &t in time.map_or(&[][..], |t| &t[range]) {
                census.missing_time += u64::from(t.is_nan());
                census.infinite_time += u64::from(t.is_infinite());
                census.negative_time += u64::from(t < 0.0);
            }
            census
        };
        Ok((0..event.len().div_ceil(CHUNK))
            .into_par_iter()
            .map(count)
            .reduce(SurvivalCensus::default, |a, b| SurvivalCensus {
                missing_time: a.missing_time + b.missing_time,
                infinite_time: a.infinite_time + b.infinite_time,
                negative_time: a.negative_time + b.negative_time,
                missing_event: a.missing_event + b.missing_event,
                non_binary_event: a.non_binary_event + b.non_binary_event,
            }))
    }
}

/// One curve's rows summed at each of its distinct times (ascending).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeTable {
    pub time: Vec<f64>,
    /// Rows (of any weight) at each time.
    pub rows: Vec<u64>,
    pub weight: Vec<f64>,
    /// Weight of the events.
    pub died: Vec<f64>,
    /// Events of non-zero weight: the Nelson–Aalen entries at each time.
    pub entries: Vec<u64>,
}

impl TimeTable {
    fn push(&mut self, time: f64, (rows, weight, died, entries): (u64, f64, f64, u64)) {
        self.time.push(time);
        self.rows.push(rows);
        self.weight.push(weight);
        self.died.push(died);
        self.entries.push(entries);
    }

    fn at(&self, i: usize) -> (u64, f64, f64, u64) {
        (self.rows[i], self.weight[i], self.died[i], self.entries[i])
    }

    /// The two tables as one: at a time both hold, this table's sums plus `later`'s (the
    /// rows of `later` come after this table's).
    #[must_use]
    pub fn merge(&self, later: &TimeTable) -> TimeTable {
        let mut out = TimeTable::default();
        let (mut i, mut j) = (0, 0);
        while i < self.time.len() || j < later.time.len() {
            let next_mine =
                j == later.time.len() || (i < self.time.len() && self.time[i] <= later.time[j]);
            if next_mine && j < later.time.len() && self.time[i] == later.time[j] {
                let (a, b) = (self.at(i), later.at(j));
                out.push(self.time[i], (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3));
                i += 1;
                j += 1;
            } else if next_mine {
                out.push(self.time[i], self.at(i));
                i += 1;
            } else {
                out.push(later.time[j], later.at(j));
                j += 1;
            }
        }
        out
    }

    /// Rows of the curve.
    pub fn n_rows(&self) -> u64 {
        self.rows.iter().sum()
    }

    /// The weighted product-limit estimate (R's `survey:::svykm.fit`): tabulated at 0
    /// (where S = 1) and at every distinct time, censored or not.  Where no weight is
    /// left at risk the curve stays where it was (R would give 0/0 = NaN there).
    pub fn product_limit(&self) -> Curve {
        let total: f64 = self.weight.iter().sum();
        let mut curve = Curve {
            time: Vec::with_capacity(self.time.len() + 1),
            surv: Vec::with_capacity(self.time.len() + 1),
        };
        curve.time.push(0.0);
        curve.surv.push(1.0);
        // R's at-risk weight is sum(w) minus the running total of the earlier times' weight.
        let mut earlier = 0.0;
        let mut s = 1.0;
        for ((&t, &all), &died) in self.time.iter().zip(&self.weight).zip(&self.died) {
            let at_risk = total - earlier;
            if at_risk > 0.0 {
                s *= 1.0 - died / at_risk;
            }
            curve.time.push(t);
            curve.surv.push(s.max(0.0));
            earlier += all;
        }
        curve
    }
}

/// Rows per chunk of the passes over the rows.
const CHUNK: usize = 1 << 16;
/// Distinct times of a chunk beyond which it is sorted rather than hashed: most of its
/// times are distinct, and a table per distinct time would be as large as the rows.
const HASHED_TIMES: usize = 1 << 12;
/// No time's bits (a finite time's are never all ones).
const EMPTY: u64 = u64::MAX;

/// Each curve's time table: chunks of rows summed at their distinct times (hashed, or
/// sorted when most of a chunk's times are distinct), merged in chunk order, so the
/// sums are the same whatever the threads.
pub fn time_tables(rows: &SurvivalRows) -> Result<Vec<TimeTable>> {
    rows.check_shape()?;
    let n = rows.len();
    let parts: Vec<Result<Vec<TimeTable>>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| chunk_tables(rows, c * CHUNK..n.min((c + 1) * CHUNK)))
        .collect();
    let mut level = parts.into_iter().collect::<Result<Vec<_>>>()?;
    // Neighbouring chunks merged pairwise, then pairs of those: a fixed tree, and
    // O(n log chunks) work when the tables are as long as the chunks.
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut it = level.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => a.iter().zip(&b).map(|(x, y)| x.merge(y)).collect(),
                None => a,
            });
        }
        level = next;
    }
    Ok(level
        .pop()
        .unwrap_or_else(|| vec![TimeTable::default(); rows.n_curves]))
}

/// Where each of a curve's distinct times is among them: a hash of their bits (one
/// memory access per row, where a binary search over many times takes twenty).
#[derive(Clone, Debug)]
struct TimeIndex {
    keys: Vec<u64>,
    position: Vec<u32>,
}

impl TimeIndex {
    fn new(times: &[f64]) -> Self {
        let cap = (2 * times.len()).next_power_of_two().max(16);
        let mut index = TimeIndex {
            keys: vec![EMPTY; cap],
            position: vec![0; cap],
        };
        for (i, &t) in times.iter().enumerate() {
            let key = t.to_bits();
            let mut h = slot(key, cap);
            while index.keys[h] != EMPTY {
                h = (h + 1) & (cap - 1);
            }
            index.keys[h] = key;
            index.position[h] = i as u32;
        }
        index
    }

    /// Position of `t` (-0.0 read as +0.0), or None if it is not one of the times.
    #[inline]
    fn get_checked(&self, t: f64) -> Option<usize> {
        let key = (t + 0.0).to_bits();
        let cap = self.keys.len();
        let mut h = slot(key, cap);
        loop {
            match self.keys[h] {
                k if k == key => return Some(self.position[h] as usize),
                EMPTY => return None,
                _ => h = (h + 1) & (cap - 1),
            }
        }
    }
}

fn chunk_tables(rows: &SurvivalRows, range: std::ops::Range<usize>) -> Result<Vec<TimeTable>> {
    let nc = rows.n_curves;
    let mut cap: usize = 256;
    let mut keys = vec![EMPTY; cap];
    let mut slot_of = vec![0u32; cap];
    let mut times: Vec<f64> = Vec::new();
    // Per (distinct time, curve): rows, weight, event weight, events of non-zero weight.
    let mut sums: Vec<(u64, f64, f64, u64)> = Vec::new();
    for k in range.clone() {
        let Some(d) = rows.curve_of(k) else { continue };
        let (t, event, w) = rows.row(k)?;
        let key = t.to_bits();
        let mut h = slot(key, cap);
        while keys[h] != key && keys[h] != EMPTY {
            h = (h + 1) & (cap - 1);
        }
        if keys[h] == EMPTY {
            if times.len() == HASHED_TIMES {
                return sorted_chunk_tables(rows, range);
            }
            keys[h] = key;
            slot_of[h] = times.len() as u32;
            times.push(t);
            sums.resize(times.len() * nc, (0, 0.0, 0.0, 0));
            if 2 * times.len() > cap {
                cap *= 2;
                (keys, slot_of) = rehash(&keys, &slot_of, cap);
            }
            h = slot(key, cap);
            while keys[h] != key {
                h = (h + 1) & (cap - 1);
            }
        }
        let s = &mut sums[slot_of[h] as usize * nc + d];
        s.0 += 1;
        s.1 += w;
        if event {
            s.2 += w;
            s.3 += u64::from(w != 0.0);
        }
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_unstable_by(|&a, &b| times[a].total_cmp(&times[b]));
    let mut out = vec![TimeTable::default(); nc];
    for i in order {
        for (d, table) in out.iter_mut().enumerate() {
            let s = sums[i * nc + d];
            if s.0 > 0 {
                table.push(times[i], s);
            }
        }
    }
    Ok(out)
}

#[inline]
fn slot(key: u64, cap: usize) -> usize {
    // Fibonacci hashing of the bits, high bits folded in first (integer-valued times
    // differ only there).
    ((key ^ (key >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - cap.trailing_zeros()))
        as usize
}

fn rehash(keys: &[u64], slot_of: &[u32], cap: usize) -> (Vec<u64>, Vec<u32>) {
    let mut new_keys = vec![EMPTY; cap];
    let mut new_slots = vec![0u32; cap];
    for (&key, &s) in keys.iter().zip(slot_of).filter(|(&k, _)| k != EMPTY) {
        let mut h = slot(key, cap);
        while new_keys[h] != EMPTY {
            h = (h + 1) & (cap - 1);
        }
        new_keys[h] = key;
        new_slots[h] = s;
    }
    (new_keys, new_slots)
}

/// A chunk whose times are mostly distinct: its rows sorted by (curve, time, row).
fn sorted_chunk_tables(
    rows: &SurvivalRows,
    range: std::ops::Range<usize>,
) -> Result<Vec<TimeTable>> {
    let mut keyed = Vec::with_capacity(range.len());
    for k in range {
        if let Some(d) = rows.curve_of(k) {
            let (t, event, w) = rows.row(k)?;
            keyed.push((d, t, event, w));
        }
    }
    // A stable sort: tied rows keep their order, so their sums are in row order.
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut out = vec![TimeTable::default(); rows.n_curves];
    for (d, t, event, w) in keyed {
        let table = &mut out[d];
        if table.time.last() != Some(&t) {
            table.push(t, (0, 0.0, 0.0, 0));
        }
        let i = table.time.len() - 1;
        table.rows[i] += 1;
        table.weight[i] += w;
        if event {
            table.died[i] += w;
            table.entries[i] += u64::from(w != 0.0);
        }
    }
    Ok(out)
}

/// The entries of two time tables of a curve (values per entry, in time order) as the
/// entries of their merge: at each time `earlier`'s, then `later`'s.
pub fn merge_entries<T: Copy>(
    earlier: &TimeTable,
    earlier_entries: &[T],
    later: &TimeTable,
    later_entries: &[T],
) -> Result<Vec<T>> {
    let count = |t: &TimeTable| t.entries.iter().sum::<u64>() as usize;
    if count(earlier) != earlier_entries.len() || count(later) != later_entries.len() {
        return Err(CoreError::Shape(format!(
            "{} and {} entries for tables of {} and {}",
            earlier_entries.len(),
            later_entries.len(),
            count(earlier),
            count(later)
        )));
    }
    let mut out = Vec::with_capacity(earlier_entries.len() + later_entries.len());
    let (mut i, mut j, mut a, mut b) = (0, 0, 0, 0);
    while i < earlier.time.len() || j < later.time.len() {
        let t = match (earlier.time.get(i), later.time.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        if earlier.time.get(i) == Some(&t) {
            let e = earlier.entries[i] as usize;
            out.extend_from_slice(&earlier_entries[a..a + e]);
            a += e;
            i += 1;
        }
        if later.time.get(j) == Some(&t) {
            let e = later.entries[j] as usize;
            out.extend_from_slice(&later_entries[b..b + e]);
            b += e;
            j += 1;
        }
    }
    Ok(out)
}

/// Each curve's weighted product-limit estimate (R's `survey:::svykm.fit`) and rows.
pub fn product_limits(rows: &SurvivalRows) -> Result<Vec<(Curve, u64)>> {
    Ok(time_tables(rows)?
        .iter()
        .map(|t| (t.product_limit(), t.n_rows()))
        .collect())
}

/// Entries per call of the variance engine: it forms a covariance matrix of which only
/// the diagonal is wanted.
const VARIANCE_BLOCK: usize = 16;
/// Blocks of entries whose engine calls run in parallel in the sweep over the entries.
const PARALLEL_BLOCKS: usize = 64;
/// Entries whose replicate estimates one pass per replicate gives.
const REPLICATE_ENTRIES_PER_PASS: usize = 4096;
/// Entries per call for a calibrated design, whose engine call takes n x entries values.
const CALIBRATED_BLOCK: usize = 4;

/// The Nelson–Aalen curve as R's `svykm(se = TRUE)` tabulates it: one entry per event of
/// non-zero weight, in time order with tied events in row order, each adding its own
/// weight over the weight at risk, so the last of tied entries holds the full hazard.
#[derive(Clone, Debug)]
pub struct NelsonAalen {
    /// The curve's code among the rows' curves.
    curve: u32,
    /// The event row of each entry.
    pub rows: Vec<usize>,
    pub time: Vec<f64>,
    /// Cumulative hazard H at each entry; S = exp(-H).
    pub cumhaz: Vec<f64>,
    /// Weight of each entry's event, and the weight at risk at its time.
    weight: Vec<f64>,
    at_risk: Vec<f64>,
    /// The curve's distinct times, where each is, and the entries at or before each.
    table_time: Vec<f64>,
    index: TimeIndex,
    seen: Vec<usize>,
}

/// Each curve's Nelson–Aalen estimate from its time table: the entries placed by a
/// counting sort over (time, row), in one pass over the rows.
pub fn nelson_aalen(rows: &SurvivalRows, tables: &[TimeTable]) -> Result<Vec<NelsonAalen>> {
    let indexes: Vec<TimeIndex> = tables.iter().map(|t| TimeIndex::new(&t.time)).collect();
    // Next free place of each (curve, time).
    let mut next: Vec<Vec<usize>> = tables
        .iter()
        .map(|t| {
            let mut start = 0;
            t.entries
                .iter()
                .map(|&e| {
                    start += e as usize;
                    start - e as usize
                })
                .collect()
        })
        .collect();
    let mut entry_rows: Vec<Vec<usize>> = tables
        .iter()
        .map(|t| vec![0; t.entries.iter().sum::<u64>() as usize])
        .collect();
    for k in 0..rows.len() {
        let Some(d) = rows.curve_of(k) else { continue };
        let (t, event, w) = rows.row(k)?;
        if event && w != 0.0 {
            let i = indexes[d].get_checked(t).ok_or_else(|| {
                CoreError::Value(format!(
                    "time {t} at row {k} is not one of its curve's tabulated times"
                ))
            })?;
            entry_rows[d][next[d][i]] = k;
            next[d][i] += 1;
        }
    }
    tables
        .iter()
        .zip(entry_rows)
        .enumerate()
        .map(|(d, (table, entries))| {
            let weight = entries.iter().map(|&r| rows.weights[r]).collect();
            NelsonAalen::from_entries(d as u32, table, entries, weight)
        })
        .collect()
}

/// The variances of `p` estimates from their influence totals per variance unit
/// (`block`, units x p, row-major): one engine call, whose covariance's diagonal they are.
fn block_variances(design: &Design, block: &[f64], p: usize, present: &[bool]) -> Result<Vec<f64>> {
    design.variances(Influence::UnitTotals {
        totals: block,
        p,
        present: Some(present),
    })
}

/// The entries asked for, sorted and without repeats, and where each asked one is among them.
fn distinct_entries(at: &[usize], n_entries: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    if let Some(&a) = at.iter().find(|&&a| a >= n_entries) {
        return Err(CoreError::Value(format!(
            "entry {a} asked for, the curve has {n_entries}"
        )));
    }
    let mut wanted = at.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let place = at
        .iter()
        .map(|a| wanted.partition_point(|w| w < a))
        .collect();
    Ok((wanted, place))
}

/// Where a row's influence at the wanted entries goes, per distinct time of its curve:
/// the bin (how many wanted entries come before the last entry at or before the time)
/// and C there (the sum of dN / Y^2 to that entry; 0 before the first).  Plain arrays:
/// the plan travels to the batches of a streamed data set.
#[derive(Clone, Debug, PartialEq)]
pub struct BinPlan {
    pub time: Vec<f64>,
    pub bin: Vec<usize>,
    pub c: Vec<f64>,
    /// Wanted entries plus one.
    pub n_bins: usize,
}

/// Sums per (variance unit, bin) of the rows' weight and weight times C, and which
/// units hold rows of the curve: what a pass over the rows (or a batch) gives.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitBins {
    pub weight: Vec<f64>,
    pub weight_c: Vec<f64>,
    pub present: Vec<bool>,
}

impl UnitBins {
    fn zeros(n_units: usize, n_bins: usize) -> Self {
        UnitBins {
            weight: vec![0.0; n_units * n_bins],
            weight_c: vec![0.0; n_units * n_bins],
            present: vec![false; n_units],
        }
    }

    /// These sums plus `later`'s.
    pub fn add(&mut self, later: &UnitBins) {
        self.weight
            .iter_mut()
            .zip(&later.weight)
            .for_each(|(a, b)| *a += b);
        self.weight_c
            .iter_mut()
            .zip(&later.weight_c)
            .for_each(|(a, b)| *a += b);
        self.present
            .iter_mut()
            .zip(&later.present)
            .for_each(|(a, b)| *a |= b);
    }
}

/// The rows of curve `curve` binned by `plan` per variance unit (`units`: each row's
/// unit, 0..n_units), in chunks added in chunk order.
pub fn unit_bins(
    rows: &SurvivalRows,
    curve: u32,
    units: &[u32],
    n_units: usize,
    plan: &BinPlan,
) -> Result<UnitBins> {
    rows.check_shape()?;
    if units.len() != rows.len()
        || plan.bin.len() != plan.time.len()
        || plan.c.len() != plan.time.len()
    {
        return Err(CoreError::Shape(format!(
            "{} rows with {} unit codes; a plan of {} times, {} bins and {} C values",
            rows.len(),
            units.len(),
            plan.time.len(),
            plan.bin.len(),
            plan.c.len()
        )));
    }
    if let Some(&u) = units.iter().find(|&&u| u as usize >= n_units) {
        return Err(CoreError::Shape(format!(
            "unit code {u} for {n_units} units"
        )));
    }
    let index = TimeIndex::new(&plan.time);
    let bins = plan.n_bins;
    let parts: Vec<Result<UnitBins>> = (0..rows.len().div_ceil(CHUNK))
        .into_par_iter()
        .map(|ch| {
            let mut out = UnitBins::zeros(n_units, bins);
            let first = ch * CHUNK;
            let chunk_units = &units[first..rows.len().min(first + CHUNK)];
            for (k, &u) in (first..).zip(chunk_units) {
                if rows.curve_of(k) != Some(curve as usize) {
                    continue;
                }
                let (t, _, w) = rows.row(k)?;
                let u = u as usize;
                out.present[u] = true;
                if w == 0.0 {
                    continue;
                }
                let i = index.get_checked(t).ok_or_else(|| {
                    CoreError::Value(format!(
                        "time {t} at row {k} is not one of the curve's times"
                    ))
                })?;
                out.weight[u * bins + plan.bin[i]] += w;
                out.weight_c[u * bins + plan.bin[i]] += w * plan.c[i];
            }
            Ok(out)
        })
        .collect();
    let mut total = UnitBins::zeros(n_units, bins);
    for part in parts {
        total.add(&part?);
    }
    Ok(total)
}

impl NelsonAalen {
    /// The curve from its time table and its entries' event rows (empty for a streamed
    /// curve, whose rows are not held) and weights, in (time, row) order.
    pub fn from_entries(
        curve: u32,
        table: &TimeTable,
        rows: Vec<usize>,
        weight: Vec<f64>,
    ) -> Result<NelsonAalen> {
        let n_entries = table.entries.iter().sum::<u64>() as usize;
        if weight.len() != n_entries || !(rows.is_empty() || rows.len() == n_entries) {
            return Err(CoreError::Shape(format!(
                "{} entry weights and {} entry rows for a curve of {n_entries} entries",
                weight.len(),
                rows.len()
            )));
        }
        // Weight at risk at each time: the weight at it and after it.
        let mut at_time = vec![0.0; table.time.len()];
        let mut later = 0.0;
        for (y, &w) in at_time.iter_mut().zip(&table.weight).rev() {
            later += w;
            *y = later;
        }
        let mut na = NelsonAalen {
            curve,
            rows,
            time: Vec::with_capacity(n_entries),
            cumhaz: Vec::with_capacity(n_entries),
            weight,
            at_risk: Vec::with_capacity(n_entries),
            table_time: table.time.clone(),
            index: TimeIndex::new(&table.time),
            seen: Vec::with_capacity(table.time.len()),
        };
        let mut h = 0.0;
        for (i, (&t, &e)) in table.time.iter().zip(&table.entries).enumerate() {
            for _ in 0..e {
                h += na.weight[na.time.len()] / at_time[i];
                na.time.push(t);
                na.cumhaz.push(h);
                na.at_risk.push(at_time[i]);
            }
            na.seen.push(na.time.len());
        }
        Ok(na)
    }

    /// Each entry's event weight.
    pub fn entry_weights(&self) -> &[f64] {
        &self.weight
    }

    /// Entries of the curve.
    pub fn n_entries(&self) -> usize {
        self.time.len()
    }

    /// Where the rows' influence at the entries `at` goes (see [`BinPlan`]).
    pub fn bin_plan(&self, at: &[usize]) -> Result<BinPlan> {
        let (wanted, _) = distinct_entries(at, self.n_entries())?;
        let c = self.squared_hazard();
        let (bin, c_at) = self
            .seen
            .iter()
            .map(|&s| match s.checked_sub(1) {
                Some(last) => (wanted.partition_point(|&a| a < last), c[last]),
                None => (0, 0.0),
            })
            .unzip();
        Ok(BinPlan {
            time: self.table_time.clone(),
            bin,
            c: c_at,
            n_bins: wanted.len() + 1,
        })
    }

    /// Where row k's time `t` is among the curve's times: an error, not a search
    /// without end, if the rows changed since the curve was made from them.
    fn position(&self, t: f64, k: usize) -> Result<usize> {
        self.index.get_checked(t).ok_or_else(|| {
            CoreError::Value(format!(
                "time {t} at row {k} is not one of the curve's times: the data changed after \
                 the curve was made"
            ))
        })
    }

    fn in_curve(&self, rows: &SurvivalRows, k: usize) -> bool {
        rows.curve_of(k) == Some(self.curve as usize)
    }

    /// sum over entries up to each j of dN / Y^2.
    fn squared_hazard(&self) -> Vec<f64> {
        let mut acc = 0.0;
        self.weight
            .iter()
            .zip(&self.at_risk)
            .map(|(w, y)| {
                acc += w / (y * y);
                acc
            })
            .collect()
    }

    /// The variance of log S at the entries `at` (R's `varlog`) under `design`, for the
    /// rows the curve was built from; and the replicates left out (undefined estimates).
    ///
    /// Linearisation: the influence of log S at entry a for row k is w_k times
    /// -1{k is entry j <= a} / Y_j + sum_{j <= a, t_j <= t_k} dN_j / Y_j^2 (log S linearised
    /// in the totals dN_j and Y_j).  Replicates: the hazard recomputed with each
    /// replicate's weights (beyond R, which has no standard errors for `svykm` on
    /// replicate designs).
    pub fn log_survival_variance(
        &self,
        design: &Design,
        rows: &SurvivalRows,
        at: &[usize],
    ) -> Result<(Vec<f64>, usize)> {
        if rows.len() != design.n_rows {
            return Err(CoreError::Shape(format!(
                "survival data have {} rows, the design {}",
                rows.len(),
                design.n_rows
            )));
        }
        if self.rows.len() != self.n_entries() {
            return Err(CoreError::Value(
                "the curve does not hold its rows (a streamed curve): use its bins".into(),
            ));
        }
        let (wanted, place) = distinct_entries(at, self.n_entries())?;
        if matches!(design.variance, Variance::Linearization(_)) && !design.is_calibrated() {
            let var = self.swept_variance(design, rows, &wanted)?;
            return Ok((place.iter().map(|&i| var[i]).collect(), 0));
        }
        let mut var = Vec::with_capacity(wanted.len());
        let mut dropped = 0;
        // Entries per pass over the rows bound the sums it holds: replicates x entries.
        for block in wanted.chunks(REPLICATE_ENTRIES_PER_PASS) {
            let (v, d) = match &design.variance {
                Variance::Replicates(_) => self.replicate_variance(design, rows, block)?,
                Variance::Linearization(_) => (self.calibrated_variance(design, rows, block)?, 0),
            };
            var.extend(v);
            dropped = dropped.max(d);
        }
        Ok((place.iter().map(|&i| var[i]).collect(), dropped))
    }

    /// Influence totals per variance unit (n_units x m) at the m entries `wanted`.
    /// With s_k the last entry at or before t_k and C_j the sum of dN / Y^2 to entry j,
    /// row k adds w_k C(min(s_k, a)) at entry a: binned by where s_k falls among the
    /// wanted entries (`bins`, see [`BinPlan`]), that is prefix sums of w C(s) and
    /// suffix sums of w (times C(a)) over the bins.  Entry j adds -w_j / Y_j from entry
    /// j on, to the unit `entry_units[j]`.
    fn unit_totals(&self, wanted: &[usize], entry_units: &[u32], bins: &UnitBins) -> Vec<f64> {
        let m = wanted.len();
        let n_bins = m + 1;
        let n_units = bins.present.len();
        let c = self.squared_hazard();
        let mut eb = vec![0.0; n_units * n_bins];
        let mut bin = 0;
        for j in 0..wanted.last().map_or(0, |&a| a + 1) {
            while bin < m && wanted[bin] < j {
                bin += 1;
            }
            eb[entry_units[j] as usize * n_bins + bin] += self.weight[j] / self.at_risk[j];
        }
        let mut totals = vec![0.0; n_units * m];
        for u in 0..n_units {
            let span = u * n_bins..(u + 1) * n_bins;
            let (w, wc, e) = (
                &bins.weight[span.clone()],
                &bins.weight_c[span.clone()],
                &eb[span],
            );
            let out = &mut totals[u * m..(u + 1) * m];
            let mut after = 0.0;
            for i in (0..m).rev() {
                after += w[i + 1];
                out[i] = c[wanted[i]] * after;
            }
            let (mut before, mut events) = (0.0, 0.0);
            for i in 0..m {
                before += wc[i];
                events += e[i];
                out[i] += before - events;
            }
        }
        totals
    }

    /// The linearisation variance of log S at the entries `at` from the rows' sums
    /// `bins` (binned by `bin_plan(at)`, over all the rows or added over batches) and
    /// the variance unit of each entry's event: through the design's engine, a few
    /// entries at a time.
    pub fn variance_from_bins(
        &self,
        design: &Design,
        at: &[usize],
        entry_units: &[u32],
        bins: &UnitBins,
    ) -> Result<Vec<f64>> {
        let (wanted, place) = distinct_entries(at, self.n_entries())?;
        let m = wanted.len();
        let n_units = design.n_units;
        if entry_units.len() != self.n_entries()
            || bins.present.len() != n_units
            || bins.weight.len() != n_units * (m + 1)
            || bins.weight_c.len() != n_units * (m + 1)
        {
            return Err(CoreError::Shape(format!(
                "sums for {} units and {} bins, entry units for {} entries; the design has \
                 {n_units} units, the curve {} entries and {m} are asked for",
                bins.present.len(),
                bins.weight.len() / bins.present.len().max(1),
                entry_units.len(),
                self.n_entries()
            )));
        }
        if let Some(&u) = entry_units.iter().find(|&&u| u as usize >= n_units) {
            return Err(CoreError::Shape(format!(
                "unit code {u} for {n_units} units"
            )));
        }
        let totals = self.unit_totals(&wanted, entry_units, bins);
        let mut var = Vec::with_capacity(m);
        for lo in (0..m).step_by(VARIANCE_BLOCK) {
            let p = VARIANCE_BLOCK.min(m - lo);
            let block: Vec<f64> = totals
                .chunks_exact(m)
                .flat_map(|t| &t[lo..lo + p])
                .copied()
                .collect();
            var.extend(block_variances(design, &block, p, &bins.present)?);
        }
        Ok(place.iter().map(|&i| var[i]).collect())
    }

    /// The linearisation variance of log S at the entries `wanted` (ascending, distinct)
    /// of a curve that holds its rows: one pass over the rows and one sweep over the
    /// entries.  Unit u's influence total at entry a is A_u + C(a) B_u - E_u, with row k
    /// (weight w, last entry at or before its time L) in B_u (its weight) while a <= L
    /// and in A_u (w C(L)) after, and E_u the sum of w_j / Y_j over the events of u's
    /// rows among the entries j <= a.  The rows are grouped by (L, unit) once; B_u is a
    /// suffix sum of the groups (no weight is ever taken away), so each entry costs one
    /// step over the units, never a pass over the rows.
    fn swept_variance(
        &self,
        design: &Design,
        rows: &SurvivalRows,
        wanted: &[usize],
    ) -> Result<Vec<f64>> {
        let units = &design.unit_of_row;
        let n_units = design.n_units;
        // Each row of the curve with a weight: (L, unit, w); the units holding a row.
        let mut present = vec![false; n_units];
        let mut leaving: Vec<(usize, u32, f64)> = Vec::new();
        for k in 0..rows.len() {
            if !self.in_curve(rows, k) {
                continue;
            }
            let (t, _, w) = rows.row(k)?;
            present[units[k] as usize] = true;
            let seen = self.seen[self.position(t, k)?];
            if w != 0.0 && seen > 0 {
                leaving.push((seen - 1, units[k], w));
            }
        }
        // Grouped by (L, unit), rows in row order within a group (a stable sort).
        leaving.sort_by_key(|&(l, u, _)| (l, u));
        let mut groups: Vec<(usize, u32, f64)> = Vec::new();
        for (l, u, w) in leaving {
            match groups.last_mut() {
                Some(g) if g.0 == l && g.1 == u => g.2 += w,
                _ => groups.push((l, u, w)),
            }
        }
        // B_u once the rows of group g have left: the weight of u's later groups.
        let mut b = vec![0.0; n_units];
        let mut after = vec![0.0; groups.len()];
        for (g, &(_, u, w)) in groups.iter().enumerate().rev() {
            after[g] = b[u as usize];
            b[u as usize] += w;
        }
        let c = self.squared_hazard();
        let mut a_sum = vec![0.0; n_units];
        let mut events = vec![0.0; n_units];
        let mut var = Vec::with_capacity(wanted.len());
        // The totals of a few wanted entries, entry by entry (each n_units long); blocks
        // of them (units x entries, row-major) wait for their engine calls, made in
        // parallel (each block's variances its own: the same digits for any threads).
        let mut columns: Vec<f64> = Vec::with_capacity(n_units * VARIANCE_BLOCK);
        let mut pending: Vec<(Vec<f64>, usize)> = Vec::with_capacity(PARALLEL_BLOCKS);
        let (mut next_group, mut next_wanted) = (0, 0);
        for a in 0..wanted.last().map_or(0, |&a| a + 1) {
            events[units[self.rows[a]] as usize] += self.weight[a] / self.at_risk[a];
            if wanted[next_wanted] == a {
                next_wanted += 1;
                columns.extend((0..n_units).map(|u| a_sum[u] + c[a] * b[u] - events[u]));
                let p = columns.len() / n_units.max(1);
                let last = next_wanted == wanted.len();
                if p == VARIANCE_BLOCK || last {
                    let block = (0..n_units)
                        .flat_map(|u| (0..p).map(move |j| (u, j)))
                        .map(|(u, j)| columns[j * n_units + u])
                        .collect();
                    pending.push((block, p));
                    columns.clear();
                }
                if pending.len() == PARALLEL_BLOCKS || (last && !pending.is_empty()) {
                    let done: Vec<Vec<f64>> = pending
                        .par_iter()
                        .map(|(block, p)| block_variances(design, block, *p, &present))
                        .collect::<Result<_>>()?;
                    var.extend(done.into_iter().flatten());
                    pending.clear();
                }
            }
            while next_group < groups.len() && groups[next_group].0 == a {
                let (_, u, w) = groups[next_group];
                a_sum[u as usize] += w * c[a];
                b[u as usize] = after[next_group];
                next_group += 1;
            }
        }
        Ok(var)
    }

    /// A calibrated design's engine replaces per-row influence values by their
    /// calibration residuals: the rows' values, a few entries at a time.
    fn calibrated_variance(
        &self,
        design: &Design,
        rows: &SurvivalRows,
        wanted: &[usize],
    ) -> Result<Vec<f64>> {
        let n = rows.len();
        let c = self.squared_hazard();
        let mut entry_of_row = vec![usize::MAX; n];
        for (j, &r) in self.rows.iter().enumerate() {
            entry_of_row[r] = j;
        }
        let in_domain: Vec<bool> = (0..n).map(|k| self.in_curve(rows, k)).collect();
        let mut out = Vec::with_capacity(wanted.len());
        for part in wanted.chunks(CALIBRATED_BLOCK) {
            let p = part.len();
            let mut values = vec![0.0; n * p];
            for k in (0..n).filter(|&k| in_domain[k]) {
                let (t, _, w) = rows.row(k)?;
                if w == 0.0 {
                    continue;
                }
                let seen = self.seen[self.position(t, k)?];
                for (col, &a) in part.iter().enumerate() {
                    let mut v = if seen > 0 { c[(seen - 1).min(a)] } else { 0.0 };
                    let j = entry_of_row[k];
                    if j <= a {
                        v -= 1.0 / self.at_risk[j];
                    }
                    values[k * p + col] = w * v;
                }
            }
            out.extend(design.variances(Influence::Rows {
                values: &values,
                p,
                in_domain: Some(&in_domain),
            })?);
        }
        Ok(out)
    }

    /// log S at the entries `wanted` under each replicate's weights, then the replicate
    /// engine.  An entry whose event lost its weight adds nothing.
    fn replicate_variance(
        &self,
        design: &Design,
        rows: &SurvivalRows,
        wanted: &[usize],
    ) -> Result<(Vec<f64>, usize)> {
        let Some(rep) = design.replicates() else {
            return Err(CoreError::Design("not a replicate design".into()));
        };
        let (n, r_count, m) = (rows.len(), rep.n_replicates, wanted.len());
        let last = wanted.last().map_or(0, |&a| a + 1);
        // Each row's time position in the curve (usize::MAX outside it).
        let position: Vec<usize> = (0..n)
            .into_par_iter()
            .map(|k| {
                if self.in_curve(rows, k) {
                    self.position(rows.time[k], k)
                } else {
                    Ok(usize::MAX)
                }
            })
            .collect::<Result<_>>()?;
        let units = &design.unit_of_row;
        let weight = |k: usize, r: usize| {
            if rep.per_unit {
                rep.factors[units[k] as usize * r_count + r] * design.weights[k]
            } else {
                rep.factors[k * r_count + r]
            }
        };
        let thetas: Vec<Vec<f64>> = (0..r_count)
            .into_par_iter()
            .map(|r| {
                let mut at_time = vec![0.0; self.seen.len()];
                for (k, &i) in position.iter().enumerate() {
                    if i != usize::MAX {
                        at_time[i] += weight(k, r);
                    }
                }
                let mut later = 0.0;
                for y in at_time.iter_mut().rev() {
                    later += *y;
                    *y = later;
                }
                let mut h = 0.0;
                let mut out = Vec::with_capacity(m);
                let mut next = 0;
                for j in 0..last {
                    let row = self.rows[j];
                    let w = weight(row, r);
                    if w != 0.0 {
                        h += w / at_time[position[row]];
                    }
                    while next < m && wanted[next] == j {
                        out.push(-h);
                        next += 1;
                    }
                }
                out
            })
            .collect();
        let mut var = Vec::with_capacity(m);
        let mut dropped = 0;
        for lo in (0..m).step_by(VARIANCE_BLOCK) {
            let p = VARIANCE_BLOCK.min(m - lo);
            let block: Vec<f64> = thetas
                .iter()
                .flat_map(|t| &t[lo..lo + p])
                .copied()
                .collect();
            let full: Vec<f64> = wanted[lo..lo + p]
                .iter()
                .map(|&a| -self.cumhaz[a])
                .collect();
            let cov = design.covariance(Influence::ReplicateEstimates {
                thetas: &block,
                full: &full,
            })?;
            dropped = dropped.max(cov.dropped_replicates);
            var.extend(cov.variances());
        }
        Ok((var, dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignSpec;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-14 * b.abs().max(1.0), "{a} != {b}");
    }

    fn one_curve<'a>(time: &'a [f64], event: &'a [f64], w: &'a [f64]) -> SurvivalRows<'a> {
        SurvivalRows {
            time,
            event,
            weights: w,
            curve: None,
            n_curves: 1,
        }
    }

    fn product_limit(time: &[f64], event: &[f64], w: &[f64]) -> Result<Curve> {
        Ok(product_limits(&one_curve(time, event, w))?.remove(0).0)
    }

    #[test]
    fn product_limit_by_hand() {
        // Times 1, 2, 2+, 3, 4+ with weights 1, 2, 1, 1, 3 (total 8).
        let time = [1.0, 2.0, 2.0, 3.0, 4.0];
        let event = [1.0, 1.0, 0.0, 1.0, 0.0];
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
        let event = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
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
    fn hashed_and_sorted_chunks_and_curves_agree() {
        // More distinct times than a hashed chunk holds, over several chunks, two curves
        // and rows in none: the curves equal each curve computed on its own rows.
        let n = 3 * CHUNK + 17;
        let time: Vec<f64> = (0..n).map(|k| ((k * 7919) % 9001) as f64 / 3.0).collect();
        let event: Vec<f64> = (0..n).map(|k| f64::from(u8::from((k % 3) != 0))).collect();
        let w: Vec<f64> = (0..n).map(|k| 1.0 + (k % 5) as f64 / 4.0).collect();
        let curve: Vec<u32> = (0..n).map(|k| [0, 1, OUTSIDE][k % 3]).collect();
        let rows = SurvivalRows {
            time: &time,
            event: &event,
            weights: &w,
            curve: Some(&curve),
            n_curves: 2,
        };
        let both = product_limits(&rows).unwrap();
        for (d, (c, n_rows)) in both.iter().enumerate() {
            let keep: Vec<usize> = (0..n).filter(|&k| curve[k] == d as u32).collect();
            let pick = |v: &[f64]| keep.iter().map(|&k| v[k]).collect::<Vec<f64>>();
            let alone = product_limit(&pick(&time), &pick(&event), &pick(&w)).unwrap();
            assert_eq!(*n_rows as usize, keep.len());
            assert_eq!(c.time, alone.time);
            for (a, b) in c.surv.iter().zip(&alone.surv) {
                assert!((a - b).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn nelson_aalen_tabulates_each_event() {
        let time = [2.0, 1.0, 2.0, 3.0, 2.0];
        let event = [1.0, 1.0, 1.0, 0.0, 1.0];
        let w = [1.0, 1.0, 2.0, 1.0, 0.0];
        let rows = one_curve(&time, &event, &w);
        let na = nelson_aalen(&rows, &time_tables(&rows).unwrap()).unwrap();
        let na = &na[0];
        // The zero-weight event is not tabulated; the tied events at 2 follow row order.
        assert_eq!(na.rows, vec![1, 0, 2]);
        close(na.cumhaz[0], 1.0 / 5.0);
        close(na.cumhaz[1], 1.0 / 5.0 + 1.0 / 4.0);
        close(na.cumhaz[2], 1.0 / 5.0 + 3.0 / 4.0);
    }

    fn design_of(psu: &[u32], w: &[f64]) -> Design {
        Design::new(&DesignSpec {
            clusters: vec![Some(psu)],
            ..DesignSpec::weighted(w)
        })
        .unwrap()
    }

    /// The variance of log S at the entries `at` by the bins' route (a streamed
    /// design's: the rows binned per unit by the entries asked for).
    fn binned_variance(
        na: &NelsonAalen,
        design: &Design,
        rows: &SurvivalRows,
        at: &[usize],
    ) -> Vec<f64> {
        let plan = na.bin_plan(at).unwrap();
        let units = &design.unit_of_row;
        let bins = unit_bins(rows, na.curve, units, design.n_units, &plan).unwrap();
        let entry_units: Vec<u32> = na.rows.iter().map(|&r| units[r]).collect();
        na.variance_from_bins(design, at, &entry_units, &bins)
            .unwrap()
    }

    #[test]
    fn variance_is_that_of_the_derivative_in_the_weights() {
        // Influence values of a total-based estimator are w_k times its derivative with
        // respect to the weight of row k (a finite difference here); their PSU totals'
        // n/(n-1) sum of squares around the mean is the variance, by hand.
        let time = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 2.0, 4.0];
        let event = [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let w = [1.5, 2.0, 1.0, 0.5, 3.0, 1.0, 2.5, 1.0];
        let psu = [0, 0, 1, 1, 2, 2, 3, 3];
        let rows = one_curve(&time, &event, &w);
        let na = nelson_aalen(&rows, &time_tables(&rows).unwrap()).unwrap();
        let na = &na[0];
        let design = design_of(&psu, &w);
        let at: Vec<usize> = (0..na.rows.len()).rev().collect();
        let (var, _) = na.log_survival_variance(&design, &rows, &at).unwrap();
        // The sweep over the entries (rows in memory) equals the bins' route (a streamed
        // design's: the rows binned per unit by the entries asked for).
        for (a, b) in var.iter().zip(&binned_variance(na, &design, &rows, &at)) {
            close(*a, *b);
        }
        let h = 1e-6;
        for (col, &a) in at.iter().enumerate() {
            let mut totals = [0.0; 4];
            for k in 0..time.len() {
                let (mut up, mut down) = (w, w);
                up[k] *= 1.0 + h;
                down[k] *= 1.0 - h;
                let hazard = |w: &[f64]| {
                    let rows = one_curve(&time, &event, w);
                    nelson_aalen(&rows, &time_tables(&rows).unwrap()).unwrap()[0].cumhaz[a]
                };
                totals[psu[k] as usize] += -(hazard(&up) - hazard(&down)) / (2.0 * h);
            }
            let mean = totals.iter().sum::<f64>() / 4.0;
            let by_hand = totals.iter().map(|t| (t - mean).powi(2)).sum::<f64>() * 4.0 / 3.0;
            assert!(
                (var[col] - by_hand).abs() < 1e-8 * by_hand.max(1.0),
                "entry {a}: {} vs {by_hand}",
                var[col]
            );
        }
    }

    #[test]
    fn the_sweep_reads_curves_zero_weights_and_rows_before_the_first_event() {
        // Two curves and rows in none, a zero weight, a censored row before a curve's
        // first event, tied events and more than a block of entries: every entry's
        // variance by the sweep equals the bins' route, curve by curve.
        let n = 120;
        let time: Vec<f64> = (0..n)
            .map(|k| f64::from((k * 7 % 23) as u32) + 1.0)
            .collect();
        let event: Vec<f64> = (0..n).map(|k| f64::from(u8::from(k % 3 != 0))).collect();
        let mut w: Vec<f64> = (0..n)
            .map(|k| 1.0 + f64::from((k % 5) as u32) * 0.5)
            .collect();
        w[7] = 0.0;
        let curve: Vec<u32> = (0..n)
            .map(|k| if k % 11 == 0 { OUTSIDE } else { (k % 2) as u32 })
            .collect();
        let psu: Vec<u32> = (0..n).map(|k| (k / 6) as u32).collect();
        // Row 1 (curve 1) censored before every event.
        let mut time = time;
        time[1] = 0.5;
        let mut event = event;
        event[1] = 0.0;
        let rows = SurvivalRows {
            time: &time,
            event: &event,
            weights: &w,
            curve: Some(&curve),
            n_curves: 2,
        };
        let design = design_of(&psu, &w);
        let tables = time_tables(&rows).unwrap();
        for na in nelson_aalen(&rows, &tables).unwrap() {
            let at: Vec<usize> = (0..na.n_entries()).collect();
            assert!(at.len() > VARIANCE_BLOCK, "{} entries", at.len());
            let (swept, _) = na.log_survival_variance(&design, &rows, &at).unwrap();
            let binned = binned_variance(&na, &design, &rows, &at);
            for (a, b) in swept.iter().zip(&binned) {
                close(*a, *b);
            }
        }
    }

    #[test]
    fn rows_changed_after_the_curve_are_an_error_not_a_search_without_end() {
        let (time, event, w) = ([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 0.0, 1.0], [1.0; 4]);
        let rows = one_curve(&time, &event, &w);
        let na = nelson_aalen(&rows, &time_tables(&rows).unwrap()).unwrap();
        let design = design_of(&[0, 0, 1, 1], &w);
        let moved = [1.0, 2.5, 3.0, 4.0];
        let err = na[0]
            .log_survival_variance(&design, &one_curve(&moved, &event, &w), &[0, 1])
            .unwrap_err();
        assert!(err.to_string().contains("the data changed"), "{err}");
    }

    #[test]
    fn replicates_with_the_full_weights_give_no_variance() {
        let time = [1.0, 2.0, 2.0, 3.0];
        let event = [1.0, 1.0, 0.0, 1.0];
        let w = [1.0, 2.0, 1.0, 1.0];
        let rows = one_curve(&time, &event, &w);
        let na = nelson_aalen(&rows, &time_tables(&rows).unwrap()).unwrap();
        // Two replicates: the full weights twice (per-row weights).
        let mut design = design_of(&[0, 1, 2, 3], &w);
        design.variance = Variance::Replicates(crate::variance::Replicates {
            factors: w.iter().flat_map(|&x| [x, x]).collect(),
            per_unit: false,
            n_replicates: 2,
            scale: 1.0,
            rscales: vec![1.0, 1.0],
            mse: true,
        });
        let (var, dropped) = na[0]
            .log_survival_variance(&design, &rows, &[2, 0])
            .unwrap();
        assert_eq!((var, dropped), (vec![0.0, 0.0], 0));
    }

    #[test]
    fn two_batches_merged_are_the_whole() {
        // The tables and entries (their weights) of two halves, merged: the whole's.
        let time = [2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 3.0, 2.0];
        let event = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let w = [1.0, 1.0, 2.0, 1.0, 0.5, 3.0, 1.0, 4.0];
        let entries = |lo: usize, hi: usize| {
            let rows = one_curve(&time[lo..hi], &event[lo..hi], &w[lo..hi]);
            let table = time_tables(&rows).unwrap().remove(0);
            let na = nelson_aalen(&rows, std::slice::from_ref(&table)).unwrap();
            (table, na[0].weight.clone())
        };
        let (whole, whole_w) = entries(0, 8);
        let ((a, aw), (b, bw)) = (entries(0, 3), entries(3, 8));
        let merged = a.merge(&b);
        assert_eq!(merged, whole);
        assert_eq!(merge_entries(&a, &aw, &b, &bw).unwrap(), whole_w);
        // Tied events at 2 in row order: rows 0, 2, 4, 7.
        assert_eq!(whole_w, vec![1.0, 3.0, 1.0, 2.0, 0.5, 4.0, 1.0]);
    }

    #[test]
    fn refuses_negative_times() {
        let err = product_limit(&[1.0, -2.0], &[1.0, 0.0], &[1.0, 1.0]).unwrap_err();
        assert!(matches!(err, CoreError::Value(_)));
    }
}
