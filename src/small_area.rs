//! Area-level small-area estimation: the Fay–Herriot model (model variance by REML, ML or
//! the Fay–Herriot moment estimator), EBLUP, Prasad–Rao MSE and a parametric bootstrap MSE.
//!
//! The model: y_d = x_d'β + u_d + e_d, u_d ~ N(0, A), e_d ~ N(0, ψ_d) with ψ_d the known
//! design variance of the direct estimate y_d (Rao & Molina 2015, ch. 6).  The numbers
//! follow R's `sae` (`eblupFH`, `mseFH`) step for step, so they agree to its last digits.

use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::models::linalg::Ldl;
use crate::rng::SplitMix64;

/// How the model variance A is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Restricted maximum likelihood (sae's default).
    Reml,
    /// Maximum likelihood.
    Ml,
    /// The Fay–Herriot moment estimator: Σ (y_d − x_d'β̂)² / (A + ψ_d) = m − p.
    Fh,
}

impl Method {
    pub fn parse(name: &str) -> Result<Method> {
        match name {
            "REML" => Ok(Method::Reml),
            "ML" => Ok(Method::Ml),
            "FH" => Ok(Method::Fh),
            other => Err(CoreError::Value(format!(
                "method={other:?} is not 'REML', 'ML' or 'FH'"
            ))),
        }
    }
}

/// Fisher-scoring controls; the defaults are sae's (`MAXITER = 100`, `PRECISION = 1e-4`
/// on the relative change of A), so that the estimates stop where sae's stop.
#[derive(Clone, Copy, Debug)]
pub struct Control {
    pub max_iter: usize,
    pub precision: f64,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            max_iter: 100,
            precision: 1e-4,
        }
    }
}

/// The scale the model is fitted on, for the bootstrap's errors on the original scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Identity,
    /// θ = arcsin(√p): back-transformed by sin²(θ), θ clamped to [0, π/2].
    Arcsin,
    /// θ = log(p / (1 − p)): back-transformed by the logistic function.
    Logit,
}

impl Scale {
    pub fn back(self, t: f64) -> f64 {
        match self {
            Scale::Identity => t,
            Scale::Arcsin => t.clamp(0.0, std::f64::consts::FRAC_PI_2).sin().powi(2),
            Scale::Logit => 1.0 / (1.0 + (-t).exp()),
        }
    }
}

/// Direct estimates `y` with design variances `psi` and area covariates `x` (row-major
/// m x p, an intercept column included by the caller).
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    pub y: &'a [f64],
    pub x: &'a [f64],
    pub psi: &'a [f64],
    pub p: usize,
}

/// A fitted Fay–Herriot model.
#[derive(Clone, Debug)]
pub struct FhFit {
    pub method: Method,
    /// Estimated model variance A (never negative: see [`fit`]).
    pub variance: f64,
    pub iterations: usize,
    /// False when Fisher scoring stopped at `max_iter` with the last relative change of A
    /// still above `precision` (sae then returns no estimates).
    pub converged: bool,
    /// The estimate of A is zero: the score is negative at A = 0.
    pub at_zero: bool,
    pub beta: Vec<f64>,
    /// (X'V⁻¹X)⁻¹, row-major p x p: the covariance of β̂ at Â.
    pub beta_vcov: Vec<f64>,
    /// Log-likelihood (not restricted) at (β̂, Â), as sae's `goodness["loglike"]`.
    pub loglik: f64,
    /// x_d'β̂.
    pub synthetic: Vec<f64>,
    /// Shrinkage factors γ_d = Â / (Â + ψ_d): the EBLUP's weight on the direct estimate.
    pub gamma: Vec<f64>,
    /// γ_d y_d + (1 − γ_d) x_d'β̂.
    pub eblup: Vec<f64>,
}

/// Generalised least squares at a given A.
struct Gls {
    vi: Vec<f64>,
    /// (X'V⁻¹X)⁻¹, row-major.
    q: Vec<f64>,
    beta: Vec<f64>,
    resid: Vec<f64>,
}

/// X' diag(w) X, row-major p x p.
fn cross(x: &[f64], p: usize, w: impl Fn(usize) -> f64) -> Vec<f64> {
    let mut g = vec![0.0; p * p];
    for (d, row) in x.chunks_exact(p).enumerate() {
        let wd = w(d);
        for i in 0..p {
            let a = wd * row[i];
            for j in 0..p {
                g[i * p + j] += a * row[j];
            }
        }
    }
    g
}

