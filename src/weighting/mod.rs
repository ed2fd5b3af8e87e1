//! Weighting a design: post-stratification, raking, calibration and trimming (R's
//! `postStratify`, `rake`, `calibrate` and `trimWeights`).  Each returns a new design.
//!
//! A linearisation design carries the adjustment into its variance as R does with
//! `design$postStrata` in `svyrecvar` (see [`crate::calibration`]).  A replicate design
//! instead has every replicate's weights adjusted the way the full-sample weights are.

use std::sync::Arc;

use rayon::prelude::*;

use crate::calibration::{chunk_rows, chunked_sum, RakedMargin, Step};
use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::replicate::analysis_rank;
use crate::variance::{Replicates, Variance};

pub mod calibrate;
pub mod poststratify;
pub mod rake;
pub mod trim;

pub use crate::calibration::CellRaking;
pub use calibrate::{calibrate, Bounds, CalFun, CalibrationSpec};
pub use poststratify::poststratify;
pub use rake::{rake, rake_cells, Margin, RakeControl};
pub use trim::trim_weights;

/// What one adjustment did, for diagnostics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Newton steps (calibration), sweeps over the margins (raking), trimming passes.
    pub iterations: usize,
    pub converged: bool,
    /// Where the stopping rule stood at the end: calibration's largest
    /// |misfit| / (1 + |target|), raking's largest change of a cell in the last sweep.
    pub misfit: f64,
    /// Totals of what was adjusted (calibration columns, post-strata, the levels of each
    /// margin in turn; for trimming the sum of the weights) before and after.
    pub before: Vec<f64>,
    pub after: Vec<f64>,
    /// Replicates whose own calibration did not converge (kept as they ended, as R).
    pub replicates_not_converged: usize,
}

/// Per-cell sums of `values` (n x width, row-major): n_cells x width.
fn cell_sums(cell: &[u32], n_cells: usize, values: &[f64], width: usize) -> Vec<f64> {
    chunked_sum(cell.len(), n_cells * width, |rows, acc| {
        for r in rows {
            let c = cell[r] as usize;
            let (to, from) = (
                &mut acc[c * width..(c + 1) * width],
                &values[r * width..(r + 1) * width],
            );
            to.iter_mut().zip(from).for_each(|(t, v)| *t += v);
        }
    })
}

/// Check that cell codes (a row's post-stratum or margin level) are below `n_cells`.
fn check_cells(cell: &[u32], n_rows: usize, n_cells: usize, what: &str) -> Result<()> {
    if cell.len() != n_rows {
        return Err(CoreError::Shape(format!(
            "{what} codes have {} rows, the design {n_rows}",
            cell.len()
        )));
    }
    let out_of_range = |&c: &u32| c as usize >= n_cells;
    if !cell.par_iter().any(out_of_range) {
        return Ok(());
    }
    if let Some(r) = cell.iter().position(out_of_range) {
        return Err(CoreError::Value(format!(
            "{what} code {} at row {r} has no population count ({n_cells} given)",
            cell[r]
        )));
    }
    Ok(())
}

/// The error at level `level` of margin `margin`.
fn cell_error(margin: usize, level: usize, problem: String) -> CoreError {
    CoreError::Cell {
        margin,
        level: Some(level),
        problem,
    }
}

/// Population counts of margin `margin` must be finite and non-negative.
fn check_counts(targets: &[f64], margin: usize) -> Result<()> {
    if let Some(k) = targets.iter().position(|t| !t.is_finite() || *t < 0.0) {
        return Err(cell_error(
            margin,
            k,
            format!(
                "has population count {}; counts must be finite and non-negative",
                targets[k]
            ),
        ));
    }
    Ok(())
}

/// Post-stratification ratios target / sample total, refusing a cell that is in the
/// sample but not the population or the other way round (R's `postStratify`); a cell
/// empty in both keeps its weights.
fn cell_ratios(sample: &[f64], targets: &[f64], margin: usize) -> Result<Vec<f64>> {
    sample
        .iter()
        .zip(targets)
        .enumerate()
        .map(|(k, (&s, &t))| match (s == 0.0, t == 0.0) {
            (true, true) => Ok(1.0),
            (false, true) => Err(cell_error(
                margin,
                k,
                format!("is in the sample (weight {s}) but has a population count of 0"),
            )),
            (true, false) => Err(cell_error(
                margin,
                k,
                format!("has a population count of {t} but no sample weight"),
            )),
            (false, false) => Ok(t / s),
        })
        .collect()
}

