//! What a weighting adjustment leaves for the variance: the residuals that replace the
//! influence values of a calibrated, post-stratified or raked linearisation design, as R
//! does with `design$postStrata` in `svyrecvar` (from a weighted regression on the
//! calibration variables, from cell means, or from raking sweeps), before they are summed
//! to PSU totals.  A property of the weights: `weighting` builds the steps, the design
//! carries them.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::models::linalg::Qr;

/// Rows per chunk of a parallel sum; fixed, so that partial sums are added in the same
/// order (and give the same digits) whatever the number of threads.
const CHUNK_ROWS: usize = 1 << 16;

/// The number of backfitting sweeps R's `svyrecvar` makes over raking margins.
const RAKING_VARIANCE_SWEEPS: usize = 10;

/// The adjustments a linearisation design has been through, in order, as its variance
/// needs them (R's `design$postStrata`).
#[derive(Clone, Debug, Default)]
pub struct Calibration {
    steps: Vec<Arc<Step>>,
}

/// How the variance sees one adjustment.
#[derive(Debug)]
pub(crate) enum Step {
    /// R's `greg_calibration` at population level: x -> qr.resid(qr, x / scale) * scale,
    /// `qr` of the model matrix times sqrt(w) and scale = g sqrt(w), w the weights before.
    Regression { qr: Qr, scale: Vec<f64> },
    /// R's ordinary post-strata: x -> x - psw * sum_cell(x old / psw) / sum_cell(old),
    /// psw = old * ratio[cell] the weights after.
    PostStrata {
        cell: Vec<u32>,
        old: Arc<Vec<f64>>,
        ratio: Vec<f64>,
    },
    /// R's `raking` post-strata: sweeps of x -> x - psw * mean_level(x / psw) over the
    /// margins, psw = base * factor[cell] the weights right after that margin's
    /// post-stratification in the last raking sweep (`cell`: the margins' cross-classification).
    Raking {
        cell: Vec<u32>,
        base: Arc<Vec<f64>>,
        margins: Vec<RakedMargin>,
    },
}

#[derive(Debug)]
pub(crate) struct RakedMargin {
    pub(crate) level_of_cell: Vec<u32>,
    pub(crate) n_levels: usize,
    pub(crate) factor: Vec<f64>,
}

impl Calibration {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub(crate) fn then(&self, step: Step) -> Calibration {
        let mut steps = self.steps.clone();
        steps.push(Arc::new(step));
        Calibration { steps }
    }

    /// Replace influence values (n x p, row-major) by their residuals from every
    /// adjustment, in the order they were made (R's `svyrecvar` before `multistage`).
    pub fn residualise(&self, rows: &mut [f64], p: usize) {
        if p == 0 {
            return;
        }
        for step in &self.steps {
            step.residualise(rows, p);
        }
    }
}

impl Step {
    fn residualise(&self, rows: &mut [f64], p: usize) {
        match self {
            Step::Regression { qr, scale } => {
                let mut column = vec![0.0; scale.len()];
                for j in 0..p {
                    // A row of zero weight is a zero row of the regression: it neither
                    // moves the fit nor has a residual (R would divide 0 by 0).
                    for (r, c) in column.iter_mut().enumerate() {
                        *c = if scale[r] == 0.0 {
                            0.0
                        } else {
                            rows[r * p + j] / scale[r]
                        };
                    }
                    qr.residuals(&mut column);
                    for (r, c) in column.iter().enumerate() {
                        rows[r * p + j] = c * scale[r];
                    }
                }
            }
            Step::PostStrata { cell, old, ratio } => {
                let psw = |r: usize| {
                    let after = old[r] * ratio[cell[r] as usize];
                    // R: post-strata weights that were and are zero count as 1.
                    if after == 0.0 && old[r] == 0.0 {
                        1.0
                    } else {
                        after
                    }
                };
                let k = ratio.len();
                let mut num = vec![0.0; k * p];
                let mut den = vec![0.0; k];
                for (r, &c) in cell.iter().enumerate() {
                    let c = c as usize;
                    let s = old[r] / psw(r);
                    for j in 0..p {
                        num[c * p + j] += rows[r * p + j] * s;
                    }
                    den[c] += old[r];
                }
                for (r, &c) in cell.iter().enumerate() {
                    let c = c as usize;
                    if den[c] == 0.0 {
                        continue;
                    }
                    let s = psw(r) / den[c];
                    for j in 0..p {
                        rows[r * p + j] -= num[c * p + j] * s;
                    }
                }
            }
            Step::Raking {
                cell,
                base,
                margins,
            } => raking_residuals(cell, base, margins, rows, p),
        }
    }
}

