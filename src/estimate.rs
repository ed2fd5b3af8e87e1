//! Totals, means and ratios, overall or by domain.  One fused pass over the rows sums
//! weights and weighted outcomes per (domain, variance unit); estimates and the unit
//! totals of their influence values follow from those sums, and the variance engine
//! does the rest.  No per-row influence array is ever built.

use rayon::prelude::*;

use crate::calibration::CellRaking;
use crate::codes::{chunk_range, label_range};
use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::svyvar::WeightedMoments;
use crate::variance::{Influence, Linearization, Pps, Replicates, Variance};

/// Domain code of a row that takes part in no domain (outside the subset, or removed for
/// a missing value): it keeps its place in the design but adds nothing.
pub const OUTSIDE: u32 = u32::MAX;

/// Each row's domain: integer labels less an offset, so that the domains are codes
/// 0..n_domains (`OUTSIDE` for a row in none).  Dense u32 codes have offset 0; a column of
/// small integer labels goes in as it is, with its smallest label as the offset, so that
/// it needs no coding pass of its own.
#[derive(Clone, Copy)]
struct Domains<'a, T> {
    labels: &'a [T],
    offset: i64,
    /// Codes: `OUTSIDE` marks a row in no domain.  Labels have no such value: any label
    /// outside the range is an error.
    outside: bool,
}

impl<T: Copy + Into<i64>> Domains<'_, T> {
    /// Row r's domain code; `OUTSIDE` or anything at or above n_domains is no domain.
    // Per-row code of the fused pass.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn code(&self, r: usize) -> u64 {
        Self::code_of(self.labels[r], self.offset)
    }
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn code_of(label: T, offset: i64) -> u64 {
        label.into().wrapping_sub(offset) as u64
    }
}

/// A row's domain code, not `OUTSIDE`, that is no domain of the table.
fn domain_out_of_range(d: u64, r: usize) -> CoreError {
    CoreError::Value(format!("domain code {d} at row {r} is out of range"))
}

fn missing_outcome(outcome: usize, row: usize) -> CoreError {
    CoreError::MissingOutcome { outcome, row }
}

/// Rows per chunk of the parallel pass.  Fixed, so the order in which partial sums are
/// added (and so every digit of the result) does not depend on the number of threads.
const CHUNK_ROWS: usize = 1 << 17;
/// Largest per-chunk table for which chunks run in parallel.
const PARALLEL_TABLE_LIMIT: usize = 1 << 18;

