//! Generalised linear models by iteratively reweighted least squares, step for step as
//! R's `glm.fit`, and the influence values of the coefficients that survey inference
//! needs (R's `svy.varcoef`: estimating functions times the inverse information).
//!
//! Matching R's iterations, not only its fixed point, matters: R stops when the deviance
//! changes by less than `epsilon` relative, which can leave the coefficients 1e-5 from
//! the converged solution, and the reference figures are R's.

use std::borrow::Cow;

use rayon::prelude::*;

use super::family::{Family, Link};
use super::linalg;
use super::regressors::Regressors;
use crate::error::{CoreError, Result};
use crate::replicate::refit_replicates;
use crate::svyvar::WeightedMoments;

/// R's `glm.control()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Control {
    pub epsilon: f64,
    pub maxit: usize,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            epsilon: 1e-8,
            maxit: 25,
        }
    }
}

/// A model to fit: the n x p model matrix, outcome, prior weights and offset.
#[derive(Clone, Copy)]
pub struct GlmInput<'a> {
    pub x: &'a Regressors<'a>,
    pub y: &'a [f64],
    pub weights: &'a [f64],
    pub offset: Option<&'a [f64]>,
    pub family: Family,
    pub link: Link,
    pub control: Control,
}

impl GlmInput<'_> {
    /// Rows.
    pub fn n(&self) -> usize {
        self.x.n()
    }

    /// Coefficients.
    pub fn p(&self) -> usize {
        self.x.p()
    }
}

/// R's `Cdqrls` tolerance in `glm.fit`: min(1e-7, epsilon / 1000).
fn qr_tolerance(control: &Control) -> f64 {
    (control.epsilon / 1000.0).min(1e-7)
}

/// Extra IRLS steps taken from the solution of a binomial or poisson model, and how far
/// (in the linear predictor) they may move it before the solution counts as separated.
/// At a finite maximum a step moves the linear predictor by rounding (R's rule stops
/// within about 1e-5 of it); when the maximum is at infinity each step moves the
/// separated rows on by about 1, however small their fitted values already are.  So the
/// probe stops at the first step that moves it by more than `PROBE_DRIFT` (separated)
/// or by at most `PROBE_SETTLED` (a finite maximum).
const PROBE_STEPS: usize = 3;
const PROBE_DRIFT: f64 = 0.1;
const PROBE_SETTLED: f64 = 1e-3;

/// Rows per chunk of the passes over the rows: a fixed partition, so sums combined in
/// chunk order give the same digits for any number of threads.
const CHUNK_ROWS: usize = linalg::CHUNK_ROWS;

/// The IRLS of one model: its data, with the outcome as the family's `initialize` left it.
struct Irls<'a> {
    input: &'a GlmInput<'a>,
    y: Cow<'a, [f64]>,
}

/// A row at the solution of an IRLS: its working weight in the step that reached it
/// (R's `fit$weights`), fitted mean, and working and Pearson residuals there.
pub struct SolutionRow {
    pub working_weight: f64,
    pub fitted: f64,
    pub working_residual: f64,
    pub pearson_residual: f64,
}

/// What a chunk of rows gives a pass: the deviance (summed in row order), whether the
/// linear predictors and means are in the family's range, the informative rows of the
/// step, the largest drift, and the first failure of a row's step.
#[derive(Default)]
struct ChunkPass {
    deviance: f64,
    invalid: bool,
    informative: usize,
    drift: f64,
    error: Option<CoreError>,
}

/// What the pass at a step of the separation probe finds: whether the linear
/// predictors and means there are in the family's range, the deviance there, and the
/// largest move of a linear predictor from the solution's.
#[derive(Clone, Copy, Debug)]
pub struct Drift {
    valid: bool,
    deviance: f64,
    largest: f64,
}

/// What a probe step says of the solution it left.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// Moved far, or out of the family's range: no finite maximum.
    Separated,
    /// Stayed where it was, up to rounding: a finite maximum.
    Settled,
    /// Neither yet: take a further step.
    Moving,
}

impl Default for Drift {
    fn default() -> Self {
        Drift {
            valid: true,
            deviance: 0.0,
            largest: 0.0,
        }
    }
}

impl Drift {
    /// Row i at the probe's linear predictor `eta` (`at_solution`: the solution's).
    fn add_row(&mut self, irls: &Irls, i: usize, at_solution: f64, eta: f64) {
        let GlmInput {
            family,
            link,
            weights: w,
            ..
        } = *irls.input;
        let (mu, _) = link.inverse_and_mu_eta(eta);
        self.deviance += family.deviance_residual(irls.y[i], mu, w[i]);
        self.valid &= link.valid_eta(eta) && family.valid_mu(mu);
        self.largest = self.largest.max((eta - at_solution).abs());
    }

    /// Two parts of the rows together (the deviance in their order).
    fn add(self, other: Drift) -> Drift {
        Drift {
            valid: self.valid && other.valid,
            deviance: self.deviance + other.deviance,
            largest: self.largest.max(other.largest),
        }
    }

    fn of_pass(pass: &PassState) -> Drift {
        Drift {
            valid: pass.valid,
            deviance: pass.deviance,
            largest: pass.drift,
        }
    }

    fn verdict(self) -> Verdict {
        if !self.valid || !self.deviance.is_finite() || self.largest > PROBE_DRIFT {
            Verdict::Separated
        } else if self.largest <= PROBE_SETTLED {
            Verdict::Settled
        } else {
            Verdict::Moving
        }
    }
}

