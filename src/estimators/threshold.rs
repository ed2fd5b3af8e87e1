//! The threshold GLM's grid of candidates in the core: each candidate's fit with the
//! influence values of its threshold coefficient summed to the design's units, their
//! covariance across the grid, and the score test of no threshold (every candidate's
//! score at the fit without the term, summed to units, then the wild bootstrap over
//! units), with no n x G matrix on a design as sampled.

use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::estimators::glm::{fit_with_influence, CoefficientInfluence};
use crate::models::glm::{fit, fold_solution, IrlsRun, UnitParts};
use crate::models::linalg::Ldl;
use crate::models::{GlmInput, Threshold};

/// A candidate's fit: the IRLS as it ended and, for a fit that converged without
/// separation on a linearisation design, the influence values of the threshold
/// coefficient: their unit totals (n_units), or on a calibrated design the model's rows.
pub struct CandidateFit {
    pub run: IrlsRun,
    pub influence: Option<Vec<f64>>,
}

/// Fit the model at one candidate (`input`: the model with its threshold term as column
/// j) and, on `design` (whose rows `rows` the model's rows are), the influence values of
/// coefficient j: column j of the coefficients' influence ([`fit_with_influence`]).
pub fn fit_candidate(
    input: &GlmInput,
    j: usize,
    design: Option<(&Design, &[usize])>,
) -> Result<CandidateFit> {
    let p = input.p();
    if j >= p {
        return Err(CoreError::Shape(format!(
            "threshold column {j} of a model of {p} columns"
        )));
    }
    let Some((design, rows)) = design else {
        return Ok(CandidateFit {
            run: fit(input)?,
            influence: None,
        });
    };
    let (run, influence) = fit_with_influence(input, design, rows)?;
    let influence = influence.map(|(influence, _)| {
        let (CoefficientInfluence::UnitTotals(values) | CoefficientInfluence::Rows(values)) =
            influence;
        values.iter().skip(j).step_by(p).copied().collect()
    });
    Ok(CandidateFit { run, influence })
}

/// The covariance (G x G) of the threshold coefficients of G candidates from their
/// influence values (`influence`: G x m, candidate after candidate, as [`fit_candidate`]
/// gives them: m unit totals, or on a calibrated design the m model rows), the model's
/// rows `rows` being the domain: the design's one engine.
pub fn candidates_covariance(
    design: &Design,
    influence: &[f64],
    g: usize,
    rows: &[usize],
) -> Result<Vec<f64>> {
    let m = if design.is_calibrated() {
        rows.len()
    } else {
        design.n_units
    };
    if g == 0 || m == 0 || influence.len() != g * m {
        return Err(CoreError::Shape(format!(
            "{} influence values for {g} candidates x {m}",
            influence.len()
        )));
    }
    // Unit (or row) by unit for the engine.
    let mut by_unit = vec![0.0; m * g];
    for (c, values) in influence.chunks_exact(m).enumerate() {
        for (k, v) in values.iter().enumerate() {
            by_unit[k * g + c] = *v;
        }
    }
    let cov = if design.is_calibrated() {
        design.covariance_of_rows(&by_unit, g, rows)?
    } else {
        design.covariance_of_domain_totals(&by_unit, g, rows)?
    };
    Ok(cov.matrix)
}

/// The threshold terms of the grid at the fit without them.
struct NullScores<'a> {
    /// The model without the term, and its fit.
    null: &'a GlmInput<'a>,
    run: &'a IrlsRun,
    kind: Threshold,
    /// The threshold variable on the model's rows, and the candidates.
    x: &'a [f64],
    candidates: &'a [f64],
}