/// One outcome variable: numeric, or a factor given as codes (one estimate per level).
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    Numeric(&'a [f64]),
    Categorical { codes: &'a [u32], n_levels: u32 },
}

impl Outcome<'_> {
    fn width(&self) -> usize {
        match self {
            Outcome::Numeric(_) => 1,
            Outcome::Categorical { n_levels, .. } => *n_levels as usize,
        }
    }
    fn len(&self) -> usize {
        match self {
            Outcome::Numeric(y) => y.len(),
            Outcome::Categorical { codes, .. } => codes.len(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimator {
    /// Horvitz-Thompson total, sum w y (R's `svytotal`).
    Total,
    /// Hajek mean, sum w y / sum w (R's `svymean`).
    Mean,
    /// Ratio of totals; the first `n_numerators` outcomes are numerators, the rest
    /// denominators, and every pair is estimated (R's `svyratio`).
    Ratio { n_numerators: usize },
}

/// Estimates for each domain, each with its own covariance matrix.
#[derive(Clone, Debug)]
pub struct DomainEstimates {
    pub n_domains: usize,
    /// Estimates per domain.
    pub p: usize,
    /// n_domains x p.
    pub estimate: Vec<f64>,
    /// n_domains x p x p: the covariance of each domain's estimates.
    pub vcov: Vec<f64>,
    /// n_domains x p, when asked for (R's `deff=TRUE`: against SRS without replacement).
    pub deff: Option<Vec<f64>>,
    /// Rows used in each domain.
    pub n_rows: Vec<f64>,
    /// Sum of the weights in each domain.
    pub weight_sum: Vec<f64>,
    /// Replicates whose estimate was undefined (a zero denominator) and were left out,
    /// per domain, as R does with a warning.
    pub dropped_replicates: Vec<usize>,
}

/// Unit totals of the linearisation influence values (n_units x p) of the estimates
/// `est` from per-unit sums: total y_u; mean (y_u - est w_u) / W; ratio
/// (n_u - est d_u) / D (Woodruff 1971; R's svymean / svyratio influence functions).
#[allow(clippy::too_many_arguments)]
pub(crate) fn linearization_influence(
    estimator: Estimator,
    n_num: usize,
    width: usize,
    est: &[f64],
    cells: &[f64],
    stride: usize,
    col_tot: &[f64],
    infl: &mut [f64],
) {
    let p = est.len();
    for (u, cell) in cells.chunks_exact(stride).enumerate() {
        let z = &mut infl[u * p..(u + 1) * p];
        match estimator {
            Estimator::Total => z.copy_from_slice(&cell[2..2 + width]),
            Estimator::Mean => {
                for j in 0..p {
                    z[j] = (cell[2 + j] - est[j] * cell[1]) / col_tot[1];
                }
            }
            Estimator::Ratio { .. } => {
                let n_den = width - n_num;
                for i in 0..n_num {
                    for j in 0..n_den {
                        let k = i * n_den + j;
                        let den = col_tot[2 + n_num + j];
                        z[k] = (cell[2 + i] - est[k] * cell[2 + n_num + j]) / den;
                    }
                }
            }
        }
    }
}

/// Per-(domain, key) sums: [rows, sum w, sum w y_1, ...], keys being variance units or
/// replicates; plus per-domain [sum w y_1^2, ..., rows with nonzero weight] for design
/// effects.
pub struct Sums {
    pub stride: usize,
    pub table: Vec<f64>,
    pub squares: Vec<f64>,
}

/// The per-row inputs of the pass: sampling weights and variance units.  A design's
/// own, or one batch of a data set streamed through the pass (units coded globally).
pub struct RowData<'a> {
    pub weights: &'a [f64],
    pub unit_of_row: &'a [u32],
    pub n_units: usize,
}

impl<'a> RowData<'a> {
    pub fn of(design: &'a Design) -> Self {
        RowData {
            weights: &design.weights,
            unit_of_row: &design.unit_of_row,
            n_units: design.n_units,
        }
    }
}

/// Where a row's weighted values go: its variance unit (with the sampling weight), or
/// every replicate (with that replicate's analysis weight).
#[derive(Clone, Copy)]
enum Keys<'a> {
    Units,
    Replicates(&'a Replicates),
}

impl Keys<'_> {
    fn count(self, n_units: usize) -> usize {
        match self {
            Keys::Units => n_units,
            Keys::Replicates(rep) => rep.n_replicates,
        }
    }
}

/// Row r's outcome values at their offsets in a cell [rows, sum w, sum w y_1, ...]:
/// (offset, value), value 1 at a factor's level.
fn row_values(outcomes: &[Outcome], r: usize, values: &mut Vec<(usize, f64)>) -> Result<()> {
    values.clear();
    let mut off = 2;
    for (k, o) in outcomes.iter().enumerate() {
        let missing = || missing_outcome(k, r);
        match o {
            Outcome::Numeric(y) => {
                if y[r].is_nan() {
                    return Err(missing());
                }
                values.push((off, y[r]));
            }
            Outcome::Categorical { codes, n_levels } => {
                if codes[r] >= *n_levels {
                    return Err(missing());
                }
                values.push((off + codes[r] as usize, 1.0));
            }
        }
        off += o.width();
    }
    Ok(())
}

/// Per-row influence values of domain d (n_rows x p, zero outside it): each row's
/// cell [1, w, w y...] put through `linearization_influence`, whose unit sums the fused
/// pass forms.  For a calibrated design, whose variance needs them row by row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn row_influence(
    design: &Design,
    estimator: Estimator,
    outcomes: &[Outcome],
    domain: &[u32],
    d: u32,
    (n_num, width): (usize, usize),
    est: &[f64],
    col_tot: &[f64],
) -> Result<Vec<f64>> {
    let p = est.len();
    let mut rows = vec![0.0; design.n_rows * p];
    let mut cell = vec![0.0; 2 + width];
    let mut values = Vec::with_capacity(outcomes.len());
    for (r, z) in rows.chunks_exact_mut(p).enumerate() {
        if domain[r] != d {
            continue;
        }
        row_values(outcomes, r, &mut values)?;
        let w = design.weights[r];
        cell.fill(0.0);
        cell[0] = 1.0;
        cell[1] = w;
        for &(o, v) in &values {
            cell[o] += w * v;
        }
        linearization_influence(estimator, n_num, width, est, &cell, 2 + width, col_tot, z);
    }
    Ok(rows)
}

fn accumulate_rows<T: Copy + Into<i64>>(
    data: &RowData,
    outcomes: &[Outcome],
    domain: Domains<T>,
    n_domains: usize,
    keys: Keys,
    rows: std::ops::Range<usize>,
    with_squares: bool,
) -> Result<Sums> {
    match (keys, outcomes, with_squares) {
        (Keys::Units, [Outcome::Numeric(y)], false) => {
            return accumulate_one(data, y, 3, domain, n_domains, rows, |cell, v: f64, w| {
                cell[0] += w * v;
                !v.is_nan()
            });
        }
        (Keys::Units, [Outcome::Categorical { codes, n_levels }], false) => {
            let stride = 2 + *n_levels as usize;
            return accumulate_one(
                data,
                codes,
                stride,
                domain,
                n_domains,
                rows,
                |cell, code: u32, w| match cell.get_mut(code as usize) {
                    Some(c) => {
                        *c += w;
                        true
                    }
                    None => false,
                },
            );
        }
        _ => {}
    }
    let width: usize = outcomes.iter().map(Outcome::width).sum();
    let stride = 2 + width;
    let n_keys = keys.count(data.n_units);
    let mut table = vec![0.0; n_domains * n_keys * stride];
    let mut squares = vec![
        0.0;
        if with_squares {
            n_domains * (width + 1)
        } else {
            0
        }
    ];
    // The row's values at their offsets: (offset, value) with value 1 for a factor level.
    let mut values: Vec<(usize, f64)> = Vec::with_capacity(outcomes.len());
    for r in rows {
        let d = domain.code(r);
        if domain.outside && d == u64::from(OUTSIDE) {
            continue;
        }
        if d >= n_domains as u64 {
            return Err(domain_out_of_range(d, r));
        }
        let d = d as usize;
        row_values(outcomes, r, &mut values)?;
        let mut add = |key: usize, w: f64| {
            let base = (d * n_keys + key) * stride;
            let cell = &mut table[base..base + stride];
            cell[0] += 1.0;
            cell[1] += w;
            for &(o, v) in &values {
                cell[o] += w * v;
            }
        };
        let w = data.weights[r];
        match keys {
            Keys::Units => add(data.unit_of_row[r] as usize, w),
            Keys::Replicates(rep) => {
                let row = &rep.factors[r * n_keys..(r + 1) * n_keys];
                for (key, &rw) in row.iter().enumerate() {
                    add(key, rw);
                }
            }
        }
        if with_squares {
            let sq = &mut squares[d * (width + 1)..(d + 1) * (width + 1)];
            for &(o, v) in &values {
                sq[o - 2] += w * v * v;
            }
            if w != 0.0 {
                sq[width] += 1.0;
            }
        }
    }
    Ok(Sums {
        stride,
        table,
        squares,
    })
}

/// `accumulate_rows` for one outcome summed per (domain, unit) without squares (one
/// numeric outcome, or one factor: a table's cells): the same additions in the same
/// order as the general loop, so the same sums to the last bit, without its per-row
/// indirection.  `add` adds a row's value of weight w to its cell after the row count
/// and weight (the first two entries); false for a missing value.
fn accumulate_one<T: Copy + Into<i64>, V: Copy>(
    data: &RowData,
    values: &[V],
    stride: usize,
    domain: Domains<T>,
    n_domains: usize,
    rows: std::ops::Range<usize>,
    add: impl Fn(&mut [f64], V, f64) -> bool,
) -> Result<Sums> {
    let n_units = data.n_units;
    let mut table = vec![0.0; n_domains * n_units * stride];
    let start = rows.start;
    let columns = domain.labels[rows.clone()]
        .iter()
        .zip(&values[rows.clone()])
        .zip(&data.weights[rows.clone()])
        .zip(&data.unit_of_row[rows]);
    for (i, (((&label, &v), &w), &u)) in columns.enumerate() {
        let d = Domains::code_of(label, domain.offset);
        if d >= n_domains as u64 {
            if domain.outside && d == u64::from(OUTSIDE) {
                continue;
            }
            return Err(domain_out_of_range(d, start + i));
        }
        let base = (d as usize * n_units + u as usize) * stride;
        let cell = &mut table[base..base + stride];
        cell[0] += 1.0;
        cell[1] += w;
        if !add(&mut cell[2..], v, w) {
            return Err(missing_outcome(0, start + i));
        }
    }
    Ok(Sums {
        stride,
        table,
        squares: Vec::new(),
    })
}

/// The fused pass of [`estimate_by_domain`] for estimators finished elsewhere: sums per
/// (domain, unit) and, for replicate weights given per row, per (domain, replicate).
pub(crate) fn domain_sums(
    design: &Design,
    outcomes: &[Outcome],
    domain: &[u32],
    n_domains: usize,
    with_squares: bool,
) -> Result<(Sums, Option<Sums>)> {
    let n = design.n_rows;
    if domain.len() != n || outcomes.iter().any(|o| o.len() != n) {
        return Err(CoreError::Shape(format!(
            "domain codes and outcomes must have the design's {n} rows"
        )));
    }
    let domain = Domains {
        labels: domain,
        offset: 0,
        outside: true,
    };
    let data = RowData::of(design);
    let sums = accumulate(
        &data,
        outcomes,
        domain,
        n_domains,
        Keys::Units,
        with_squares,
    )?;
    let rep_sums = match &design.variance {
        Variance::Replicates(rep) if !rep.per_unit => Some(accumulate(
            &data,
            outcomes,
            domain,
            n_domains,
            Keys::Replicates(rep),
            false,
        )?),
        _ => None,
    };
    Ok((sums, rep_sums))
}

/// Replicate r's sums of domain d: from the per-(domain, replicate) sums of replicate
/// weights given per row, or from its unit sums `cells` (n_units x stride) times each
/// unit's multiplier for compressed weights (into `scratch`).
pub(crate) fn replicate_sums<'a>(
    rep: &Replicates,
    per_row: Option<&'a Sums>,
    cells: &[f64],
    (d, r): (usize, usize),
    scratch: &'a mut [f64],
) -> &'a [f64] {
    let stride = scratch.len();
    if let Some(rs) = per_row {
        let at = (d * rep.n_replicates + r) * stride;
        return &rs.table[at..at + stride];
    }
    scratch.fill(0.0);
    for (u, cell) in cells.chunks_exact(stride).enumerate() {
        let f = rep.factors[u * rep.n_replicates + r];
        scratch.iter_mut().zip(cell).for_each(|(a, c)| *a += f * c);
    }
    scratch
}