impl Irls<'_> {
    fn offset(&self, i: usize) -> f64 {
        self.input.offset.map_or(0.0, |o| o[i])
    }

    /// Row i's linear predictor from R's starting mean.
    fn start_eta(&self, i: usize) -> f64 {
        let GlmInput {
            family,
            link,
            weights: w,
            ..
        } = *self.input;
        link.link(family.start_mean(self.y[i], w[i]))
    }

    /// The linear predictor at `beta` of row `first + k` of a block of model columns
    /// (column j's row k at `block[j * ld + k]`): x . beta summed over the columns in
    /// order, then the offset.
    fn linear(&self, block: &[f64], ld: usize, k: usize, beta: &[f64], first: usize) -> f64 {
        let mut eta = 0.0;
        for (j, b) in beta.iter().enumerate() {
            eta += block[j * ld + k] * b;
        }
        eta + self.offset(first + k)
    }

    /// [`Irls::linear`] of the block's first `len` rows into `eta`: column by column,
    /// so that the products vectorise, each row's sum in the same order (the same
    /// digits).
    fn linear_block(
        &self,
        block: &[f64],
        ld: usize,
        len: usize,
        beta: &[f64],
        first: usize,
        eta: &mut [f64],
    ) {
        let eta = &mut eta[..len];
        eta.fill(0.0);
        for (column, b) in block.chunks_exact(ld).zip(beta) {
            for (e, v) in eta.iter_mut().zip(column) {
                *e += v * b;
            }
        }
        for (k, e) in eta.iter_mut().enumerate() {
            *e += self.offset(first + k);
        }
    }

    /// Row i's part of the weighted least-squares step from its linear predictor, mean
    /// and d mu / d eta (R's loop body up to `Cdqrls`): the square root of its working
    /// weight and its weighted working response; None for a row that carries no
    /// information (zero prior weight, or d mu / d eta = 0), which R leaves out of the
    /// least squares.
    fn working_row(&self, i: usize, eta: f64, mu: f64, mu_eta: f64) -> Result<Option<(f64, f64)>> {
        let GlmInput {
            weights: w, family, ..
        } = *self.input;
        let variance = family.variance(mu);
        if w[i] > 0.0 {
            if variance.is_nan() {
                return Err(CoreError::Value("NAs in V(mu)".into()));
            }
            if variance == 0.0 {
                return Err(CoreError::Value(
                    "0s in V(mu): a fitted mean reached the edge of its range".into(),
                ));
            }
        }
        if w[i] > 0.0 && mu_eta.is_nan() {
            return Err(CoreError::Value("NAs in d(mu)/d(eta)".into()));
        }
        if !(w[i] > 0.0 && mu_eta != 0.0) {
            return Ok(None);
        }
        let root = (w[i] * mu_eta * mu_eta / variance).sqrt();
        let z = ((eta - self.offset(i)) + (self.y[i] - mu) / mu_eta) * root;
        Ok(Some((root, z)))
    }

    /// The rows' part of an IRLS pass at `beta` (see [`Passes::pass`]), in one parallel
    /// pass over blocks of rows: each block's linear predictors and means, the deviance,
    /// the drift from `reference`, and (with `step`) the block weighted and reduced into
    /// the triangular factor of [sqrt(W) X | sqrt(W) z] (see `linalg::tall_r`; a row that
    /// carries no information is a row of zeros).  The factor counts only where the
    /// means are valid and the deviance finite: R would halve the step to them rather
    /// than step from them.
    fn pass(
        &self,
        beta: Option<&[f64]>,
        step: bool,
        reference: Option<&[f64]>,
    ) -> Result<BatchPass> {
        let GlmInput {
            x,
            family,
            link,
            weights: w,
            ..
        } = *self.input;
        let p = x.p();
        for b in [beta, reference].into_iter().flatten() {
            if b.len() != p {
                return Err(CoreError::Shape(format!(
                    "{} coefficients for {p} model columns",
                    b.len()
                )));
            }
        }
        let (triangle, chunks) = linalg::tall_r(
            x.n(),
            p + 1,
            step,
            |start, len, block, ld, chunk: &mut ChunkPass| {
                x.fill(start, len, block, ld);
                let mut roots = [0.0; linalg::BLOCK_ROWS];
                let (mut etas, mut froms) = ([0.0; linalg::BLOCK_ROWS], [0.0; linalg::BLOCK_ROWS]);
                match beta {
                    Some(b) => self.linear_block(block, ld, len, b, start, &mut etas),
                    None => {
                        for (k, eta) in etas[..len].iter_mut().enumerate() {
                            *eta = self.start_eta(start + k);
                        }
                    }
                }
                if let Some(r) = reference {
                    self.linear_block(block, ld, len, r, start, &mut froms);
                }
                for k in 0..len {
                    let i = start + k;
                    let eta = etas[k];
                    if reference.is_some() {
                        chunk.drift = chunk.drift.max((eta - froms[k]).abs());
                    }
                    let (mu, mu_eta) = link.inverse_and_mu_eta(eta);
                    chunk.deviance += family.deviance_residual(self.y[i], mu, w[i]);
                    chunk.invalid |= !(link.valid_eta(eta) && family.valid_mu(mu));
                    if !step || chunk.error.is_some() {
                        continue;
                    }
                    let (root, z) = match self.working_row(i, eta, mu, mu_eta) {
                        Ok(Some(rz)) => {
                            chunk.informative += 1;
                            rz
                        }
                        Ok(None) => (0.0, 0.0),
                        Err(err) => {
                            chunk.error = Some(err);
                            (0.0, 0.0)
                        }
                    };
                    roots[k] = root;
                    block[p * ld + k] = z;
                }
                if step {
                    for column in block.chunks_exact_mut(ld).take(p) {
                        for (v, root) in column.iter_mut().zip(&roots[..len]) {
                            *v *= root;
                        }
                    }
                }
                !chunk.invalid && chunk.deviance.is_finite() && chunk.error.is_none()
            },
        );
        let deviance = chunks.iter().map(|c| c.deviance).sum::<f64>();
        let valid = !chunks.iter().any(|c| c.invalid);
        let stepping = step && valid && deviance.is_finite();
        if stepping {
            // The first failing row's error, whatever the threads.
            if let Some(err) = chunks.iter().find_map(|c| c.error.clone()) {
                return Err(err);
            }
        }
        Ok(BatchPass {
            deviance,
            valid,
            triangle: triangle.filter(|_| stepping),
            informative: if stepping {
                chunks.iter().map(|c| c.informative).sum()
            } else {
                0
            },
            drift: chunks.iter().map(|c| c.drift).fold(0.0, f64::max),
        })
    }

    /// Rows `first..first + len` at the solution `beta`, reached by the step from
    /// `previous` (None: the starting means): `visit(k, row, x)` for row `first + k`,
    /// with its model columns' values `x` (p).  The rows' columns are assembled in
    /// blocks that stay in the cache, and the linear predictors summed as
    /// [`Irls::pass`] sums them.  With `probe`, the separation probe's first step from
    /// the solution is looked at in the same pass (what its pass would find: [`Drift`]).
    fn visit_solution(
        &self,
        first: usize,
        len: usize,
        beta: &[f64],
        previous: Option<&[f64]>,
        probe: Option<&[f64]>,
        mut visit: impl FnMut(usize, &SolutionRow, &[f64]),
    ) -> Result<Drift> {
        let GlmInput {
            x, family, link, ..
        } = *self.input;
        let p = x.p();
        let mut drift = Drift::default();
        if beta.len() != p
            || [previous, probe]
                .into_iter()
                .flatten()
                .any(|b| b.len() != p)
        {
            return Err(CoreError::Shape(format!(
                "coefficients for {p} model columns expected"
            )));
        }
        let ld = linalg::BLOCK_ROWS;
        let mut block = vec![0.0; ld * p];
        let mut xi = vec![0.0; p];
        let mut from_etas = [0.0; linalg::BLOCK_ROWS];
        let mut solution_etas = [0.0; linalg::BLOCK_ROWS];
        let mut probe_etas = [0.0; linalg::BLOCK_ROWS];
        for start in (first..first + len).step_by(ld) {
            let rows = ld.min(first + len - start);
            x.fill(start, rows, &mut block, ld);
            // R's `fit$weights` are those of the step that reached the solution.
            match previous {
                Some(from) => self.linear_block(&block, ld, rows, from, start, &mut from_etas),
                None => {
                    for (b, eta) in from_etas[..rows].iter_mut().enumerate() {
                        *eta = self.start_eta(start + b);
                    }
                }
            }
            self.linear_block(&block, ld, rows, beta, start, &mut solution_etas);
            if let Some(probe) = probe {
                self.linear_block(&block, ld, rows, probe, start, &mut probe_etas);
            }
            for b in 0..rows {
                let i = start + b;
                for (j, v) in xi.iter_mut().enumerate() {
                    *v = block[j * ld + b];
                }
                let eta_from = from_etas[b];
                let (mu_from, mu_eta_from) = link.inverse_and_mu_eta(eta_from);
                let working_weight = self
                    .working_row(i, eta_from, mu_from, mu_eta_from)?
                    .map_or(0.0, |(root, _)| root * root);
                let eta = solution_etas[b];
                if probe.is_some() {
                    drift.add_row(self, i, eta, probe_etas[b]);
                }
                let (fitted, mu_eta) = link.inverse_and_mu_eta(eta);
                let row = SolutionRow {
                    working_weight,
                    fitted,
                    working_residual: (self.y[i] - fitted) / mu_eta,
                    pearson_residual: (self.y[i] - fitted) / family.variance(fitted).sqrt(),
                };
                visit(i - first, &row, &xi);
            }
        }
        Ok(drift)
    }

    /// The step from `from` (None: the starting means) decided as R's dqrdc2 decides it
    /// on the dense weighted matrix of the informative rows: near or at aliasing, where
    /// the stacked triangular factor cannot name the columns R names.
    fn dense_step(&self, from: Option<&[f64]>) -> Result<(Vec<f64>, linalg::Triangular)> {
        let GlmInput {
            x, control, link, ..
        } = *self.input;
        let (n, p) = (x.n(), x.p());
        let mut z = Vec::new();
        let mut xi = vec![0.0; p];
        let mut rows = Vec::new();
        for i in 0..n {
            x.row(i, &mut xi);
            let eta = from.map_or_else(|| self.start_eta(i), |b| self.linear(&xi, 1, 0, b, i));
            let (mu, mu_eta) = link.inverse_and_mu_eta(eta);
            if let Some((root, zi)) = self.working_row(i, eta, mu, mu_eta)? {
                rows.push((i, root));
                z.push(zi);
            }
        }
        let m = rows.len();
        let mut a = vec![0.0; m * p];
        for (row, &(i, root)) in rows.iter().enumerate() {
            x.row(i, &mut xi);
            for (j, xv) in xi.iter().enumerate() {
                a[j * m + row] = xv * root;
            }
        }
        let dense = linalg::qr(a, m, p, qr_tolerance(&control))
            .map_err(|columns| CoreError::Aliased { columns })?;
        let coef = dense.solve(&z);
        Ok((coef, dense.triangular()))
    }
}

