//! The one variance engine: PSU totals of influence values in, a covariance matrix out.
//! Linearisation over strata and stages (mirrors `survey:::svyrecvar`), or the
//! quadratic form of a PPS design without replacement (mirrors `survey:::ppsvar`).

use crate::design::{Design, LonelyPsu, PpsKernel, PpsVariance, Stage};
use crate::error::{CoreError, Result};

/// Covariance (p x p, row-major) of estimators whose influence values, summed to the
/// design's variance units, are `totals` (n_units x p, row-major).  `present` marks the
/// units that hold at least one row of the domain; R drops the other rows from the
/// design, which matters only for the lonely-PSU rules (`None`: every unit is present).
pub fn covariance(
    design: &Design,
    totals: &[f64],
    p: usize,
    present: Option<&[bool]>,
) -> Result<Vec<f64>> {
    if totals.len() != design.n_units * p {
        return Err(CoreError::Shape(format!(
            "influence totals have {} values, expected {} units x {p}",
            totals.len(),
            design.n_units
        )));
    }
    let present = if design.domains_keep_rows {
        None
    } else {
        present
    };
    match &design.pps {
        Some(pps) => Ok(pps_quadratic(&pps.kernel, pps.variance, totals, p)),
        None => {
            let mut v = vec![0.0; p * p];
            for (s, stage) in design.stages.iter().enumerate() {
                stage_covariance(design, s, stage, totals, p, present, &mut v)?;
            }
            Ok(v)
        }
    }
}

/// Covariance of estimators given per-row influence values (n_rows x p, row-major; zero
/// outside the domain).  `in_domain` marks the rows of the domain (`None`: all rows).
/// For estimators whose influence values are not sums the fused pass can form (GLM
/// scores, quantile indicators, anything on a calibrated design): they are summed to
/// units here and go the same way.  A calibrated design first replaces them by their
/// residuals from its calibration (R's `svyrecvar` with `postStrata`).
pub fn covariance_of_rows(
    design: &Design,
    rows: &[f64],
    p: usize,
    in_domain: Option<&[bool]>,
) -> Result<Vec<f64>> {
    if rows.len() != design.n_rows * p {
        return Err(CoreError::Shape(format!(
            "influence values have {} entries, expected {} rows x {p}",
            rows.len(),
            design.n_rows
        )));
    }
    if let Some(m) = in_domain {
        if m.len() != design.n_rows {
            return Err(CoreError::Shape(format!(
                "domain mask has {} rows, the design {}",
                m.len(),
                design.n_rows
            )));
        }
    }
    if let Some(r) = rows.iter().position(|v| v.is_nan()) {
        return Err(CoreError::Value(format!(
            "influence value is NaN at row {}",
            r / p
        )));
    }
    let residuals;
    let rows = if design.calibration.is_empty() {
        rows
    } else {
        let mut r = rows.to_vec();
        design.calibration.residualise(&mut r, p);
        residuals = r;
        &residuals[..]
    };
    let mut totals = vec![0.0; design.n_units * p];
    let mut present = vec![in_domain.is_none(); design.n_units];
    for (r, &u) in design.unit_of_row.iter().enumerate() {
        let u = u as usize;
        let row = &rows[r * p..(r + 1) * p];
        for (t, v) in totals[u * p..(u + 1) * p].iter_mut().zip(row) {
            *t += v;
        }
        if let Some(m) = in_domain {
            present[u] |= m[r];
        }
    }
    covariance(design, &totals, p, Some(&present))
}