/// The single pass: chunks of rows summed in parallel, then added in chunk order.
fn accumulate<T: Copy + Into<i64> + Sync>(
    data: &RowData,
    outcomes: &[Outcome],
    domain: Domains<T>,
    n_domains: usize,
    keys: Keys,
    with_squares: bool,
) -> Result<Sums> {
    let n = data.weights.len();
    let width: usize = outcomes.iter().map(Outcome::width).sum();
    let table_len = n_domains * keys.count(data.n_units) * (2 + width);
    if table_len > PARALLEL_TABLE_LIMIT || n <= CHUNK_ROWS {
        return accumulate_rows(data, outcomes, domain, n_domains, keys, 0..n, with_squares);
    }
    let n_chunks = n.div_ceil(CHUNK_ROWS);
    let parts: Vec<Sums> = (0..n_chunks)
        .into_par_iter()
        .map(|k| {
            let rows = k * CHUNK_ROWS..((k + 1) * CHUNK_ROWS).min(n);
            accumulate_rows(data, outcomes, domain, n_domains, keys, rows, with_squares)
        })
        .collect::<Result<_>>()?;
    let mut iter = parts.into_iter();
    let mut total = iter
        .next()
        .ok_or_else(|| CoreError::Value("no rows".into()))?;
    for part in iter {
        total
            .table
            .iter_mut()
            .zip(&part.table)
            .for_each(|(a, b)| *a += b);
        total
            .squares
            .iter_mut()
            .zip(&part.squares)
            .for_each(|(a, b)| *a += b);
    }
    Ok(total)
}