// R's `glm.fit` loop runs once, here, over any rows that can be passed over: rows in
// memory (one batch holding them all), a streamed design's batches, each read in a
// pass, or the sums that stand for the rows of y ~ 1 (`svyciprop`).  A pass at the
// coefficients beta gives the deviance of the means there and the triangular factor of
// the least squares of the step from there, so each iteration is one pass; the step is
// solved from the factors stacked in batch order.

/// The rows an IRLS passes over.
pub trait Passes {
    /// Each batch's part of a pass at `beta` (None: the starting means, or the start
    /// coefficients the fit was given), in batch order: with `step`, the factors of the
    /// step from there; with `reference`, the drift of the linear predictors from it.
    fn pass(
        &mut self,
        beta: Option<&[f64]>,
        step: bool,
        reference: Option<&[f64]>,
    ) -> Result<Vec<BatchPass>>;

    /// The step from `from` when the stacked factor shows `aliased` columns.  Rows that
    /// are not held can only refuse; rows in memory decide as R's dense QR does.
    fn aliased_step(
        &mut self,
        from: Option<&[f64]>,
        aliased: Vec<usize>,
    ) -> Result<(Vec<f64>, linalg::Triangular)> {
        let _ = from;
        Err(CoreError::Aliased { columns: aliased })
    }
}

/// A pass's batches combined: at `beta`, the deviance, validity, the stacked factor
/// (q x q, column-major), informative rows and the largest drift.
struct PassState {
    beta: Option<Vec<f64>>,
    deviance: f64,
    valid: bool,
    triangle: Option<Vec<f64>>,
    informative: usize,
    drift: f64,
}

impl PassState {
    fn run(
        passes: &mut impl Passes,
        beta: Option<&[f64]>,
        step: bool,
        reference: Option<&[f64]>,
        q: usize,
    ) -> Result<Self> {
        let parts = passes.pass(beta, step, reference)?;
        let mut triangles = parts.iter().filter_map(|part| part.triangle.as_deref());
        // Stacked in batch order from the first batch's own factor (rows in memory:
        // that factor itself).
        let triangle = triangles
            .next()
            .map(|first| triangles.fold(first.to_vec(), |r, t| linalg::stack_triangles(&r, t, q)));
        Ok(PassState {
            beta: beta.map(<[f64]>::to_vec),
            deviance: parts.iter().map(|part| part.deviance).sum(),
            valid: parts.iter().all(|part| part.valid),
            triangle,
            informative: parts.iter().map(|part| part.informative).sum(),
            drift: parts.iter().map(|part| part.drift).fold(0.0, f64::max),
        })
    }

    /// The weighted least-squares step from here: coefficients and (X'WX)^-1.
    fn step(
        &self,
        passes: &mut impl Passes,
        p: usize,
        control: &Control,
        iter: usize,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let Some(r) = self.triangle.as_deref().filter(|_| self.informative > 0) else {
            return Err(CoreError::Value(format!(
                "no observations informative at iteration {iter}"
            )));
        };
        if r.len() != (p + 1) * (p + 1) {
            return Err(CoreError::Shape(format!(
                "a batch factor has {} values, expected {q} x {q}",
                r.len(),
                q = p + 1
            )));
        }
        let (tri, qtz) = linalg::Triangular::from_augmented(r, p + 1);
        let aliased = tri.aliased(qr_tolerance(control));
        let (coef, tri) = if aliased.is_empty() {
            (tri.solve(&qtz), tri)
        } else {
            passes.aliased_step(self.beta.as_deref(), aliased)?
        };
        if coef.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::Value(format!(
                "non-finite coefficients at iteration {iter}"
            )));
        }
        Ok((coef, tri.inverse_gram()))
    }
}

/// Where R's IRLS ended: the coefficients, those the last step started from (None: the
/// starting means), (X'WX)^-1 of that step, the deviance, iterations and flags.
#[derive(Clone, Debug)]
pub struct IrlsRun {
    pub coefficients: Vec<f64>,
    pub previous: Option<Vec<f64>>,
    pub cov_unscaled: Vec<f64>,
    pub deviance: f64,
    pub iterations: usize,
    pub converged: bool,
    /// A step was halved (R warns "step size truncated").
    pub boundary: bool,
    /// The likelihood has no finite maximum: further IRLS steps keep moving the
    /// converged fit (complete or quasi-complete separation, or a group of rates all 0).
    /// R returns such fits, often without a warning; their coefficients are arbitrary.
    pub separated: bool,
}

/// R's `glm.fit` loop over `passes` (p coefficients), from the starting means or, as
/// R's `start=`, from coefficients `start` (which a halved first step falls back to);
/// with `probe` (a family with bounded means) a converged fit is probed for separation.
pub fn run_irls(
    passes: &mut impl Passes,
    p: usize,
    control: &Control,
    probe: bool,
    start: Option<&[f64]>,
) -> Result<IrlsRun> {
    let (mut run, state) = iterate(passes, p, control, start)?;
    // Only a converged fit can be probed: before that every step moves it anyway.
    run.separated = run.converged && probe && drifts(passes, state, p, control, None);
    Ok(run)
}

/// R's loop of [`run_irls`], unprobed (`separated` false): the run and the pass at
/// its solution.
fn iterate(
    passes: &mut impl Passes,
    p: usize,
    control: &Control,
    start: Option<&[f64]>,
) -> Result<(IrlsRun, PassState)> {
    let q = p + 1;
    if let Some(start) = start.filter(|s| s.len() != p) {
        return Err(CoreError::Shape(format!(
            "start has {} values for {p} coefficients",
            start.len(),
        )));
    }
    let mut state = PassState::run(passes, start, true, None, q)?;
    if !state.valid {
        return Err(CoreError::Value(
            "cannot find valid starting values for the model".into(),
        ));
    }
    let mut devold = state.deviance;
    let mut coefold: Option<Vec<f64>> = start.map(<[f64]>::to_vec);
    let (mut converged, mut boundary) = (false, false);
    let mut iterations = 0;
    let mut last = None;
    for iter in 1..=control.maxit {
        iterations = iter;
        let (mut coef, cov) = state.step(passes, p, control, iter)?;
        let previous = state.beta.take();
        // Where the step leads, with the factors of the next step from there; R halves
        // the step towards the previous coefficients while the deviance is not finite
        // or the means leave their range.
        let mut next = PassState::run(passes, Some(&coef), true, None, q)?;
        if !next.deviance.is_finite() || !next.valid {
            let Some(old) = coefold.as_ref() else {
                return Err(CoreError::Value(
                    "no valid set of coefficients has been found: the first step left the \
                     range of the family"
                        .into(),
                ));
            };
            let mut tries = 0;
            while !next.deviance.is_finite() || !next.valid {
                tries += 1;
                if tries > control.maxit {
                    return Err(CoreError::Value(
                        "cannot correct the step size: the fit keeps leaving the range of \
                         the family"
                            .into(),
                    ));
                }
                for (c, o) in coef.iter_mut().zip(old) {
                    *c = (*c + o) / 2.0;
                }
                next = PassState::run(passes, Some(&coef), true, None, q)?;
            }
            boundary = true;
        }
        state = next;
        let dev = state.deviance;
        last = Some((coef, cov, previous));
        if (dev - devold).abs() / (dev.abs() + 0.1) < control.epsilon {
            converged = true;
            break;
        }
        devold = dev;
        coefold.clone_from(&state.beta);
    }
    let (coefficients, cov_unscaled, previous) =
        last.ok_or_else(|| CoreError::Value("maxit must be at least 1".into()))?;
    let run = IrlsRun {
        coefficients,
        previous,
        cov_unscaled,
        deviance: state.deviance,
        iterations,
        converged,
        boundary,
        separated: false,
    };
    Ok((run, state))
}