/// Ratios for a replicate: target / replicate total; a cell the replicate leaves empty
/// keeps its (zero) weights, where R would give them NaN.
fn replicate_ratios(sample: &[f64], targets: &[f64]) -> Vec<f64> {
    sample
        .iter()
        .zip(targets)
        .map(|(&s, &t)| if s == 0.0 { 1.0 } else { t / s })
        .collect()
}

/// Each replicate's analysis weights, n x R row-major.
fn analysis_weights(design: &Design, rep: &Replicates) -> Vec<f64> {
    rep.analysis_weights(&design.unit_of_row, &design.weights)
}

/// The design with adjusted weights.  A linearisation design also gets `step` for its
/// variance and, as R's calibrated designs, keeps the rows outside a domain (with zero
/// weight); a replicate design gets the adjusted replicate weights `analysis` (n x R).
fn adjusted(
    design: &Design,
    weights: Vec<f64>,
    analysis: Option<Vec<f64>>,
    step: Option<Step>,
) -> Result<Design> {
    let mut out = design.clone();
    out.weights = Arc::new(weights);
    match (&design.variance, analysis) {
        (Variance::Replicates(rep), Some(factors)) => {
            out.degf = analysis_rank(&factors, rep.n_replicates).saturating_sub(1);
            out.variance = Variance::Replicates(Replicates {
                factors,
                per_unit: false,
                n_replicates: rep.n_replicates,
                scale: rep.scale,
                rscales: rep.rscales.clone(),
                mse: rep.mse,
            });
        }
        (Variance::Linearization(_), None) => {
            if let Some(step) = step {
                out.calibration = design.calibration.then(step);
            }
        }
        _ => {
            return Err(CoreError::Design(
                "replicate weights must be adjusted with the full-sample weights".into(),
            ))
        }
    }
    Ok(out)
}

/// Apply `f` to each replicate's column of analysis weights (n x R, row-major) in
/// parallel and write the results back; returns what `f` returned for each replicate.
fn per_replicate<T, F>(analysis: &mut [f64], n_rep: usize, f: F) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(&[f64]) -> Result<(Vec<f64>, T)> + Sync,
{
    let n = analysis.len() / n_rep.max(1);
    let columns: Vec<(Vec<f64>, T)> = {
        let a: &[f64] = analysis;
        (0..n_rep)
            .into_par_iter()
            .map(|k| {
                let column: Vec<f64> = (0..n).map(|r| a[r * n_rep + k]).collect();
                f(&column)
            })
            .collect::<Result<_>>()?
    };
    let mut out = Vec::with_capacity(n_rep);
    for (k, (column, extra)) in columns.into_iter().enumerate() {
        for (r, v) in column.into_iter().enumerate() {
            analysis[r * n_rep + k] = v;
        }
        out.push(extra);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignSpec;

    pub(super) fn srs(weights: &[f64]) -> Design {
        Design::new(&DesignSpec {
            ..DesignSpec::weighted(weights)
        })
        .unwrap()
    }

    #[test]
    fn cell_sums_add_in_place() {
        let s = cell_sums(&[0, 1, 0, 2], 3, &[1.0, 2.0, 3.0, 4.0], 1);
        assert_eq!(s, vec![4.0, 2.0, 4.0]);
    }

    #[test]
    fn ratios_refuse_one_sided_cells() {
        assert!(matches!(
            cell_ratios(&[1.0, 0.0], &[2.0, 1.0], 3),
            Err(CoreError::Cell {
                margin: 3,
                level: Some(1),
                ..
            })
        ));
        assert!(cell_ratios(&[1.0, 1.0], &[2.0, 0.0], 0).is_err());
        assert_eq!(
            cell_ratios(&[2.0, 0.0], &[1.0, 0.0], 0).unwrap(),
            vec![0.5, 1.0]
        );
    }
}