impl NullScores<'_> {
    /// The rows at the null solution, each with its candidates' terms h (G values):
    /// `visit(part, i, row's working weight, working residual, x0, h)`, parts folded in
    /// chunk order.
    fn fold<T: Send>(
        &self,
        start: impl Fn() -> T + Sync,
        visit: impl Fn(&mut T, usize, (f64, f64), &[f64], &[f64]) + Sync,
        mut add: impl FnMut(T),
    ) -> Result<()> {
        let g = self.candidates.len();
        let (beta, previous) = (&self.run.coefficients, self.run.previous.as_deref());
        fold_solution(
            self.null,
            beta,
            previous,
            || (start(), vec![0.0; g]),
            |(part, h), i, row, x0| {
                for (v, &c) in h.iter_mut().zip(self.candidates) {
                    *v = self.kind.value(self.x[i], c);
                }
                visit(part, i, (row.working_weight, row.working_residual), x0, h);
            },
            |(part, _)| add(part),
        )
    }

    /// Each candidate's term projected on the null model's columns with the working
    /// weights W: (X0'WX0)^-1 X0'W h, p0 x G (coefficient by coefficient), from the sums
    /// X0'WX0 and X0'WH of one pass.
    fn projections(&self) -> Result<Vec<f64>> {
        let (p, g) = (self.null.p(), self.candidates.len());
        let q = p + g;
        let mut sums = vec![0.0; p * q];
        self.fold(
            || vec![0.0; p * q],
            |part, _, (ww, _), x0, h| {
                for (line, xa) in part.chunks_exact_mut(q).zip(x0) {
                    let s = xa * ww;
                    let (gram, cross) = line.split_at_mut(p);
                    for (o, xb) in gram.iter_mut().zip(x0) {
                        *o += s * xb;
                    }
                    for (o, hc) in cross.iter_mut().zip(h) {
                        *o += s * hc;
                    }
                }
            },
            |part| {
                for (t, v) in sums.iter_mut().zip(&part) {
                    *t += v;
                }
            },
        )?;
        let gram: Vec<f64> = sums
            .chunks_exact(q)
            .flat_map(|l| &l[..p])
            .copied()
            .collect();
        let ldl = Ldl::new(&gram, p, f64::EPSILON.powf(0.75));
        if !ldl.singular().is_empty() {
            return Err(CoreError::Value(
                "the model without the threshold term has aliased columns at its solution".into(),
            ));
        }
        let mut beta = vec![0.0; p * g];
        let mut rhs = vec![0.0; p];
        for c in 0..g {
            for (r, line) in rhs.iter_mut().zip(sums.chunks_exact(q)) {
                *r = line[p + c];
            }
            for (a, b) in ldl.solve(&rhs).into_iter().enumerate() {
                beta[a * g + c] = b;
            }
        }
        Ok(beta)
    }

    /// The rows' scores at every candidate, `visit(part, i, scores)`: working weight
    /// times working residual times the term's residual from its projection `beta`
    /// (p0 x G), h - x0 . beta_c (the efficient score, which accounts for estimating
    /// the null model's coefficients).
    fn scores<T: Send>(
        &self,
        beta: &[f64],
        start: impl Fn() -> T + Sync,
        visit: impl Fn(&mut T, usize, &[f64]) + Sync,
        mut add: impl FnMut(T),
    ) -> Result<()> {
        let g = self.candidates.len();
        self.fold(
            || (start(), vec![0.0; g]),
            |(part, score), i, (ww, wr), x0, h| {
                score.fill(0.0);
                for (xa, line) in x0.iter().zip(beta.chunks_exact(g)) {
                    for (s, b) in score.iter_mut().zip(line) {
                        *s += xa * b;
                    }
                }
                let weight = ww * wr;
                for (s, hc) in score.iter_mut().zip(h) {
                    *s = weight * (hc - *s);
                }
                visit(part, i, score);
            },
            |(part, _)| add(part),
        )
    }

    /// The scores summed to the design's units (n_units x G), the model's row k being
    /// the design's row `rows[k]`.
    fn unit_totals(&self, beta: &[f64], design: &Design, rows: &[usize]) -> Result<Vec<f64>> {
        let g = self.candidates.len();
        let units = design.n_units;
        let mut totals = vec![0.0; units * g];
        // A chunk holds sums only for the units it meets.
        self.scores(
            beta,
            || (vec![u32::MAX; units], UnitParts::default()),
            |(slot, parts), i, score| {
                let u = design.unit_of_row[rows[i]] as usize;
                for (t, s) in parts.at(slot, u, g).iter_mut().zip(score) {
                    *t += s;
                }
            },
            |(_, parts)| parts.add_to(&mut totals, g),
        )?;
        Ok(totals)
    }

    /// The scores row by row (the model's rows x G): what a calibrated design's
    /// residuals need.
    fn rows(&self, beta: &[f64]) -> Result<Vec<f64>> {
        let g = self.candidates.len();
        let mut out = Vec::with_capacity(self.null.n() * g);
        self.scores(
            beta,
            Vec::new,
            |part: &mut Vec<f64>, _, score| part.extend_from_slice(score),
            |part| out.extend_from_slice(&part),
        )?;
        Ok(out)
    }
}

