//! A proportion by domain with what R's `svyciprop` needs of it: the domain mean and its
//! variance from the fused pass, and for the methods "logit" and "likelihood" R's
//! `svyglm(y ~ 1, family = quasibinomial)` fitted from per-domain sums, with its
//! design-based variance (Taylor, or refitted per replicate) from the one engine.

use rayon::prelude::*;

use crate::design::Design;
use crate::error::{CoreError, Result};
use crate::estimate::{
    domain_sums, estimates_from_sums, raked_influence, replicate_sums, BeyondSums, Estimator,
    Outcome, RowContext, RowData, Sums,
};
use crate::models::glm::{
    intercept_first_step_row, intercept_logit, InterceptFit, InterceptStart, ProportionSums,
};
use crate::models::{Control, Link};
use crate::svyvar::WeightedMoments;
use crate::variance::{Influence, Variance};

/// The rows of a proportion by domain.
pub struct ProportionInput<'a> {
    /// The outcome, in [0, 1]; NaN (missing) only in rows outside `used`.
    pub y: &'a [f64],
    /// Domain (0..n_domains) of each row with a value of y; `OUTSIDE` for the others.
    pub used: &'a [u32],
    /// Domain of each row, those with a missing y included (None: `used`).  R counts
    /// them in the design given: its degrees of freedom and the mean weight that scales
    /// svyglm's prior weights.
    pub all: Option<&'a [u32]>,
    pub n_domains: usize,
    /// Fit the intercept-only logistic model ("logit", "likelihood").
    pub fit: bool,
    /// Also its dispersion ("likelihood" scales the deviance profile by it).
    pub dispersion: bool,
    /// R's model frame keeps every row of the design (at zero weight outside the
    /// domain): a calibrated or PPS design's subset does (`[.survey.design2`).
    pub model_keeps_all_rows: bool,
}

/// R's svyglm fit of y ~ 1 in one domain.
#[derive(Clone, Debug)]
pub struct ProportionFit {
    pub fit: InterceptFit,
    /// The prior-weighted sums the fit (and a deviance profile) is made of.
    pub sums: ProportionSums,
    /// Design-based variance of the intercept (R's `vcov(svyglm)`).
    pub cov_unscaled: f64,
    /// Model-based (X'WX)^-1 at the last step's working weights.
    pub naive_cov: f64,
    /// R's `summary.svyglm` dispersion (NaN when not asked for).
    pub dispersion: f64,
    /// Rows of R's model frame.
    pub model_rows: f64,
}

/// One domain's proportion.
#[derive(Clone, Debug)]
pub struct DomainProportion {
    /// Rows with a value of y, and their weight.
    pub n_rows: f64,
    pub weight_sum: f64,
    /// Rows of the domain, those with a missing y included, and their weight.
    pub n_domain_rows: f64,
    pub domain_weight_sum: f64,
    /// The domain mean of y and its design-based variance.
    pub estimate: f64,
    pub variance: f64,
    /// First-stage PSUs less strata with weight in the domain (R's `degf` of the
    /// domain); None for a replicate design (its rank decides).
    pub degf: Option<usize>,
    pub fit: Option<ProportionFit>,
    pub dropped_replicates: usize,
}

/// Rows per chunk of the first IRLS step's pass; fixed, so the sums are added in the
/// same order whatever the number of threads.
const CHUNK_ROWS: usize = 1 << 18;
/// Largest (domain, unit) table of [`first_steps`]' counts (cells); beyond it (e.g. one
/// row per PSU) rows are summed one by one.
const MAX_COUNT_CELLS: usize = 1 << 16;