/// R's raking residuals: `RAKING_VARIANCE_SWEEPS` sweeps of
/// x -> x - psw * mean_level(x / psw) over the margins, psw = base * factor[cell]
/// (psw taken as 1 where it is 0, where R would divide by zero).
///
/// Every update subtracts base_r times an amount that depends only on the row's cell,
/// so x_r = x0_r - base_r a[cell] (x0_r - b[cell] for a row of zero base weight) and the
/// level sums follow from per-cell sums of x0 / base: the sweeps run on the cells, and
/// the rows are read once and written once.
fn raking_residuals(
    cell: &[u32],
    base: &[f64],
    margins: &[RakedMargin],
    rows: &mut [f64],
    p: usize,
) {
    let n_cells = margins.first().map_or(0, |m| m.level_of_cell.len());
    // Per cell: sum of x0 / base over rows of positive base, sum of x0 over rows of zero
    // base, and the number of each.
    let width = 2 * p + 2;
    let sums = {
        let x: &[f64] = rows;
        chunked_sum(cell.len(), n_cells * width, |range, acc| {
            for r in range {
                let at = cell[r] as usize * width;
                let b = base[r];
                let (off, scale) = if b == 0.0 { (p, 1.0) } else { (0, 1.0 / b) };
                for j in 0..p {
                    acc[at + off + j] += x[r * p + j] * scale;
                }
                acc[at + 2 * p + usize::from(b == 0.0)] += 1.0;
            }
        })
    };
    let (a, b) = raking_sweeps(&sums, margins, p);
    rows.par_chunks_mut(CHUNK_ROWS * p.max(1))
        .enumerate()
        .for_each(|(k, chunk)| {
            for (i, x) in chunk.chunks_exact_mut(p).enumerate() {
                let r = k * CHUNK_ROWS + i;
                let c = cell[r] as usize;
                let br = base[r];
                for (j, v) in x.iter_mut().enumerate() {
                    *v -= if br == 0.0 {
                        b[c * p + j]
                    } else {
                        br * a[c * p + j]
                    };
                }
            }
        });
}

/// The sweeps of [`raking_residuals`] on the cells: from per-cell sums (width 2p + 2: x0 /
/// base over rows of positive base, x0 over rows of zero base, and the number of each),
/// the amounts a (per unit of base weight) and b (per row of zero base) that the raking
/// takes from each row of a cell: x_r = x0_r - base_r a[cell] (x0_r - b[cell]).
fn raking_sweeps(sums: &[f64], margins: &[RakedMargin], p: usize) -> (Vec<f64>, Vec<f64>) {
    let n_cells = margins.first().map_or(0, |m| m.level_of_cell.len());
    let width = 2 * p + 2;
    let mut a = vec![0.0; n_cells * p];
    let mut b = vec![0.0; n_cells * p];
    for _ in 0..RAKING_VARIANCE_SWEEPS {
        for m in margins {
            let mut level_sum = vec![0.0; m.n_levels * p];
            let mut count = vec![0.0; m.n_levels];
            for c in 0..n_cells {
                let l = m.level_of_cell[c] as usize;
                let s = &sums[c * width..(c + 1) * width];
                let (positive, zero) = (s[2 * p], s[2 * p + 1]);
                count[l] += positive + zero;
                for j in 0..p {
                    let from_positive = if positive > 0.0 {
                        (s[j] - positive * a[c * p + j]) / m.factor[c]
                    } else {
                        0.0
                    };
                    level_sum[l * p + j] += from_positive + s[p + j] - zero * b[c * p + j];
                }
            }
            for c in 0..n_cells {
                let l = m.level_of_cell[c] as usize;
                if count[l] == 0.0 {
                    continue;
                }
                for j in 0..p {
                    let mean = level_sum[l * p + j] / count[l];
                    a[c * p + j] += m.factor[c] * mean;
                    b[c * p + j] += mean;
                }
            }
        }
    }
    (a, b)
}