/// The score test of no threshold: the scores of the threshold term at every candidate
/// (`kind` of the variable `x` on the model's rows at `candidates`) at the fit `run` of
/// the model without the term (`null`), on the linearisation design `design` whose rows
/// `rows` (ascending) the model's rows are, the fitted rows being the domain; then the
/// wild bootstrap: draw d multiplies the scores of unit u by `signs[d * n_units + u]`
/// ([`Design::sign_flip_variances_of_totals`]).  Returns each draw's score sums and
/// their variances (draws x G each); S^2 / V is the LM statistic (Kline and Santos 2012).
/// The scores are summed to units as they are made, unless the design is calibrated
/// (its residuals need the rows).
#[allow(clippy::too_many_arguments)]
pub fn score_test(
    null: &GlmInput,
    run: &IrlsRun,
    kind: Threshold,
    x: &[f64],
    candidates: &[f64],
    design: &Design,
    rows: &[usize],
    signs: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (n, g) = (null.n(), candidates.len());
    if x.len() != n || rows.len() != n || g == 0 {
        return Err(CoreError::Shape(format!(
            "{} threshold values, {} design rows and {g} candidates for the model's {n} rows",
            x.len(),
            rows.len()
        )));
    }
    let present = design.units_holding(rows)?;
    let scores = NullScores {
        null,
        run,
        kind,
        x,
        candidates,
    };
    let beta = scores.projections()?;
    if !design.is_calibrated() {
        let totals = scores.unit_totals(&beta, design, rows)?;
        return design.sign_flip_variances_of_totals(&totals, g, &present, signs);
    }
    let values = scores.rows(&beta)?;
    let mut all = vec![0.0; design.n_rows * g];
    let mut in_domain = vec![false; design.n_rows];
    for (&r, v) in rows.iter().zip(values.chunks_exact(g)) {
        all[r * g..(r + 1) * g].copy_from_slice(v);
        in_domain[r] = true;
    }
    design.sign_flip_variances(&all, g, Some(&in_domain), signs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignSpec;
    use crate::estimators::glm::influence_covariance;
    use crate::models::{Control, Factor, Family, Link, Regressors};

    /// Two strata of two PSUs (11 rows, row 3 out of the domain), a Poisson model
    /// y ~ 1 + z, and a kink in x at three candidates.
    struct Case {
        psu: [u32; 11],
        stratum: [u32; 11],
        dw: [f64; 11],
        rows: Vec<usize>,
        x: Vec<f64>,
        z: Vec<f64>,
        y: Vec<f64>,
        w: Vec<f64>,
    }

    fn case() -> Case {
        let rows = vec![0usize, 1, 2, 4, 5, 6, 7, 8, 9, 10];
        let x = vec![0.5, 1.5, 2.0, 3.5, 4.0, 4.5, 5.5, 6.0, 7.5, 8.0];
        let z = vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let y = vec![1.0, 0.0, 2.0, 3.0, 1.0, 4.0, 6.0, 5.0, 9.0, 7.0];
        let dw = [2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 1.5, 1.5];
        let w = rows.iter().map(|&r| dw[r]).collect();
        Case {
            psu: [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3],
            stratum: [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
            dw,
            rows,
            x,
            z,
            y,
            w,
        }
    }

    impl Case {
        /// The case's stratified cluster design.
        fn design(&self) -> Design {
            Design::new(&DesignSpec {
                clusters: vec![Some(&self.psu)],
                strata: vec![&self.stratum],
                ..DesignSpec::weighted(&self.dw)
            })
            .unwrap()
        }
    }

    const CANDIDATES: [f64; 3] = [2.5, 4.25, 6.0];

    #[test]
    fn unit_totals_of_the_null_scores_are_their_rows_summed() {
        let c = case();
        let design = c.design();
        let x0 = Regressors::new(10, vec![vec![], vec![Factor::Values(&c.z)]]).unwrap();
        let null = GlmInput {
            x: &x0,
            y: &c.y,
            weights: &c.w,
            offset: None,
            family: Family::Poisson,
            link: Link::Log,
            control: Control::default(),
        };
        let run = fit(&null).unwrap();
        let scores = NullScores {
            null: &null,
            run: &run,
            kind: Threshold::Slope,
            x: &c.x,
            candidates: &CANDIDATES,
        };
        let beta = scores.projections().unwrap();
        let rows = scores.rows(&beta).unwrap();
        let totals = scores.unit_totals(&beta, &design, &c.rows).unwrap();
        let mut summed = vec![0.0; 4 * 3];
        for (&r, score) in c.rows.iter().zip(rows.chunks_exact(3)) {
            let u = c.psu[r] as usize;
            for (t, s) in summed[u * 3..u * 3 + 3].iter_mut().zip(score) {
                *t += s;
            }
        }
        for (a, b) in totals.iter().zip(&summed) {
            assert!((a - b).abs() <= 1e-14 * b.abs().max(1.0), "{a} != {b}");
        }
        // Each term's residual h~ = h - x0 . beta_c is orthogonal to the null model's
        // columns under the working weights (sum_i ww_i h~_i x0_i = 0), and each row's
        // score is ww_i wr_i h~_i, read from the rows at the solution.
        let solution = crate::models::glm::solution_rows(
            &null,
            &run.coefficients,
            run.previous.as_deref(),
            &run.cov_unscaled,
        )
        .unwrap();
        for (col, &at) in CANDIDATES.iter().enumerate() {
            let (mut one, mut with_z) = (0.0, 0.0);
            for i in 0..10 {
                let h = Threshold::Slope.value(c.x[i], at);
                let resid = h - beta[col] - c.z[i] * beta[3 + col];
                one += solution.working_weights[i] * resid;
                with_z += solution.working_weights[i] * resid * c.z[i];
                let want = solution.working_weights[i] * solution.working_residuals[i] * resid;
                assert!((rows[i * 3 + col] - want).abs() <= 1e-13 * want.abs().max(1.0));
            }
            assert!(one.abs() < 1e-12 && with_z.abs() < 1e-12, "{one} {with_z}");
        }
        // The sign flips: the unflipped draw's variance is the engine's of the totals.
        let signs = [1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, -1.0];
        let (sums, variances) = score_test(
            &null,
            &run,
            Threshold::Slope,
            &c.x,
            &CANDIDATES,
            &design,
            &c.rows,
            &signs,
        )
        .unwrap();
        let cov = design
            .covariance_of_domain_totals(&totals, 3, &c.rows)
            .unwrap();
        for col in 0..3 {
            assert_eq!(variances[col], cov.matrix[col * 3 + col]);
            let total: f64 = (0..4).map(|u| totals[u * 3 + col]).sum();
            assert!((sums[col] - total).abs() <= 1e-14 * total.abs().max(1.0));
            let flipped: f64 = (0..4).map(|u| signs[4 + u] * totals[u * 3 + col]).sum();
            assert!((sums[3 + col] - flipped).abs() <= 1e-14 * flipped.abs().max(1.0));
        }
    }

    #[test]
    fn the_candidates_covariance_is_that_of_their_coefficients_by_the_rows() {
        // Each candidate's unit totals of coefficient j's influence give, through the
        // engine, the variances the GLM's design covariance gives coefficient j.
        let c = case();
        let design = c.design();
        let mut influence = Vec::new();
        let mut want = Vec::new();
        for &at in &CANDIDATES {
            let x = Regressors::new(
                10,
                vec![
                    vec![],
                    vec![Factor::Values(&c.z)],
                    vec![Threshold::Slope.factor(&c.x, at)],
                ],
            )
            .unwrap();
            let input = GlmInput {
                x: &x,
                y: &c.y,
                weights: &c.w,
                offset: None,
                family: Family::Poisson,
                link: Link::Log,
                control: Control::default(),
            };
            let fitted = fit_candidate(&input, 2, Some((&design, &c.rows))).unwrap();
            let run = fit(&input).unwrap();
            assert_eq!(fitted.run.coefficients, run.coefficients);
            let (_, whole) = fit_with_influence(&input, &design, &c.rows).unwrap();
            let vcov = influence_covariance(&design, &whole.unwrap().0, 3, &c.rows).unwrap();
            want.push(vcov[2 * 3 + 2]);
            influence.extend(fitted.influence.unwrap());
        }
        let cov = candidates_covariance(&design, &influence, 3, &c.rows).unwrap();
        for (k, v) in want.iter().enumerate() {
            assert!((cov[k * 3 + k] - v).abs() <= 1e-14 * v);
        }
        assert!(candidates_covariance(&design, &influence[1..], 3, &c.rows).is_err());
    }
}