/// Per-(domain, unit) sums of one batch of rows whose units are coded for the whole
/// data set: the same pass as `estimate_by_domain`, for data streamed in batches (or
/// partitions) and added in a fixed order.
pub fn batch_sums(
    data: &RowData,
    outcomes: &[Outcome],
    domain: &[u32],
    n_domains: usize,
    with_squares: bool,
) -> Result<Sums> {
    check_batch(data, domain)?;
    if outcomes.iter().any(|o| o.len() != domain.len()) {
        return Err(CoreError::Shape(
            "a batch's columns have different lengths".into(),
        ));
    }
    let domain = Domains {
        labels: domain,
        offset: 0,
        outside: true,
    };
    accumulate(data, outcomes, domain, n_domains, Keys::Units, with_squares)
}

/// A batch's weights, units and domain codes have one length, and its units are
/// within the data set's.
pub fn check_batch(data: &RowData, domain: &[u32]) -> Result<()> {
    let n = data.weights.len();
    if data.unit_of_row.len() != n || domain.len() != n {
        return Err(CoreError::Shape(
            "a batch's columns have different lengths".into(),
        ));
    }
    if let Some(r) = data
        .unit_of_row
        .iter()
        .position(|&u| u as usize >= data.n_units)
    {
        return Err(CoreError::Value(format!(
            "unit code at row {r} of the batch is out of range"
        )));
    }
    Ok(())
}

/// Estimates from one set of sums [rows, sum w, sum w y...]; NaN where a denominator
/// is zero (the caller decides whether that is an error).
pub(crate) fn point_estimates(
    estimator: Estimator,
    n_num: usize,
    width: usize,
    sums: &[f64],
    out: &mut [f64],
) {
    match estimator {
        Estimator::Total => out.copy_from_slice(&sums[2..2 + width]),
        Estimator::Mean => {
            for (o, s) in out.iter_mut().zip(&sums[2..]) {
                *o = if sums[1] == 0.0 {
                    f64::NAN
                } else {
                    s / sums[1]
                };
            }
        }
        Estimator::Ratio { .. } => {
            let n_den = width - n_num;
            for i in 0..n_num {
                for j in 0..n_den {
                    let den = sums[2 + n_num + j];
                    out[i * n_den + j] = if den == 0.0 {
                        f64::NAN
                    } else {
                        sums[2 + i] / den
                    };
                }
            }
        }
    }
}

/// Estimate `estimator` for every domain (codes 0..n_domains; `OUTSIDE` for rows in
/// none) with design-based covariance; mirrors `svyby(..., svymean/svytotal/svyratio)`.
pub fn estimate_by_domain(
    design: &Design,
    estimator: Estimator,
    outcomes: &[Outcome],
    domain: &[u32],
    n_domains: usize,
    want_deff: bool,
) -> Result<DomainEstimates> {
    let context = RowContext { outcomes, domain };
    let domain = Domains {
        labels: domain,
        offset: 0,
        outside: true,
    };
    estimate_with(
        design,
        estimator,
        outcomes,
        domain,
        n_domains,
        want_deff,
        Some(context),
    )
}

/// `estimate_by_domain` with the domains given by integer labels: the domain of a row
/// is its label less `offset`, which must lie in 0..n_domains.  A column of small
/// integers (offset: its smallest value) so needs no coding pass; domains no row falls
/// in come back with no rows.
pub fn estimate_by_labels<T: Copy + Into<i64> + Send + Sync>(
    design: &Design,
    estimator: Estimator,
    outcomes: &[Outcome],
    labels: &[T],
    offset: i64,
    n_domains: usize,
    want_deff: bool,
) -> Result<DomainEstimates> {
    if design.is_calibrated() {
        // A calibrated design goes back to the rows of each domain: code them once.
        let codes: Vec<u32> = labels
            .par_iter()
            .map(|&v| {
                let d = Domains::code_of(v, offset);
                // Anything outside the domains stays out of range (and is reported).
                d.min(u64::from(u32::MAX) - 1) as u32
            })
            .collect();
        return estimate_by_domain(design, estimator, outcomes, &codes, n_domains, want_deff);
    }
    let domain = Domains {
        labels,
        offset,
        outside: false,
    };
    estimate_with(
        design, estimator, outcomes, domain, n_domains, want_deff, None,
    )
}