/// tr(A B) of two row-major p x p matrices.
fn trace_product(a: &[f64], b: &[f64], p: usize) -> f64 {
    (0..p)
        .map(|i| (0..p).map(|j| a[i * p + j] * b[j * p + i]).sum::<f64>())
        .sum()
}

/// x' M x for a row-major p x p M.
fn quadratic(x: &[f64], m: &[f64], p: usize) -> f64 {
    (0..p)
        .map(|i| x[i] * (0..p).map(|j| m[i * p + j] * x[j]).sum::<f64>())
        .sum()
}

fn gls(model: &Model, a: f64) -> Result<Gls> {
    let Model { y, x, psi, p } = *model;
    let vi: Vec<f64> = psi.iter().map(|s| 1.0 / (a + s)).collect();
    let ldl = Ldl::new(&cross(x, p, |d| vi[d]), p, 1e-12);
    if !ldl.singular().is_empty() {
        return Err(CoreError::Aliased {
            columns: ldl.singular().to_vec(),
        });
    }
    let mut xtviy = vec![0.0; p];
    for (d, row) in x.chunks_exact(p).enumerate() {
        for (t, xj) in xtviy.iter_mut().zip(row) {
            *t += xj * vi[d] * y[d];
        }
    }
    let beta = ldl.solve(&xtviy);
    let resid = x
        .chunks_exact(p)
        .zip(y)
        .map(|(row, yd)| yd - row.iter().zip(&beta).map(|(a, b)| a * b).sum::<f64>())
        .collect();
    Ok(Gls {
        vi,
        q: ldl.inverse(),
        beta,
        resid,
    })
}

/// Score s and expected information F of A at the GLS fit `g` (sae's Fisher-scoring step
/// A ← A + s/F).  With P = V⁻¹ − V⁻¹X Q X'V⁻¹ the traces are taken in closed form:
/// tr P = Σv − tr(Q G₂), tr P² = Σv² − 2 tr(Q G₃) + tr((Q G₂)²), Gₖ = X' V⁻ᵏ X.
fn score(method: Method, model: &Model, g: &Gls) -> (f64, f64) {
    let (m, p) = (model.y.len(), model.p);
    let sum_v: f64 = g.vi.iter().sum();
    let sum_v2: f64 = g.vi.iter().map(|v| v * v).sum();
    let py2: f64 =
        g.vi.iter()
            .zip(&g.resid)
            .map(|(v, r)| (v * r).powi(2))
            .sum();
    match method {
        Method::Ml => (-0.5 * sum_v + 0.5 * py2, 0.5 * sum_v2),
        Method::Reml => {
            let g2 = cross(model.x, p, |d| g.vi[d].powi(2));
            let g3 = cross(model.x, p, |d| g.vi[d].powi(3));
            let qg2 = mat_mul(&g.q, &g2, p);
            let tr_p = sum_v - trace_product(&g.q, &g2, p);
            let tr_pp = sum_v2 - 2.0 * trace_product(&g.q, &g3, p) + trace_product(&qg2, &qg2, p);
            (-0.5 * tr_p + 0.5 * py2, 0.5 * tr_pp)
        }
        Method::Fh => {
            let weighted: f64 = g.vi.iter().zip(&g.resid).map(|(v, r)| r * r * v).sum();
            (weighted - (m - p) as f64, sum_v)
        }
    }
}

fn mat_mul(a: &[f64], b: &[f64], p: usize) -> Vec<f64> {
    let mut out = vec![0.0; p * p];
    for i in 0..p {
        for k in 0..p {
            let aik = a[i * p + k];
            for j in 0..p {
                out[i * p + j] += aik * b[k * p + j];
            }
        }
    }
    out
}

/// R's `median` (the mean of the two middle values of an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn check(model: &Model) -> Result<()> {
    let Model { y, x, psi, p } = *model;
    let m = y.len();
    if psi.len() != m || x.len() != m * p {
        return Err(CoreError::Shape(format!(
            "{m} direct estimates, {} variances and {} covariate values for {p} columns",
            psi.len(),
            x.len()
        )));
    }
    if m <= p {
        return Err(CoreError::Value(format!(
            "{m} areas cannot fit a model with {p} coefficients: use fewer covariates"
        )));
    }
    if let Some(d) = y.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::Value(format!(
            "direct estimate of area #{d} is not finite"
        )));
    }
    if let Some(d) = psi.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(CoreError::Value(format!(
            "design variance of area #{d} is {}: it must be positive and finite",
            psi[d]
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::Value(format!(
            "covariate column #{} of area #{} is not finite",
            i % p,
            i / p
        )));
    }
    Ok(())
}

