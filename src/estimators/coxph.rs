//! The survey Cox model's design-based covariance (R's `svycoxph`): the coefficients'
//! influence values, score residuals times the inverse information times the weight,
//! through the design's one variance engine.

use rayon::prelude::*;

use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::models::coxph::{influence, CoxFit, CoxRows};

/// Rows per chunk of the parallel pass: each chunk's unit totals are added in chunk
/// order, so the digits do not depend on the threads.
const CHUNK: usize = 16_384;

/// The design-based covariance of a fit's coefficients on the linearisation design
/// `design`: the fit's `rows` are the design rows `design_rows` (ascending); the units
/// holding a row of `domain` (the model's rows, zero weights included) are the domain's.
/// The influence values are summed to the design's units as they are made, never held
/// row by row, unless the design's calibration needs the rows.
pub fn design_covariance(
    rows: &CoxRows,
    fit: &CoxFit,
    design: &Design,
    design_rows: &[usize],
    domain: &[usize],
) -> Result<Vec<f64>> {
    let p = rows.p;
    if design_rows.len() != rows.n {
        return Err(CoreError::Shape(format!(
            "{} design rows for the model's {} rows",
            design_rows.len(),
            rows.n
        )));
    }
    if let Some(r) = design_rows.iter().find(|&&r| r >= design.n_rows) {
        return Err(CoreError::Shape(format!(
            "row {r} is not a row of the design's {}",
            design.n_rows
        )));
    }
    if design.is_calibrated() {
        let values = influence(rows, fit)?;
        return Ok(design.covariance_of_rows(&values, p, design_rows)?.matrix);
    }
    fit.solution.check(rows)?;
    let units = &design.unit_of_row;
    let n_units = design.n_units;
    let parts: Vec<Vec<f64>> = (0..rows.n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(rows.n));
            let chunk = rows.part(lo, hi);
            let unit = |i: usize| units[design_rows[lo + i]] as usize;
            fit.solution.sum_to_units(&chunk, unit, n_units).0
        })
        .collect();
    let mut totals = vec![0.0; n_units * p];
    for part in parts {
        for (t, v) in totals.iter_mut().zip(part) {
            *t += v;
        }
    }
    Ok(design
        .covariance_of_domain_totals(&totals, p, domain)?
        .matrix)
}