/// `estimate_by_labels` for labels whose range is not known yet.  The range of a sample
/// of rows spread over the column is tried first: when no label falls outside it, it is
/// the labels' range (its ends are labels), and the column was read once.  Otherwise
/// (or on any error) the range is found by a pass of its own and the estimates made
/// again.  Either way the result is `estimate_by_labels` with the smallest label as
/// offset.  None when the labels span more than `max_domains` values, or the table of
/// sums would hold more than `max_table` numbers.
#[allow(clippy::too_many_arguments)]
pub fn estimate_by_label_span<T: Copy + Into<i64> + Send + Sync>(
    design: &Design,
    estimator: Estimator,
    outcomes: &[Outcome],
    labels: &[T],
    max_domains: usize,
    max_table: usize,
    want_deff: bool,
) -> Result<Option<(i64, DomainEstimates)>> {
    const SAMPLE: usize = 1 << 16;
    let width: usize = outcomes.iter().map(Outcome::width).sum();
    let per_domain = design.n_units * (2 + width);
    let fits = |(lo, hi): (i64, i64)| {
        let span = i128::from(hi) - i128::from(lo) + 1;
        (span <= max_domains as i128 && span as usize * per_domain <= max_table)
            .then_some((lo, span as usize))
    };
    let estimate = |(lo, n_domains): (i64, usize)| {
        estimate_by_labels(
            design, estimator, outcomes, labels, lo, n_domains, want_deff,
        )
    };
    let sample: Vec<T> = labels
        .iter()
        .step_by((labels.len() / SAMPLE).max(1))
        .copied()
        .collect();
    if let Some(guess) = chunk_range(&sample).and_then(fits) {
        if let Ok(res) = estimate(guess) {
            return Ok(Some((guess.0, res)));
        }
    }
    match label_range(labels).and_then(fits) {
        Some(range) => estimate(range).map(|res| Some((range.0, res))),
        None => Ok(None),
    }
}

/// The pass and the estimates; `context` for what needs the rows again (calibration).
fn estimate_with<T: Copy + Into<i64> + Sync>(
    design: &Design,
    estimator: Estimator,
    outcomes: &[Outcome],
    domain: Domains<T>,
    n_domains: usize,
    want_deff: bool,
    context: Option<RowContext>,
) -> Result<DomainEstimates> {
    let n = design.n_rows;
    if domain.labels.len() != n {
        return Err(CoreError::Shape(format!(
            "domain codes have {} rows, the design {n}",
            domain.labels.len()
        )));
    }
    if let Some(o) = outcomes.iter().find(|o| o.len() != n) {
        return Err(CoreError::Shape(format!(
            "an outcome has {} rows, the design {n}",
            o.len()
        )));
    }
    if outcomes.is_empty() {
        return Err(CoreError::Value("no outcome variable given".into()));
    }
    if matches!(estimator, Estimator::Ratio { .. })
        && outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Categorical { .. }))
    {
        return Err(CoreError::Value(
            "ratio needs numeric numerators and denominators".into(),
        ));
    }
    numerators(estimator, outcomes.len())?;
    if want_deff && matches!(estimator, Estimator::Ratio { .. }) {
        return Err(CoreError::Value(
            "deff is available for means and totals".into(),
        ));
    }
    let data = RowData::of(design);
    let sums = accumulate(&data, outcomes, domain, n_domains, Keys::Units, want_deff)?;
    let rep_sums;
    let beyond = match (&design.variance, context) {
        // Replicate weights per row: one more pass, summing per (domain, replicate).
        (Variance::Replicates(rep), _) if !rep.per_unit => {
            rep_sums = accumulate(
                &data,
                outcomes,
                domain,
                n_domains,
                Keys::Replicates(rep),
                false,
            )?;
            BeyondSums::ReplicateSums(&rep_sums)
        }
        (Variance::Linearization(_), Some(rows)) if design.is_calibrated() => {
            BeyondSums::Rows(rows)
        }
        _ => BeyondSums::Nothing,
    };
    estimates_from_sums(design, estimator, n_domains, &sums, beyond)
}

/// The numerators of a ratio of `width` summed columns (the first ones; the rest are
/// denominators); 0 for a mean or total.
fn numerators(estimator: Estimator, width: usize) -> Result<usize> {
    match estimator {
        Estimator::Ratio { n_numerators } if n_numerators == 0 || n_numerators >= width => Err(
            CoreError::Value("ratio needs at least one numerator and one denominator".into()),
        ),
        Estimator::Ratio { n_numerators } => Ok(n_numerators),
        _ => Ok(0),
    }
}

/// What a design's variance needs besides the per-(domain, unit) sums of the pass.
#[derive(Clone, Copy)]
pub enum BeyondSums<'a> {
    /// Nothing: linearisation, or replicate weights given per unit (R's compressed form).
    Nothing,
    /// Replicate weights given per row: the sums per (domain, replicate).
    ReplicateSums(&'a Sums),
    /// A calibrated design: the rows, for per-row influence values.
    Rows(RowContext<'a>),
    /// A streamed raked design: the sums per (domain, cell) with weights over base
    /// weights, and its rake (see [`CellRaking`]).
    RakedCells(&'a Sums, &'a CellRaking),
}

/// The rows behind a set of sums, for what needs them again: a calibrated design's
/// per-row influence values.
#[derive(Clone, Copy)]
pub struct RowContext<'a> {
    pub outcomes: &'a [Outcome<'a>],
    pub domain: &'a [u32],
}