/// Proportions of y in every domain (see [`ProportionInput`]): the fused pass, the
/// proportions from its sums ([`proportions_from_sums`]), and for the fit the first IRLS
/// step's pass ([`first_steps`]) and the fit from those sums ([`fit_proportions`]).
pub fn proportion_by_domain(
    design: &Design,
    input: &ProportionInput,
) -> Result<Vec<DomainProportion>> {
    let n = design.n_rows;
    let n_domains = input.n_domains;
    if input.y.len() != n || input.used.len() != n || input.all.is_some_and(|a| a.len() != n) {
        return Err(CoreError::Shape(format!(
            "the outcome and domain codes must have the design's {n} rows"
        )));
    }
    let outcomes = [Outcome::Numeric(input.y)];
    let (sums, rep_sums) = domain_sums(design, &outcomes, input.used, n_domains, input.dispersion)?;
    let context = RowContext {
        outcomes: &outcomes,
        domain: input.used,
    };
    let beyond = match (&rep_sums, design.is_calibrated()) {
        (Some(rs), _) => BeyondSums::ReplicateSums(rs),
        (None, true) => BeyondSums::Rows(context),
        (None, false) => BeyondSums::Nothing,
    };
    let all_sums = match input.all {
        Some(all) => Some(domain_sums(design, &[], all, n_domains, false)?.0),
        None => None,
    };
    let mut out = proportions_from_sums(design, n_domains, &sums, beyond, all_sums.as_ref())?;
    if !input.fit {
        return Ok(out);
    }
    let model_rows = ModelRows {
        keeps_all: input.model_keeps_all_rows,
        n_rows: n,
    };
    let mean_weight = model_rows.mean_weights(&out);
    let first = first_steps(
        &RowData::of(design),
        input.y,
        input.used,
        n_domains,
        &mean_weight,
    );
    // The deviance's constant sum w (y log y + (1 - y) log(1 - y)) per replicate, for the
    // refits of an outcome that is not 0/1 only.
    let entropy_sums = if design.replicates().is_some() && first.iter().any(|f| f[4] > 0.0) {
        let entropy: Vec<f64> = input.y.par_iter().map(|&v| entropy_of(v)).collect();
        Some(domain_sums(
            design,
            &[Outcome::Numeric(&entropy)],
            input.used,
            n_domains,
            false,
        )?)
    } else {
        None
    };
    let pass = FitSums {
        sums: &sums,
        beyond,
        first: &first,
        entropy: entropy_sums.as_ref().map(|(u, r)| (u, r.as_ref())),
    };
    fit_proportions(design, &mut out, &pass, model_rows, input.dispersion)?;
    Ok(out)
}

/// Each domain's proportion from the fused pass's sums (`sums`, per (domain, unit):
/// [rows, sum w, sum w y], with the squares when a dispersion is wanted), what the
/// design's variance needs besides (`beyond`), and the sums of the domain's rows with a
/// missing y included (`all`; None: `sums`).  Sums of a streamed data set, added in
/// batch order, come here too.
pub fn proportions_from_sums(
    design: &Design,
    n_domains: usize,
    sums: &Sums,
    beyond: BeyondSums,
    all: Option<&Sums>,
) -> Result<Vec<DomainProportion>> {
    let width = 1;
    if sums.stride != 2 + width {
        return Err(CoreError::Shape(
            "a proportion's sums hold one outcome".into(),
        ));
    }
    let means = estimates_from_sums(design, Estimator::Mean, n_domains, sums, beyond)?;
    let (all_table, all_stride) = match all {
        Some(s) if s.table.len() != n_domains * design.n_units * s.stride => {
            return Err(CoreError::Shape(
                "the sums of the domains' rows do not cover every domain and unit".into(),
            ))
        }
        Some(s) => (&s.table, s.stride),
        None => (&sums.table, sums.stride),
    };
    let n_units = design.n_units;
    let degf = first_stage_degf(design, all_table, all_stride, n_domains);
    Ok((0..n_domains)
        .map(|d| DomainProportion {
            n_rows: means.n_rows[d],
            weight_sum: means.weight_sum[d],
            n_domain_rows: column_sum(all_table, n_units, all_stride, d, 0),
            domain_weight_sum: column_sum(all_table, n_units, all_stride, d, 1),
            estimate: means.estimate[d * width],
            variance: means.vcov[d * width * width],
            degf: degf.as_ref().map(|g| g[d]),
            fit: None,
            dropped_replicates: means.dropped_replicates[d],
        })
        .collect())
}

/// Column k of domain d's sums, added over the units.
fn column_sum(table: &[f64], n_units: usize, stride: usize, d: usize, k: usize) -> f64 {
    table[d * n_units * stride..(d + 1) * n_units * stride]
        .chunks_exact(stride)
        .map(|c| c[k])
        .sum()
}