/// Whether further IRLS steps from the solution (`state`, the pass at it) keep moving
/// its linear predictors: separation.  `first`: the first probe step and what the
/// caller's pass at it found (see [`fit_scored`]), where that pass was made already.
fn drifts(
    passes: &mut impl Passes,
    mut state: PassState,
    p: usize,
    control: &Control,
    mut first: Option<(Vec<f64>, Drift)>,
) -> bool {
    let Some(solution) = state.beta.clone() else {
        return false;
    };
    for k in 0..PROBE_STEPS {
        // The drift first; the factors of a further step only if it is neither settled
        // nor drifting (usually the first probe settles).
        let (probe, drift) = if let Some(seen) = first.take() {
            seen
        } else {
            let Ok((probe, _)) = state.step(passes, p, control, k) else {
                return true;
            };
            let Ok(next) = PassState::run(passes, Some(&probe), false, Some(&solution), p + 1)
            else {
                return true;
            };
            (probe, Drift::of_pass(&next))
        };
        match drift.verdict() {
            Verdict::Separated => return true,
            Verdict::Settled => return false,
            Verdict::Moving => {}
        }
        if k + 1 < PROBE_STEPS {
            let Ok(next) = PassState::run(passes, Some(&probe), true, None, p + 1) else {
                return true;
            };
            state = next;
        }
    }
    false
}

/// Rows in memory: one batch holding them all.
impl Passes for &Irls<'_> {
    fn pass(
        &mut self,
        beta: Option<&[f64]>,
        step: bool,
        reference: Option<&[f64]>,
    ) -> Result<Vec<BatchPass>> {
        Ok(vec![Irls::pass(self, beta, step, reference)?])
    }

    fn aliased_step(
        &mut self,
        from: Option<&[f64]>,
        _aliased: Vec<usize>,
    ) -> Result<(Vec<f64>, linalg::Triangular)> {
        self.dense_step(from)
    }
}

/// The model's IRLS set up: the outcome as the family's `initialize` leaves it.
fn prepare<'a>(input: &'a GlmInput<'a>) -> Result<Irls<'a>> {
    check(input)?;
    input.family.check_link(input.link)?;
    let y = input
        .family
        .initialize(input.link, input.y, input.weights)?;
    Ok(Irls { input, y })
}

/// The coefficients of the model refitted with each replicate's weights, normalised to
/// sum 1 and starting from the full-sample coefficients `start`, as R's
/// `svyglm.svyrep.design` refits them (`glm.fit(weights = wi / sum(wi), start = beta0)`).
/// `replicate_weights` is n x R, row-major; the input's own weights are not used.
/// Returns R x p, row-major; the replicates run in parallel, each on its own.
pub fn replicate_coefficients(
    input: &GlmInput,
    replicate_weights: &[f64],
    n_replicates: usize,
    start: &[f64],
) -> Result<Vec<f64>> {
    let fits = refit_replicates(replicate_weights, input.n(), n_replicates, |r, w| {
        let total: f64 = w.iter().sum();
        if total <= 0.0 || !total.is_finite() {
            return Err(CoreError::Value(format!(
                "replicate {} gives the model's rows a total weight of {total}",
                r + 1
            )));
        }
        let w: Vec<f64> = w.iter().map(|v| v / total).collect();
        let rep_input = GlmInput {
            weights: &w,
            ..*input
        };
        let irls = prepare(&rep_input)?;
        let p = rep_input.p();
        Ok(run_irls(&mut &irls, p, &rep_input.control, false, Some(start))?.coefficients)
    })?;
    Ok(fits.concat())
}

/// The model refitted from scratch with each replicate's weights (rescaled to mean 1,
/// as the full-sample fit's): per replicate its coefficients and deviance, R x p and R
/// values.  A replicate whose fit fails (no valid step, aliased columns in the resample,
/// no convergence or separation) gives NaN coefficients and an infinite deviance: the
/// caller leaves it out, as it would leave out a resample that cannot be fitted.
pub fn replicate_fits(
    input: &GlmInput,
    replicate_weights: &[f64],
    n_replicates: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (n, p) = (input.n(), input.p());
    let fits = refit_replicates(replicate_weights, n, n_replicates, |_, w| {
        #[allow(clippy::cast_precision_loss)]
        let mean = w.iter().sum::<f64>() / n as f64;
        let failed = (vec![f64::NAN; p], f64::INFINITY);
        if mean <= 0.0 || !mean.is_finite() {
            return Ok(failed);
        }
        let w: Vec<f64> = w.iter().map(|v| v / mean).collect();
        let rep_input = GlmInput {
            weights: &w,
            ..*input
        };
        Ok(match fit(&rep_input) {
            Ok(f) if f.converged && !f.separated => (f.coefficients, f.deviance),
            _ => failed,
        })
    })?;
    let mut coef = Vec::with_capacity(n_replicates * p);
    let mut deviance = Vec::with_capacity(n_replicates);
    for (c, d) in fits {
        coef.extend(c);
        deviance.push(d);
    }
    Ok((coef, deviance))
}

/// Fit the model by R's IRLS.  Errors: shapes, non-finite values, an outcome outside the
/// family's range, aliased columns (`CoreError::Aliased`), or no valid step.
pub fn fit(input: &GlmInput) -> Result<IrlsRun> {
    let irls = prepare(input)?;
    run_irls(
        &mut &irls,
        input.p(),
        &input.control,
        input.family.has_bounded_mean(),
        None,
    )
}

/// The fitted rows at a solution, each as R's fit leaves it.
#[derive(Clone, Debug)]
pub struct SolutionRows {
    /// Fitted means mu.
    pub fitted: Vec<f64>,
    /// The IRLS weights of the last iteration (R's `fit$weights`: from the means the last
    /// step started from), zero where a row took no part.
    pub working_weights: Vec<f64>,
    /// (y - mu) / (d mu / d eta) at the fitted means (R's `residuals(fit, "working")`).
    pub working_residuals: Vec<f64>,
    /// (y - mu) / sqrt(V(mu)), without the prior weights.
    pub pearson_residuals: Vec<f64>,
    /// n x p, row-major: each row's estimating function x_i w_i r_i times `cov_unscaled`.
    /// Its design-based covariance is the coefficients' (R's `svy.varcoef`).
    pub influence: Vec<f64>,
}

/// Each row at the solution `beta`, reached by the step from `previous` (None: the
/// starting means), with (X'WX)^-1 of that step `cov_unscaled` (p x p): what margins
/// and calibrated designs read row by row.  One parallel pass.
pub fn solution_rows(
    input: &GlmInput,
    beta: &[f64],
    previous: Option<&[f64]>,
    cov_unscaled: &[f64],
) -> Result<SolutionRows> {
    let (n, p) = (input.n(), input.p());
    if cov_unscaled.len() != p * p {
        return Err(CoreError::Shape(format!(
            "cov_unscaled has {} values for {p} x {p}",
            cov_unscaled.len()
        )));
    }
    let irls = prepare(input)?;
    let mut fitted = vec![0.0; n];
    let mut working_weights = vec![0.0; n];
    let mut working_residuals = vec![0.0; n];
    let mut pearson_residuals = vec![0.0; n];
    let mut influence = vec![0.0; n * p];
    let chunks: Vec<Result<()>> = influence
        .par_chunks_mut(CHUNK_ROWS * p)
        .zip(fitted.par_chunks_mut(CHUNK_ROWS))
        .zip(working_weights.par_chunks_mut(CHUNK_ROWS))
        .zip(working_residuals.par_chunks_mut(CHUNK_ROWS))
        .zip(pearson_residuals.par_chunks_mut(CHUNK_ROWS))
        .enumerate()
        .map(
            |(c, ((((influence, fitted), weights), working), pearson))| {
                // Summed here and then written: reading the fresh zeroed output first would
                // map the zero page and copy it on the write, a page-table flush on every
                // thread per page.
                let mut sum = vec![0.0; p];
                let len = fitted.len();
                irls.visit_solution(c * CHUNK_ROWS, len, beta, previous, None, |k, row, x| {
                    weights[k] = row.working_weight;
                    fitted[k] = row.fitted;
                    working[k] = row.working_residual;
                    pearson[k] = row.pearson_residual;
                    // Row k's estimating function times cov_unscaled, summed over j in
                    // order, with the inner loop over the output, which vectorises.
                    sum.fill(0.0);
                    for (j, cov_row) in cov_unscaled.chunks_exact(p).enumerate() {
                        let s = x[j] * row.working_residual * row.working_weight;
                        for (o, c) in sum.iter_mut().zip(cov_row) {
                            *o += s * c;
                        }
                    }
                    influence[k * p..(k + 1) * p].copy_from_slice(&sum);
                })
                .map(|_| ())
            },
        )
        .collect();
    // The first failing row's error, whatever the threads.
    chunks.into_iter().collect::<Result<()>>()?;
    Ok(SolutionRows {
        fitted,
        working_weights,
        working_residuals,
        pearson_residuals,
        influence,
    })
}

