//! Calibration to population totals (R's `calibrate`): Newton steps on the calibration
//! equations with R's distance functions and bounds on g = new / old weight (`grake`),
//! or, for unbounded linear calibration, R's direct GREG solution (`regcalibrate`).

use std::borrow::Cow;

use super::{adjusted, analysis_weights, chunked_sum, per_replicate, Report, Step};
use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::models::linalg;

/// R's `qr()` tolerance for the regression the variance residualises on.
const QR_TOLERANCE: f64 = 1e-7;
/// R's `grake` rescales the weights first when every target is this many times its
/// sample total (weights that were not sampling weights).
const PRESCALE_THRESHOLD: f64 = 20.0;

/// The distance function (R's `calfun`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalFun {
    /// Chi-squared distance: g = 1 + x'eta (GREG), clipped to the bounds.
    Linear,
    /// g = exp(x'eta), clipped to the bounds (raking ratio).
    Raking,
    /// Logit: g within (lower, upper) by a logistic curve; needs finite bounds.
    Logit,
}

/// Bounds on the g-weights (R's `bounds = c(lower, upper)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub lower: f64,
    pub upper: f64,
}

impl Bounds {
    pub const NONE: Bounds = Bounds {
        lower: f64::NEG_INFINITY,
        upper: f64::INFINITY,
    };
}

impl CalFun {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "linear" => Ok(CalFun::Linear),
            "raking" => Ok(CalFun::Raking),
            "logit" => Ok(CalFun::Logit),
            other => Err(CoreError::Value(format!(
                "calfun={other:?} is not 'linear', 'raking' or 'logit'"
            ))),
        }
    }

    /// R's `calfun$Fm1`: g - 1 at u = x'eta.
    fn fm1(self, u: f64, b: Bounds) -> f64 {
        match self {
            CalFun::Linear => (u + 1.0).max(b.lower).min(b.upper) - 1.0,
            CalFun::Raking => u.exp().max(b.lower).min(b.upper) - 1.0,
            CalFun::Logit => {
                let (l, h) = (b.lower, b.upper);
                let a = (h - l) / ((h - 1.0) * (1.0 - l));
                let e = (a * u).exp();
                (l * (h - 1.0) + h * (1.0 - l) * e) / (h - 1.0 + (1.0 - l) * e) - 1.0
            }
        }
    }

    /// R's `calfun$dF`, the derivative of `fm1` (zero where clipped).
    fn df(self, u: f64, b: Bounds) -> f64 {
        // R tests u against the bounds minus one for raking too, not exp(u).
        let inside = u < b.upper - 1.0 && u > b.lower - 1.0;
        match self {
            CalFun::Linear => f64::from(u8::from(inside)),
            CalFun::Raking => {
                if inside {
                    u.exp()
                } else {
                    0.0
                }
            }
            CalFun::Logit => {
                let (l, h) = (b.lower, b.upper);
                let a = (h - l) / ((h - 1.0) * (1.0 - l));
                let e = (a * u).exp();
                let den = h - 1.0 + (1.0 - l) * e;
                h * (1.0 - l) * e * a / den
                    - ((l * (h - 1.0) + h * (1.0 - l) * e) * ((1.0 - l) * e * a)) / (den * den)
            }
        }
    }
}

/// A calibration problem: the model matrix and its population totals.
pub struct CalibrationSpec<'a> {
    /// Model matrix, n x q row-major (R's `model.matrix(formula)`).
    pub x: &'a [f64],
    pub q: usize,
    pub population: &'a [f64],
    pub calfun: CalFun,
    pub bounds: Bounds,
    /// Stop when every |misfit| / (1 + |target|) is below `epsilon`.
    pub epsilon: f64,
    pub maxit: usize,
}

/// g-weights from one calibration.
struct Solution {
    g: Vec<f64>,
    iterations: usize,
    misfit: f64,
    converged: bool,
}