/// Add stage s's term: for each group (stratum within parent cluster), the scaled
/// centred cross-products of its cluster totals (R's `onestrat`), averaged over ok
/// strata within each parent (`onestage`) and times the earlier stages' fractions.
fn stage_covariance(
    design: &Design,
    s: usize,
    stage: &Stage,
    totals: &[f64],
    p: usize,
    present: Option<&[bool]>,
    out: &mut [f64],
) -> Result<()> {
    let mut ct = vec![0.0; stage.n_clusters * p];
    let mut cpresent = vec![present.is_none(); stage.n_clusters];
    for (u, &c) in stage.cluster_of_unit.iter().enumerate() {
        let c = c as usize;
        for j in 0..p {
            ct[c * p + j] += totals[u * p + j];
        }
        if let Some(pr) = present {
            cpresent[c] |= pr[u];
        }
    }
    let lonely = design.lonely_psu;
    let adj_dom = design.adjust_domain_lonely;
    let mut acc = vec![0.0; p * p];
    let mut centred = vec![0.0; p];
    let mut mean = vec![0.0; p];
    let (mut nstrat, mut nok) = (0usize, 0usize);
    let n_groups = stage.n_groups();
    for g in 0..n_groups {
        let members = &stage.group_clusters[stage.group_start[g]..stage.group_start[g + 1]];
        let n = members.len();
        let m = members.iter().filter(|&&c| cpresent[c as usize]).count();
        if m > 0 {
            nstrat += 1;
            let ok = group_term(
                stage,
                s,
                g,
                members,
                &ct,
                &cpresent,
                p,
                (n, m),
                lonely,
                adj_dom,
                &mut acc,
                &mut centred,
                &mut mean,
            )?;
            if ok {
                nok += 1;
            }
        }
        let last_of_parent =
            g + 1 == n_groups || stage.group_parent[g + 1] != stage.group_parent[g];
        if last_of_parent {
            if nstrat > 0 {
                if nok == 0 {
                    return Err(CoreError::Value(format!(
                        "every stratum at stage {} has a single PSU and lonely_psu='average' has \
                         nothing to average over; use 'adjust' or 'remove'",
                        s + 1
                    )));
                }
                let factor = stage.group_multiplier[g] * nstrat as f64 / nok as f64;
                for (o, a) in out.iter_mut().zip(&acc) {
                    *o += a * factor;
                }
            }
            acc.iter_mut().for_each(|a| *a = 0.0);
            nstrat = 0;
            nok = 0;
        }
    }
    Ok(())
}

/// One group's contribution, added to `acc`; false when the lonely-PSU rule makes it
/// missing ('average').  `n` is the design's PSU count of the group, `m` how many of
/// them hold rows of the domain.
#[allow(clippy::too_many_arguments)]
fn group_term(
    stage: &Stage,
    s: usize,
    g: usize,
    members: &[u32],
    ct: &[f64],
    cpresent: &[bool],
    p: usize,
    (n, m): (usize, usize),
    lonely: LonelyPsu,
    adj_dom: bool,
    acc: &mut [f64],
    centred: &mut [f64],
    mean: &mut [f64],
) -> Result<bool> {
    let fpc_factor = |c: u32| {
        let pop = stage.cluster_popsize[c as usize];
        if pop.is_infinite() {
            1.0
        } else {
            (pop - n as f64) / pop
        }
    };
    // A stratum sampled completely (certainty PSUs) adds nothing.
    if members
        .iter()
        .filter(|&&c| cpresent[c as usize])
        .all(|&c| fpc_factor(c) < 1e-7)
    {
        return Ok(true);
    }
    let first_present = members
        .iter()
        .copied()
        .find(|&c| cpresent[c as usize])
        .unwrap_or(members[0]);
    let scale_of = |c: u32| {
        // Absent clusters are R's zero padding, which takes the first PSU's scale.
        let f = if m < n {
            fpc_factor(first_present)
        } else {
            fpc_factor(c)
        };
        if n > 1 {
            f * n as f64 / (n as f64 - 1.0)
        } else {
            f
        }
    };
    let centre = lonely != LonelyPsu::Adjust || m > 1 || (n > 1 && !adj_dom);
    mean.iter_mut().for_each(|x| *x = 0.0);
    if centre {
        for &c in members {
            for j in 0..p {
                mean[j] += ct[c as usize * p + j];
            }
        }
        mean.iter_mut().for_each(|x| *x /= n as f64);
    }
    let missing = if n > 1 {
        m == 1 && adj_dom && lonely == LonelyPsu::Average
    } else {
        match lonely {
            LonelyPsu::Fail => {
                return Err(CoreError::LonelyPsu {
                    stratum: stage.group_stratum[g],
                    stage: s + 1,
                });
            }
            LonelyPsu::Average => true,
            _ => false,
        }
    };
    if missing {
        return Ok(false);
    }
    for &c in members {
        let scale = scale_of(c);
        for j in 0..p {
            centred[j] = ct[c as usize * p + j] - mean[j];
        }
        for i in 0..p {
            let ci = centred[i] * scale;
            for j in 0..p {
                acc[i * p + j] += ci * centred[j];
            }
        }
    }
    Ok(true)
}