/// A rake of a streamed data set, as its variance needs it: the margins' levels and
/// factors of each cell (see [`Step::Raking`]), and the rows and base weights of each
/// cell in all and in each variance unit, gathered in passes over the batches.  The
/// residuals of the rows then sum to unit totals without the rows (see
/// [`CellRaking::residualise_totals`]).
#[derive(Debug)]
pub struct CellRaking {
    pub(crate) margins: Vec<RakedMargin>,
    pub(crate) n_units: usize,
    /// Per cell: rows of positive base weight, rows of zero base weight.
    pub(crate) counts: Vec<f64>,
    /// n_units x n_cells: base weight, and rows of zero base weight, of each unit's cell.
    pub(crate) base_by_unit: Vec<f64>,
    pub(crate) zero_by_unit: Vec<f64>,
}

impl CellRaking {
    pub fn n_cells(&self) -> usize {
        self.counts.len() / 2
    }

    /// Unit totals (n_units x p) of influence values x0 turned into unit totals of their
    /// raking residuals, given `cell_influence` (n_cells x p): the sums of x0 / base
    /// weight over each cell's rows of positive base weight (x0 is zero on rows of zero
    /// weight, so the rest of the sums R's sweeps need are the counts).
    pub fn residualise_totals(
        &self,
        cell_influence: &[f64],
        totals: &mut [f64],
        p: usize,
    ) -> Result<()> {
        let n_cells = self.n_cells();
        if cell_influence.len() != n_cells * p || totals.len() != self.n_units * p {
            return Err(CoreError::Shape(format!(
                "raking residuals need {n_cells} x {p} cell sums and {} x {p} unit totals",
                self.n_units
            )));
        }
        let width = 2 * p + 2;
        let mut sums = vec![0.0; n_cells * width];
        for c in 0..n_cells {
            let s = &mut sums[c * width..(c + 1) * width];
            s[..p].copy_from_slice(&cell_influence[c * p..(c + 1) * p]);
            s[2 * p] = self.counts[2 * c];
            s[2 * p + 1] = self.counts[2 * c + 1];
        }
        let (a, b) = raking_sweeps(&sums, &self.margins, p);
        for (u, total) in totals.chunks_exact_mut(p).enumerate() {
            let base = &self.base_by_unit[u * n_cells..(u + 1) * n_cells];
            let zero = &self.zero_by_unit[u * n_cells..(u + 1) * n_cells];
            for c in 0..n_cells {
                if base[c] == 0.0 && zero[c] == 0.0 {
                    continue;
                }
                for (j, t) in total.iter_mut().enumerate() {
                    *t -= base[c] * a[c * p + j] + zero[c] * b[c * p + j];
                }
            }
        }
        Ok(())
    }
}

/// Rows per chunk of a parallel sum into `len` accumulators: at least `CHUNK_ROWS`, and
/// more when the accumulators are large, so that they stay small beside the rows.
/// (It depends on the sizes only, never on the number of threads.)
pub(crate) fn chunk_rows(len: usize) -> usize {
    CHUNK_ROWS.max(len.saturating_mul(4))
}