/// Calibrate `design` to `spec`'s totals (R's `calibrate`).  A calibration that does not
/// converge is returned with `converged: false` in its report (R's `force=TRUE`); the
/// caller decides whether to refuse it.
pub fn calibrate(design: &Design, spec: &CalibrationSpec) -> Result<(Design, Report)> {
    let n = design.n_rows;
    let q = spec.q;
    validate(spec, n)?;
    let w = &design.weights;
    let before = column_totals(spec.x, q, w);
    // R drops the columns that are zero in the sample and the population.
    let keep: Vec<usize> = (0..q)
        .filter(|&j| !(spec.population[j] == 0.0 && (0..n).all(|r| spec.x[r * q + j] == 0.0)))
        .collect();
    let x: Cow<[f64]> = if keep.len() == q {
        Cow::Borrowed(spec.x)
    } else {
        Cow::Owned(
            (0..n)
                .flat_map(|r| keep.iter().map(move |&j| spec.x[r * q + j]))
                .collect(),
        )
    };
    let population: Vec<f64> = keep.iter().map(|&j| spec.population[j]).collect();
    let qk = keep.len();
    let linear = spec.calfun == CalFun::Linear && spec.bounds == Bounds::NONE;
    if !linear {
        check_feasible(&x, qk, w, &population, spec.bounds, &keep)?;
    }
    let solve = |weights: &[f64]| -> Result<Solution> {
        if linear {
            regcalibrate(&x, qk, weights, &population, &keep)
        } else {
            Ok(grake(&x, qk, weights, &population, spec))
        }
    };
    // The regression the variance of a linearisation design residualises on; with
    // unbounded linear calibration a collinear model is refused (R's `solve` fails).
    let regression = match design.replicates() {
        None => Some(regression_step(&x, qk, w, linear, &keep)?),
        Some(_) => None,
    };
    let full = solve(w)?;
    let weights: Vec<f64> = w.iter().zip(&full.g).map(|(a, b)| a * b).collect();
    let mut not_converged = 0;
    let analysis = match design.replicates() {
        Some(rep) => {
            let mut a = analysis_weights(design, rep);
            let converged = per_replicate(&mut a, rep.n_replicates, |column| {
                let s = solve(column)?;
                let adjusted = column.iter().zip(&s.g).map(|(a, b)| a * b).collect();
                Ok((adjusted, s.converged))
            })?;
            not_converged = converged.iter().filter(|&&c| !c).count();
            Some(a)
        }
        None => None,
    };
    let report = Report {
        iterations: full.iterations,
        converged: full.converged,
        misfit: full.misfit,
        before,
        after: column_totals(spec.x, q, &weights),
        replicates_not_converged: not_converged,
    };
    let step = regression.map(|(qr, sqrt_w)| Step::Regression {
        qr,
        scale: sqrt_w.iter().zip(&full.g).map(|(s, g)| s * g).collect(),
    });
    Ok((adjusted(design, weights, analysis, step)?, report))
}

fn validate(spec: &CalibrationSpec, n: usize) -> Result<()> {
    let q = spec.q;
    if q == 0 {
        return Err(CoreError::Calibration(
            "calibration needs at least one variable".into(),
        ));
    }
    if spec.x.len() != n * q || spec.population.len() != q {
        return Err(CoreError::Shape(format!(
            "the model matrix has {} values and {} totals; expected {n} rows x {q} and {q}",
            spec.x.len(),
            spec.population.len()
        )));
    }
    if let Some(i) = spec.x.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::Value(format!(
            "calibration variable #{} is missing or infinite at row {}",
            i % q,
            i / q
        )));
    }
    if let Some(j) = spec.population.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::CalibrationColumns {
            columns: vec![j],
            problem: "no finite population total".into(),
        });
    }
    if spec.epsilon.is_nan() || spec.epsilon <= 0.0 || spec.maxit == 0 {
        return Err(CoreError::Value(
            "epsilon must be positive and maxit at least 1".into(),
        ));
    }
    let Bounds { lower, upper } = spec.bounds;
    if lower.is_nan() || upper.is_nan() || lower >= upper {
        return Err(CoreError::Calibration(format!(
            "bounds [{lower}, {upper}] are empty: the lower bound must be below the upper"
        )));
    }
    if spec.calfun == CalFun::Logit
        && !(lower.is_finite() && upper.is_finite() && lower < 1.0 && upper > 1.0)
    {
        return Err(CoreError::Calibration(format!(
            "logit calibration needs finite bounds around 1, not [{lower}, {upper}]"
        )));
    }
    Ok(())
}

