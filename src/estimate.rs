//! Totals, means and ratios, overall or by domain.  One fused pass over the rows sums
//! weights and weighted outcomes per (domain, variance unit); estimates and the unit
//! totals of their influence values follow from those sums, and the variance engine
//! does the rest.  No per-row influence array is ever built.

use rayon::prelude::*;

use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::variance::covariance;

/// Domain code of a row that takes part in no domain (outside the subset, or removed for
/// a missing value): it keeps its place in the design but adds nothing.
pub const OUTSIDE: u32 = u32::MAX;

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
}

/// Per-(domain, unit) sums: [rows, sum w, sum w y_1, ...], plus per-domain
/// [sum w y_1^2, ..., rows with nonzero weight] for design effects.
struct Sums {
    stride: usize,
    table: Vec<f64>,
    squares: Vec<f64>,
}

fn accumulate_rows(
    design: &Design,
    outcomes: &[Outcome],
    domain: &[u32],
    n_domains: usize,
    rows: std::ops::Range<usize>,
    with_squares: bool,
) -> Result<Sums> {
    let width: usize = outcomes.iter().map(Outcome::width).sum();
    let stride = 2 + width;
    let n_units = design.n_units;
    let mut table = vec![0.0; n_domains * n_units * stride];
    let mut squares = vec![
        0.0;
        if with_squares {
            n_domains * (width + 1)
        } else {
            0
        }
    ];
    for r in rows {
        let d = domain[r];
        if d == OUTSIDE {
            continue;
        }
        if d as usize >= n_domains {
            return Err(CoreError::Value(format!(
                "domain code {d} at row {r} is out of range"
            )));
        }
        let w = design.weights[r];
        let base = (d as usize * n_units + design.unit_of_row[r] as usize) * stride;
        let cell = &mut table[base..base + stride];
        cell[0] += 1.0;
        cell[1] += w;
        let sq_base = d as usize * (width + 1);
        let mut off = 2;
        for (k, o) in outcomes.iter().enumerate() {
            match o {
                Outcome::Numeric(y) => {
                    let v = y[r];
                    if v.is_nan() {
                        return Err(CoreError::Value(format!(
                            "outcome #{k} is missing at row {r}; pass na_rm=True to leave such rows out"
                        )));
                    }
                    cell[off] += w * v;
                    if with_squares {
                        squares[sq_base + off - 2] += w * v * v;
                    }
                    off += 1;
                }
                Outcome::Categorical { codes, n_levels } => {
                    let c = codes[r];
                    if c >= *n_levels {
                        return Err(CoreError::Value(format!(
                            "outcome #{k} is missing at row {r}; pass na_rm=True to leave such rows out"
                        )));
                    }
                    cell[off + c as usize] += w;
                    if with_squares {
                        squares[sq_base + off - 2 + c as usize] += w;
                    }
                    off += *n_levels as usize;
                }
            }
        }
        if with_squares && w != 0.0 {
            squares[sq_base + width] += 1.0;
        }
    }
    Ok(Sums {
        stride,
        table,
        squares,
    })
}

/// The single pass: chunks of rows summed in parallel, then added in chunk order.
fn accumulate(
    design: &Design,
    outcomes: &[Outcome],
    domain: &[u32],
    n_domains: usize,
    with_squares: bool,
) -> Result<Sums> {
    let n = design.n_rows;
    let width: usize = outcomes.iter().map(Outcome::width).sum();
    let table_len = n_domains * design.n_units * (2 + width);
    if table_len > PARALLEL_TABLE_LIMIT || n <= CHUNK_ROWS {
        return accumulate_rows(design, outcomes, domain, n_domains, 0..n, with_squares);
    }
    let n_chunks = n.div_ceil(CHUNK_ROWS);
    let parts: Vec<Sums> = (0..n_chunks)
        .into_par_iter()
        .map(|k| {
            let rows = k * CHUNK_ROWS..((k + 1) * CHUNK_ROWS).min(n);
            accumulate_rows(design, outcomes, domain, n_domains, rows, with_squares)
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
    let n = design.n_rows;
    if domain.len() != n {
        return Err(CoreError::Shape(format!(
            "domain codes have {} rows, the design {n}",
            domain.len()
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
    let (n_num, width) = match estimator {
        Estimator::Ratio { n_numerators } => {
            if outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Categorical { .. }))
            {
                return Err(CoreError::Value(
                    "ratio needs numeric numerators and denominators".into(),
                ));
            }
            if n_numerators == 0 || n_numerators >= outcomes.len() {
                return Err(CoreError::Value(
                    "ratio needs at least one numerator and one denominator".into(),
                ));
            }
            (n_numerators, outcomes.len())
        }
        _ => (0, outcomes.iter().map(Outcome::width).sum()),
    };
    if want_deff && matches!(estimator, Estimator::Ratio { .. }) {
        return Err(CoreError::Value(
            "deff is available for means and totals".into(),
        ));
    }
    let sums = accumulate(design, outcomes, domain, n_domains, want_deff)?;
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
        let (rows, wsum) = (col_tot[0], col_tot[1]);
        if rows == 0.0 {
            return Err(CoreError::Value(format!("domain {d} has no rows")));
        }
        out.n_rows[d] = rows;
        out.weight_sum[d] = wsum;
        let est = &mut out.estimate[d * p..(d + 1) * p];
        match estimator {
            Estimator::Total => {
                est.copy_from_slice(&col_tot[2..]);
                for (u, cell) in cells.chunks_exact(stride).enumerate() {
                    infl[u * p..(u + 1) * p].copy_from_slice(&cell[2..]);
                }
            }
            Estimator::Mean => {
                if wsum <= 0.0 {
                    return Err(CoreError::Value(format!(
                        "domain {d} has zero total weight"
                    )));
                }
                for j in 0..p {
                    est[j] = col_tot[2 + j] / wsum;
                }
                for (u, cell) in cells.chunks_exact(stride).enumerate() {
                    for j in 0..p {
                        infl[u * p + j] = (cell[2 + j] - est[j] * cell[1]) / wsum;
                    }
                }
            }
            Estimator::Ratio { .. } => {
                let n_den = width - n_num;
                for i in 0..n_num {
                    for j in 0..n_den {
                        let den = col_tot[2 + n_num + j];
                        if den == 0.0 {
                            return Err(CoreError::Value(format!(
                                "the denominator total is zero in domain {d}"
                            )));
                        }
                        let k = i * n_den + j;
                        est[k] = col_tot[2 + i] / den;
                        for (u, cell) in cells.chunks_exact(stride).enumerate() {
                            infl[u * p + k] = (cell[2 + i] - est[k] * cell[2 + n_num + j]) / den;
                        }
                    }
                }
            }
        }
        let v = covariance(design, &infl, p, Some(&present))?;
        out.vcov[d * p * p..(d + 1) * p * p].copy_from_slice(&v);
        if let Some(deff) = out.deff.as_mut() {
            let sq = &sums.squares[d * (width + 1)..(d + 1) * (width + 1)];
            let nobs = if design.pps.is_some() {
                design.n_rows as f64
            } else {
                sq[width]
            };
            for j in 0..p {
                let mean = col_tot[2 + j] / wsum;
                // R's svyvar: weighted variance with the n/(n-1) divisor.
                let svyvar = (sq[j] / wsum - mean * mean) * nobs / (nobs - 1.0);
                let vsrs = match (estimator, design.pps.is_some()) {
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