/// Fit the Fay–Herriot model by Fisher scoring, as sae's `eblupFH`: A starts at the median
/// of ψ, steps A ← A + s/F and stops once |ΔA / A| ≤ `precision`.
///
/// Where a step lands at or below zero, A is set to zero (truncation, the usual rule:
/// Rao & Molina 2015, §6.1.2), and where the step from zero is again not positive the
/// likelihood (or the moment equation) has its solution on the boundary, so the fit stops
/// there with Â = 0 and `at_zero`: every area then gets its synthetic estimate.  sae steps
/// into negative values instead and, with few areas or small ψ, never meets its stopping
/// rule; wherever its iterates stay positive both give the same numbers.
pub fn fit(model: &Model, method: Method, control: Control) -> Result<FhFit> {
    check(model)?;
    let mut a = median(model.psi);
    let mut k = 0;
    let mut diff = f64::INFINITY;
    while diff > control.precision && k < control.max_iter {
        k += 1;
        let g = gls(model, a)?;
        let (s, f) = score(method, model, &g);
        let next = a + s / f;
        if next <= 0.0 && a == 0.0 {
            diff = 0.0;
            break;
        }
        let next = next.max(0.0);
        diff = if a > 0.0 {
            ((next - a) / a).abs()
        } else {
            f64::INFINITY
        };
        a = next;
    }
    finish(
        model,
        method,
        a,
        k,
        k < control.max_iter || diff < control.precision,
    )
}

fn finish(
    model: &Model,
    method: Method,
    a: f64,
    iterations: usize,
    converged: bool,
) -> Result<FhFit> {
    let Model { y, x, psi, p } = *model;
    let g = gls(model, a)?;
    let synthetic: Vec<f64> = y.iter().zip(&g.resid).map(|(yd, r)| yd - r).collect();
    let gamma: Vec<f64> = psi.iter().map(|s| a / (a + s)).collect();
    let eblup = synthetic
        .iter()
        .zip(&gamma)
        .zip(&g.resid)
        .map(|((s, gd), r)| s + gd * r)
        .collect();
    let loglik = -0.5
        * psi
            .iter()
            .zip(&g.resid)
            .map(|(s, r)| (std::f64::consts::TAU * (a + s)).ln() + r * r / (a + s))
            .sum::<f64>();
    debug_assert_eq!(x.len(), y.len() * p);
    Ok(FhFit {
        method,
        variance: a,
        iterations,
        converged,
        at_zero: a == 0.0,
        beta: g.beta,
        beta_vcov: g.q,
        loglik,
        synthetic,
        gamma,
        eblup,
    })
}

/// Prasad–Rao MSE of the EBLUPs (in-sample areas) and of the synthetic estimates
/// x_d'β̂ of areas without a sample (`x_out`, row-major, p columns), as sae's `mseFH`:
/// g₁ + g₂ + 2g₃, less b(Â)·B_d² for ML and FH (b the bias of Â: Datta & Lahiri 2000 for
/// ML, Datta, Rao & Smith 2005 for FH; REML's is of lower order).  Out of sample the same
/// formula in the limit ψ_d → ∞ (B_d = 1, g₃ = 0): max(Â − b, 0) + x_d'Q x_d, the bias
/// correction applied to Â and kept from making the model error negative.
pub fn prasad_rao(model: &Model, fit: &FhFit, x_out: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let Model { x, psi, p, .. } = *model;
    let m = psi.len();
    let a = fit.variance;
    let vi: Vec<f64> = psi.iter().map(|s| 1.0 / (a + s)).collect();
    let sum_v: f64 = vi.iter().sum();
    let sum_v2: f64 = vi.iter().map(|v| v * v).sum();
    let q = &fit.beta_vcov;
    let (var_a, bias) = match fit.method {
        Method::Reml => (2.0 / sum_v2, 0.0),
        Method::Ml => {
            let g2 = cross(x, p, |d| vi[d].powi(2));
            (2.0 / sum_v2, -trace_product(q, &g2, p) / sum_v2)
        }
        Method::Fh => {
            let mf = m as f64;
            (
                2.0 * mf / sum_v.powi(2),
                2.0 * (mf * sum_v2 - sum_v.powi(2)) / sum_v.powi(3),
            )
        }
    };
    let inside = x
        .chunks_exact(p)
        .zip(psi)
        .map(|(row, s)| {
            let b = s / (a + s);
            let g1 = s * (1.0 - b);
            let g2 = b * b * quadratic(row, q, p);
            let g3 = b * b * var_a / (a + s);
            g1 + g2 + 2.0 * g3 - bias * b * b
        })
        .collect();
    let outside = x_out
        .chunks_exact(p)
        .map(|row| (a - bias).max(0.0) + quadratic(row, q, p))
        .collect();
    (inside, outside)
}