/// Sum of w x over the rows, per column.
fn column_totals(x: &[f64], q: usize, w: &[f64]) -> Vec<f64> {
    chunked_sum(w.len(), q, |rows, acc| {
        for r in rows {
            for (a, v) in acc.iter_mut().zip(&x[r * q..(r + 1) * q]) {
                *a += w[r] * v;
            }
        }
    })
}

/// R's pre-scaling in `grake`: the mean of target / sample total when every one of
/// these ratios exceeds 20.
fn prescale(population: &[f64], sample: &[f64]) -> Option<f64> {
    let scales: Vec<f64> = population.iter().zip(sample).map(|(p, s)| p / s).collect();
    let min = scales.iter().copied().fold(f64::INFINITY, f64::min);
    (min > PRESCALE_THRESHOLD).then(|| scales.iter().sum::<f64>() / scales.len() as f64)
}

/// Bounds that no weights can meet: a column of non-negative values can reach only
/// totals between lower and upper times its sample total.  (Only this necessary
/// condition is checked; other infeasible problems end as non-convergence.)
fn check_feasible(
    x: &[f64],
    q: usize,
    w: &[f64],
    population: &[f64],
    bounds: Bounds,
    names: &[usize],
) -> Result<()> {
    if bounds == Bounds::NONE {
        return Ok(());
    }
    let n = w.len();
    let mut sample = column_totals(x, q, w);
    if let Some(s) = prescale(population, &sample) {
        for v in &mut sample {
            *v *= s;
        }
    }
    for j in 0..q {
        let non_negative = (0..n).all(|r| w[r] == 0.0 || x[r * q + j] >= 0.0);
        if !non_negative || sample[j] <= 0.0 {
            continue;
        }
        let (lo, hi) = (bounds.lower.max(0.0) * sample[j], bounds.upper * sample[j]);
        let slack = 1e-9 * population[j].abs();
        if population[j] < lo - slack || population[j] > hi + slack {
            return Err(CoreError::CalibrationColumns {
                columns: vec![names[j]],
                problem: format!(
                    "target {}, but the bounds [{}, {}] allow only totals from {lo} to {hi} \
                     (sample total {}): infeasible bounds",
                    population[j], bounds.lower, bounds.upper, sample[j]
                ),
            });
        }
    }
    Ok(())
}

/// The QR of the model matrix times sqrt(w) (columns the QR finds aliased left out, as
/// R's pivoting QR does) and sqrt(w).  With `strict`, aliased columns are an error.
fn regression_step(
    x: &[f64],
    q: usize,
    w: &[f64],
    strict: bool,
    names: &[usize],
) -> Result<(linalg::Qr, Vec<f64>)> {
    let n = w.len();
    let sqrt_w: Vec<f64> = w.iter().map(|v| v.sqrt()).collect();
    let matrix = |cols: &[usize]| -> Vec<f64> {
        cols.iter()
            .flat_map(|&j| (0..n).map(move |r| x[r * q + j]))
            .enumerate()
            .map(|(i, v)| v * sqrt_w[i % n])
            .collect()
    };
    let all: Vec<usize> = (0..q).collect();
    let qr = match linalg::qr(matrix(&all), n, q, QR_TOLERANCE) {
        Ok(qr) => qr,
        Err(aliased) => {
            if strict {
                return Err(CoreError::CalibrationColumns {
                    columns: aliased.iter().map(|&j| names[j]).collect(),
                    problem: "linear combinations of the columns before them, so linear \
                              calibration cannot solve for their totals"
                        .into(),
                });
            }
            let kept: Vec<usize> = all.into_iter().filter(|j| !aliased.contains(j)).collect();
            linalg::qr(matrix(&kept), n, kept.len(), QR_TOLERANCE).map_err(|_| {
                CoreError::Calibration("the calibration model matrix has no full-rank part".into())
            })?
        }
    };
    Ok((qr, sqrt_w))
}