/// What a pass at the solution sums: the rows' estimating functions x w r by variance
/// unit, and the Pearson residuals' moments.
#[derive(Clone, Debug)]
pub struct BatchScores {
    /// Estimating functions x w r summed to the variance units (n_units x p, row-major).
    pub unit_scores: Vec<f64>,
    /// Rows of non-zero weight in each unit (for the design degrees of freedom).
    pub unit_rows: Vec<f64>,
    /// The Pearson residuals e under the prior weights w: sums of w, w e, w e^2 and the
    /// rows of non-zero w (R's `svyvar` of them is the dispersion).
    pub pearson: WeightedMoments,
}

/// A chunk's sums per variance unit, held only for the units it meets (in the order it
/// meets them): a chunk of rows meets few of many units.  `slot` is the caller's scratch
/// of one place per unit (`u32::MAX`: not met), kept across chunks by [`UnitParts::release`].
#[derive(Default)]
pub struct UnitParts {
    units: Vec<usize>,
    sums: Vec<f64>,
}

impl UnitParts {
    /// Unit u's `width` sums (zero when the chunk first meets it).
    pub fn at(&mut self, slot: &mut [u32], u: usize, width: usize) -> &mut [f64] {
        if slot[u] == u32::MAX {
            slot[u] = u32::try_from(self.units.len()).unwrap_or(u32::MAX - 1);
            self.units.push(u);
            self.sums.resize(self.sums.len() + width, 0.0);
        }
        let at = slot[u] as usize * width;
        &mut self.sums[at..at + width]
    }

    /// The units' places in `slot` freed for the next chunk.
    pub fn release(&self, slot: &mut [u32]) {
        for &u in &self.units {
            slot[u] = u32::MAX;
        }
    }

    /// The sums added to `totals` (n_units x `width`, row-major).
    pub fn add_to(&self, totals: &mut [f64], width: usize) {
        for (&u, sums) in self.units.iter().zip(self.sums.chunks_exact(width)) {
            for (t, s) in totals[u * width..(u + 1) * width].iter_mut().zip(sums) {
                *t += s;
            }
        }
    }
}

/// A chunk's part of [`unit_sums`]: per unit the p scores, then the rows of non-zero
/// weight; and the Pearson residuals' moments.
#[derive(Default)]
struct ChunkScores {
    units: UnitParts,
    pearson: WeightedMoments,
}

/// The rows at the solution `beta` (working weights from `previous`; None: the starting
/// means) summed to the units `unit_of(row)` (< n_units, unchecked), in parallel over
/// chunks of rows whose sums are added in chunk order, so the digits do not depend on
/// the threads: times (X'WX)^-1 the scores are the unit totals of the influence values.
pub fn solution_scores(
    input: &GlmInput,
    beta: &[f64],
    previous: Option<&[f64]>,
    unit_of: impl Fn(usize) -> usize + Sync,
    n_units: usize,
) -> Result<BatchScores> {
    Ok(unit_sums(&prepare(input)?, beta, previous, None, unit_of, n_units)?.0)
}

/// [`fit`] and [`solution_scores`] at its solution, for a fit that converged without
/// separation (None otherwise).  The separation probe's first step is taken in the
/// pass that sums the scores (a pass of its own in [`fit`]): a step that settles
/// leaves the scores to be used; one that drifts means separation; one in between is
/// followed by the probe's further passes as in [`fit`].
pub fn fit_scored(
    input: &GlmInput,
    unit_of: impl Fn(usize) -> usize + Sync,
    n_units: usize,
) -> Result<(IrlsRun, Option<BatchScores>)> {
    let irls = prepare(input)?;
    let (p, control) = (input.p(), &input.control);
    let (mut run, state) = iterate(&mut &irls, p, control, None)?;
    if !run.converged {
        return Ok((run, None));
    }
    let probe = if input.family.has_bounded_mean() {
        let Ok((probe, _)) = state.step(&mut &irls, p, control, 0) else {
            run.separated = true;
            return Ok((run, None));
        };
        Some(probe)
    } else {
        None
    };
    let (beta, previous) = (&run.coefficients, run.previous.as_deref());
    let (scores, drift) = unit_sums(&irls, beta, previous, probe.as_deref(), unit_of, n_units)?;
    if let Some(probe) = probe {
        run.separated = drifts(&mut &irls, state, p, control, Some((probe, drift)));
    }
    let scores = (!run.separated).then_some(scores);
    Ok((run, scores))
}

fn unit_sums(
    irls: &Irls,
    beta: &[f64],
    previous: Option<&[f64]>,
    probe: Option<&[f64]>,
    unit_of: impl Fn(usize) -> usize + Sync,
    n_units: usize,
) -> Result<(BatchScores, Drift)> {
    let (n, p) = (irls.input.n(), irls.input.p());
    let w = irls.input.weights;
    let q = p + 1;
    let mut totals = vec![0.0; n_units * q];
    let mut pearson = WeightedMoments::default();
    let mut drift = Drift::default();
    let chunks = n.div_ceil(CHUNK_ROWS);
    // A chunk holds sums only for the units it meets; waves of chunks bound how many
    // are held at once (the wave's size follows the threads, the order of the sums not).
    let wave = 4 * rayon::current_num_threads();
    for first_chunk in (0..chunks).step_by(wave) {
        let parts: Vec<Result<(ChunkScores, Drift)>> = (first_chunk
            ..chunks.min(first_chunk + wave))
            .into_par_iter()
            .map_init(
                || vec![u32::MAX; n_units],
                |slot, c| {
                    let (first, len) = (c * CHUNK_ROWS, CHUNK_ROWS.min(n - c * CHUNK_ROWS));
                    let mut part = ChunkScores::default();
                    let visited =
                        irls.visit_solution(first, len, beta, previous, probe, |k, row, x| {
                            let i = first + k;
                            let sums = part.units.at(slot, unit_of(i), q);
                            for (j, s) in sums[..p].iter_mut().enumerate() {
                                *s += x[j] * row.working_residual * row.working_weight;
                            }
                            sums[p] += f64::from(u8::from(w[i] != 0.0));
                            part.pearson = part.pearson.with_row(row.pearson_residual, w[i]);
                        });
                    part.units.release(slot);
                    visited.map(|drift| (part, drift))
                },
            )
            .collect();
        // The first failing row's error, whatever the threads.
        for part in parts {
            let (part, part_drift) = part?;
            part.units.add_to(&mut totals, q);
            pearson = pearson.add(&part.pearson);
            drift = drift.add(part_drift);
        }
    }
    let mut unit_scores = Vec::with_capacity(n_units * p);
    let mut unit_rows = Vec::with_capacity(n_units);
    for unit in totals.chunks_exact(q) {
        unit_scores.extend_from_slice(&unit[..p]);
        unit_rows.push(unit[p]);
    }
    let scores = BatchScores {
        unit_scores,
        unit_rows,
        pearson,
    };
    Ok((scores, drift))
}

/// The rows at the solution `beta` (working weights from the step from `previous`; None:
/// the starting means) for a pass that sums something of its own (the threshold model's
/// projections and scores): in parallel over chunks of rows, `visit(part, i, row, x)`
/// for each row i of a chunk (x: its model columns) into the chunk's `part` from
/// `start()`, the parts handed to `add` in chunk order, so the digits do not depend on
/// the threads.
pub fn fold_solution<T: Send>(
    input: &GlmInput,
    beta: &[f64],
    previous: Option<&[f64]>,
    start: impl Fn() -> T + Sync,
    visit: impl Fn(&mut T, usize, &SolutionRow, &[f64]) + Sync,
    mut add: impl FnMut(T),
) -> Result<()> {
    let irls = prepare(input)?;
    let n = input.n();
    let chunks = n.div_ceil(CHUNK_ROWS);
    // Waves of chunks bound how many parts are held at once.
    let wave = 4 * rayon::current_num_threads();
    for first_chunk in (0..chunks).step_by(wave) {
        let parts: Vec<Result<T>> = (first_chunk..chunks.min(first_chunk + wave))
            .into_par_iter()
            .map(|c| {
                let (first, len) = (c * CHUNK_ROWS, CHUNK_ROWS.min(n - c * CHUNK_ROWS));
                let mut part = start();
                irls.visit_solution(first, len, beta, previous, None, |k, row, x| {
                    visit(&mut part, first + k, row, x);
                })?;
                Ok(part)
            })
            .collect();
        // The first failing row's error, whatever the threads.
        for part in parts {
            add(part?);
        }
    }
    Ok(())
}

