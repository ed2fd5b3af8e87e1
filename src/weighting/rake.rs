//! Raking (R's `rake`): iterative proportional fitting, post-stratifying to each margin
//! in turn until a sweep changes no cell of the margins' cross-classification by
//! `epsilon` or more.
//!
//! Every post-stratification multiplies the weights of a margin level by one factor, so
//! all rows in one cell of the cross-classification of the margins share one product
//! of factors: the sweeps run on that (small) table of cells, and the rows are touched
//! only to sum their weights into it and to scale them at the end.

use super::{
    adjusted, analysis_weights, cell_ratios, cell_sums, check_cells, check_counts,
    replicate_ratios, RakedMargin, Report, Step,
};
use crate::codes::{dense_codes_i64, interaction};
use crate::design::Design;
use crate::error::{CoreError, Result};

/// Margin totals may differ by this much (relative) before they are said to disagree.
const MARGIN_AGREEMENT: f64 = 1e-6;

/// One margin: each row's level (0..k) and the k population counts.
#[derive(Clone, Copy, Debug)]
pub struct Margin<'a> {
    pub cells: &'a [u32],
    pub targets: &'a [f64],
}

/// R's `rake(control = list(maxit, epsilon))`: at most `maxit` sweeps; stop when no cell
/// changes by `epsilon` or more, an `epsilon` below 1 being a fraction of the total weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RakeControl {
    pub maxit: usize,
    pub epsilon: f64,
}

impl Default for RakeControl {
    fn default() -> Self {
        RakeControl {
            maxit: 10,
            epsilon: 1.0,
        }
    }
}

/// Rake `design` to `margins`.  A rake that does not converge is returned with
/// `converged: false` in its report (R warns); the caller decides whether to refuse it.
/// `after` in the report holds the margins' achieved totals, margin by margin.
pub fn rake(design: &Design, margins: &[Margin], control: RakeControl) -> Result<(Design, Report)> {
    validate(design, margins, control)?;
    let w = &design.weights;
    let (cell, n_cells) = cross_classification(margins);
    let level_of_cell: Vec<Vec<u32>> = {
        let mut first = vec![usize::MAX; n_cells];
        for (r, &c) in cell.iter().enumerate() {
            if first[c as usize] == usize::MAX {
                first[c as usize] = r;
            }
        }
        margins
            .iter()
            .map(|m| first.iter().map(|&r| m.cells[r]).collect())
            .collect()
    };
    let base = cell_sums(&cell, n_cells, w, 1);
    let epsilon = if control.epsilon < 1.0 {
        control.epsilon * w.iter().sum::<f64>()
    } else {
        control.epsilon
    };
    // Replicates are post-stratified in the same sweeps (R's rake of a replicate design).
    let replicates = design.replicates.as_ref().map(|rep| {
        let a = analysis_weights(design, rep);
        let sums = cell_sums(&cell, n_cells, &a, rep.n_replicates);
        (a, sums, rep.n_replicates)
    });
    let mut rep_factor = replicates.as_ref().map(|(_, _, k)| vec![1.0; n_cells * k]);
    let mut factor = vec![1.0; n_cells];
    let mut snapshots = vec![Vec::new(); margins.len()];
    let mut old = base.clone();
    let (mut sweeps, mut converged, mut delta) = (0, false, f64::NAN);
    while sweeps < control.maxit {
        for (m, margin) in margins.iter().enumerate() {
            let levels = &level_of_cell[m];
            let totals = level_totals(levels, margin.targets.len(), &base, &factor, 1);
            let what = |k: usize| format!("margin #{m} level #{k}");
            let ratio = cell_ratios(&totals, margin.targets, &what)?;
            for (f, &l) in factor.iter_mut().zip(levels) {
                *f *= ratio[l as usize];
            }
            snapshots[m] = factor.clone();
            if let (Some((_, sums, k)), Some(rf)) = (&replicates, rep_factor.as_mut()) {
                let k = *k;
                let totals = level_totals(levels, margin.targets.len(), sums, rf, k);
                let ratios: Vec<Vec<f64>> = (0..k)
                    .map(|j| {
                        let column: Vec<f64> = (0..margin.targets.len())
                            .map(|l| totals[l * k + j])
                            .collect();
                        replicate_ratios(&column, margin.targets)
                    })
                    .collect();
                for (c, &l) in levels.iter().enumerate() {
                    for (j, r) in ratios.iter().enumerate() {
                        rf[c * k + j] *= r[l as usize];
                    }
                }
            }
        }
        let new: Vec<f64> = base.iter().zip(&factor).map(|(b, f)| b * f).collect();
        delta = old
            .iter()
            .zip(&new)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        sweeps += 1;
        if delta < epsilon {
            converged = true;
            break;
        }
        old = new;
    }
    let weights: Vec<f64> = w
        .iter()
        .zip(&cell)
        .map(|(w, &c)| w * factor[c as usize])
        .collect();
    let analysis = replicates.map(|(mut a, _, k)| {
        let rf = rep_factor.unwrap_or_default();
        for (row, &c) in a.chunks_exact_mut(k).zip(&cell) {
            let f = &rf[c as usize * k..(c as usize + 1) * k];
            row.iter_mut().zip(f).for_each(|(v, f)| *v *= f);
        }
        a
    });
    let ones = vec![1.0; n_cells];
    let mut before = Vec::new();
    let mut after = Vec::new();
    for (m, margin) in margins.iter().enumerate() {
        let k = margin.targets.len();
        before.extend(level_totals(&level_of_cell[m], k, &base, &ones, 1));
        after.extend(level_totals(&level_of_cell[m], k, &base, &factor, 1));
    }
    let step = analysis.is_none().then(|| Step::Raking {
        margins: margins
            .iter()
            .zip(level_of_cell)
            .zip(snapshots)
            .map(|((m, level_of_cell), factor)| RakedMargin {
                level_of_cell,
                n_levels: m.targets.len(),
                factor,
            })
            .collect(),
        cell,
        base: w.clone(),
    });
    let report = Report {
        iterations: sweeps,
        converged,
        misfit: delta,
        before,
        after,
        replicates_not_converged: 0,
    };
    Ok((adjusted(design, weights, analysis, step)?, report))
}