/// R's `regcalibrate`: g = 1 + x' (X'WX)^-1 (T - X'w), the GREG weights in one step.
fn regcalibrate(
    x: &[f64],
    q: usize,
    w: &[f64],
    population: &[f64],
    names: &[usize],
) -> Result<Solution> {
    let (t, sample) = gram(x, q, w, |_| (1.0, 1.0));
    let rhs: Vec<f64> = population.iter().zip(&sample).map(|(p, s)| p - s).collect();
    let coef = cholesky_solve(&t, q, &rhs).ok_or_else(|| CoreError::CalibrationColumns {
        columns: names.to_vec(),
        problem: "collinear in these weights (X'WX is singular)".into(),
    })?;
    let g: Vec<f64> = (0..w.len())
        .map(|r| 1.0 + dot(&x[r * q..(r + 1) * q], &coef))
        .collect();
    let misfit = worst_misfit(x, q, w, &g, population);
    Ok(Solution {
        g,
        iterations: 1,
        misfit,
        converged: true,
    })
}

/// The largest |T - sum w g x| / (1 + |T|) over the columns.
fn worst_misfit(x: &[f64], q: usize, w: &[f64], g: &[f64], population: &[f64]) -> f64 {
    let wg: Vec<f64> = w.iter().zip(g).map(|(a, b)| a * b).collect();
    let totals = column_totals(x, q, &wg);
    population
        .iter()
        .zip(&totals)
        .map(|(p, t)| (p - t).abs() / (1.0 + p.abs()))
        .fold(0.0, f64::max)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// sum_r w_r d_r x_r x_r' (q x q) and sum_r w_r f_r x_r with (d_r, f_r) = at(row):
/// the Newton matrix and the calibrated part of the totals.  The pass also reports,
/// through NaN, a non-finite f or d.
fn gram<F>(x: &[f64], q: usize, w: &[f64], at: F) -> (Vec<f64>, Vec<f64>)
where
    F: Fn(usize) -> (f64, f64) + Sync,
{
    let len = q * q + q;
    let acc = chunked_sum(w.len(), len, |rows, acc| {
        for r in rows {
            let (d, f) = at(r);
            let xr = &x[r * q..(r + 1) * q];
            let (t, s) = acc.split_at_mut(q * q);
            let wd = w[r] * d;
            for i in 0..q {
                let a = wd * xr[i];
                for j in i..q {
                    t[i * q + j] += a * xr[j];
                }
                s[i] += w[r] * f * xr[i];
            }
        }
    });
    let mut t = acc[..q * q].to_vec();
    for i in 0..q {
        for j in 0..i {
            t[i * q + j] = t[j * q + i];
        }
    }
    (t, acc[q * q..].to_vec())
}

/// R's `grake`: Newton steps eta += ginv(T) misfit from eta = 0, halving a step that
/// leaves g or its derivative non-finite, until every |misfit| / (1 + |target|) is
/// below epsilon or `maxit` steps are used.
fn grake(x: &[f64], q: usize, w: &[f64], population: &[f64], spec: &CalibrationSpec) -> Solution {
    let (calfun, bounds) = (spec.calfun, spec.bounds);
    let mut sample = column_totals(x, q, w);
    let scale = prescale(population, &sample);
    let scaled: Cow<[f64]> = match scale {
        Some(s) => {
            for v in &mut sample {
                *v *= s;
            }
            Cow::Owned(w.iter().map(|v| v * s).collect())
        }
        None => Cow::Borrowed(w),
    };
    let w: &[f64] = &scaled;
    let eval = |eta: &[f64]| {
        gram(x, q, w, |r| {
            let u = dot(&x[r * q..(r + 1) * q], eta);
            let (d, f) = (calfun.df(u, bounds), calfun.fm1(u, bounds));
            if d.is_finite() && f.is_finite() {
                (d, f)
            } else {
                (f64::NAN, f64::NAN)
            }
        })
    };
    let finite = |t: &[f64], s: &[f64]| t.iter().chain(s).all(|v| !v.is_nan());
    let misfit_of =
        |s: &[f64]| -> Vec<f64> { (0..q).map(|j| population[j] - sample[j] - s[j]).collect() };
    let mut eta = vec![0.0; q];
    let (mut t, mut s) = eval(&eta);
    let mut iterations = 1;
    let (converged, misfit) = loop {
        let step = pinv_symmetric(&t, q);
        let m = misfit_of(&s);
        let mut deta: Vec<f64> = (0..q).map(|i| dot(&step[i * q..(i + 1) * q], &m)).collect();
        eta.iter_mut().zip(&deta).for_each(|(e, d)| *e += d);
        (t, s) = eval(&eta);
        while iterations < spec.maxit && !finite(&t, &s) {
            iterations += 1;
            for d in &mut deta {
                *d /= 2.0;
            }
            eta.iter_mut().zip(&deta).for_each(|(e, d)| *e -= d);
            (t, s) = eval(&eta);
        }
        let worst = misfit_of(&s)
            .iter()
            .zip(population)
            .map(|(m, p)| m.abs() / (1.0 + p.abs()))
            .fold(0.0, |a: f64, b| {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.max(b)
                }
            });
        if worst < spec.epsilon {
            break (true, worst);
        }
        iterations += 1;
        if iterations > spec.maxit {
            break (false, worst);
        }
    };
    let s = scale.unwrap_or(1.0);
    let g = (0..w.len())
        .map(|r| (1.0 + calfun.fm1(dot(&x[r * q..(r + 1) * q], &eta), bounds)) * s)
        .collect();
    Solution {
        g,
        iterations,
        misfit,
        converged,
    }
}