/// The numerators of `estimator` over sums `sums` of `n_domains` domains, once the sums
/// are checked against the design and against what its variance needs besides them.
pub(crate) fn check_sums(
    design: &Design,
    estimator: Estimator,
    n_domains: usize,
    sums: &Sums,
    beyond: BeyondSums,
) -> Result<usize> {
    if sums.stride < 3 {
        return Err(CoreError::Value("no outcome variable given".into()));
    }
    let width = sums.stride - 2;
    if sums.table.len() != n_domains * design.n_units * sums.stride {
        return Err(CoreError::Shape(format!(
            "sums have {} values; the design has {} units and {n_domains} domains of {} columns",
            sums.table.len(),
            design.n_units,
            sums.stride
        )));
    }
    let n_num = numerators(estimator, width)?;
    match (&design.variance, beyond) {
        (Variance::Replicates(rep), BeyondSums::Nothing) if !rep.per_unit => {
            return Err(CoreError::Design(
                "replicate weights given per row need the rows: they cannot be streamed".into(),
            ));
        }
        (Variance::Replicates(rep), BeyondSums::ReplicateSums(rs))
            if rs.stride != sums.stride
                || rs.table.len() != n_domains * rep.n_replicates * sums.stride =>
        {
            return Err(CoreError::Shape(format!(
                "replicate sums have {} values; expected {n_domains} domains x {} replicates x {}",
                rs.table.len(),
                rep.n_replicates,
                sums.stride
            )));
        }
        (Variance::Linearization(_), BeyondSums::Nothing) if design.is_calibrated() => {
            return Err(CoreError::Design(
                "a calibrated design needs its rows for the variance: it cannot be streamed".into(),
            ));
        }
        _ => {}
    }
    Ok(n_num)
}

/// Unit totals (`infl`, n_units x p) of the raking residuals of domain d's influence
/// values on a streamed raked design: the influence values over base weights, summed
/// by cell, are the same linear function of the per-(domain, cell) sums.
#[allow(clippy::too_many_arguments)]
pub(crate) fn raked_influence(
    (cell_sums, raking): (&Sums, &CellRaking),
    d: usize,
    (estimator, n_num, width): (Estimator, usize, usize),
    est: &[f64],
    cells: &[f64],
    col_tot: &[f64],
    infl: &mut [f64],
) -> Result<()> {
    let (p, stride) = (est.len(), col_tot.len());
    linearization_influence(estimator, n_num, width, est, cells, stride, col_tot, infl);
    let n_cells = raking.n_cells();
    let by_cell = cell_sums
        .table
        .get(d * n_cells * stride..(d + 1) * n_cells * stride)
        .ok_or_else(|| CoreError::Shape("the cell sums do not cover every domain".into()))?;
    let mut cell_infl = vec![0.0; n_cells * p];
    linearization_influence(
        estimator,
        n_num,
        width,
        est,
        by_cell,
        stride,
        col_tot,
        &mut cell_infl,
    );
    raking.residualise_totals(&cell_infl, infl, p)
}