fn validate(design: &Design, margins: &[Margin], control: RakeControl) -> Result<()> {
    if margins.is_empty() {
        return Err(CoreError::Calibration(
            "rake needs at least one margin".into(),
        ));
    }
    if control.maxit == 0 || control.epsilon.is_nan() || control.epsilon <= 0.0 {
        return Err(CoreError::Value(
            "rake needs maxit >= 1 and a positive epsilon".into(),
        ));
    }
    let mut totals = Vec::with_capacity(margins.len());
    for (m, margin) in margins.iter().enumerate() {
        check_cells(
            margin.cells,
            design.n_rows,
            margin.targets.len(),
            &format!("margin #{m}"),
        )?;
        check_counts(margin.targets, &|k| format!("margin #{m} level #{k}"))?;
        totals.push(margin.targets.iter().sum::<f64>());
    }
    for (m, &t) in totals.iter().enumerate().skip(1) {
        if (t - totals[0]).abs() > MARGIN_AGREEMENT * totals[0].abs().max(t.abs()) {
            return Err(CoreError::Calibration(format!(
                "the margins disagree: margin #0 totals {} but margin #{m} totals {t}; raking \
                 cannot meet both",
                totals[0]
            )));
        }
    }
    Ok(())
}

/// Per-level sums of base * factor over the cells (both n_cells x width).
fn level_totals(levels: &[u32], k: usize, base: &[f64], factor: &[f64], width: usize) -> Vec<f64> {
    let mut out = vec![0.0; k * width];
    for (c, &l) in levels.iter().enumerate() {
        let l = l as usize;
        for j in 0..width {
            out[l * width + j] += base[c * width + j] * factor[c * width + j];
        }
    }
    out
}

/// Dense codes of the cells of the margins' cross-classification (R's `svytable` of all
/// margin variables) and their number: one mixed-radix code per row, recoded densely;
/// pairwise interactions when there are too many level combinations for one code.
fn cross_classification(margins: &[Margin]) -> (Vec<u32>, usize) {
    let radix: Option<i64> = margins.iter().try_fold(1i64, |acc, m| {
        acc.checked_mul(m.targets.len().max(1) as i64)
    });
    match radix {
        Some(_) => {
            let n = margins[0].cells.len();
            let mut code = vec![0i64; n];
            for m in margins {
                let k = m.targets.len() as i64;
                code.iter_mut()
                    .zip(m.cells)
                    .for_each(|(c, &l)| *c = *c * k + l as i64);
            }
            let (cells, distinct) = dense_codes_i64(&code);
            (cells, distinct.len())
        }
        None => {
            let mut cells = margins[0].cells.to_vec();
            let mut k = 0;
            for m in &margins[1..] {
                let (c, kk) = interaction(&cells, m.cells);
                cells = c;
                k = kk as usize;
            }
            (cells, k)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::srs;
    use super::*;

    #[test]
    fn raked_weights_meet_both_margins() {
        let w = [1.0, 2.0, 3.0, 1.0, 2.0, 1.0];
        let a = [0u32, 0, 1, 1, 0, 1];
        let b = [0u32, 1, 0, 1, 1, 0];
        let d = srs(&w);
        let margins = [
            Margin {
                cells: &a,
                targets: &[40.0, 60.0],
            },
            Margin {
                cells: &b,
                targets: &[30.0, 70.0],
            },
        ];
        let control = RakeControl {
            maxit: 100,
            epsilon: 1e-12,
        };
        let (out, report) = rake(&d, &margins, control).unwrap();
        assert!(report.converged);
        for (margin, start) in [(&a, 0), (&b, 2)] {
            for l in 0..2u32 {
                let t: f64 = out
                    .weights
                    .iter()
                    .zip(margin.iter())
                    .filter(|(_, &c)| c == l)
                    .map(|(w, _)| w)
                    .sum();
                assert!((t - report.after[start + l as usize]).abs() < 1e-9);
            }
        }
        assert!((report.after[0] - 40.0).abs() < 1e-9 && (report.after[3] - 70.0).abs() < 1e-9);
    }

    #[test]
    fn disagreeing_margins_are_refused() {
        let d = srs(&[1.0, 1.0]);
        let a = [0u32, 1];
        let margins = [
            Margin {
                cells: &a,
                targets: &[1.0, 1.0],
            },
            Margin {
                cells: &a,
                targets: &[1.0, 2.0],
            },
        ];
        assert!(matches!(
            rake(&d, &margins, RakeControl::default()),
            Err(CoreError::Calibration(_))
        ));
    }
}