// A streamed fit runs the IRLS of [`fit`] pass by pass over batches of rows (a
// LazyFrame's batches, Dask partitions) that never meet in memory.  Each batch gives the
// triangular factor of its rows' least squares; stacked in batch order they are the
// factor of the whole data's (`linalg::stack_triangles`), so every step is the in-memory
// step up to rounding, and the digits do not depend on threads.

/// What one batch gives a pass of a streamed IRLS at the coefficients `beta`.
#[derive(Clone, Debug)]
pub struct BatchPass {
    /// The batch's deviance at `beta` (with the prior weights as given).
    pub deviance: f64,
    /// The linear predictors and means at `beta` are in the family's range.
    pub valid: bool,
    /// The triangular factor (q x q, q = p + 1, column-major) of the batch's weighted
    /// least squares for the step from `beta`: when asked for and valid.
    pub triangle: Option<Vec<f64>>,
    /// Rows that carry information in that step.
    pub informative: usize,
    /// The largest change of a linear predictor from `reference` to `beta` (0 without).
    pub drift: f64,
}

/// One batch's part of an IRLS pass at `beta` (None: R's starting means, as [`fit`]).
pub fn batch_pass(
    input: &GlmInput,
    beta: Option<&[f64]>,
    step: bool,
    reference: Option<&[f64]>,
) -> Result<BatchPass> {
    prepare(input)?.pass(beta, step, reference)
}

/// A batch's scores at the solution `beta` with the working weights of the step that
/// reached it (from `previous`; None: the starting means), summed to its rows' units:
/// times (X'WX)^-1 they are the unit totals of the influence values.
pub fn batch_scores(
    input: &GlmInput,
    beta: &[f64],
    previous: Option<&[f64]>,
    units: &[u32],
    n_units: usize,
) -> Result<BatchScores> {
    let n = input.n();
    if units.len() != n {
        return Err(CoreError::Shape(format!(
            "{} unit codes for {n} rows",
            units.len()
        )));
    }
    if units.iter().any(|&u| u as usize >= n_units) {
        return Err(CoreError::Value(format!(
            "a unit code is not below the {n_units} units"
        )));
    }
    solution_scores(input, beta, previous, |i| units[i] as usize, n_units)
}

// The intercept-only logistic model y ~ 1 (R's `svyciprop` methods "logit" and
// "likelihood" fit it with `svyglm`).  With a column of ones every IRLS step after the
// first starts from one linear predictor shared by all rows, so the step, the deviance
// and the working weights are functions of three prior-weighted sums; only the first
// step, from R's starting means (which differ by row), needs the rows.  The iterations
// are R's `glm.fit` step for step, so the fit stops where R's stops.

/// Prior-weighted sums of an outcome in [0, 1]: sum w, sum w y and sum w (y log y +
/// (1 - y) log(1 - y)) (zero for a 0/1 outcome).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProportionSums {
    pub weight: f64,
    pub weighted_y: f64,
    pub entropy: f64,
}

impl ProportionSums {
    /// The binomial deviance with every mean at `mu` (R's sum of `dev.resids`).
    pub fn deviance(&self, mu: f64) -> f64 {
        2.0 * (self.entropy
            - self.weighted_y * mu.ln()
            - (self.weight - self.weighted_y) * (1.0 - mu).ln())
    }
}

/// One row's part of the first IRLS step of y ~ 1 (logit link) from R's starting mean
/// (`binomial()$initialize`), at prior weight `w`: [working weight, working weight times
/// working response, deviance at the start].  Summed over the rows: [`FirstStep`].
pub fn intercept_first_step_row(y: f64, w: f64) -> [f64; 3] {
    let link = Link::Logit;
    let eta = link.link((w * y + 0.5) / (w + 1.0));
    let mu = link.inverse(eta);
    let mu_eta = link.mu_eta(eta);
    let wt = w * mu_eta * mu_eta / Family::Binomial.variance(mu);
    let z = eta + (y - mu) / mu_eta;
    [wt, wt * z, Family::Binomial.deviance_residual(y, mu, w)]
}

/// Where the IRLS of y ~ 1 starts: R's starting means (the sums of
/// [`intercept_first_step_row`] over the rows), or R's `start=` coefficient.
#[derive(Clone, Copy, Debug)]
pub enum InterceptStart {
    Rows([f64; 3]),
    Coefficient(f64),
}

/// R's `glm.fit(y ~ 1, family = quasibinomial)` as it leaves the fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InterceptFit {
    /// The intercept: the logit of the fitted proportion.
    pub coefficient: f64,
    pub mu: f64,
    /// The working weight per unit of prior weight in the last step (None when that was
    /// the first step, whose working weights differ by row).
    pub working_weight: Option<f64>,
    /// Sum of the last step's working weights: 1 / `cov.unscaled`.
    pub working_weight_sum: f64,
    pub deviance: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// The working weight per unit of prior weight at the shared linear predictor `eta`.
fn intercept_working_weight(eta: f64) -> f64 {
    let link = Link::Logit;
    let mu_eta = link.mu_eta(eta);
    mu_eta * mu_eta / Family::Binomial.variance(link.inverse(eta))
}

/// The rows of y ~ 1 seen through their sums, for R's one IRLS loop ([`run_irls`]):
/// the pass at R's starting means is the rows' own (summed by the caller), a pass at a
/// coefficient is a function of the sums.
struct InterceptPasses<'s> {
    sums: &'s ProportionSums,
    first: Option<[f64; 3]>,
}

impl Passes for InterceptPasses<'_> {
    fn pass(
        &mut self,
        beta: Option<&[f64]>,
        step: bool,
        _reference: Option<&[f64]>,
    ) -> Result<Vec<BatchPass>> {
        let sums = self.sums;
        // The step's weighted least squares of z on 1: sum W and sum W z.
        let (deviance, wt, wtz) =
            match (beta, self.first) {
                (Some(&[eta]), _) => {
                    let link = Link::Logit;
                    let mu = link.inverse(eta);
                    let ww = intercept_working_weight(eta);
                    let z_sum =
                        eta * sums.weight + (sums.weighted_y - mu * sums.weight) / link.mu_eta(eta);
                    (sums.deviance(mu), ww * sums.weight, ww * z_sum)
                }
                (None, Some([wt, wtz, deviance])) => (deviance, wt, wtz),
                _ => return Err(CoreError::Shape(
                    "y ~ 1 has one coefficient, and starts from its rows' sums or a coefficient"
                        .into(),
                )),
            };
        let informative = usize::from(wt > 0.0 && wt.is_finite());
        // The triangle of [sqrt(W) | sqrt(W) z] (column-major; the residual norm unused).
        let root = wt.sqrt();
        Ok(vec![BatchPass {
            deviance,
            valid: true,
            triangle: step.then(|| vec![root, 0.0, wtz / root, 0.0]),
            informative,
            drift: 0.0,
        }])
    }
}

/// Fit y ~ 1 with the logit link from the sums of its rows (see [`ProportionSums`]), by
/// the one IRLS loop.  No step can leave the family's range (the logit link clamps the
/// means inside (0, 1)), so R's step halving never applies.
pub fn intercept_logit(
    sums: &ProportionSums,
    start: InterceptStart,
    control: &Control,
) -> Result<InterceptFit> {
    let (first, start) = match start {
        InterceptStart::Rows(first) => (Some(first), None),
        InterceptStart::Coefficient(b) => (None, Some([b])),
    };
    let mut passes = InterceptPasses { sums, first };
    let run = run_irls(
        &mut passes,
        1,
        control,
        false,
        start.as_ref().map(|b| &b[..]),
    )?;
    let coefficient = run.coefficients[0];
    // The last step's working weights: the rows' own when it was the first step.
    let working_weight = run.previous.map(|b| intercept_working_weight(b[0]));
    let working_weight_sum = match (working_weight, first) {
        (Some(ww), _) => ww * sums.weight,
        (None, Some([wt, ..])) => wt,
        (None, None) => f64::NAN,
    };
    Ok(InterceptFit {
        coefficient,
        mu: Link::Logit.inverse(coefficient),
        working_weight,
        working_weight_sum,
        deviance: run.deviance,
        iterations: run.iterations,
        converged: run.converged,
    })
}