/// Solve A z = b for symmetric positive definite A (q x q) by Cholesky; None when A is
/// not positive definite.
fn cholesky_solve(a: &[f64], q: usize, b: &[f64]) -> Option<Vec<f64>> {
    let mut l = vec![0.0; q * q];
    for i in 0..q {
        for j in 0..=i {
            let s = a[i * q + j] - dot(&l[i * q..i * q + j], &l[j * q..j * q + j]);
            if i == j {
                // A pivot lost to rounding relative to its diagonal entry is singular.
                if s.is_nan() || s <= a[i * q + i] * 1e-13 {
                    return None;
                }
                l[i * q + i] = s.sqrt();
            } else {
                l[i * q + j] = s / l[j * q + j];
            }
        }
    }
    let mut z = b.to_vec();
    for i in 0..q {
        z[i] = (z[i] - dot(&l[i * q..i * q + i], &z[..i])) / l[i * q + i];
    }
    for i in (0..q).rev() {
        let s: f64 = (i + 1..q).map(|k| l[k * q + i] * z[k]).sum();
        z[i] = (z[i] - s) / l[i * q + i];
    }
    Some(z)
}

/// Moore-Penrose inverse of a symmetric matrix (q x q, row-major) from its Jacobi
/// eigen-decomposition, dropping eigenvalues below 256 eps times the largest (MASS's
/// `ginv(T, tol = 256 * .Machine$double.eps)`, whose singular values these are).
fn pinv_symmetric(a: &[f64], q: usize) -> Vec<f64> {
    if a.iter().any(|v| !v.is_finite()) {
        return vec![f64::NAN; q * q];
    }
    let mut m = a.to_vec();
    let mut v = vec![0.0; q * q];
    for i in 0..q {
        v[i * q + i] = 1.0;
    }
    let norm: f64 = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..q)
            .flat_map(|i| (0..q).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * q + j] * m[i * q + j])
            .sum::<f64>()
            .sqrt();
        if off <= f64::EPSILON * norm * 1e-3 {
            break;
        }
        for p in 0..q {
            for r in p + 1..q {
                let apr = m[p * q + r];
                if apr == 0.0 {
                    continue;
                }
                let theta = (m[r * q + r] - m[p * q + p]) / (2.0 * apr);
                let t = if theta.is_infinite() {
                    0.0
                } else {
                    theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
                };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..q {
                    let (x, y) = (m[k * q + p], m[k * q + r]);
                    m[k * q + p] = c * x - s * y;
                    m[k * q + r] = s * x + c * y;
                }
                for k in 0..q {
                    let (x, y) = (m[p * q + k], m[r * q + k]);
                    m[p * q + k] = c * x - s * y;
                    m[r * q + k] = s * x + c * y;
                }
                for k in 0..q {
                    let (x, y) = (v[k * q + p], v[k * q + r]);
                    v[k * q + p] = c * x - s * y;
                    v[k * q + r] = s * x + c * y;
                }
            }
        }
    }
    let eig: Vec<f64> = (0..q).map(|i| m[i * q + i]).collect();
    let largest = eig.iter().fold(0.0f64, |a, e| a.max(e.abs()));
    let tol = 256.0 * f64::EPSILON * largest;
    let mut out = vec![0.0; q * q];
    for (k, &e) in eig.iter().enumerate() {
        if e.abs() > tol && e.abs() > 0.0 {
            for i in 0..q {
                let vi = v[i * q + k] / e;
                for j in 0..q {
                    out[i * q + j] += vi * v[j * q + k];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::srs;
    use super::*;

    fn spec<'a>(
        x: &'a [f64],
        q: usize,
        pop: &'a [f64],
        calfun: CalFun,
        bounds: Bounds,
    ) -> CalibrationSpec<'a> {
        CalibrationSpec {
            x,
            q,
            population: pop,
            calfun,
            bounds,
            epsilon: 1e-10,
            maxit: 50,
        }
    }

    #[test]
    fn calibrated_weights_meet_their_totals() {
        let w = [1.0, 2.0, 1.5, 3.0, 2.5];
        let x = [1.0, 3.0, 1.0, 1.0, 1.0, 4.0, 1.0, 2.0, 1.0, 5.0];
        let pop = [12.0, 36.0];
        let d = srs(&w);
        for (calfun, bounds) in [
            (CalFun::Linear, Bounds::NONE),
            (CalFun::Raking, Bounds::NONE),
            (
                CalFun::Logit,
                Bounds {
                    lower: 0.5,
                    upper: 2.0,
                },
            ),
            (
                CalFun::Linear,
                Bounds {
                    lower: 0.5,
                    upper: 2.0,
                },
            ),
        ] {
            let (out, report) = calibrate(&d, &spec(&x, 2, &pop, calfun, bounds)).unwrap();
            assert!(report.converged, "{calfun:?}");
            let t0: f64 = out.weights.iter().sum();
            let t1: f64 = out
                .weights
                .iter()
                .zip(x.chunks(2))
                .map(|(w, r)| w * r[1])
                .sum();
            assert!(
                (t0 - 12.0).abs() < 1e-8 && (t1 - 36.0).abs() < 1e-8,
                "{calfun:?} {bounds:?}"
            );
            for (a, b) in out.weights.iter().zip(&w) {
                let g = a / b;
                assert!(g >= bounds.lower - 1e-12 && g <= bounds.upper + 1e-12);
            }
        }
    }

    #[test]
    fn infeasible_bounds_are_refused() {
        let w = [1.0, 1.0, 1.0];
        let x = [1.0, 1.0, 1.0];
        let d = srs(&w);
        let err = calibrate(
            &d,
            &spec(
                &x,
                1,
                &[10.0],
                CalFun::Linear,
                Bounds {
                    lower: 0.5,
                    upper: 2.0,
                },
            ),
        );
        assert!(
            matches!(err, Err(CoreError::CalibrationColumns { ref columns, .. }) if columns == &[0])
        );
    }

    #[test]
    fn pseudo_inverse_of_singular_matrix() {
        // [[1, 1], [1, 1]] has pseudo-inverse [[1, 1], [1, 1]] / 4.
        let p = pinv_symmetric(&[1.0, 1.0, 1.0, 1.0], 2);
        for v in p {
            assert!((v - 0.25).abs() < 1e-15);
        }
        let p = pinv_symmetric(&[4.0, 1.0, 1.0, 3.0], 2);
        let want = [3.0 / 11.0, -1.0 / 11.0, -1.0 / 11.0, 4.0 / 11.0];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
    }
}
