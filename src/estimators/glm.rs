//! The survey GLM's design-based covariance (R's `svy.varcoef`): the coefficients'
//! influence values, estimating functions times the inverse information, through the
//! design's one variance engine.

use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::models::glm::{fit, fit_scored, solution_rows};
use crate::models::{GlmInput, IrlsRun};
use crate::svyvar::WeightedMoments;

/// The influence values of a fit's coefficients on a linearisation design: summed to the
/// design's units (n_units x p) in the pass over the rows, or, where the design's
/// calibration needs them, row by row (the model's rows x p).
pub enum CoefficientInfluence {
    UnitTotals(Vec<f64>),
    Rows(Vec<f64>),
}

/// A fit on the linearisation design `design`, whose rows `rows` (ascending) the
/// model's rows are: R's IRLS and, for a fit that converged without separation, the
/// coefficients' influence values (scores times (X'WX)^-1, R's `svy.varcoef`) and the
/// Pearson residuals' moments.  The influence values are summed to the design's units
/// in the pass at the solution, which also takes the separation probe's first step
/// ([`fit_scored`]); they are held row by row only where the design's calibration
/// needs the rows.
pub fn fit_with_influence(
    input: &GlmInput,
    design: &Design,
    rows: &[usize],
) -> Result<(IrlsRun, Option<(CoefficientInfluence, WeightedMoments)>)> {
    let (n, p) = (input.n(), input.p());
    if rows.len() != n {
        return Err(CoreError::Shape(format!(
            "{} design rows for the model's {n} rows",
            rows.len()
        )));
    }
    if let Some(r) = rows.iter().find(|&&r| r >= design.n_rows) {
        return Err(CoreError::Shape(format!(
            "row {r} is not a row of the design's {}",
            design.n_rows
        )));
    }
    if design.is_calibrated() {
        let run = fit(input)?;
        if !run.converged || run.separated {
            return Ok((run, None));
        }
        let (beta, previous) = (&run.coefficients, run.previous.as_deref());
        let fitted = solution_rows(input, beta, previous, &run.cov_unscaled)?;
        let pearson = WeightedMoments::of_rows(&fitted.pearson_residuals, input.weights);
        return Ok((
            run,
            Some((CoefficientInfluence::Rows(fitted.influence), pearson)),
        ));
    }
    let units = &design.unit_of_row;
    let (run, sums) = fit_scored(input, |k| units[rows[k]] as usize, design.n_units)?;
    let Some(sums) = sums else {
        return Ok((run, None));
    };
    // The influence values' unit totals: the scores' times (X'WX)^-1 (symmetric).
    let mut totals = vec![0.0; design.n_units * p];
    for (total, score) in totals
        .chunks_exact_mut(p)
        .zip(sums.unit_scores.chunks_exact(p))
    {
        for (s, cov_row) in score.iter().zip(run.cov_unscaled.chunks_exact(p)) {
            for (t, c) in total.iter_mut().zip(cov_row) {
                *t += s * c;
            }
        }
    }
    Ok((
        run,
        Some((CoefficientInfluence::UnitTotals(totals), sums.pearson)),
    ))
}

/// The design-based covariance (p x p) of coefficients from their `influence` on the
/// design of [`fit_with_influence`], the fitted rows `rows` being the domain.
pub fn influence_covariance(
    design: &Design,
    influence: &CoefficientInfluence,
    p: usize,
    rows: &[usize],
) -> Result<Vec<f64>> {
    let cov = match influence {
        CoefficientInfluence::Rows(values) => design.covariance_of_rows(values, p, rows)?,
        CoefficientInfluence::UnitTotals(totals) => {
            design.covariance_of_domain_totals(totals, p, rows)?
        }
    };
    Ok(cov.matrix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignSpec;
    use crate::models::{Control, Factor, Family, Link, Regressors};

    /// Rows (1, x) of a one-covariate model, as the core reads its columns.
    fn line(x: &[f64]) -> Regressors<'_> {
        Regressors::new(x.len(), vec![vec![], vec![Factor::Values(x)]]).unwrap()
    }

    #[test]
    fn design_covariance_sums_the_influence_rows_to_units() {
        // A Poisson model on 9 of a clustered design's 11 rows (4 PSUs; rows 3 and 8 out
        // of the domain): the unit totals of the scores times (X'WX)^-1 give the
        // covariance of the influence rows, which the rows route sums itself.
        let psu = [0u32, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3];
        let dw = [2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 1.5, 1.5];
        let design = Design::new(&DesignSpec {
            clusters: vec![Some(&psu)],
            ..DesignSpec::weighted(&dw)
        })
        .unwrap();
        let rows = [0usize, 1, 2, 4, 5, 6, 7, 9, 10];
        let x = line(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let y = [1.0, 0.0, 2.0, 3.0, 1.0, 4.0, 6.0, 5.0, 9.0];
        let w: Vec<f64> = rows.iter().map(|&r| dw[r]).collect();
        let model = GlmInput {
            x: &x,
            y: &y,
            weights: &w,
            offset: None,
            family: Family::Poisson,
            link: Link::Log,
            control: Control::default(),
        };
        let (f, influence) = fit_with_influence(&model, &design, &rows).unwrap();
        let (influence, pearson) = influence.unwrap();
        let vcov = influence_covariance(&design, &influence, 2, &rows).unwrap();
        let fitted = solution_rows(
            &model,
            &f.coefficients,
            f.previous.as_deref(),
            &f.cov_unscaled,
        )
        .unwrap();
        let want = design
            .covariance_of_rows(&fitted.influence, 2, &rows)
            .unwrap();
        for (a, b) in vcov.iter().zip(&want.matrix) {
            assert!((a - b).abs() <= 1e-13 * b.abs(), "{a} != {b}");
        }
        assert_eq!(
            pearson,
            WeightedMoments::of_rows(&fitted.pearson_residuals, &w)
        );
    }
}