/// Sums over row chunks, in parallel when there are many rows: `add(rows, acc)` adds
/// the rows' contributions to a zeroed accumulator of length `len`, and the chunks'
/// accumulators are added in chunk order.
pub(crate) fn chunked_sum<F>(n: usize, len: usize, add: F) -> Vec<f64>
where
    F: Fn(Range<usize>, &mut [f64]) + Sync,
{
    let rows = chunk_rows(len);
    let n_chunks = n.div_ceil(rows).max(1);
    let parts: Vec<Vec<f64>> = (0..n_chunks)
        .into_par_iter()
        .map(|k| {
            let mut acc = vec![0.0; len];
            add(k * rows..((k + 1) * rows).min(n), &mut acc);
            acc
        })
        .collect();
    let mut total = vec![0.0; len];
    for part in parts {
        total.iter_mut().zip(part).for_each(|(t, v)| *t += v);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two margins of 2 and 3 levels over 6 cells; 11 rows, one of zero base weight.
    const RAKED_CELL: [u32; 11] = [0, 1, 2, 3, 4, 5, 0, 4, 2, 5, 1];
    const RAKED_BASE: [f64; 11] = [2.0, 1.5, 3.0, 0.0, 2.5, 1.0, 4.0, 2.0, 1.0, 3.5, 2.0];

    fn raked_margins() -> Vec<RakedMargin> {
        vec![
            RakedMargin {
                level_of_cell: vec![0, 0, 0, 1, 1, 1],
                n_levels: 2,
                factor: vec![1.1, 0.9, 1.3, 0.8, 1.2, 1.05],
            },
            RakedMargin {
                level_of_cell: vec![0, 1, 2, 0, 1, 2],
                n_levels: 3,
                factor: vec![1.0, 0.95, 1.4, 0.7, 1.15, 1.1],
            },
        ]
    }

    #[test]
    fn cell_raking_gives_the_unit_totals_of_the_row_residuals() {
        // The rows of `raking_residuals_follow_r_row_by_row`, in three units; x0 is zero
        // on the row of zero base weight, as every influence value of a pass is.
        let (cell, base) = (RAKED_CELL, RAKED_BASE);
        let unit = [0usize, 1, 0, 1, 2, 2, 0, 1, 2, 0, 1];
        let (p, n_units, n_cells) = (2, 3, 6);
        let x0: Vec<f64> = (0..22)
            .map(|i| {
                if i / 2 == 3 {
                    0.0
                } else {
                    (f64::from(i * 7 % 11) - 5.0) * 0.3
                }
            })
            .collect();
        let mut rows = x0.clone();
        raking_residuals(&cell, &base, &raked_margins(), &mut rows, p);
        let mut expected = vec![0.0; n_units * p];
        let mut totals = vec![0.0; n_units * p];
        let mut cell_influence = vec![0.0; n_cells * p];
        let mut counts = vec![0.0; 2 * n_cells];
        let mut base_by_unit = vec![0.0; n_units * n_cells];
        let mut zero_by_unit = vec![0.0; n_units * n_cells];
        for r in 0..11 {
            let (u, c) = (unit[r], cell[r] as usize);
            for j in 0..p {
                expected[u * p + j] += rows[r * p + j];
                totals[u * p + j] += x0[r * p + j];
                if base[r] != 0.0 {
                    cell_influence[c * p + j] += x0[r * p + j] / base[r];
                }
            }
            counts[2 * c + usize::from(base[r] == 0.0)] += 1.0;
            base_by_unit[u * n_cells + c] += base[r];
            zero_by_unit[u * n_cells + c] += f64::from(u8::from(base[r] == 0.0));
        }
        let raking = CellRaking {
            margins: raked_margins(),
            n_units,
            counts,
            base_by_unit,
            zero_by_unit,
        };
        raking
            .residualise_totals(&cell_influence, &mut totals, p)
            .unwrap();
        for (a, b) in totals.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-13, "{totals:?}\n{expected:?}");
        }
    }

    #[test]
    fn raking_residuals_follow_r_row_by_row() {
        let (cell, base, margins) = (RAKED_CELL, RAKED_BASE, raked_margins());
        let x0: Vec<f64> = (0..22)
            .map(|i| (f64::from(i * 7 % 11) - 5.0) * 0.3)
            .collect();
        let mut fast = x0.clone();
        raking_residuals(&cell, &base, &margins, &mut fast, 2);
        // R's svyrecvar: x <- x - psw * apply(x / psw, 2, ave, margin), ten times.
        let mut slow = x0;
        for _ in 0..RAKING_VARIANCE_SWEEPS {
            for m in &margins {
                let psw: Vec<f64> = (0..11)
                    .map(|r| {
                        let w = base[r] * m.factor[cell[r] as usize];
                        if w == 0.0 {
                            1.0
                        } else {
                            w
                        }
                    })
                    .collect();
                for j in 0..2 {
                    let mut sum = vec![0.0; m.n_levels];
                    let mut count = vec![0.0; m.n_levels];
                    for r in 0..11 {
                        let l = m.level_of_cell[cell[r] as usize] as usize;
                        sum[l] += slow[r * 2 + j] / psw[r];
                        count[l] += 1.0;
                    }
                    for r in 0..11 {
                        let l = m.level_of_cell[cell[r] as usize] as usize;
                        slow[r * 2 + j] -= psw[r] * sum[l] / count[l];
                    }
                }
            }
        }
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() < 1e-13, "{fast:?}\n{slow:?}");
        }
    }
}
