//! Raking (R's `rake`): iterative proportional fitting, post-stratifying to each margin
//! in turn until a sweep changes no cell of the margins' cross-classification by
//! `epsilon` or more.
//!
//! Every post-stratification multiplies the weights of a margin level by one factor, so
//! all rows in one cell of the cross-classification of the margins share one product
//! of factors: the sweeps run on that (small) table of cells, and the rows are touched
//! only to sum their weights into it and to scale them at the end.

use super::{
    adjusted, analysis_weights, cell_ratios, cell_sums, check_cells, check_counts, chunk_rows,
    replicate_ratios, CellRaking, RakedMargin, Report, Step,
};
use rayon::prelude::*;

use crate::codes::{densify, interaction};
use crate::design::Design;
use crate::error::{CoreError, Result};

/// Margin totals may differ by this much (relative) before they are said to disagree.
const MARGIN_AGREEMENT: f64 = 1e-6;
/// Most cells of the cross-classification numbered by their levels directly.
const MAX_DIRECT_CELLS: usize = 1 << 20;

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
    let Cells {
        cell,
        levels: level_of_cell,
        weight: base,
    } = classify(margins, w)?;
    let n_cells = base.len();
    let targets: Vec<&[f64]> = margins.iter().map(|m| m.targets).collect();
    // Replicates are post-stratified in the same sweeps (R's rake of a replicate design).
    let replicates = design.replicates().map(|rep| {
        let a = analysis_weights(design, rep);
        let sums = cell_sums(&cell, n_cells, &a, rep.n_replicates);
        (a, sums, rep.n_replicates)
    });
    let swept = sweep_cells(
        &level_of_cell,
        &targets,
        &base,
        control,
        replicates
            .as_ref()
            .map(|(_, sums, k)| (sums.as_slice(), *k)),
    )?;
    let factor = &swept.factor;
    let weights: Vec<f64> = w
        .par_iter()
        .zip(cell.par_iter())
        .map(|(w, &c)| w * factor[c as usize])
        .collect();
    let analysis = replicates.map(|(mut a, _, k)| {
        let rf = swept.rep_factor.clone().unwrap_or_default();
        for (row, &c) in a.chunks_exact_mut(k).zip(&cell) {
            let f = &rf[c as usize * k..(c as usize + 1) * k];
            row.iter_mut().zip(f).for_each(|(v, f)| *v *= f);
        }
        a
    });
    let report = swept.report(&level_of_cell, &targets, &base);
    let step = analysis.is_none().then(|| Step::Raking {
        margins: swept.margins(level_of_cell, &targets),
        cell,
        base: w.clone(),
    });
    Ok((adjusted(design, weights, analysis, step)?, report))
}

/// Rake the cells of a streamed data set (the margins' cross-classification, gathered
/// in passes over the batches): `level_of_cell` each margin's level of every cell,
/// `weight` the cells' base weights, `counts` their rows of positive and of zero base
/// weight (2 per cell), `base_by_unit` and `zero_by_unit` the same per variance unit
/// (n_units x n_cells).  Returns each cell's factor, the rake as the variance needs it,
/// and the report.
pub fn rake_cells(
    level_of_cell: Vec<Vec<u32>>,
    targets: &[&[f64]],
    weight: &[f64],
    (counts, base_by_unit, zero_by_unit): (Vec<f64>, Vec<f64>, Vec<f64>),
    control: RakeControl,
) -> Result<(Vec<f64>, CellRaking, Report)> {
    check_targets(targets, control)?;
    let n_cells = weight.len();
    let n_units = base_by_unit.len() / n_cells.max(1);
    let shapes_agree = level_of_cell.len() == targets.len()
        && level_of_cell
            .iter()
            .zip(targets)
            .all(|(l, t)| l.len() == n_cells && l.iter().all(|&v| (v as usize) < t.len()))
        && counts.len() == 2 * n_cells
        && base_by_unit.len() == n_units * n_cells
        && zero_by_unit.len() == base_by_unit.len();
    if !shapes_agree {
        return Err(CoreError::Shape(
            "the cells' levels, counts and unit tables do not agree with the margins".into(),
        ));
    }
    let swept = sweep_cells(&level_of_cell, targets, weight, control, None)?;
    let report = swept.report(&level_of_cell, targets, weight);
    let raking = CellRaking {
        margins: swept.margins(level_of_cell, targets),
        n_units,
        counts,
        base_by_unit,
        zero_by_unit,
    };
    Ok((swept.factor, raking, report))
}

