//! Cox proportional-hazards regression with case weights, step for step as R's
//! `survival::coxph` (its C routine `coxfit6`: Newton–Raphson on the partial likelihood
//! with Efron's or Breslow's handling of tied event times), and the influence values of
//! the coefficients survey inference needs: each row's score residual (`coxscore2`)
//! times the inverse information, times its weight (R's `resid(fit, "dfbeta",
//! weighted = TRUE)`, what `svycoxph` hands to the design's variance).
//!
//! Following R's iterations, not only its fixed point, matters: R stops when the log
//! partial likelihood changes by less than `eps` relative, which leaves the coefficients
//! up to about 1e-8 from the exact maximum, and the reference figures are R's.

use super::linalg::Ldl;
use crate::error::{CoreError, Result};
use crate::replicate::refit_replicates;

/// How tied event times enter the partial likelihood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ties {
    Breslow,
    /// R's default: the d tied events leave the risk set in d equal steps.
    Efron,
}

impl Ties {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "efron" => Ok(Ties::Efron),
            "breslow" => Ok(Ties::Breslow),
            other => Err(CoreError::Value(format!(
                "ties={other:?}: use 'efron' or 'breslow'"
            ))),
        }
    }
}

/// R's `coxph.control()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Control {
    /// Stop when |1 - loglik_old / loglik_new| <= eps.
    pub eps: f64,
    /// Pivots of the information below this fraction of its largest diagonal are zero.
    pub toler_chol: f64,
    pub maxit: usize,
    /// A last Newton step larger than this (relative to the coefficient) flags a
    /// coefficient that may be infinite.
    pub toler_inf: f64,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            eps: 1e-9,
            toler_chol: f64::EPSILON.powf(0.75),
            maxit: 20,
            toler_inf: 1e-9f64.sqrt(),
        }
    }
}

/// A model to fit: the n x p covariate matrix (row-major, no intercept), right-censored
/// times with their event indicators, and case weights.
pub struct CoxInput<'a> {
    pub x: &'a [f64],
    pub n: usize,
    pub p: usize,
    pub time: &'a [f64],
    pub event: &'a [bool],
    pub weights: &'a [f64],
    pub ties: Ties,
    pub control: Control,
}

#[derive(Clone, Debug)]
pub struct CoxFit {
    pub coefficients: Vec<f64>,
    /// Inverse information at the coefficients, row-major p x p (R's `fit$var`, the
    /// model-based covariance).
    pub var: Vec<f64>,
    /// Log partial likelihood at the initial values and at the coefficients.
    pub loglik: [f64; 2],
    pub iterations: usize,
    pub converged: bool,
    /// Columns whose coefficient may be infinite: the likelihood converged while a
    /// Newton step would still move them (R's warning "Loglik converged before
    /// variable ...; coefficient may be infinite").
    pub infinite: Vec<usize>,
}

/// The rows in ascending time (ties in row order), covariates centred and scaled as
/// R's `coxfit6` does before iterating.
struct Prepared {
    n: usize,
    p: usize,
    time: Vec<f64>,
    event: Vec<bool>,
    weights: Vec<f64>,
    /// Row-major n x p, in time order.
    x: Vec<f64>,
    scale: Vec<f64>,
    order: Vec<usize>,
}

/// The partial likelihood, its gradient and information at one beta.
struct Evaluation {
    loglik: f64,
    u: Vec<f64>,
    /// Row-major p x p; only the lower triangle is filled.
    imat: Vec<f64>,
}