/// Estimates, covariances and design effects of every domain from the pass's sums
/// (`sums`, per (domain, unit): [rows, sum w, sum w y_1, ...], the estimator's columns
/// after the first two) and what the design's variance needs besides (`beyond`).  Sums
/// from batches of a streamed data set, added in batch order, come here too.
pub fn estimates_from_sums(
    design: &Design,
    estimator: Estimator,
    n_domains: usize,
    sums: &Sums,
    beyond: BeyondSums,
) -> Result<DomainEstimates> {
    let want_deff = !sums.squares.is_empty();
    let n_num = check_sums(design, estimator, n_domains, sums, beyond)?;
    let width = sums.stride - 2;
    // R's design effects of a PPS design count every row (its domains keep them).
    let pps_quadratic = matches!(
        &design.variance,
        Variance::Linearization(Linearization {
            pps: Some(Pps::QuadraticForm { .. }),
            ..
        })
    );
    let p = match estimator {
        Estimator::Ratio { .. } => n_num * (width - n_num),
        _ => width,
    };
    let n_units = design.n_units;
    let stride = sums.stride;
    let mut out = DomainEstimates {
        n_domains,
        p,
        estimate: vec![0.0; n_domains * p],
        vcov: vec![0.0; n_domains * p * p],
        deff: want_deff.then(|| vec![0.0; n_domains * p]),
        n_rows: vec![0.0; n_domains],
        weight_sum: vec![0.0; n_domains],
        dropped_replicates: vec![0; n_domains],
    };
    let mut infl = vec![0.0; n_units * p];
    let mut present = vec![false; n_units];
    for d in 0..n_domains {
        let cells = &sums.table[d * n_units * stride..(d + 1) * n_units * stride];
        let mut col_tot = vec![0.0; stride];
        for (u, cell) in cells.chunks_exact(stride).enumerate() {
            present[u] = cell[0] > 0.0;
            col_tot.iter_mut().zip(cell).for_each(|(t, c)| *t += c);
        }
        let (n_used, wsum) = (col_tot[0], col_tot[1]);
        out.n_rows[d] = n_used;
        if n_used == 0.0 {
            // A domain code no row carries (a combination of by-levels absent from the
            // data): nothing to estimate; the caller drops it by its n_rows of 0.
            out.estimate[d * p..(d + 1) * p].fill(f64::NAN);
            continue;
        }
        out.weight_sum[d] = wsum;
        if wsum == 0.0 {
            // Every row of the domain has weight zero: R's svyby leaves such a domain
            // out; the caller drops it by its weight sum of 0 (and names it).
            out.estimate[d * p..(d + 1) * p].fill(f64::NAN);
            continue;
        }
        let est = &mut out.estimate[d * p..(d + 1) * p];
        point_estimates(estimator, n_num, width, &col_tot, est);
        if est.iter().any(|v| v.is_nan()) {
            let what = if matches!(estimator, Estimator::Mean) {
                "total weight"
            } else {
                "denominator total"
            };
            return Err(CoreError::ZeroTotal { what, domain: d });
        }
        let cov = match (&design.variance, beyond) {
            (Variance::Replicates(rep), _) => {
                let thetas =
                    replicate_estimates(rep, (estimator, n_num, width), d, cells, beyond, stride);
                design.covariance(Influence::ReplicateEstimates {
                    thetas: &thetas,
                    full: est,
                })?
            }
            (Variance::Linearization(_), BeyondSums::Rows(ctx)) => {
                let rows = row_influence(
                    design,
                    estimator,
                    ctx.outcomes,
                    ctx.domain,
                    d as u32,
                    (n_num, width),
                    est,
                    &col_tot,
                )?;
                design.covariance(Influence::Rows {
                    values: &rows,
                    p,
                    in_domain: None,
                })?
            }
            (Variance::Linearization(_), BeyondSums::RakedCells(cell_sums, raking)) => {
                raked_influence(
                    (cell_sums, raking),
                    d,
                    (estimator, n_num, width),
                    est,
                    cells,
                    &col_tot,
                    &mut infl,
                )?;
                // A calibrated design keeps every unit (R's postStrata).
                design.covariance(Influence::UnitTotals {
                    totals: &infl,
                    p,
                    present: None,
                })?
            }
            (Variance::Linearization(_), _) => {
                linearization_influence(
                    estimator, n_num, width, est, cells, stride, &col_tot, &mut infl,
                );
                design.covariance(Influence::UnitTotals {
                    totals: &infl,
                    p,
                    present: Some(&present),
                })?
            }
        };
        out.dropped_replicates[d] = cov.dropped_replicates;
        let v = cov.matrix;
        out.vcov[d * p * p..(d + 1) * p * p].copy_from_slice(&v);
        if let Some(deff) = out.deff.as_mut() {
            let sq = &sums.squares[d * (width + 1)..(d + 1) * (width + 1)];
            let nobs = if pps_quadratic {
                design.n_rows as f64
            } else {
                sq[width]
            };
            for j in 0..p {
                let svyvar = WeightedMoments {
                    weight: wsum,
                    first: col_tot[2 + j],
                    second: sq[j],
                    n_obs: nobs,
                }
                .svyvar();
                let vsrs = match (estimator, pps_quadratic) {
                    (Estimator::Mean, _) => svyvar * (wsum - nobs) / (wsum * nobs),
                    (_, false) => svyvar * wsum * wsum * (wsum - nobs) / (wsum * nobs),
                    (_, true) => svyvar * wsum * wsum,
                };
                deff[d * p + j] = v[j * p + j] / vsrs;
            }
        }
    }
    Ok(out)
}