/// The sweeps of a rake over the cells: each cell's factor, its factor right after each
/// margin's post-stratification in the last sweep, the replicates' factors (n_cells x k).
struct Swept {
    factor: Vec<f64>,
    snapshots: Vec<Vec<f64>>,
    rep_factor: Option<Vec<f64>>,
    sweeps: usize,
    converged: bool,
    delta: f64,
}

/// R's sweeps: post-stratify to each margin in turn until no cell changes by `epsilon`
/// (a fraction of the total weight when below 1); `replicates`: the cells' replicate
/// weight sums (n_cells x k), post-stratified in the same sweeps.
fn sweep_cells(
    level_of_cell: &[Vec<u32>],
    targets: &[&[f64]],
    base: &[f64],
    control: RakeControl,
    replicates: Option<(&[f64], usize)>,
) -> Result<Swept> {
    let n_cells = base.len();
    let epsilon = if control.epsilon < 1.0 {
        control.epsilon * base.iter().sum::<f64>()
    } else {
        control.epsilon
    };
    let mut rep_factor = replicates.map(|(_, k)| vec![1.0; n_cells * k]);
    let mut factor = vec![1.0; n_cells];
    let mut snapshots = vec![Vec::new(); targets.len()];
    let mut old = base.to_vec();
    let (mut sweeps, mut converged, mut delta) = (0, false, f64::NAN);
    while sweeps < control.maxit {
        for (m, target) in targets.iter().enumerate() {
            let levels = &level_of_cell[m];
            let totals = level_totals(levels, target.len(), base, &factor, 1);
            let ratio = cell_ratios(&totals, target, m)?;
            for (f, &l) in factor.iter_mut().zip(levels) {
                *f *= ratio[l as usize];
            }
            snapshots[m].clone_from(&factor);
            if let (Some((sums, k)), Some(rf)) = (replicates, rep_factor.as_mut()) {
                let totals = level_totals(levels, target.len(), sums, rf, k);
                let ratios: Vec<Vec<f64>> = (0..k)
                    .map(|j| {
                        let column: Vec<f64> =
                            (0..target.len()).map(|l| totals[l * k + j]).collect();
                        replicate_ratios(&column, target)
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
    Ok(Swept {
        factor,
        snapshots,
        rep_factor,
        sweeps,
        converged,
        delta,
    })
}

impl Swept {
    /// Margin totals before and after, margin by margin, and how the sweeps ended.
    fn report(&self, level_of_cell: &[Vec<u32>], targets: &[&[f64]], base: &[f64]) -> Report {
        let ones = vec![1.0; base.len()];
        let mut before = Vec::new();
        let mut after = Vec::new();
        for (levels, target) in level_of_cell.iter().zip(targets) {
            before.extend(level_totals(levels, target.len(), base, &ones, 1));
            after.extend(level_totals(levels, target.len(), base, &self.factor, 1));
        }
        Report {
            iterations: self.sweeps,
            converged: self.converged,
            misfit: self.delta,
            before,
            after,
            replicates_not_converged: 0,
        }
    }

    /// The margins as the variance's sweeps need them.
    fn margins(&self, level_of_cell: Vec<Vec<u32>>, targets: &[&[f64]]) -> Vec<RakedMargin> {
        level_of_cell
            .into_iter()
            .zip(targets)
            .zip(&self.snapshots)
            .map(|((level_of_cell, target), factor)| RakedMargin {
                level_of_cell,
                n_levels: target.len(),
                factor: factor.clone(),
            })
            .collect()
    }
}

fn validate(design: &Design, margins: &[Margin], control: RakeControl) -> Result<()> {
    for (m, margin) in margins.iter().enumerate() {
        if margin.cells.len() != design.n_rows {
            return Err(CoreError::Shape(format!(
                "margin #{m} has {} codes for {} rows; it needs one code per row",
                margin.cells.len(),
                design.n_rows,
            )));
        }
    }
    let targets: Vec<&[f64]> = margins.iter().map(|m| m.targets).collect();
    check_targets(&targets, control)
}

/// At least one margin, each with levels and valid counts, all with one total; a usable
/// control.
fn check_targets(targets: &[&[f64]], control: RakeControl) -> Result<()> {
    if targets.is_empty() {
        return Err(CoreError::Calibration(
            "rake needs at least one margin".into(),
        ));
    }
    if control.maxit == 0 || control.epsilon.is_nan() || control.epsilon <= 0.0 {
        return Err(CoreError::Value(
            "rake needs maxit >= 1 and a positive epsilon".into(),
        ));
    }
    let mut totals = Vec::with_capacity(targets.len());
    for (m, target) in targets.iter().enumerate() {
        if target.is_empty() {
            return Err(CoreError::Shape(format!(
                "margin #{m} has no levels; it needs at least one"
            )));
        }
        check_counts(target, m)?;
        totals.push(target.iter().sum::<f64>());
    }
    for (m, &t) in totals.iter().enumerate().skip(1) {
        if (t - totals[0]).abs() > MARGIN_AGREEMENT * totals[0].abs().max(t.abs()) {
            return Err(CoreError::Cell {
                margin: m,
                level: None,
                problem: format!(
                    "totals {t} but the first margin totals {}: the margins disagree; raking \
                     cannot meet both",
                    totals[0]
                ),
            });
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

/// The margins' cross-classification (R's `svytable` of all margin variables).
struct Cells {
    /// Each row's cell.
    cell: Vec<u32>,
    /// Each margin's level of every cell.
    levels: Vec<Vec<u32>>,
    /// The sum of the weights in each cell.
    weight: Vec<f64>,
}

/// Classify the rows.  With few level combinations a cell is the mixed-radix number of
/// its levels, found in one parallel pass that also checks the codes and sums the
/// weights (unobserved cells stay empty); otherwise the observed combinations are
/// numbered densely.
fn classify(margins: &[Margin], w: &[f64]) -> Result<Cells> {
    let n = w.len();
    let product = margins
        .iter()
        .try_fold(1usize, |acc, m| acc.checked_mul(m.targets.len()));
    let check_all = || -> Result<()> {
        for (m, margin) in margins.iter().enumerate() {
            check_cells(
                margin.cells,
                n,
                margin.targets.len(),
                &format!("margin #{m}"),
            )?;
        }
        Ok(())
    };
    if let Some(k) = product.filter(|&k| k <= MAX_DIRECT_CELLS) {
        let rows = chunk_rows(k);
        let mut cell = vec![0u32; n];
        let parts: Vec<(Vec<f64>, bool)> = cell
            .par_chunks_mut(rows)
            .enumerate()
            .map(|(chunk, out)| {
                let mut weight = vec![0.0; k];
                let mut in_range = true;
                for (i, o) in out.iter_mut().enumerate() {
                    let r = chunk * rows + i;
                    let mut code = 0;
                    for m in margins {
                        let (level, km) = (m.cells[r] as usize, m.targets.len());
                        in_range &= level < km;
                        code = code * km + level.min(km - 1);
                    }
                    *o = code as u32;
                    weight[code] += w[r];
                }
                (weight, in_range)
            })
            .collect();
        if parts.iter().any(|(_, ok)| !ok) {
            check_all()?;
        }
        let mut weight = vec![0.0; k];
        for (part, _) in parts {
            weight.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
        // The first margin's level varies slowest in the cell number.
        let mut stride = k;
        let levels = margins
            .iter()
            .map(|m| {
                let km = m.targets.len();
                stride /= km;
                (0..k).map(|c| ((c / stride) % km) as u32).collect()
            })
            .collect();
        return Ok(Cells {
            cell,
            levels,
            weight,
        });
    }
    check_all()?;
    let mut cell = margins[0].cells.to_vec();
    for m in &margins[1..] {
        cell = interaction(&cell, m.cells).0;
    }
    let (cell, k) = densify(&cell);
    let k = k as usize;
    let mut first = vec![usize::MAX; k];
    for (r, &c) in cell.iter().enumerate().rev() {
        first[c as usize] = r;
    }
    let levels = margins
        .iter()
        .map(|m| first.iter().map(|&r| m.cells[r]).collect())
        .collect();
    let weight = cell_sums(&cell, k, w, 1);
    Ok(Cells {
        cell,
        levels,
        weight,
    })
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
        // The second margin totals 3, the first 2.
        assert!(matches!(
            rake(&d, &margins, RakeControl::default()),
            Err(CoreError::Cell {
                margin: 1,
                level: None,
                ..
            })
        ));
    }
}