/// The rows of R's model frame of y ~ 1 in a domain: those of the domain, or every row
/// of the design (see [`ProportionInput::model_keeps_all_rows`]).
#[derive(Clone, Copy)]
pub struct ModelRows {
    pub keeps_all: bool,
    /// The design's rows.
    pub n_rows: usize,
}

impl ModelRows {
    fn of(self, domain_rows: f64) -> f64 {
        if self.keeps_all {
            self.n_rows as f64
        } else {
            domain_rows
        }
    }

    /// svyglm's prior weights are the sampling weights over their mean in R's rows of
    /// the domain (those with a missing y included): that mean, per domain.
    pub fn mean_weights(self, proportions: &[DomainProportion]) -> Vec<f64> {
        proportions
            .iter()
            .map(|p| p.domain_weight_sum / self.of(p.n_domain_rows))
            .collect()
    }
}

/// The sums the fit of y ~ 1 is finished from: the fused pass's (`sums`, `beyond` as
/// for [`proportions_from_sums`]), the first IRLS step's per domain ([`first_steps`]),
/// and for the replicate refits of an outcome that is not 0/1 the entropy's per (domain,
/// unit) and, for replicate weights given per row, per (domain, replicate).
pub struct FitSums<'a> {
    pub sums: &'a Sums,
    pub beyond: BeyondSums<'a>,
    pub first: &'a [[f64; 5]],
    pub entropy: Option<(&'a Sums, Option<&'a Sums>)>,
}

