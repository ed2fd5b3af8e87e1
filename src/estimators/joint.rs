//! Totals or means of every domain with their joint covariance across domains and
//! variables (R's `svyby(..., covmat = TRUE)`), for contrasts between domains: the
//! domains' influence totals side by side through the one engine, or their replicate
//! estimates side by side through the replicate engine.

use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::estimate::{
    check_sums, domain_sums, linearization_influence, point_estimates, raked_influence,
    replicate_sums, row_influence, BeyondSums, Estimator, Outcome, RowContext, Sums,
};
use crate::variance::Influence;

/// Estimates of every domain (n_domains x p, NaN for a domain with no rows or no
/// weight, which adds nothing to the covariance) and their covariance ((n_domains p)
/// squared, domain-major: estimate j of domain d is row d p + j).
#[derive(Clone, Debug)]
pub struct JointEstimates {
    pub p: usize,
    pub estimate: Vec<f64>,
    pub vcov: Vec<f64>,
    pub n_rows: Vec<f64>,
    pub weight_sum: Vec<f64>,
    pub dropped_replicates: usize,
}

/// The part of the design the domains are taken from: its PSUs are those present for
/// the lonely-PSU rules.
#[derive(Clone, Copy)]
pub enum JointScope<'a> {
    /// Every row of the design.
    Whole,
    /// The rows marked (a subset held in memory).
    Rows(&'a [bool]),
    /// The variance units holding a row of the subset (a streamed subset, whose rows
    /// are not held: its pass marks the units).
    Units(&'a [bool]),
}

/// Totals or means (`estimator`) of `outcomes` in every domain (codes 0..n_domains,
/// `OUTSIDE` for rows in none) with their joint covariance.  `in_design` marks the rows
/// of the design the domains are taken from; None: every row.  The fused pass, then
/// [`joint_from_sums`].
pub fn estimate_joint(
    design: &Design,
    estimator: Estimator,
    outcomes: &[Outcome],
    domain: &[u32],
    n_domains: usize,
    in_design: Option<&[bool]>,
) -> Result<JointEstimates> {
    if outcomes.is_empty() {
        return Err(CoreError::Value("no outcome variable given".into()));
    }
    let (sums, rep_sums) = domain_sums(design, outcomes, domain, n_domains, false)?;
    let beyond = match (&rep_sums, design.is_calibrated()) {
        (Some(rs), _) => BeyondSums::ReplicateSums(rs),
        (None, true) => BeyondSums::Rows(RowContext { outcomes, domain }),
        (None, false) => BeyondSums::Nothing,
    };
    let scope = in_design.map_or(JointScope::Whole, JointScope::Rows);
    joint_from_sums(design, estimator, n_domains, &sums, beyond, scope)
}

/// Totals or means of every domain with their joint covariance from the fused pass's
/// per-(domain, unit) sums (`sums`: [rows, sum w, sum w y_1, ...]) and what the design's
/// variance needs besides (`beyond`, as for [`crate::estimate::estimates_from_sums`]).
/// Sums of a streamed data set, added in batch order, come here as the in-memory pass's
/// do.
pub fn joint_from_sums(
    design: &Design,
    estimator: Estimator,
    n_domains: usize,
    sums: &Sums,
    beyond: BeyondSums,
    scope: JointScope,
) -> Result<JointEstimates> {
    if matches!(estimator, Estimator::Ratio { .. }) {
        return Err(CoreError::Value(
            "joint covariance across domains is for totals and means".into(),
        ));
    }
    check_sums(design, estimator, n_domains, sums, beyond)?;
    let (n_units, stride) = (design.n_units, sums.stride);
    let width = stride - 2;
    let p = width;
    let k = n_domains * p;
    let mut out = JointEstimates {
        p,
        estimate: vec![f64::NAN; k],
        vcov: vec![0.0; k * k],
        n_rows: vec![0.0; n_domains],
        weight_sum: vec![0.0; n_domains],
        dropped_replicates: 0,
    };
    let mut col_tots = vec![vec![0.0; stride]; n_domains];
    let mut estimated = vec![false; n_domains];
    for d in 0..n_domains {
        let cells = &sums.table[d * n_units * stride..(d + 1) * n_units * stride];
        let col_tot = &mut col_tots[d];
        for cell in cells.chunks_exact(stride) {
            col_tot.iter_mut().zip(cell).for_each(|(t, c)| *t += c);
        }
        out.n_rows[d] = col_tot[0];
        out.weight_sum[d] = col_tot[1];
        if col_tot[0] > 0.0 && col_tot[1] != 0.0 {
            point_estimates(
                estimator,
                0,
                width,
                col_tot,
                &mut out.estimate[d * p..(d + 1) * p],
            );
            estimated[d] = true;
        }
    }
    if let Some(rep) = design.replicates() {
        let per_row = match beyond {
            BeyondSums::ReplicateSums(rs) => Some(rs),
            _ => None,
        };
        let mut thetas = vec![f64::NAN; rep.n_replicates * k];
        let mut rsum = vec![0.0; stride];
        for d in (0..n_domains).filter(|&d| estimated[d]) {
            let cells = &sums.table[d * n_units * stride..(d + 1) * n_units * stride];
            for r in 0..rep.n_replicates {
                let s = replicate_sums(rep, per_row, cells, (d, r), &mut rsum);
                point_estimates(
                    estimator,
                    0,
                    width,
                    s,
                    &mut thetas[r * k + d * p..r * k + (d + 1) * p],
                );
            }
        }
        // Domains without an estimate stay out (zero rows and columns).
        let keep: Vec<usize> = (0..k).filter(|&j| estimated[j / p]).collect();
        let kept: Vec<f64> = (0..rep.n_replicates)
            .flat_map(|r| keep.iter().map(move |&j| (r, j)))
            .map(|(r, j)| thetas[r * k + j])
            .collect();
        let full: Vec<f64> = keep.iter().map(|&j| out.estimate[j]).collect();
        let cov = design.covariance(Influence::ReplicateEstimates {
            thetas: &kept,
            full: &full,
        })?;
        out.dropped_replicates = cov.dropped_replicates;
        let v = cov.matrix;
        let m = keep.len();
        for (a, &i) in keep.iter().enumerate() {
            for (b, &j) in keep.iter().enumerate() {
                out.vcov[i * k + j] = v[a * m + b];
            }
        }
        return Ok(out);
    }
    if let BeyondSums::Rows(ctx) = beyond {
        // A calibrated design's residuals need the rows: each domain's per-row
        // influence values, side by side.
        let in_domain = match scope {
            JointScope::Whole => None,
            JointScope::Rows(rows) => Some(rows),
            JointScope::Units(_) => {
                return Err(CoreError::Value(
                    "a calibrated design's domains are taken from rows, not units".into(),
                ))
            }
        };
        let mut rows = vec![0.0; design.n_rows * k];
        for d in (0..n_domains).filter(|&d| estimated[d]) {
            let z = row_influence(
                design,
                estimator,
                ctx.outcomes,
                ctx.domain,
                d as u32,
                (0, width),
                &out.estimate[d * p..(d + 1) * p],
                &col_tots[d],
            )?;
            for (r, zr) in z.chunks_exact(p).enumerate() {
                rows[r * k + d * p..r * k + (d + 1) * p].copy_from_slice(zr);
            }
        }
        out.vcov = design
            .covariance(Influence::Rows {
                values: &rows,
                p: k,
                in_domain,
            })?
            .matrix;
        return Ok(out);
    }
    let mut totals = vec![0.0; n_units * k];
    let mut infl = vec![0.0; n_units * p];
    for d in (0..n_domains).filter(|&d| estimated[d]) {
        let cells = &sums.table[d * n_units * stride..(d + 1) * n_units * stride];
        let est = &out.estimate[d * p..(d + 1) * p];
        if let BeyondSums::RakedCells(cell_sums, raking) = beyond {
            raked_influence(
                (cell_sums, raking),
                d,
                (estimator, 0, width),
                est,
                cells,
                &col_tots[d],
                &mut infl,
            )?;
        } else {
            linearization_influence(
                estimator,
                0,
                width,
                est,
                cells,
                stride,
                &col_tots[d],
                &mut infl,
            );
        }
        for (u, z) in infl.chunks_exact(p).enumerate() {
            totals[u * k + d * p..u * k + (d + 1) * p].copy_from_slice(z);
        }
    }
    let present = match (scope, beyond) {
        // A calibrated design keeps every unit (R's postStrata).
        (_, BeyondSums::RakedCells(..)) | (JointScope::Whole, _) => None,
        (JointScope::Units(units), _) if units.len() != n_units => {
            return Err(CoreError::Shape(format!(
                "{} units marked present; the design has {n_units}",
                units.len()
            )))
        }
        (JointScope::Units(units), _) => Some(units.to_vec()),
        (JointScope::Rows(rows), _) => {
            let mut present = vec![false; n_units];
            for (&u, &inside) in design.unit_of_row.iter().zip(rows) {
                present[u as usize] |= inside;
            }
            Some(present)
        }
    };
    out.vcov = design
        .covariance(Influence::UnitTotals {
            totals: &totals,
            p: k,
            present: present.as_deref(),
        })?
        .matrix;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::{DesignSpec, LonelyPsu};
    use crate::estimate::{batch_sums, estimate_by_domain, RowData};

    #[test]
    fn joint_covariance_holds_each_domain_s_own_and_their_cross_terms() {
        // Four PSUs without strata, two domains.  Each domain's block is its own
        // covariance (estimate_by_domain); the cross term is, by hand, the PSU totals'
        // n/(n-1) sum of products of the two domains' centred influence totals.
        let psu: Vec<u32> = vec![0, 0, 1, 1, 2, 2, 3, 3];
        let w = [1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0, 3.0];
        let y = [1.0, 4.0, 2.0, 0.0, 3.0, 1.0, 5.0, 2.0];
        let domain = [0u32, 1, 0, 1, 0, 1, 1, 0];
        let design = Design::new(&DesignSpec {
            clusters: vec![Some(&psu)],
            ..DesignSpec::weighted(&w)
        })
        .unwrap();
        let outcomes = [Outcome::Numeric(&y)];
        let joint = estimate_joint(&design, Estimator::Total, &outcomes, &domain, 2, None).unwrap();
        let own =
            estimate_by_domain(&design, Estimator::Total, &outcomes, &domain, 2, false).unwrap();
        // Totals: domain 0 = 1 + 2 + 6 + 6 = 15, domain 1 = 8 + 0 + 1 + 5 = 14.
        assert_eq!(joint.estimate, vec![15.0, 14.0]);
        assert!((joint.vcov[0] - own.vcov[0]).abs() < 1e-12);
        assert!((joint.vcov[3] - own.vcov[1]).abs() < 1e-12);
        // PSU totals: domain 0: 1, 2, 6, 6 (mean 15/4); domain 1: 8, 0, 1, 5 (mean 14/4).
        let a = [1.0 - 3.75, 2.0 - 3.75, 6.0 - 3.75, 6.0 - 3.75];
        let b = [8.0 - 3.5, 0.0 - 3.5, 1.0 - 3.5, 5.0 - 3.5];
        let cross: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>() * 4.0 / 3.0;
        assert!((joint.vcov[1] - cross).abs() < 1e-12);
        assert!((joint.vcov[1] - joint.vcov[2]).abs() < 1e-12);
    }

    #[test]
    fn sums_of_two_batches_give_the_in_memory_joint_covariance() {
        // Rows 0-3 and 4-7 as two batches of a streamed data set, their sums added: the
        // means and covariance of the pass over all rows.  The subset leaves stratum 1
        // (rows 4, 5) out: units 0, 1 and 4 are present, whether marked by rows or units.
        let psu: Vec<u32> = vec![0, 0, 1, 1, 2, 3, 4, 4];
        let stratum: Vec<u32> = vec![0, 0, 0, 0, 1, 1, 2, 2];
        let w = [1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0, 3.0];
        let y = [1.0, 4.0, 2.0, 0.0, 3.0, 1.0, 5.0, 2.0];
        let domain = [0u32, 1, 0, 1, 0, 1, 1, 0];
        let design = Design::new(&DesignSpec {
            clusters: vec![Some(&psu)],
            strata: vec![&stratum],
            lonely_psu: LonelyPsu::Average,
            ..DesignSpec::weighted(&w)
        })
        .unwrap();
        let in_subset = [true, true, true, true, false, false, true, true];
        let subset_domain: Vec<u32> = domain
            .iter()
            .zip(&in_subset)
            .map(|(&d, &inside)| if inside { d } else { crate::estimate::OUTSIDE })
            .collect();
        let outcomes = [Outcome::Numeric(&y)];
        let memory = estimate_joint(
            &design,
            Estimator::Mean,
            &outcomes,
            &subset_domain,
            2,
            Some(&in_subset),
        )
        .unwrap();
        let mut added: Option<Sums> = None;
        for rows in [0..4, 4..8] {
            let data = RowData {
                weights: &w[rows.clone()],
                unit_of_row: &design.unit_of_row[rows.clone()],
                n_units: design.n_units,
            };
            let part = batch_sums(
                &data,
                &[Outcome::Numeric(&y[rows.clone()])],
                &subset_domain[rows],
                2,
                false,
            )
            .unwrap();
            match added.as_mut() {
                None => added = Some(part),
                Some(a) => a
                    .table
                    .iter_mut()
                    .zip(&part.table)
                    .for_each(|(x, p)| *x += p),
            }
        }
        let present = [true, true, false, false, true];
        let streamed = joint_from_sums(
            &design,
            Estimator::Mean,
            2,
            &added.unwrap(),
            BeyondSums::Nothing,
            JointScope::Units(&present),
        )
        .unwrap();
        for (a, b) in memory.estimate.iter().zip(&streamed.estimate) {
            assert!((a - b).abs() < 1e-15);
        }
        for (a, b) in memory.vcov.iter().zip(&streamed.vcov) {
            assert!((a - b).abs() < 1e-15, "{a} != {b}");
        }
        // Stratum 2 has one PSU: 'average' scales the variance by the strata present over
        // those with two PSUs, 2 / 1 with the marks, 3 / 2 without.
        let whole = joint_from_sums(
            &design,
            Estimator::Mean,
            2,
            &domain_sums(&design, &outcomes, &subset_domain, 2, false)
                .unwrap()
                .0,
            BeyondSums::Nothing,
            JointScope::Whole,
        )
        .unwrap();
        assert!((whole.vcov[0] / 1.5 - streamed.vcov[0] / 2.0).abs() < 1e-15);
        assert!(streamed.vcov[0] > 0.0);
    }
}