fn check(input: &CoxInput) -> Result<()> {
    let n = input.n;
    if input.x.len() != n * input.p
        || input.time.len() != n
        || input.event.len() != n
        || input.weights.len() != n
    {
        return Err(CoreError::Shape(format!(
            "x has {} values, time {}, event {} and weights {} rows; expected {n} rows x {} columns",
            input.x.len(),
            input.time.len(),
            input.event.len(),
            input.weights.len(),
            input.p
        )));
    }
    if let Some(i) = input
        .time
        .iter()
        .position(|t| !(t.is_finite() && *t >= 0.0))
    {
        return Err(CoreError::Value(format!(
            "survival time {} at row {i} is not a finite number >= 0",
            input.time[i]
        )));
    }
    if let Some(i) = input
        .weights
        .iter()
        .position(|w| !(w.is_finite() && *w >= 0.0))
    {
        return Err(CoreError::Value(format!(
            "weight {} at row {i} is not a finite number >= 0",
            input.weights[i]
        )));
    }
    if let Some(i) = input.x.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::Value(format!(
            "covariate {} at row {} is not finite",
            input.x[i],
            i / input.p
        )));
    }
    if !input.weights.iter().any(|w| *w > 0.0) {
        return Err(CoreError::Value("no row has a positive weight".into()));
    }
    Ok(())
}