/// R's svyglm fit of y ~ 1 (quasibinomial) in every domain of `out` with an estimate,
/// and its design-based variance (Taylor, or refitted per replicate), from sums.
pub fn fit_proportions(
    design: &Design,
    out: &mut [DomainProportion],
    pass: &FitSums,
    model_rows: ModelRows,
    want_dispersion: bool,
) -> Result<()> {
    let (sums, first) = (pass.sums, pass.first);
    let width = 1;
    let n_units = design.n_units;
    if first.len() != out.len() || (want_dispersion && sums.squares.len() != out.len() * 2) {
        return Err(CoreError::Shape(
            "the fit's sums do not cover every domain".into(),
        ));
    }
    let mean_weight = model_rows.mean_weights(out);
    let rep_sums = match pass.beyond {
        BeyondSums::ReplicateSums(rs) => Some(rs),
        _ => None,
    };
    for (d, p) in out.iter_mut().enumerate() {
        if p.n_rows == 0.0 || p.weight_sum == 0.0 {
            continue;
        }
        let cells = &sums.table[d * n_units * sums.stride..(d + 1) * n_units * sums.stride];
        let a = mean_weight[d];
        let total = |k: usize| column_sum(&sums.table, n_units, sums.stride, d, k);
        let prior = ProportionSums {
            weight: p.weight_sum / a,
            weighted_y: total(2) / a,
            entropy: first[d][3],
        };
        let control = Control::default();
        let [wt, wtz, dev0, ..] = first[d];
        let fit = intercept_logit(&prior, InterceptStart::Rows([wt, wtz, dev0]), &control)?;
        let Some(working_weight) = fit.working_weight else {
            return Err(CoreError::Value(
                "the intercept-only fit of the proportion stopped after its first step, whose \
                 working weights differ by row; use method='xlogit'"
                    .into(),
            ));
        };
        let naive_cov = 1.0 / fit.working_weight_sum;
        let (mu, beta) = (fit.mu, fit.coefficient);
        let mu_eta = Link::Logit.mu_eta(beta);
        let binomial = mu * (1.0 - mu);
        // Sum of w (y - mu)^2 from sum w y^2, sum w y, sum w.
        let squares = |centre: f64| {
            let sq = &sums.squares[d * (width + 1)..(d + 1) * (width + 1)];
            sq[0] - 2.0 * centre * total(2) + centre * centre * p.weight_sum
        };
        let (cov_unscaled, dispersion) = if let Some(rep) = design.replicates() {
            // svyglm.svyrep.design: refitted with each replicate's weights over their
            // sum, starting from the full-sample coefficient.
            let mut thetas = vec![0.0; rep.n_replicates];
            let mut rsum = vec![0.0; sums.stride];
            let mut hsum = vec![0.0; 3];
            for (r, theta) in thetas.iter_mut().enumerate() {
                let s = replicate_sums(rep, rep_sums, cells, (d, r), &mut rsum);
                let entropy = match pass.entropy {
                    Some((units, per_row)) => {
                        let cells = &units.table[d * n_units * 3..(d + 1) * n_units * 3];
                        replicate_sums(rep, per_row, cells, (d, r), &mut hsum)[2]
                    }
                    None => 0.0,
                };
                if s[1] <= 0.0 || !s[1].is_finite() {
                    return Err(CoreError::Value(format!(
                        "replicate {} gives the model's rows a total weight of {}",
                        r + 1,
                        s[1]
                    )));
                }
                let refit = ProportionSums {
                    // The replicate's weights over their sum add to 1.
                    weight: 1.0,
                    weighted_y: s[2] / s[1],
                    entropy: entropy / s[1],
                };
                *theta = intercept_logit(&refit, InterceptStart::Coefficient(beta), &control)
                    .map_or(f64::NAN, |f| f.coefficient);
            }
            let v = design.covariance(Influence::ReplicateEstimates {
                thetas: &thetas,
                full: &[beta],
            })?;
            p.dropped_replicates = p.dropped_replicates.max(v.dropped_replicates);
            // summary.svrepglm: sum(prior e^2) of the Pearson residuals e.
            let dispersion = if want_dispersion {
                squares(mu) / a / binomial
            } else {
                f64::NAN
            };
            (v.matrix[0], dispersion)
        } else {
            // svy.varcoef: each row's working residual times its working weight
            // through (X'WX)^-1, which is w (y - mu) times this factor.
            let factor = working_weight / (a * mu_eta) * naive_cov;
            let v = match pass.beyond {
                BeyondSums::Rows(ctx) => {
                    let (Some(Outcome::Numeric(y)), code) = (ctx.outcomes.first(), d as u32) else {
                        return Err(CoreError::Value(
                            "a proportion has one numeric outcome".into(),
                        ));
                    };
                    let rows: Vec<f64> = (0..design.n_rows)
                        .map(|r| {
                            if ctx.domain[r] == code {
                                factor * design.weights[r] * (y[r] - mu)
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let in_domain: Vec<bool> = ctx.domain.iter().map(|&c| c == code).collect();
                    design.covariance(Influence::Rows {
                        values: &rows,
                        p: 1,
                        in_domain: Some(&in_domain),
                    })?
                }
                BeyondSums::RakedCells(cell_sums, raking) => {
                    // A streamed raked design: w (y - mu) is W times the mean's influence
                    // at mu, whose raking residuals the per-(domain, cell) sums give.
                    let col_tot = [p.n_rows, p.weight_sum, total(2)];
                    let mut totals = vec![0.0; n_units];
                    raked_influence(
                        (cell_sums, raking),
                        d,
                        (Estimator::Mean, 0, 1),
                        &[mu],
                        cells,
                        &col_tot,
                        &mut totals,
                    )?;
                    for t in &mut totals {
                        *t *= factor * p.weight_sum;
                    }
                    // A calibrated design keeps every unit (R's postStrata).
                    design.covariance(Influence::UnitTotals {
                        totals: &totals,
                        p: 1,
                        present: None,
                    })?
                }
                _ => {
                    let present: Vec<bool> = cells
                        .chunks_exact(sums.stride)
                        .map(|c| c[0] > 0.0)
                        .collect();
                    let totals: Vec<f64> = cells
                        .chunks_exact(sums.stride)
                        .map(|c| factor * (c[2] - mu * c[1]))
                        .collect();
                    design.covariance(Influence::UnitTotals {
                        totals: &totals,
                        p: 1,
                        present: Some(&present),
                    })?
                }
            };
            // summary.svyglm: the design-weighted variance of the Pearson residuals,
            // which weigh by the mean weight of the rows used over that of the domain.
            let dispersion = if want_dispersion {
                let sq = &sums.squares[d * (width + 1)..(d + 1) * (width + 1)];
                let moments = WeightedMoments {
                    weight: p.weight_sum,
                    first: total(2),
                    second: sq[0],
                    n_obs: sq[width],
                };
                let used_mean = p.weight_sum / model_rows.of(p.n_rows);
                used_mean / a / binomial * moments.svyvar()
            } else {
                f64::NAN
            };
            (v.matrix[0], dispersion)
        };
        p.fit = Some(ProportionFit {
            fit,
            sums: prior,
            cov_unscaled,
            naive_cov,
            dispersion,
            model_rows: model_rows.of(p.n_rows),
        });
    }
    Ok(())
}

/// y log y + (1 - y) log(1 - y), zero at 0 and 1.
fn entropy_of(y: f64) -> f64 {
    if y > 0.0 && y < 1.0 {
        y * y.ln() + (1.0 - y) * (1.0 - y).ln()
    } else {
        0.0
    }
}

/// Per domain, over the rows with a value of y at prior weight w / `mean_weight[d]`
/// (rows of a design, or of a streamed batch with its units coded for the whole data
/// set; `used` each row's domain, `OUTSIDE` for a row without y): the sums of [`intercept_first_step_row`], of the prior-weighted entropy
/// ([`entropy_of`], the deviance's constant) and the number of rows with y strictly
/// between 0 and 1.
///
/// A row's terms depend only on its weight, y and domain, and weights are usually
/// constant within a variance unit: for y = 0 and y = 1 each (domain, unit) keeps a slot
/// counting the rows of one weight, and the logarithms and exponentials are computed
/// once per slot (count times terms).  A row with another weight or another y, or of a
/// design with too many units for the table, is summed row by row.  Chunks are counted
/// in parallel and merged in a fixed order.
pub fn first_steps(
    data: &RowData,
    y: &[f64],
    used: &[u32],
    n_domains: usize,
    mean_weight: &[f64],
) -> Vec<[f64; 5]> {
    let n = y.len();
    let terms_of = |y: f64, w: f64, d: usize| -> [f64; 5] {
        let prior = w / mean_weight[d];
        let [wt, wtz, dev] = intercept_first_step_row(y, prior);
        let inner = f64::from(u8::from(y > 0.0 && y < 1.0));
        [wt, wtz, dev, prior * entropy_of(y), inner]
    };
    let add = |acc: &mut [[f64; 5]], d: usize, t: [f64; 5], times: f64| {
        acc[d].iter_mut().zip(t).for_each(|(s, v)| *s += times * v);
    };
    let n_units = data.n_units;
    let n_cells = n_domains * n_units;
    let counted = n_cells <= MAX_COUNT_CELLS;
    // Per chunk: the row-by-row sums, and per (domain, unit) a (weight, rows) slot for
    // y = 0 and one for y = 1 (slot 2 cell + y).
    let chunk = |k: usize| -> (Vec<[f64; 5]>, Vec<Slot>) {
        let mut acc = vec![[0.0; 5]; n_domains];
        let mut slots = vec![EMPTY; if counted { 2 * n_cells } else { 0 }];
        let rows = k * CHUNK_ROWS..((k + 1) * CHUNK_ROWS).min(n);
        let columns = used[rows.clone()]
            .iter()
            .zip(&y[rows.clone()])
            .zip(&data.weights[rows.clone()])
            .zip(&data.unit_of_row[rows]);
        for (((&d, &y), &w), &u) in columns {
            let d = d as usize;
            if d >= n_domains {
                continue;
            }
            let one = usize::from(y == 1.0);
            if counted && y == one as f64 {
                // Indexed by y, so that a 0/1 outcome in random order costs no branch; an
                // empty slot holds weight 0.0 (bits 0) with no rows, which counts right.
                let slot = &mut slots[(d * n_units + u as usize) * 2 + one];
                if slot.0 == w.to_bits() {
                    slot.1 += 1;
                    continue;
                }
                if slot.1 == 0 {
                    *slot = (w.to_bits(), 1);
                    continue;
                }
            }
            add(&mut acc, d, terms_of(y, w, d), 1.0);
        }
        (acc, slots)
    };
    let parts: Vec<(Vec<[f64; 5]>, Vec<Slot>)> = (0..n.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(chunk)
        .collect();
    let mut total = vec![[0.0; 5]; n_domains];
    let mut merged = vec![EMPTY; if counted { 2 * n_cells } else { 0 }];
    for (acc, slots) in parts {
        for (t, p) in total.iter_mut().zip(acc) {
            t.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        for (i, (slot, (wb, rows))) in merged.iter_mut().zip(slots).enumerate() {
            if rows == 0 {
                continue;
            }
            if slot.1 == 0 || slot.0 == wb {
                *slot = (wb, slot.1 + rows);
            } else {
                let d = i / 2 / n_units;
                add(
                    &mut total,
                    d,
                    terms_of((i % 2) as f64, f64::from_bits(wb), d),
                    rows as f64,
                );
            }
        }
    }
    for (i, &(wb, rows)) in merged.iter().enumerate().filter(|(_, s)| s.1 > 0) {
        let d = i / 2 / n_units;
        add(
            &mut total,
            d,
            terms_of((i % 2) as f64, f64::from_bits(wb), d),
            rows as f64,
        );
    }
    total
}

/// A (weight bits, rows) slot of [`first_steps`]; empty: weight 0.0 with no rows.
type Slot = (u64, u64);
const EMPTY: Slot = (0, 0);

/// R's `degf` of each domain: first-stage PSUs less strata among the variance units with
/// weight in the domain (weights are non-negative, so a unit's sum is positive exactly
/// when it has a row of non-zero weight).  None for a design without stages (replicates).
fn first_stage_degf(
    design: &Design,
    table: &[f64],
    stride: usize,
    n_domains: usize,
) -> Option<Vec<usize>> {
    let Variance::Linearization(lin) = &design.variance else {
        return None;
    };
    let stage = lin.stages.first()?;
    let n_units = design.n_units;
    let degf = (0..n_domains)
        .map(|d| {
            let mut psu = vec![false; stage.n_clusters];
            let mut stratum = vec![false; stage.n_groups()];
            let cells = &table[d * n_units * stride..(d + 1) * n_units * stride];
            for (u, cell) in cells.chunks_exact(stride).enumerate() {
                if cell[1] > 0.0 {
                    let c = stage.cluster_of_unit[u] as usize;
                    psu[c] = true;
                    stratum[stage.group_of_cluster[c] as usize] = true;
                }
            }
            let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
            count(&psu).saturating_sub(count(&stratum))
        })
        .collect();
    Some(degf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignSpec;
    use crate::estimate::OUTSIDE;

    /// Two strata of two PSUs, two rows each; y and weights chosen for hand sums.
    fn design(weights: &[f64]) -> Design {
        let psu: Vec<u32> = vec![0, 0, 1, 1, 2, 2, 3, 3];
        let stratum: Vec<u32> = vec![0, 0, 0, 0, 1, 1, 1, 1];
        Design::new(&DesignSpec {
            clusters: vec![Some(&psu)],
            strata: vec![&stratum],
            ..DesignSpec::weighted(weights)
        })
        .unwrap()
    }

    #[test]
    fn mean_variance_and_logit_fit_by_hand() {
        let w = [1.0, 1.0, 2.0, 2.0, 1.0, 3.0, 1.0, 1.0];
        let y = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        let d = design(&w);
        let used = vec![0u32; 8];
        let input = ProportionInput {
            y: &y,
            used: &used,
            all: None,
            n_domains: 1,
            fit: true,
            dispersion: true,
            model_keeps_all_rows: false,
        };
        let p = &proportion_by_domain(&d, &input).unwrap()[0];
        // p = (1 + 2 + 2 + 3) / 12 = 2/3.  PSU totals of w (y - p) / 12: (1 - 4/3) / 12,
        // (4 - 8/3) / 12, (3 - 8/3) / 12, (0 - 4/3) / 12 = -1/36, 4/36, 1/36, -4/36;
        // per stratum the squared deviations from its mean, 2 (5/72)^2, times n/(n-1) = 2:
        // 2 (2 (5/72)^2) + 2 (2 (5/72)^2) = 100/2592.
        assert_eq!(p.estimate, 8.0 / 12.0);
        assert!((p.variance - 100.0 / 2592.0).abs() < 1e-15);
        assert_eq!(p.degf, Some(2));
        assert_eq!((p.n_rows, p.weight_sum), (8.0, 12.0));
        let fit = p.fit.as_ref().unwrap();
        // The intercept is logit(2/3) = log 2 to R's tolerance; its design variance is
        // the mean's over (p (1 - p))^2 to the same, and the prior weights are w / 1.5.
        assert!((fit.fit.coefficient - 2f64.ln()).abs() < 1e-8);
        assert!((fit.cov_unscaled - 100.0 / 2592.0 / (2.0 / 9.0f64).powi(2)).abs() < 1e-7);
        // (X'WX)^-1 at the working weights of the step before the last: to 1e-4 or so.
        assert!(
            (fit.naive_cov * (8.0 * 2.0 / 9.0) - 1.0).abs() < 1e-3,
            "{}",
            fit.naive_cov * 16.0 / 9.0
        );
        assert_eq!(fit.sums.weight, 8.0);
        // Dispersion: sum w (y - p)^2 / sum w = p (1 - p) = 2/9 for 0/1 y, over mu (1 - mu)
        // and times n / (n - 1): 8/7.
        assert!((fit.dispersion - 8.0 / 7.0).abs() < 1e-7);
    }

    #[test]
    fn first_step_counts_are_the_row_by_row_sums() {
        // PSU 0 has two weights (a second pair falls back to row by row), row 5 a y
        // strictly inside (0, 1); every other (domain, unit, y) has one weight.
        let w = [1.0, 2.0, 1.0, 1.0, 3.0, 3.0, 1.0, 1.0];
        let y = [1.0, 1.0, 1.0, 0.0, 0.0, 0.25, 0.0, 1.0];
        let d = design(&w);
        let used = vec![0u32, 0, 0, 1, 1, 1, 1, 0];
        let input = ProportionInput {
            y: &y,
            used: &used,
            all: None,
            n_domains: 2,
            fit: true,
            dispersion: false,
            model_keeps_all_rows: false,
        };
        let mean_weight = [1.5, 2.0];
        let got = first_steps(&RowData::of(&d), input.y, input.used, 2, &mean_weight);
        for (k, sums) in got.iter().enumerate() {
            let mut want = [0.0; 5];
            for r in (0..8).filter(|&r| used[r] as usize == k) {
                let prior = w[r] / mean_weight[k];
                let [a, b, c] = intercept_first_step_row(y[r], prior);
                let inner = f64::from(u8::from(y[r] > 0.0 && y[r] < 1.0));
                for (s, v) in want
                    .iter_mut()
                    .zip([a, b, c, prior * entropy_of(y[r]), inner])
                {
                    *s += v;
                }
            }
            for (g, v) in sums.iter().zip(want) {
                assert!((g - v).abs() <= 1e-14 * v.abs().max(1.0), "{g} != {v}");
            }
        }
        assert_eq!(got[1][4], 1.0);
        // The entropy of y = 0.25 at prior 3 / 2: 1.5 (0.25 log 0.25 + 0.75 log 0.75).
        let h = 1.5 * (0.25 * 0.25f64.ln() + 0.75 * 0.75f64.ln());
        assert!((got[1][3] - h).abs() < 1e-15);
    }

    #[test]
    fn missing_rows_count_in_the_domain_not_in_the_fit() {
        // Row 7 has no y: it leaves the mean but its weight still scales the prior weights
        // and its PSU still counts in the domain's degrees of freedom.
        let w = [1.0, 1.0, 2.0, 2.0, 1.0, 3.0, 1.0, 4.0];
        let y = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, f64::NAN];
        let d = design(&w);
        let all = vec![0u32; 8];
        let mut used = all.clone();
        used[7] = OUTSIDE;
        let input = ProportionInput {
            y: &y,
            used: &used,
            all: Some(&all),
            n_domains: 1,
            fit: true,
            dispersion: false,
            model_keeps_all_rows: false,
        };
        let p = &proportion_by_domain(&d, &input).unwrap()[0];
        assert_eq!((p.n_rows, p.n_domain_rows), (7.0, 8.0));
        assert_eq!((p.weight_sum, p.domain_weight_sum), (11.0, 15.0));
        assert_eq!(p.estimate, 8.0 / 11.0);
        // Prior weights w / (15 / 8).
        assert_eq!(p.fit.as_ref().unwrap().sums.weight, 11.0 / (15.0 / 8.0));
    }
}