/// Domain d's estimates under each replicate's weights (n_replicates x p): from its sums
/// per (domain, replicate) for weights given per row, or from its unit sums `cells`
/// times each unit's multiplier for compressed weights.
fn replicate_estimates(
    rep: &Replicates,
    (estimator, n_num, width): (Estimator, usize, usize),
    d: usize,
    cells: &[f64],
    beyond: BeyondSums,
    stride: usize,
) -> Vec<f64> {
    let p = match estimator {
        Estimator::Ratio { .. } => n_num * (width - n_num),
        _ => width,
    };
    let mut thetas = vec![0.0; rep.n_replicates * p];
    let mut rsum = vec![0.0; stride];
    let per_row = match beyond {
        BeyondSums::ReplicateSums(rs) => Some(rs),
        _ => None,
    };
    for (r, theta) in thetas.chunks_exact_mut(p).enumerate() {
        let sums = replicate_sums(rep, per_row, cells, (d, r), &mut rsum);
        point_estimates(estimator, n_num, width, sums, theta);
    }
    thetas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignSpec;
    use crate::replicate::Scheme;

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{a:?} != {b:?}");
        }
    }

    /// One row per PSU, no strata, sampled with replacement.
    fn srs(weights: &[f64]) -> Design {
        Design::new(&DesignSpec {
            ..DesignSpec::weighted(weights)
        })
        .unwrap()
    }

    const Y: [f64; 4] = [1.0, 2.0, 3.0, 6.0];

    fn one_domain(design: &Design, estimator: Estimator, outcomes: &[Outcome]) -> DomainEstimates {
        estimate_by_domain(design, estimator, outcomes, &[0; 4], 1, false).unwrap()
    }

    #[test]
    fn mean_and_total_by_hand() {
        // Mean 3; influence (y - 3)/4 = -0.5, -0.25, 0, 0.75; n/(n-1) sum z^2 = 4/3 0.875,
        // which is s^2/n = (14/3)/4 = 7/6.
        let res = one_domain(&srs(&[1.0; 4]), Estimator::Mean, &[Outcome::Numeric(&Y)]);
        close(&res.estimate, &[3.0]);
        close(&res.vcov, &[7.0 / 6.0]);
        // Weights 2: total 24; z = 2y, mean 6: 4/3 (16 + 4 + 0 + 36) = 224/3 = N^2 s^2/n.
        let res = one_domain(&srs(&[2.0; 4]), Estimator::Total, &[Outcome::Numeric(&Y)]);
        close(&res.estimate, &[24.0]);
        close(&res.vcov, &[224.0 / 3.0]);
    }

    #[test]
    fn domain_means_keep_every_psu() {
        // Domain 0 = rows 0, 2 (mean 2, W = 2): z = -0.5, 0, 0.5, 0 -> 4/3 (0.5) = 2/3.
        // Domain 1 = rows 1, 3 (mean 4, W = 2): z = 0, -1, 0, 1 -> 4/3 (2) = 8/3.
        let design = srs(&[1.0; 4]);
        let res = estimate_by_domain(
            &design,
            Estimator::Mean,
            &[Outcome::Numeric(&Y)],
            &[0, 1, 0, 1],
            2,
            false,
        )
        .unwrap();
        close(&res.estimate, &[2.0, 4.0]);
        close(&res.vcov, &[2.0 / 3.0, 8.0 / 3.0]);
        close(&res.n_rows, &[2.0, 2.0]);
    }

    #[test]
    fn ratio_by_hand() {
        // R = 12/12 = 1; z = (y - R x)/X = (-1, 0, -1, 2)/12 -> 4/3 (6/144) = 1/18.
        let x = [2.0, 2.0, 4.0, 4.0];
        let res = one_domain(
            &srs(&[1.0; 4]),
            Estimator::Ratio { n_numerators: 1 },
            &[Outcome::Numeric(&Y), Outcome::Numeric(&x)],
        );
        close(&res.estimate, &[1.0]);
        close(&res.vcov, &[1.0 / 18.0]);
    }

    #[test]
    fn proportions_of_a_factor_by_hand() {
        // Levels 0, 1, 0, 0: proportions 3/4, 1/4; z_level1 = (I - 1/4)/4 =
        // (-1, 3, -1, -1)/16 -> 4/3 (12/256) = 1/16, and z_level0 = -z_level1.
        let codes = [0, 1, 0, 0];
        let res = one_domain(
            &srs(&[1.0; 4]),
            Estimator::Mean,
            &[Outcome::Categorical {
                codes: &codes,
                n_levels: 2,
            }],
        );
        close(&res.estimate, &[0.75, 0.25]);
        let v = 1.0 / 16.0;
        close(&res.vcov, &[v, -v, -v, v]);
    }

    #[test]
    fn jackknife_mean_by_hand() {
        // y = 3, 5, 10: replicate means 7.5, 6.5, 4 around 6: 2/3 (2.25 + 0.25 + 4) = 13/3,
        // the linearisation's 3/2 sum ((y - 6)/3)^2 = 13/3 too.
        let y = [3.0, 5.0, 10.0];
        let design = srs(&[1.0; 3]);
        let jk = design.to_replicates(Scheme::Jk1, false, None).unwrap();
        for d in [&design, &jk] {
            let res = estimate_by_domain(
                d,
                Estimator::Mean,
                &[Outcome::Numeric(&y)],
                &[0; 3],
                1,
                false,
            )
            .unwrap();
            close(&res.estimate, &[6.0]);
            close(&res.vcov, &[13.0 / 3.0]);
        }
    }

    #[test]
    fn sums_without_what_the_variance_needs_are_refused() {
        let design = srs(&[1.0; 4]);
        let data = RowData::of(&design);
        let sums = batch_sums(&data, &[Outcome::Numeric(&Y)], &[0; 4], 1, false).unwrap();
        // Streamed sums give the in-memory estimates.
        let res =
            estimates_from_sums(&design, Estimator::Mean, 1, &sums, BeyondSums::Nothing).unwrap();
        close(&res.vcov, &[7.0 / 6.0]);
        // A ratio of one column has no denominator.
        let ratio = Estimator::Ratio { n_numerators: 1 };
        assert!(estimates_from_sums(&design, ratio, 1, &sums, BeyondSums::Nothing).is_err());
        // Replicate weights given per row cannot be applied to unit sums.
        let per_row =
            Design::from_replicate_weights(&[1.0; 4], vec![1.0; 8], 2, 1.0, vec![1.0; 2], false)
                .unwrap();
        let sums = batch_sums(
            &RowData::of(&per_row),
            &[Outcome::Numeric(&Y)],
            &[0; 4],
            1,
            false,
        )
        .unwrap();
        assert!(matches!(
            estimates_from_sums(&per_row, Estimator::Mean, 1, &sums, BeyondSums::Nothing),
            Err(CoreError::Design(_))
        ));
    }
}