/// Sums over bootstrap replicates of squared errors, on the original scale, of the
/// EBLUPs (first m) and the out-of-sample synthetic estimates (then m_out).
#[derive(Clone, Debug, PartialEq)]
pub struct BootstrapSums {
    pub squared_error: Vec<f64>,
    /// Replicates whose refit did not converge (left out of the sums).
    pub failed: usize,
}

/// Which bootstrap replicates to draw: `first .. first + count` of `seed`.
#[derive(Clone, Copy, Debug)]
pub struct Replicates {
    pub seed: u64,
    pub first: u64,
    pub count: u64,
}

/// Parametric bootstrap of the MSE (González-Manteiga et al. 2008; Rao & Molina 2015,
/// §6.2.4) for replicates `first .. first + count` of `seed`: θ*_d = x_d'β̂ + u*_d with
/// u* ~ N(0, Â), y*_d = θ*_d + e*_d with e* ~ N(0, ψ_d), the model refitted to y* by the
/// same method, and (h(θ̂*_d) − h(θ*_d))² summed, h the back-transformation of `scale`.
/// Replicate b draws from its own stream of `seed` and the sums run in replicate order,
/// so the result is the same for any thread count and any split into calls.
pub fn bootstrap(
    model: &Model,
    fitted: &FhFit,
    x_out: &[f64],
    control: Control,
    scale: Scale,
    replicates: Replicates,
) -> Result<BootstrapSums> {
    let Replicates { seed, first, count } = replicates;
    check(model)?;
    let p = model.p;
    let m = model.y.len();
    let sd_u = fitted.variance.sqrt();
    let mean_in = &fitted.synthetic;
    let mean_out: Vec<f64> = x_out
        .chunks_exact(p)
        .map(|row| row.iter().zip(&fitted.beta).map(|(a, b)| a * b).sum())
        .collect();
    let replicate = |b: u64| -> Result<Option<Vec<f64>>> {
        let mut rng = SplitMix64::stream(seed, b);
        let theta: Vec<f64> = mean_in
            .iter()
            .chain(&mean_out)
            .map(|mu| mu + sd_u * rng.normal())
            .collect();
        let y: Vec<f64> = theta[..m]
            .iter()
            .zip(model.psi)
            .map(|(t, s)| t + s.sqrt() * rng.normal())
            .collect();
        let star = Model { y: &y, ..*model };
        let refit = fit(&star, fitted.method, control)?;
        if !refit.converged {
            return Ok(None);
        }
        let out = x_out
            .chunks_exact(p)
            .map(|row| row.iter().zip(&refit.beta).map(|(a, b)| a * b).sum::<f64>());
        Ok(Some(
            refit
                .eblup
                .iter()
                .copied()
                .chain(out)
                .zip(&theta)
                .map(|(est, t)| (scale.back(est) - scale.back(*t)).powi(2))
                .collect(),
        ))
    };
    let draws: Vec<Option<Vec<f64>>> = (first..first + count)
        .into_par_iter()
        .map(replicate)
        .collect::<Result<_>>()?;
    let mut squared_error = vec![0.0; m + mean_out.len()];
    let mut failed = 0;
    for draw in draws {
        match draw {
            Some(e) => squared_error.iter_mut().zip(e).for_each(|(s, e)| *s += e),
            None => failed += 1,
        }
    }
    Ok(BootstrapSums {
        squared_error,
        failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Intercept-only model with equal ψ = D: REML and FH solve Σ(y − ȳ)²/(A + D) = m − 1,
    /// ML solves it with m: Â = S/(m − 1) − D and S/m − D in closed form.
    #[test]
    fn equal_variances_have_closed_forms() {
        let y = [1.0, 3.0, 2.5, 7.0, 4.0, 0.5, 5.5];
        let m = y.len() as f64;
        let psi = [0.5; 7];
        let x = [1.0; 7];
        let model = Model {
            y: &y,
            x: &x,
            psi: &psi,
            p: 1,
        };
        let mean = y.iter().sum::<f64>() / m;
        let ss: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
        let tight = Control {
            max_iter: 200,
            precision: 1e-13,
        };
        for (method, want) in [
            (Method::Reml, ss / (m - 1.0) - 0.5),
            (Method::Fh, ss / (m - 1.0) - 0.5),
            (Method::Ml, ss / m - 0.5),
        ] {
            let f = fit(&model, method, tight).unwrap();
            assert!(
                (f.variance - want).abs() < 1e-10,
                "{method:?}: {}",
                f.variance
            );
            assert!((f.beta[0] - mean).abs() < 1e-12);
            let g = want / (want + 0.5);
            for (e, yd) in f.eblup.iter().zip(y) {
                assert!((e - (g * yd + (1.0 - g) * mean)).abs() < 1e-9);
            }
            // REML, equal ψ: Q = (A+D)/m and Var(Â) = 2(A+D)²/m, so g₂ = B²(A+D)/m and
            // g₃ = B²·2(A+D)/m with B = D/(A+D).
            let (mse, _) = prasad_rao(&model, &f, &[]);
            if method == Method::Reml {
                let (a, d) = (want, 0.5);
                let b = d / (a + d);
                let g1 = d * (1.0 - b);
                let g2 = b * b * (a + d) / m;
                let g3 = b * b * 2.0 * (a + d) / m;
                assert!((mse[0] - (g1 + g2 + 2.0 * g3)).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn small_spread_gives_zero_variance_and_synthetic_estimates() {
        let y = [1.0, 1.1, 0.9, 1.05, 0.95];
        let psi = [1.0, 2.0, 1.5, 1.0, 3.0];
        let x = [1.0; 5];
        let model = Model {
            y: &y,
            x: &x,
            psi: &psi,
            p: 1,
        };
        for method in [Method::Reml, Method::Ml, Method::Fh] {
            let f = fit(&model, method, Control::default()).unwrap();
            assert!(f.converged && f.at_zero, "{method:?}");
            assert_eq!(f.variance, 0.0);
            assert_eq!(f.eblup, f.synthetic);
            let (mse, out) = prasad_rao(&model, &f, &[1.0]);
            assert!(mse.iter().chain(&out).all(|v| *v >= 0.0));
        }
    }

    #[test]
    fn bootstrap_is_the_same_for_any_thread_count_and_split() {
        let y = [0.2, 0.35, 0.1, 0.5, 0.3, 0.25, 0.4, 0.15];
        let psi = [0.004, 0.01, 0.003, 0.02, 0.008, 0.005, 0.012, 0.006];
        let x: Vec<f64> = (0..8).flat_map(|d| [1.0, f64::from(d) / 8.0]).collect();
        let model = Model {
            y: &y,
            x: &x,
            psi: &psi,
            p: 2,
        };
        let f = fit(&model, Method::Reml, Control::default()).unwrap();
        let x_out = [1.0, 0.3];
        let run = |threads: usize, first: u64, count: u64| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    bootstrap(
                        &model,
                        &f,
                        &x_out,
                        Control::default(),
                        Scale::Identity,
                        Replicates {
                            seed: 7,
                            first,
                            count,
                        },
                    )
                    .unwrap()
                })
        };
        let one = run(1, 0, 40);
        assert_eq!(one, run(2, 0, 40));
        let (a, b) = (run(2, 0, 25), run(1, 25, 15));
        let joined: Vec<f64> = a
            .squared_error
            .iter()
            .zip(&b.squared_error)
            .map(|(x, y)| x + y)
            .collect();
        for (j, o) in joined.iter().zip(&one.squared_error) {
            assert!((j - o).abs() <= 1e-15 * o.abs().max(1.0));
        }
        assert!(one.squared_error.iter().all(|v| *v > 0.0));
    }

    #[test]
    fn bad_input_is_refused() {
        let x = [1.0; 3];
        let ok = Control::default();
        let bad_psi = Model {
            y: &[1.0, 2.0, 3.0],
            x: &x,
            psi: &[1.0, 0.0, 1.0],
            p: 1,
        };
        assert!(
            matches!(fit(&bad_psi, Method::Reml, ok), Err(CoreError::Value(m)) if m.contains("area #1"))
        );
        let nan = Model {
            y: &[1.0, f64::NAN, 3.0],
            x: &x,
            psi: &[1.0; 3],
            p: 1,
        };
        assert!(
            matches!(fit(&nan, Method::Reml, ok), Err(CoreError::Value(m)) if m.contains("area #1"))
        );
        let few = Model {
            y: &[1.0],
            x: &[1.0],
            psi: &[1.0],
            p: 1,
        };
        assert!(fit(&few, Method::Reml, ok).is_err());
        let aliased = Model {
            y: &[1.0, 2.0, 3.0],
            x: &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0],
            psi: &[1.0; 3],
            p: 2,
        };
        assert!(matches!(
            fit(&aliased, Method::Reml, ok),
            Err(CoreError::Aliased { .. })
        ));
        assert!(Method::parse("GLS").is_err());
    }
}
