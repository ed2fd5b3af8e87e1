//! Trimming (R's `trimWeights`): weights outside [lower, upper] are set to the bound and
//! the amount trimmed is spread equally over the other weights, keeping their sum.

use super::{adjusted, analysis_weights, per_replicate, Report};
use crate::design::Design;
use crate::error::{CoreError, Result};

/// Passes of strict trimming after which the weights are declared not to settle.
const MAX_PASSES: usize = 10_000;

/// Trim the weights of `design` to [lower, upper]; with `strict`, repeat until no weight
/// is outside (the spread-out trimmings can push weights over a bound).  A linearisation
/// design keeps its earlier calibration for the variance, as R's.  A replicate design
/// has each replicate's analysis weights trimmed the same way (R's `svyrep.design`
/// method means to, but leaves the full-sample weights untrimmed).
pub fn trim_weights(
    design: &Design,
    lower: f64,
    upper: f64,
    strict: bool,
) -> Result<(Design, Report)> {
    if lower.is_nan() || upper.is_nan() || lower >= upper {
        return Err(CoreError::Calibration(format!(
            "trimming bounds [{lower}, {upper}] are empty: the lower bound must be below the upper"
        )));
    }
    let w = &design.weights;
    let (weights, passes) = trim(w, lower, upper, strict)?;
    let analysis = match design.replicates() {
        Some(rep) => {
            let mut a = analysis_weights(design, rep);
            per_replicate(&mut a, rep.n_replicates, |column| {
                trim(column, lower, upper, strict).map(|(t, _)| (t, ()))
            })?;
            Some(a)
        }
        None => None,
    };
    let report = Report {
        iterations: passes,
        converged: true,
        misfit: 0.0,
        before: vec![w.iter().sum()],
        after: vec![weights.iter().sum()],
        replicates_not_converged: 0,
    };
    Ok((adjusted(design, weights, analysis, None)?, report))
}

/// One vector of weights trimmed; returns them and the number of passes that trimmed.
fn trim(w: &[f64], lower: f64, upper: f64, strict: bool) -> Result<(Vec<f64>, usize)> {
    let n = w.len() as f64;
    let total: f64 = w.iter().sum();
    if strict && (n * lower > total || n * upper < total) {
        return Err(CoreError::Calibration(format!(
            "infeasible trimming bounds: {n} weights between {lower} and {upper} cannot keep \
             their sum {total}"
        )));
    }
    let mut w = w.to_vec();
    let mut passes = 0;
    loop {
        let outside = |v: f64| v < lower || v > upper;
        let n_inside = w.iter().filter(|&&v| !outside(v)).count();
        if n_inside == w.len() {
            break;
        }
        if n_inside == 0 {
            return Err(CoreError::Calibration(format!(
                "every weight is outside [{lower}, {upper}]: there is none to take up the trimmed amount"
            )));
        }
        if passes == MAX_PASSES {
            return Err(CoreError::Calibration(format!(
                "trimming to [{lower}, {upper}] did not settle after {MAX_PASSES} passes"
            )));
        }
        passes += 1;
        let trimmed: f64 = w.iter().map(|&v| v - v.clamp(lower, upper)).sum();
        let share = trimmed / n_inside as f64;
        for v in &mut w {
            *v = if outside(*v) {
                v.clamp(lower, upper)
            } else {
                *v + share
            };
        }
        if !strict {
            break;
        }
    }
    Ok((w, passes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_the_sum() {
        let (w, passes) = trim(&[1.0, 5.0, 10.0, 4.0], 2.0, 8.0, false).unwrap();
        // 1 -> 2 (-1), 10 -> 8 (+2): one unit spread over the two others.
        assert_eq!(w, vec![2.0, 5.5, 8.0, 4.5]);
        assert_eq!(passes, 1);
        let (w, _) = trim(&[1.0, 1.0, 1.0, 17.0], 0.5, 6.0, true).unwrap();
        assert!(w.iter().all(|&v| (0.5..=6.0).contains(&v)));
        assert!((w.iter().sum::<f64>() - 20.0).abs() < 1e-12);
        assert!(trim(&[1.0, 1.0, 10.0], 0.5, 2.0, true).is_err());
    }
}