fn check(input: &GlmInput) -> Result<()> {
    let n = input.n();
    for (name, v) in [
        ("outcome", Some(input.y)),
        ("weights", Some(input.weights)),
        ("offset", input.offset),
    ] {
        if let Some(v) = v {
            if v.len() != n {
                return Err(CoreError::Shape(format!(
                    "{name} has {} values, the model matrix {n} rows",
                    v.len()
                )));
            }
        }
    }
    if input.p() == 0 {
        return Err(CoreError::Value("the model has no coefficients".into()));
    }
    let finite = |v: &[f64]| v.par_iter().all(|x| x.is_finite());
    // The model matrix's columns are checked when they are assembled.
    if !finite(input.y) || !input.offset.is_none_or(finite) {
        return Err(CoreError::Value(
            "the outcome and offset must be finite (drop missing values first)".into(),
        ));
    }
    if input
        .weights
        .par_iter()
        .any(|&v| !(v >= 0.0 && v.is_finite()))
    {
        return Err(CoreError::Value(
            "prior weights must be finite and non-negative".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model of a row-major n x p matrix.  The columns live as long as the test
    /// process (leaked): a test's few rows, so the inputs can be built in expressions.
    fn input<'a>(
        x: &[f64],
        p: usize,
        y: &'a [f64],
        w: &'a [f64],
        family: Family,
        link: Link,
    ) -> GlmInput<'a> {
        let n = x.len() / p;
        let columns: &'static [Vec<f64>] = Box::leak(
            (0..p)
                .map(|j| (0..n).map(|i| x[i * p + j]).collect())
                .collect::<Vec<Vec<f64>>>()
                .into_boxed_slice(),
        );
        let factors = columns
            .iter()
            .map(|c| vec![crate::models::Factor::Values(c)])
            .collect();
        let x = Box::leak(Box::new(Regressors::new(n, factors).unwrap()));
        GlmInput {
            x,
            y,
            weights: w,
            offset: None,
            family,
            link,
            control: Control::default(),
        }
    }

    /// The rows of a fit at its solution.
    fn rows_of(model: &GlmInput, f: &IrlsRun) -> SolutionRows {
        solution_rows(
            model,
            &f.coefficients,
            f.previous.as_deref(),
            &f.cov_unscaled,
        )
        .unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1.0), "{a} != {b}");
    }

    #[test]
    fn replicate_fits_refit_each_replicate_and_mark_failures() {
        // y = 1 + 2x exactly: every replicate with positive weights recovers (1, 2) with
        // zero deviance; a replicate of zero weights cannot be fitted (NaN, inf).
        let x = [1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0];
        let y = [1.0, 3.0, 5.0, 7.0];
        let ones = [1.0; 4];
        let input = input(&x, 2, &y, &ones, Family::Gaussian, Link::Identity);
        // Rows x replicates: replicate 0 doubles row 0, replicate 1 is all zero.
        let reps = [2.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let (coef, deviance) = replicate_fits(&input, &reps, 2).unwrap();
        close(coef[0], 1.0, 1e-12);
        close(coef[1], 2.0, 1e-12);
        assert!(deviance[0].abs() < 1e-20);
        assert!(coef[2].is_nan() && coef[3].is_nan() && deviance[1].is_infinite());
        assert!(replicate_fits(&input, &reps[..6], 2).is_err());
    }

    #[test]
    fn intercept_logit_from_sums_is_the_row_by_row_fit() {
        // y ~ 1, quasibinomial: the fit from three sums and the first step's row sums
        // takes R's iterations and lands where the row-by-row IRLS does; its coefficient
        // is logit(sum w y / sum w) = log(3.625 / 5.375) to R's tolerance.
        let y = [1.0, 0.0, 1.0, 0.0, 1.0, 0.25];
        let w = [1.0, 2.0, 0.5, 3.0, 2.0, 0.5];
        let x = [1.0; 6];
        let rows = fit(&input(&x, 1, &y, &w, Family::Binomial, Link::Logit)).unwrap();
        let mut first = [0.0; 3];
        let mut sums = ProportionSums {
            weight: 0.0,
            weighted_y: 0.0,
            entropy: 0.0,
        };
        for (&yi, &wi) in y.iter().zip(&w) {
            let part = intercept_first_step_row(yi, wi);
            first.iter_mut().zip(part).for_each(|(a, b)| *a += b);
            sums.weight += wi;
            sums.weighted_y += wi * yi;
            if yi > 0.0 && yi < 1.0 {
                sums.entropy += wi * (yi * yi.ln() + (1.0 - yi) * (1.0 - yi).ln());
            }
        }
        assert_eq!((sums.weight, sums.weighted_y), (9.0, 3.625));
        let fast =
            intercept_logit(&sums, InterceptStart::Rows(first), &Control::default()).unwrap();
        assert_eq!(fast.iterations, rows.iterations);
        assert!(fast.converged);
        close(fast.coefficient, rows.coefficients[0], 1e-13);
        close(fast.coefficient, (3.625f64 / 5.375).ln(), 1e-8);
        close(fast.deviance, rows.deviance, 1e-13);
        close(1.0 / fast.working_weight_sum, rows.cov_unscaled[0], 1e-13);
        // R's start=: from the solution one more step changes nothing that matters.
        let again = intercept_logit(
            &sums,
            InterceptStart::Coefficient(fast.coefficient),
            &Control::default(),
        )
        .unwrap();
        close(again.coefficient, fast.coefficient, 1e-12);
        assert_eq!(again.iterations, 1);
    }

    #[test]
    fn gaussian_identity_is_weighted_least_squares() {
        // Intercept only: the weighted mean, in two iterations (the second confirms).
        let x = [1.0; 4];
        let y = [1.0, 2.0, 4.0, 8.0];
        let w = [1.0, 1.0, 2.0, 4.0];
        let model = input(&x, 1, &y, &w, Family::Gaussian, Link::Identity);
        let f = fit(&model).unwrap();
        close(f.coefficients[0], (1.0 + 2.0 + 8.0 + 32.0) / 8.0, 1e-14);
        assert!(f.converged);
        assert_eq!(f.iterations, 2);
        close(f.cov_unscaled[0], 1.0 / 8.0, 1e-14);
        // Influence of the weighted mean: w_i (y_i - ybar) / sum(w).
        let rows = rows_of(&model, &f);
        for i in 0..4 {
            close(rows.influence[i], w[i] * (y[i] - 43.0 / 8.0) / 8.0, 1e-14);
        }
    }

    #[test]
    fn logistic_one_dummy_matches_the_closed_form() {
        // With one binary covariate the fitted probabilities are the weighted group
        // proportions, so the coefficients are the log odds and their ratio.
        let x = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let y = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        let w = [1.0, 2.0, 1.0, 3.0, 1.0, 1.0];
        let model = input(&x, 2, &y, &w, Family::Binomial, Link::Logit);
        let f = fit(&model).unwrap();
        let p0 = 2.0 / 4.0; // rows 0-2: weights 1, 2, 1; successes rows 0 and 2
        let p1 = 4.0 / 5.0; // rows 3-5: weights 3, 1, 1; successes rows 3 and 5
        let logit = |p: f64| (p / (1.0 - p)).ln();
        close(f.coefficients[0], logit(p0), 1e-8);
        close(f.coefficients[1], logit(p1) - logit(p0), 1e-8);
        assert!(f.converged && !f.boundary && !f.separated);
        // The estimating functions sum to zero at the solution (score equations).
        let rows = rows_of(&model, &f);
        let mut score = [0.0; 2];
        for i in 0..6 {
            for (j, s) in score.iter_mut().enumerate() {
                *s += x[i * 2 + j] * rows.working_residuals[i] * rows.working_weights[i];
            }
        }
        assert!(score.iter().all(|s| s.abs() < 1e-6), "{score:?}");
    }

    #[test]
    fn poisson_log_and_gamma_converge() {
        let x = [1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 4.0];
        let y = [1.0, 2.0, 2.0, 5.0, 9.0];
        let w = [1.0; 5];
        let model = input(&x, 2, &y, &w, Family::Poisson, Link::Log);
        let f = fit(&model).unwrap();
        // Poisson log link: the fitted total equals the observed total.
        close(
            rows_of(&model, &f).fitted.iter().sum(),
            y.iter().sum(),
            1e-8,
        );
        assert!(f.converged);
        let g = fit(&input(&x, 2, &y, &w, Family::Gamma, Link::Log)).unwrap();
        assert!(g.converged && g.coefficients[1] > 0.0);
    }

    /// Batches of rows as a streamed design passes over them.
    struct Batches<'a>(&'a [GlmInput<'a>]);
    impl Passes for Batches<'_> {
        fn pass(
            &mut self,
            beta: Option<&[f64]>,
            step: bool,
            reference: Option<&[f64]>,
        ) -> Result<Vec<BatchPass>> {
            self.0
                .iter()
                .map(|b| batch_pass(b, beta, step, reference))
                .collect()
        }
    }

    #[test]
    fn batches_give_the_in_memory_steps_scores_and_deviance() {
        // A Poisson fit streamed over two batches (rows 0-2 and 3-4) reproduces fit():
        // the same IRLS steps, deviance, unscaled covariance and influence totals.
        let x = [1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 4.0];
        let y = [1.0, 2.0, 2.0, 5.0, 9.0];
        let w = [1.0, 2.0, 1.0, 0.5, 1.0];
        let model = input(&x, 2, &y, &w, Family::Poisson, Link::Log);
        let whole = fit(&model).unwrap();
        let influence = rows_of(&model, &whole).influence;
        let parts = [
            input(&x[..6], 2, &y[..3], &w[..3], Family::Poisson, Link::Log),
            input(&x[6..], 2, &y[3..], &w[3..], Family::Poisson, Link::Log),
        ];
        let run = run_irls(&mut Batches(&parts), 2, &Control::default(), true, None).unwrap();
        assert_eq!(run.iterations, whole.iterations);
        assert!(run.converged && !run.separated);
        let (beta, previous, cov, deviance) = (
            Some(run.coefficients),
            run.previous,
            run.cov_unscaled,
            run.deviance,
        );
        let beta = beta.unwrap();
        for (a, b) in beta.iter().zip(&whole.coefficients) {
            close(*a, *b, 1e-13);
        }
        close(deviance, whole.deviance, 1e-13);
        for (a, b) in cov.iter().zip(&whole.cov_unscaled) {
            close(*a, *b, 1e-13);
        }
        // Units {0, 3}, {1, 2, 4}: scores summed to units times (X'WX)^-1.
        let units = [0u32, 1, 1, 0, 1];
        let mut totals = [0.0; 4];
        for (b, range) in parts.iter().zip([0..3, 3..5]) {
            let s = batch_scores(b, &beta, previous.as_deref(), &units[range], 2).unwrap();
            for u in 0..2 {
                for k in 0..2 {
                    totals[u * 2 + k] += (0..2)
                        .map(|j| s.unit_scores[u * 2 + j] * cov[j * 2 + k])
                        .sum::<f64>();
                }
            }
        }
        for (u, k) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let rows: f64 = (0..5)
                .filter(|&i| units[i] as usize == u)
                .map(|i| influence[i * 2 + k])
                .sum();
            close(totals[u * 2 + k], rows, 1e-12);
        }
    }

    /// Rows (1, x) of a one-covariate model.
    fn line(xs: &[f64]) -> Vec<f64> {
        xs.iter().flat_map(|&v| [1.0, v]).collect()
    }

    #[test]
    fn separation_is_flagged() {
        // Complete: y = 1 exactly when x > 0.
        let x = line(&[-2.0, -1.0, 1.0, 2.0]);
        let y = [0.0, 0.0, 1.0, 1.0];
        let w = [1.0; 4];
        let f = fit(&input(&x, 2, &y, &w, Family::Binomial, Link::Logit)).unwrap();
        assert!(f.separated || !f.converged);
        // Quasi-complete: every row with x = 1 has y = 0; the rest overlap.
        let x = line(&[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let y = [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let w = [1.0; 7];
        let f = fit(&input(&x, 2, &y, &w, Family::Binomial, Link::Logit)).unwrap();
        assert!(f.separated, "{f:?}");
        // Poisson: a group with no events.
        let f = fit(&input(&x, 2, &y, &w, Family::Poisson, Link::Log)).unwrap();
        assert!(f.separated || !f.converged);
    }

    #[test]
    fn the_scored_fit_probes_in_its_scores_pass_as_fit_probes() {
        // Separated (complete, quasi-complete, a Poisson group without events), extreme
        // but finite, and plain fits: fit_scored, whose pass at the solution also takes
        // the probe's first step, ends as fit() ends, with the scores of that solution.
        let quasi = line(&[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let quasi_y = [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let far = line(&[-400.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        let far_y = [0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let complete = line(&[-2.0, -1.0, 1.0, 2.0]);
        let complete_y = [0.0, 0.0, 1.0, 1.0];
        let counts = [1.0, 0.0, 2.0, 3.0, 1.0, 4.0, 6.0, 5.0, 9.0];
        let w = [1.0, 2.0, 1.0, 0.5, 1.0, 1.0, 3.0, 1.0, 1.0];
        let cases = [
            (
                &complete,
                &complete_y[..],
                Family::Binomial,
                Link::Logit,
                true,
            ),
            (&quasi, &quasi_y[..], Family::Binomial, Link::Logit, true),
            (&quasi, &quasi_y[..], Family::Poisson, Link::Log, true),
            (&far, &far_y[..], Family::Binomial, Link::Logit, false),
            (&far, &far_y[..], Family::Binomial, Link::Probit, false),
            (&far, &counts[..], Family::Poisson, Link::Log, false),
            (&far, &counts[..], Family::Gaussian, Link::Identity, false),
        ];
        for (x, y, family, link, separated) in cases {
            let model = input(x, 2, y, &w[..y.len()], family, link);
            let whole = fit(&model).unwrap();
            let units = |i: usize| i % 3;
            let (run, scores) = fit_scored(&model, units, 3).unwrap();
            assert_eq!(run.separated || !run.converged, separated, "{run:?}");
            assert_eq!(
                (run.separated, run.converged, run.iterations),
                (whole.separated, whole.converged, whole.iterations)
            );
            assert_eq!(run.coefficients, whole.coefficients);
            assert_eq!(run.deviance.to_bits(), whole.deviance.to_bits());
            match scores {
                Some(scores) => {
                    let (beta, previous) = (&run.coefficients, run.previous.as_deref());
                    let want = solution_scores(&model, beta, previous, units, 3).unwrap();
                    assert_eq!(scores.unit_scores, want.unit_scores);
                    assert_eq!(scores.pearson, want.pearson);
                }
                None => assert!(separated),
            }
        }
    }

    #[test]
    fn an_extreme_but_finite_fit_is_not_separation() {
        // The outcomes overlap in x, so the maximum is finite; the far row at x = -400
        // is fitted numerically 0 (R warns "fitted probabilities numerically 0 or 1").
        let x = line(&[-400.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        let y = [0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let w = [1.0; 9];
        let model = input(&x, 2, &y, &w, Family::Binomial, Link::Logit);
        let f = fit(&model).unwrap();
        assert!(
            f.converged && rows_of(&model, &f).fitted[0] < 1e-15 && !f.separated,
            "{f:?}"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let x = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let y = [0.0, 1.0, 1.0];
        let w = [1.0; 3];
        // Two identical columns: the second is aliased.
        let err = fit(&input(&x, 2, &y, &w, Family::Binomial, Link::Logit)).unwrap_err();
        assert_eq!(err, CoreError::Aliased { columns: vec![1] });
        let y2 = [0.0, 2.0, 1.0];
        let err = fit(&input(&x[..3], 1, &y2, &w, Family::Binomial, Link::Logit)).unwrap_err();
        assert!(matches!(err, CoreError::Value(m) if m.contains("between 0 and 1")));
        let err = fit(&input(&x[..2], 1, &y, &w, Family::Gaussian, Link::Identity)).unwrap_err();
        assert!(matches!(err, CoreError::Shape(_)));
        let err = fit(&input(&x[..3], 1, &y, &w, Family::Poisson, Link::Logit)).unwrap_err();
        assert!(matches!(err, CoreError::Value(m) if m.contains("not available")));
    }
}