impl Prepared {
    fn new(input: &CoxInput) -> Result<Self> {
        check(input)?;
        let (n, p) = (input.n, input.p);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| input.time[a].total_cmp(&input.time[b]));
        let weights: Vec<f64> = order.iter().map(|&r| input.weights[r]).collect();
        let mut x: Vec<f64> = order
            .iter()
            .flat_map(|&r| input.x[r * p..(r + 1) * p].iter().copied())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut scale = vec![1.0; p];
        for (j, s) in scale.iter_mut().enumerate() {
            // R leaves columns of only -1, 0 and 1 (dummies) as they are; it centres and
            // scales the others, which changes rounding, not the iterates.
            if (0..n).all(|i| matches!(x[i * p + j], -1.0 | 0.0 | 1.0)) {
                continue;
            }
            let mean = (0..n).map(|i| weights[i] * x[i * p + j]).sum::<f64>() / total;
            let mut spread = 0.0;
            for i in 0..n {
                x[i * p + j] -= mean;
                spread += weights[i] * x[i * p + j].abs();
            }
            if spread > 0.0 {
                *s = total / spread;
                for i in 0..n {
                    x[i * p + j] *= *s;
                }
            }
        }
        Ok(Prepared {
            n,
            p,
            time: order.iter().map(|&r| input.time[r]).collect(),
            event: order.iter().map(|&r| input.event[r]).collect(),
            weights,
            x,
            scale,
            order,
        })
    }

    fn eta(&self, i: usize, beta: &[f64]) -> f64 {
        let p = self.p;
        self.x[i * p..(i + 1) * p]
            .iter()
            .zip(beta)
            .map(|(a, b)| a * b)
            .sum()
    }

    /// R's `coxfit6_iter`: walk back from the latest time, adding each set of tied times
    /// to the risk set; tied events enter Efron's sums in equal fractions.
    fn evaluate(&self, beta: &[f64], ties: Ties) -> Evaluation {
        let p = self.p;
        let mut ev = Evaluation {
            loglik: 0.0,
            u: vec![0.0; p],
            imat: vec![0.0; p * p],
        };
        let (mut denom, mut a, mut cmat) = (0.0, vec![0.0; p], vec![0.0; p * p]);
        let (mut a2, mut cmat2) = (vec![0.0; p], vec![0.0; p * p]);
        let mut person = self.n;
        while person > 0 {
            let t = self.time[person - 1];
            let (mut ndead, mut deadwt, mut denom2) = (0usize, 0.0, 0.0);
            while person > 0 && self.time[person - 1] == t {
                person -= 1;
                let i = person;
                let zbeta = self.eta(i, beta);
                let risk = zbeta.exp() * self.weights[i];
                let xi = &self.x[i * p..(i + 1) * p];
                let (sum, cross) = if self.event[i] {
                    ndead += 1;
                    deadwt += self.weights[i];
                    denom2 += risk;
                    ev.loglik += self.weights[i] * zbeta;
                    for (u, xv) in ev.u.iter_mut().zip(xi) {
                        *u += self.weights[i] * xv;
                    }
                    (&mut a2, &mut cmat2)
                } else {
                    denom += risk;
                    (&mut a, &mut cmat)
                };
                for j in 0..p {
                    sum[j] += risk * xi[j];
                    for k in 0..=j {
                        cross[j * p + k] += risk * xi[j] * xi[k];
                    }
                }
            }
            if ndead == 0 {
                continue;
            }
            // Breslow: all tied events in one step; Efron: `ndead` steps of 1/ndead each.
            let (steps, wtave) = if ties == Ties::Breslow || ndead == 1 {
                (1, deadwt)
            } else {
                (ndead, deadwt / ndead as f64)
            };
            let frac = 1.0 / steps as f64;
            for _ in 0..steps {
                denom += denom2 * frac;
                ev.loglik -= wtave * denom.ln();
                for j in 0..p {
                    a[j] += a2[j] * frac;
                    let mean = a[j] / denom;
                    ev.u[j] -= wtave * mean;
                    for k in 0..=j {
                        cmat[j * p + k] += cmat2[j * p + k] * frac;
                        ev.imat[j * p + k] += wtave * (cmat[j * p + k] - mean * a[k]) / denom;
                    }
                }
            }
            a2.fill(0.0);
            cmat2.fill(0.0);
        }
        for j in 0..p {
            for k in 0..j {
                ev.imat[k * p + j] = ev.imat[j * p + k];
            }
        }
        ev
    }

    /// Score residuals (R's `coxscore2`) at `beta`, in time order and in the scaled
    /// covariates: for row k, sum over event times s <= t_k of
    /// 1{k has an event at s} (x_k - xbar(s)) - r_k sum_steps dH (x_k - xbar_step),
    /// Efron's steps down-weighting k's own risk at its event time.  The sums over
    /// earlier event times are carried as running totals, O(n p) in all.
    fn score_residuals(&self, beta: &[f64], ties: Ties) -> Vec<f64> {
        // Per event time, walking back: sum dH, sum dH xbar, the same with Efron's
        // down-weights, and the mean of the steps' xbar (for the event rows' own term).
        struct Step {
            time: f64,
            dh: f64,
            dh_mean: Vec<f64>,
            dh_down: f64,
            dh_down_mean: Vec<f64>,
            mean_of_means: Vec<f64>,
        }
        let (n, p) = (self.n, self.p);
        let risk: Vec<f64> = (0..n).map(|i| self.eta(i, beta).exp()).collect();
        let mut steps: Vec<Step> = Vec::new();
        let (mut denom, mut a) = (0.0, vec![0.0; p]);
        let mut i = n;
        while i > 0 {
            let t = self.time[i - 1];
            let (mut deaths, mut e_denom, mut deadwt, mut a2) = (0usize, 0.0, 0.0, vec![0.0; p]);
            while i > 0 && self.time[i - 1] == t {
                i -= 1;
                let r = risk[i] * self.weights[i];
                let xi = &self.x[i * p..(i + 1) * p];
                denom += r;
                for (aj, xj) in a.iter_mut().zip(xi) {
                    *aj += r * xj;
                }
                if self.event[i] {
                    deaths += 1;
                    e_denom += r;
                    deadwt += self.weights[i];
                    for (aj, xj) in a2.iter_mut().zip(xi) {
                        *aj += r * xj;
                    }
                }
            }
            if deaths == 0 {
                continue;
            }
            let mut step = Step {
                time: t,
                dh: 0.0,
                dh_mean: vec![0.0; p],
                dh_down: 0.0,
                dh_down_mean: vec![0.0; p],
                mean_of_means: vec![0.0; p],
            };
            let (k, meanwt) = if ties == Ties::Breslow || deaths == 1 {
                (1, deadwt)
            } else {
                (deaths, deadwt / deaths as f64)
            };
            for dd in 0..k {
                let downwt = dd as f64 / k as f64;
                let d2 = denom - downwt * e_denom;
                let hazard = meanwt / d2;
                step.dh += hazard;
                step.dh_down += hazard * downwt;
                for j in 0..p {
                    let mean = (a[j] - downwt * a2[j]) / d2;
                    step.dh_mean[j] += hazard * mean;
                    step.dh_down_mean[j] += hazard * downwt * mean;
                    step.mean_of_means[j] += mean / k as f64;
                }
            }
            steps.push(step);
        }
        // Forward in time (`steps` runs backward): running sums over the event times up
        // to each row's time.
        let mut resid = vec![0.0; n * p];
        let (mut h, mut hm) = (0.0, vec![0.0; p]);
        let mut next = steps.len();
        let mut current: Option<&Step> = None;
        for k in 0..n {
            while next > 0 && steps[next - 1].time <= self.time[k] {
                next -= 1;
                let s = &steps[next];
                h += s.dh;
                for (m, v) in hm.iter_mut().zip(&s.dh_mean) {
                    *m += v;
                }
                current = Some(s);
            }
            let xk = &self.x[k * p..(k + 1) * p];
            let out = &mut resid[k * p..(k + 1) * p];
            for j in 0..p {
                out[j] = -risk[k] * (xk[j] * h - hm[j]);
            }
            if self.event[k] {
                if let Some(s) = current {
                    for j in 0..p {
                        out[j] += risk[k] * (xk[j] * s.dh_down - s.dh_down_mean[j])
                            + (xk[j] - s.mean_of_means[j]);
                    }
                }
            }
        }
        resid
    }
}