/// x' D x over PSU totals (Horvitz-Thompson), less sum_j colsum(D)_j x_j x_j'
/// for Yates-Grundy, as R's `htvar.matrix` / `ygvar.matrix`.
fn pps_quadratic(kernel: &PpsKernel, variance: PpsVariance, x: &[f64], p: usize) -> Vec<f64> {
    let mut v = vec![0.0; p * p];
    let n = x.len() / p;
    let add_outer = |v: &mut [f64], c: f64, a: &[f64], b: &[f64]| {
        for i in 0..p {
            for j in 0..p {
                v[i * p + j] += c * a[i] * b[j];
            }
        }
    };
    let row = |i: usize| &x[i * p..(i + 1) * p];
    match kernel {
        PpsKernel::Dense(d) => {
            let mut dx = vec![0.0; p];
            for i in 0..n {
                dx.iter_mut().for_each(|z| *z = 0.0);
                for j in 0..n {
                    let dij = d[i * n + j];
                    if dij != 0.0 {
                        for k in 0..p {
                            dx[k] += dij * x[j * p + k];
                        }
                    }
                }
                add_outer(&mut v, 1.0, row(i), &dx);
            }
            if variance == PpsVariance::YatesGrundy {
                for j in 0..n {
                    let colsum: f64 = (0..n).map(|i| d[i * n + j]).sum();
                    add_outer(&mut v, -colsum, row(j), row(j));
                }
            }
        }
        PpsKernel::Affine {
            prob,
            stratum,
            a,
            b,
            excluded_sum,
        } => {
            // Within stratum h, sum_{i != j} (a(pi_i + pi_j) + b) x_i x_j'
            //   = a (T S' + S T') + b S S' - sum_i (2 a pi_i + b) x_i x_i',
            // with S = sum x_i and T = sum pi_i x_i: one pass instead of n^2.
            let n_h = a.len();
            let mut s_tot = vec![0.0; n_h * p];
            let mut t_tot = vec![0.0; n_h * p];
            let mut pi_sum = vec![0.0; n_h];
            let mut count = vec![0usize; n_h];
            for i in 0..n {
                let h = stratum[i] as usize;
                pi_sum[h] += prob[i];
                count[h] += 1;
                for k in 0..p {
                    s_tot[h * p + k] += x[i * p + k];
                    t_tot[h * p + k] += prob[i] * x[i * p + k];
                }
            }
            for h in 0..n_h {
                if count[h] < 2 {
                    continue;
                }
                let (s, t) = (&s_tot[h * p..(h + 1) * p], &t_tot[h * p..(h + 1) * p]);
                add_outer(&mut v, a[h], t, s);
                add_outer(&mut v, a[h], s, t);
                add_outer(&mut v, b[h], s, s);
            }
            let excluded = excluded_sum
                .map(|e| excluded_pairs(prob, stratum, e))
                .unwrap_or_default();
            for i in 0..n {
                let h = stratum[i] as usize;
                let off_diag_self = if count[h] < 2 {
                    0.0
                } else {
                    2.0 * a[h] * prob[i] + b[h]
                };
                add_outer(&mut v, (1.0 - prob[i]) - off_diag_self, row(i), row(i));
            }
            for &(i, j) in &excluded {
                let h = stratum[i] as usize;
                let dij = a[h] * (prob[i] + prob[j]) + b[h];
                add_outer(&mut v, -dij, row(i), row(j));
            }
            if variance == PpsVariance::YatesGrundy {
                let mut colsum: Vec<f64> = (0..n)
                    .map(|j| {
                        let h = stratum[j] as usize;
                        let m = count[h] as f64;
                        let off = if count[h] < 2 {
                            0.0
                        } else {
                            a[h] * (pi_sum[h] - prob[j])
                                + a[h] * (m - 1.0) * prob[j]
                                + b[h] * (m - 1.0)
                        };
                        (1.0 - prob[j]) + off
                    })
                    .collect();
                for &(i, j) in &excluded {
                    let h = stratum[i] as usize;
                    colsum[j] -= a[h] * (prob[i] + prob[j]) + b[h];
                }
                for (j, &cs) in colsum.iter().enumerate() {
                    add_outer(&mut v, -cs, row(j), row(j));
                }
            }
        }
    }
    v
}

/// Ordered pairs (i, j), i != j, in one stratum whose probabilities sum exactly to `target`.
fn excluded_pairs(prob: &[f64], stratum: &[u32], target: f64) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..prob.len()).collect();
    order.sort_by(|&i, &j| {
        stratum[i]
            .cmp(&stratum[j])
            .then(prob[i].total_cmp(&prob[j]))
    });
    let mut pairs = Vec::new();
    for &i in &order {
        // Candidates j with prob[j] within a few ulps of target - prob[i].
        let want = target - prob[i];
        let lo = order.partition_point(|&k| (stratum[k], prob[k]) < (stratum[i], want - 1e-12));
        for &j in &order[lo..] {
            if stratum[j] != stratum[i] || prob[j] > want + 1e-12 {
                break;
            }
            if j != i && prob[i] + prob[j] == target {
                pairs.push((i, j));
            }
        }
    }
    pairs
}
