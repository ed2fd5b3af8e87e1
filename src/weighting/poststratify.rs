//! Post-stratification (R's `postStratify`): the weights of each post-stratum, a cell of
//! a complete cross-classification, are scaled to its population count.

use super::{
    adjusted, analysis_weights, cell_ratios, cell_sums, check_cells, check_counts,
    replicate_ratios, Report, Step,
};
use crate::design::Design;
use crate::error::Result;

/// Post-stratify `design`: `cells` holds each row's post-stratum (0..k) and `targets`
/// the k population counts.  A post-stratum in the sample but not the population, or
/// the other way round, is an error (R's `partial = FALSE`).
pub fn poststratify(design: &Design, cells: &[u32], targets: &[f64]) -> Result<(Design, Report)> {
    let k = targets.len();
    check_cells(cells, design.n_rows, k, "post-stratum")?;
    check_counts(targets, 0)?;
    let w = &design.weights;
    let before = cell_sums(cells, k, w, 1);
    let ratio = cell_ratios(&before, targets, 0)?;
    let weights: Vec<f64> = w
        .iter()
        .zip(cells)
        .map(|(w, &c)| w * ratio[c as usize])
        .collect();
    let analysis = design.replicates().map(|rep| {
        let n_rep = rep.n_replicates;
        let mut a = analysis_weights(design, rep);
        let sums = cell_sums(cells, k, &a, n_rep);
        let ratios: Vec<Vec<f64>> = (0..n_rep)
            .map(|j| {
                let column: Vec<f64> = (0..k).map(|c| sums[c * n_rep + j]).collect();
                replicate_ratios(&column, targets)
            })
            .collect();
        for (row, &c) in a.chunks_exact_mut(n_rep).zip(cells) {
            for (v, r) in row.iter_mut().zip(&ratios) {
                *v *= r[c as usize];
            }
        }
        a
    });
    let after = cell_sums(cells, k, &weights, 1);
    let misfit = after
        .iter()
        .zip(targets)
        .map(|(a, t)| (a - t).abs() / (1.0 + t))
        .fold(0.0, f64::max);
    let step = analysis.is_none().then(|| Step::PostStrata {
        cell: cells.to_vec(),
        old: w.clone(),
        ratio,
    });
    let report = Report {
        iterations: 1,
        converged: true,
        misfit,
        before,
        after,
        replicates_not_converged: 0,
    };
    Ok((adjusted(design, weights, analysis, step)?, report))
}

#[cfg(test)]
mod tests {
    use super::super::tests::srs;
    use super::*;
    use crate::estimate::{estimate_by_domain, Estimator, Outcome};

    #[test]
    fn post_stratified_total_has_the_textbook_variance() {
        // Two post-strata of an SRS with replacement (no fpc): the variance of the
        // post-stratified total is n/(n-1) sum_i (w_i (y_i - ybar_h(i)) N_h/W_h)^2 where
        // the residuals are taken from the post-stratum means (R's postStratify).
        let w = [2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        let y = [1.0, 3.0, 2.0, 10.0, 14.0, 12.0];
        let cells = [0u32, 0, 0, 1, 1, 1];
        let d = srs(&w);
        let (ps, report) = poststratify(&d, &cells, &[9.0, 3.0]).unwrap();
        assert_eq!(report.after, vec![9.0, 3.0]);
        let res = estimate_by_domain(
            &ps,
            Estimator::Total,
            &[Outcome::Numeric(&y)],
            &[0; 6],
            1,
            false,
        )
        .unwrap();
        assert!((res.estimate[0] - (9.0 * 2.0 + 3.0 * 12.0)).abs() < 1e-12);
        // Residuals w_new (y - ybar_h): post-stratum 0 has w_new 3 and ybar 2,
        // post-stratum 1 w_new 1 and ybar 12.
        let e = [-3.0, 3.0, 0.0, -2.0, 2.0, 0.0];
        let var = 6.0 / 5.0 * e.iter().map(|v| v * v).sum::<f64>();
        assert!(
            (res.vcov[0] - var).abs() < 1e-10,
            "{} vs {var}",
            res.vcov[0]
        );
    }

    #[test]
    fn one_sided_cells_are_errors() {
        let d = srs(&[1.0, 1.0, 1.0]);
        assert!(poststratify(&d, &[0, 0, 1], &[3.0, 0.0]).is_err());
        assert!(poststratify(&d, &[0, 0, 0], &[3.0, 4.0]).is_err());
        assert!(poststratify(&d, &[0, 0, 0], &[-3.0]).is_err());
    }
}