/// Fit by R's Newton–Raphson from `init` (zeros if None).  Aliased columns (a zero pivot
/// of the information at the start) are an error, with their positions; a fit that runs
/// out of iterations is returned with `converged = false`.
pub fn fit(input: &CoxInput, init: Option<&[f64]>) -> Result<CoxFit> {
    let prep = Prepared::new(input)?;
    fit_prepared(&prep, input, init)
}

fn fit_prepared(prep: &Prepared, input: &CoxInput, init: Option<&[f64]>) -> Result<CoxFit> {
    let p = prep.p;
    let control = input.control;
    let mut beta: Vec<f64> = match init {
        Some(b) if b.len() == p => b.iter().zip(&prep.scale).map(|(b, s)| b / s).collect(),
        Some(b) => {
            return Err(CoreError::Shape(format!(
                "{} initial values for {p} coefficients",
                b.len()
            )))
        }
        None => vec![0.0; p],
    };
    let first = prep.evaluate(&beta, input.ties);
    let mut factor = Ldl::new(&first.imat, p, control.toler_chol);
    if !factor.singular().is_empty() {
        return Err(CoreError::Aliased {
            columns: factor.singular().to_vec(),
        });
    }
    let loglik0 = first.loglik;
    let mut u = first.u;
    let mut loglik = loglik0;
    let mut converged = false;
    let mut iterations = 0;
    if control.maxit > 0 && loglik0.is_finite() {
        let step = factor.solve(&u);
        let mut newbeta: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + s).collect();
        let mut halving = 0.0;
        for iter in 1..=control.maxit {
            iterations = iter;
            let ev = prep.evaluate(&newbeta, input.ties);
            let newfactor = Ldl::new(&ev.imat, p, control.toler_chol);
            let finite = ev.loglik.is_finite()
                && ev.u.iter().all(|v| v.is_finite())
                && ev.imat.iter().all(|v| v.is_finite());
            if finite && (1.0 - loglik / ev.loglik).abs() <= control.eps {
                beta = newbeta;
                factor = newfactor;
                u = ev.u;
                loglik = ev.loglik;
                converged = true;
                break;
            }
            if !finite || ev.loglik < loglik {
                // Not improving: step back towards the last good beta, harder each time.
                halving += 1.0;
                for (nb, b) in newbeta.iter_mut().zip(&beta) {
                    *nb = (*nb + halving * b) / (halving + 1.0);
                }
            } else {
                halving = 0.0;
                loglik = ev.loglik;
                let step = newfactor.solve(&ev.u);
                beta.clone_from(&newbeta);
                for (nb, s) in newbeta.iter_mut().zip(&step) {
                    *nb += s;
                }
                factor = newfactor;
                u = ev.u;
            }
        }
        if !converged {
            // As R: the information and score of the last good beta.
            let ev = prep.evaluate(&beta, input.ties);
            factor = Ldl::new(&ev.imat, p, control.toler_chol);
            u = ev.u;
            loglik = ev.loglik;
        }
    }
    let scaled_var = factor.inverse();
    let s = &prep.scale;
    let coefficients: Vec<f64> = beta.iter().zip(s).map(|(b, s)| b * s).collect();
    let mut var = vec![0.0; p * p];
    for j in 0..p {
        for k in 0..p {
            var[j * p + k] = scaled_var[j * p + k] * s[j] * s[k];
        }
    }
    let score: Vec<f64> = u.iter().zip(s).map(|(u, s)| u / s).collect();
    let infinite = if converged && control.maxit > 1 {
        (0..p)
            .filter(|&k| {
                let step: f64 = (0..p).map(|j| score[j] * var[j * p + k]).sum::<f64>().abs();
                !score[k].is_finite()
                    || (step > control.eps && step > control.toler_inf * coefficients[k].abs())
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(CoxFit {
        coefficients,
        var,
        loglik: [loglik0, loglik],
        iterations,
        converged,
        infinite,
    })
}

/// Influence values of the coefficients (n x p, row-major, rows in input order): each
/// row's score residual times `fit.var`, times the row's weight (R's `resid(fit,
/// "dfbeta", weighted = TRUE)`).  Their design-based covariance is `svycoxph`'s.
pub fn influence(input: &CoxInput, fit: &CoxFit) -> Result<Vec<f64>> {
    let prep = Prepared::new(input)?;
    let p = prep.p;
    if fit.coefficients.len() != p || fit.var.len() != p * p {
        return Err(CoreError::Shape(format!(
            "a fit of {} coefficients for {p} columns",
            fit.coefficients.len()
        )));
    }
    let beta: Vec<f64> = fit
        .coefficients
        .iter()
        .zip(&prep.scale)
        .map(|(b, s)| b / s)
        .collect();
    let resid = prep.score_residuals(&beta, input.ties);
    let mut out = vec![0.0; prep.n * p];
    for (i, &row) in prep.order.iter().enumerate() {
        let w = prep.weights[i];
        // Back from the scaled covariates: a residual is linear in x.
        let r: Vec<f64> = (0..p).map(|j| resid[i * p + j] / prep.scale[j]).collect();
        for k in 0..p {
            out[row * p + k] = w * (0..p).map(|j| r[j] * fit.var[j * p + k]).sum::<f64>();
        }
    }
    Ok(out)
}

/// The model of `input` refitted from `init` with each column of `weights` (n x r,
/// row-major) in place of its weights: r x p.  A replicate whose fit fails (aliased
/// columns, no positive weight) gives NaN, which the replicate variance leaves out; R
/// uses a replicate's coefficients whether or not its fit converged, and so does this.
pub fn replicate_coefficients(
    input: &CoxInput,
    weights: &[f64],
    r: usize,
    init: &[f64],
) -> Result<Vec<f64>> {
    let (n, p) = (input.n, input.p);
    let rows = refit_replicates(weights, n, r, |_, w| {
        let one = CoxInput {
            weights: &w,
            ..*input
        };
        Ok(match fit(&one, Some(init)) {
            Ok(f) => f.coefficients,
            Err(_) => vec![f64::NAN; p],
        })
    })?;
    Ok(rows.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        x: &'a [f64],
        time: &'a [f64],
        event: &'a [bool],
        w: &'a [f64],
        ties: Ties,
    ) -> CoxInput<'a> {
        CoxInput {
            x,
            n: time.len(),
            p: x.len() / time.len(),
            time,
            event,
            weights: w,
            ties,
            control: Control::default(),
        }
    }

    // A small data set with tied events (at 2 and at 4) and a censored row at a tie-free time.
    const TIME: [f64; 8] = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0];
    const STATUS: [bool; 8] = [true, true, true, false, true, true, false, true];
    const X: [f64; 8] = [0.5, 1.2, -0.3, 0.8, 0.0, 2.0, -1.0, 1.5];

    #[test]
    fn matches_r_coxph_with_weights() {
        // R 4.2, survival 3: f <- coxph(Surv(time, status) ~ x, weights = w, ties = t);
        // coef(f), f$naive.var (vcov(f) is a sandwich with non-integer weights), f$loglik,
        // f$iter, resid(f, "dfbeta", weighted = TRUE).
        let w = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0, 1.0];
        let want = [
            (
                Ties::Efron,
                [
                    0.27092640088208425,
                    0.14184750808122973,
                    -11.733855601417897,
                    -11.465204407140728,
                ],
                [
                    -0.02984502514029648,
                    0.062100277574992264,
                    -0.15380371917762586,
                    -0.0032172105971124336,
                    -0.012825128953577698,
                    -0.024968446768287935,
                    0.2906702268025246,
                    -0.12811097370396224,
                ],
            ),
            (
                Ties::Breslow,
                [
                    0.2522919467882835,
                    0.14543580894105404,
                    -12.248987208835224,
                    -12.022046897435548,
                ],
                [
                    -0.028368031394267877,
                    0.05707527612073237,
                    -0.13896138546367323,
                    -0.004874212839155007,
                    -0.017004244650412444,
                    -0.03448559600454964,
                    0.28016050118498265,
                    -0.11354230691030927,
                ],
            ),
        ];
        for (ties, fitted, dfbeta) in want {
            let inp = input(&X, &TIME, &STATUS, &w, ties);
            let f = fit(&inp, None).unwrap();
            let got = [f.coefficients[0], f.var[0], f.loglik[0], f.loglik[1]];
            for (g, r) in got.iter().zip(fitted) {
                assert!((g - r).abs() <= 1e-13 * r.abs(), "{ties:?}: {got:?}");
            }
            assert_eq!(f.iterations, 3);
            for (g, r) in influence(&inp, &f).unwrap().iter().zip(dfbeta) {
                assert!((g - r).abs() <= 1e-12 * r.abs(), "{ties:?}: {g} vs {r}");
            }
        }
    }

    #[test]
    fn score_is_zero_at_the_fit_and_influence_sums_to_it() {
        let w = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0, 1.0];
        for ties in [Ties::Efron, Ties::Breslow] {
            let inp = input(&X, &TIME, &STATUS, &w, ties);
            let f = fit(&inp, None).unwrap();
            assert!(f.converged && f.infinite.is_empty());
            // The weighted score residuals sum to the score, zero at the maximum.
            let infl = influence(&inp, &f).unwrap();
            let total: f64 = infl.iter().sum();
            assert!(total.abs() < 1e-8, "{ties:?}: {total}");
        }
    }

    #[test]
    fn influence_is_the_derivative_in_the_weights() {
        let w = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0, 1.0];
        let tight = Control {
            eps: 1e-15,
            ..Control::default()
        };
        let fit_with = |w: &[f64]| {
            let mut inp = input(&X, &TIME, &STATUS, w, Ties::Efron);
            inp.control = tight;
            fit(&inp, None).unwrap()
        };
        let mut inp = input(&X, &TIME, &STATUS, &w, Ties::Efron);
        inp.control = tight;
        let f = fit_with(&w);
        let infl = influence(&inp, &f).unwrap();
        let h = 1e-6;
        for k in 0..w.len() {
            let (mut up, mut down) = (w, w);
            up[k] *= 1.0 + h;
            down[k] *= 1.0 - h;
            let numeric =
                (fit_with(&up).coefficients[0] - fit_with(&down).coefficients[0]) / (2.0 * h);
            assert!(
                (infl[k] - numeric).abs() < 1e-6,
                "row {k}: {} vs {numeric}",
                infl[k]
            );
        }
    }

    #[test]
    fn no_ties_efron_equals_breslow() {
        let time = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let status = [true, false, true, true, false, true];
        let x = [0.1, 0.9, -0.4, 1.1, 0.3, -0.8];
        let w = [1.0; 6];
        let e = fit(&input(&x, &time, &status, &w, Ties::Efron), None).unwrap();
        let b = fit(&input(&x, &time, &status, &w, Ties::Breslow), None).unwrap();
        assert_eq!(e.coefficients, b.coefficients);
    }

    #[test]
    fn constant_column_is_aliased() {
        let x: Vec<f64> = X.iter().flat_map(|v| [*v, 3.0]).collect();
        let w = [1.0; 8];
        let err = fit(&input(&x, &TIME, &STATUS, &w, Ties::Efron), None).unwrap_err();
        assert_eq!(err, CoreError::Aliased { columns: vec![1] });
    }
}
