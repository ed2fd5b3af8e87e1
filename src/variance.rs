//! The one variance engine: influence values in, a covariance matrix out.  A design's
//! [`Variance`] is linearisation over strata and stages (mirrors `survey:::svyrecvar`),
//! with the quadratic form of a PPS design without replacement (`survey:::ppsvar`), or
//! its replicate weights (`survey:::svrVar`).  The design turns per-row influence values
//! into unit totals (after its calibration, if any) and calls [`Linearization::covariance`]
//! or [`replicate_covariance`]: there is no other variance formula.

use std::sync::Arc;

use crate::error::{CoreError, Result, Role};

/// What a stratum with a single PSU contributes (R's `options(survey.lonely.psu)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LonelyPsu {
    Fail,
    Remove,
    Adjust,
    Average,
    Certainty,
}

impl LonelyPsu {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "fail" => Ok(Self::Fail),
            "remove" => Ok(Self::Remove),
            "adjust" => Ok(Self::Adjust),
            "average" => Ok(Self::Average),
            "certainty" => Ok(Self::Certainty),
            other => Err(CoreError::Design(format!(
                "lonely_psu={other:?} is not one of 'fail', 'remove', 'adjust', 'average', 'certainty'"
            ))),
        }
    }
}

/// PPS sampling without replacement; `fpc` then holds inclusion probabilities.
#[derive(Clone, Debug, PartialEq)]
pub enum PpsMethod {
    /// Brewer's approximation: the stratified formula with a per-PSU fpc of (1 - pi).
    Brewer,
    /// Overton's approximation to the joint inclusion probabilities.
    Overton,
    /// Hartley-Rao; `psum` = sum of pi^2 over the population / n (`None`: estimated from
    /// the sample as the mean of pi in the stratum, as R's `HR()`).
    HartleyRao { psum: Option<f64> },
    /// A full joint-inclusion-probability matrix (row-major, one row per PSU).
    JointProbs { pij: Vec<f64> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PpsVariance {
    HorvitzThompson,
    YatesGrundy,
}

/// One stage of the variance recursion.  Groups are strata nested in the parent cluster
/// (R's `interaction(strata, ids[, s-1])`), numbered so that the groups of one parent
/// are contiguous.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Cluster (at this stage) of each variance unit.
    pub cluster_of_unit: Vec<u32>,
    pub n_clusters: usize,
    /// Group (stratum within parent cluster) of each cluster.
    pub group_of_cluster: Vec<u32>,
    /// Clusters of group g are `group_clusters[group_start[g]..group_start[g + 1]]`.
    pub group_start: Vec<usize>,
    pub group_clusters: Vec<u32>,
    /// Parent cluster (previous stage) of each group; 0 at the first stage.
    pub group_parent: Vec<u32>,
    /// The user's stratum code of each group, for messages.
    pub group_stratum: Vec<u32>,
    /// Population size (number of clusters) behind each cluster; infinite = with replacement.
    pub cluster_popsize: Vec<f64>,
    /// Product of the sampling fractions of the earlier stages (R's `nPSU/fpc` factor).
    pub group_multiplier: Vec<f64>,
}

impl Stage {
    pub fn n_groups(&self) -> usize {
        self.group_parent.len()
    }
    /// Number of sampled clusters in group g (the design's PSU count, R's `nPSU`).
    pub fn group_npsu(&self, g: usize) -> usize {
        self.group_start[g + 1] - self.group_start[g]
    }
}

/// The quadratic-form kernel of a PPS design without replacement: the variance is
/// x' D x (Horvitz-Thompson) over PSU totals, D = (pi_ij - pi_i pi_j) / pi_ij.
#[derive(Clone, Debug)]
pub enum PpsKernel {
    /// Dense D (row-major, n_units x n_units).
    Dense(Vec<f64>),
    /// D_ij = a_h (pi_i + pi_j) + b_h off the diagonal within stratum h, 1 - pi_i on it,
    /// zero across strata; pairs with pi_i + pi_j == `excluded_sum` are zero (R's `fbar==1`).
    Affine {
        prob: Vec<f64>,
        stratum: Vec<u32>,
        a: Vec<f64>,
        b: Vec<f64>,
        excluded_sum: Option<f64>,
    },
}

/// How a PPS design without replacement gets its variance.
#[derive(Clone, Debug)]
pub enum Pps {
    /// Brewer's approximation: the stratified formula, each PSU's fpc being (1 - pi).
    Brewer,
    /// The quadratic form of a kernel over PSU totals (Overton, Hartley-Rao, joint
    /// probabilities).
    QuadraticForm {
        kernel: PpsKernel,
        variance: PpsVariance,
    },
}

/// How a design's estimates get their variance.
#[derive(Clone, Debug)]
pub enum Variance {
    /// Influence values summed to PSU totals within strata, stage by stage.
    Linearization(Linearization),
    /// Estimates recomputed with each replicate's weights.
    Replicates(Replicates),
}

/// A linearisation design's variance: its stages (strata, clusters and fpc), the PPS
/// approximation if any, and the lonely-PSU rule.
#[derive(Clone, Debug)]
pub struct Linearization {
    /// Shared by the designs derived from this one.
    pub stages: Arc<Vec<Stage>>,
    pub pps: Option<Pps>,
    pub lonely_psu: LonelyPsu,
    pub adjust_domain_lonely: bool,
    /// The user gave strata (JK1 needs none, JKn and BRR need them).
    pub has_strata: bool,
}

/// What a covariance is computed from.
#[derive(Clone, Copy, Debug)]
pub enum Influence<'a> {
    /// Influence values summed to the design's variance units (n_units x p, row-major).
    /// `present` marks the units that hold at least one row of the domain; R drops the
    /// other rows from the design, which matters only for the lonely-PSU rules (`None`:
    /// every unit is present).
    UnitTotals {
        totals: &'a [f64],
        p: usize,
        present: Option<&'a [bool]>,
    },
    /// Per-row influence values (n_rows x p, row-major; zero outside the domain), for
    /// estimators whose influence values are not sums the fused pass can form (GLM
    /// scores, quantile indicators, anything on a calibrated design).  `in_domain` marks
    /// the rows of the domain (`None`: all rows).
    Rows {
        values: &'a [f64],
        p: usize,
        in_domain: Option<&'a [bool]>,
    },
    /// A replicate design's estimates under each replicate's weights (n_replicates x p)
    /// and under the full-sample weights (p).
    ReplicateEstimates { thetas: &'a [f64], full: &'a [f64] },
}

/// A covariance matrix of p estimates.
#[derive(Clone, Debug, PartialEq)]
pub struct Covariance {
    pub p: usize,
    /// p x p, row-major.
    pub matrix: Vec<f64>,
    /// Replicates whose estimates were undefined and were left out (R warns).
    pub dropped_replicates: usize,
}

impl Covariance {
    /// The variances on the diagonal.
    pub fn variances(&self) -> Vec<f64> {
        (0..self.p).map(|j| self.matrix[j * self.p + j]).collect()
    }
}

/// Replicate weights of a design.
#[derive(Clone, Debug)]
pub struct Replicates {
    /// Row-major factors: per variance unit (`per_unit`, R's compressed replicate
    /// weights: multipliers of the sampling weight for each PSU), or per row (the final
    /// analysis weights of each replicate).
    pub factors: Vec<f64>,
    pub per_unit: bool,
    pub n_replicates: usize,
    pub scale: f64,
    pub rscales: Vec<f64>,
    /// Centre at the full-sample estimate instead of the replicates' mean.
    pub mse: bool,
}

impl Replicates {
    /// Checks shared by every way of building replicates.
    pub fn validate(&self, n_keys: usize) -> Result<()> {
        if self.n_replicates == 0 {
            return Err(CoreError::Design(
                "a replicate design needs at least one replicate".into(),
            ));
        }
        if self.factors.len() != n_keys * self.n_replicates {
            return Err(CoreError::Shape(format!(
                "replicate weights have {} values, expected {n_keys} x {}",
                self.factors.len(),
                self.n_replicates
            )));
        }
        if self.rscales.len() != self.n_replicates {
            return Err(CoreError::Shape(format!(
                "rscales has {} values for {} replicates",
                self.rscales.len(),
                self.n_replicates
            )));
        }
        if let Some(i) = self.factors.iter().position(|v| !v.is_finite()) {
            return Err(CoreError::Value(format!(
                "replicate weight {} of row {} is missing or infinite; replicate weights must be complete",
                i % self.n_replicates + 1,
                i / self.n_replicates
            )));
        }
        if !self.scale.is_finite() || self.scale < 0.0 {
            return Err(CoreError::Design(format!(
                "replicate scale must be a non-negative number, not {}",
                self.scale
            )));
        }
        Ok(())
    }
}

impl Replicates {
    /// Each replicate's analysis weights, n x R row-major: the per-unit multipliers
    /// times the sampling weights, or the per-row weights as they are.
    pub fn analysis_weights(&self, unit_of_row: &[u32], weights: &[f64]) -> Vec<f64> {
        let r = self.n_replicates;
        if !self.per_unit {
            return self.factors.clone();
        }
        unit_of_row
            .iter()
            .zip(weights)
            .flat_map(|(&u, &w)| {
                self.factors[u as usize * r..(u as usize + 1) * r]
                    .iter()
                    .map(move |f| f * w)
            })
            .collect()
    }
}

/// scale * sum_r rscales_r (theta_r - centre)(theta_r - centre)', over the replicates
/// whose estimates are all finite (R drops the others with a warning); `thetas` is
/// n_replicates x p.  Returns the covariance and the number of replicates dropped.
pub fn replicate_covariance(rep: &Replicates, thetas: &[f64], full: &[f64]) -> (Vec<f64>, usize) {
    let p = full.len();
    let r_count = rep.n_replicates;
    let ok: Vec<bool> = (0..r_count)
        .map(|r| thetas[r * p..(r + 1) * p].iter().all(|v| v.is_finite()))
        .collect();
    let centre: Vec<f64> = if rep.mse {
        full.to_vec()
    } else {
        let used: Vec<usize> = (0..r_count)
            .filter(|&r| ok[r] && rep.rscales[r] > 0.0)
            .collect();
        (0..p)
            .map(|j| used.iter().map(|&r| thetas[r * p + j]).sum::<f64>() / used.len() as f64)
            .collect()
    };
    let mut v = vec![0.0; p * p];
    for r in (0..r_count).filter(|&r| ok[r]) {
        let dev: Vec<f64> = (0..p).map(|j| thetas[r * p + j] - centre[j]).collect();
        for i in 0..p {
            for j in 0..p {
                v[i * p + j] += rep.scale * rep.rscales[r] * dev[i] * dev[j];
            }
        }
    }
    (v, ok.iter().filter(|&&b| !b).count())
}

/// Which entries of a covariance matrix the engine forms: all of them, or only the
/// variances (the diagonal, the rest left 0), where many estimates need only their
/// standard errors (a survival curve's entries, bootstrap draws): p per PSU instead of
/// p x p.  A variance has the same digits either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entries {
    All,
    Variances,
}

impl Linearization {
    /// Covariance (p x p, row-major; with [`Entries::Variances`] only its diagonal) of
    /// estimators whose influence values, summed to the design's variance units, are
    /// `totals` (n_units x p, row-major); `present` as in [`Influence::UnitTotals`].
    pub fn covariance(
        &self,
        totals: &[f64],
        p: usize,
        present: Option<&[bool]>,
        entries: Entries,
    ) -> Result<Vec<f64>> {
        match &self.pps {
            // The quadratic form over PSU pairs is formed whole (its cost is in the pairs).
            Some(Pps::QuadraticForm { kernel, variance }) => {
                Ok(pps_quadratic(kernel, *variance, totals, p))
            }
            // Domains of a PPS design keep every PSU (R keeps their rows, weight zero).
            Some(Pps::Brewer) => self.stratified(totals, p, None, entries),
            None => self.stratified(totals, p, present, entries),
        }
    }

    fn stratified(
        &self,
        totals: &[f64],
        p: usize,
        present: Option<&[bool]>,
        entries: Entries,
    ) -> Result<Vec<f64>> {
        let mut v = vec![0.0; p * p];
        for (s, stage) in self.stages.iter().enumerate() {
            stage_covariance(self, s, stage, (totals, p), present, entries, &mut v)?;
        }
        Ok(v)
    }
}

impl Pps {
    /// The PPS variance of a design whose (first-stage) fpc holds inclusion probabilities;
    /// `n_rows` for the check that a joint-probability matrix has one row per PSU.
    pub fn new(
        method: &PpsMethod,
        variance: PpsVariance,
        stages: &[Stage],
        has_fpc: bool,
        n_rows: usize,
    ) -> Result<Pps> {
        if !has_fpc {
            return Err(CoreError::column(
                Role::Fpc,
                "pps needs fpc: a column of inclusion probabilities",
            ));
        }
        if *method == PpsMethod::Brewer {
            if variance != PpsVariance::HorvitzThompson {
                return Err(CoreError::Design(
                    "pps='brewer' supports only variance='HT' (as R)".into(),
                ));
            }
            return Ok(Pps::Brewer);
        }
        if stages.len() > 1 {
            return Err(CoreError::Design(
                "multistage PPS is supported only with pps='brewer'".into(),
            ));
        }
        let stage = &stages[0];
        let n_psu = stage.n_clusters;
        // Inclusion probability of each PSU: sampled count / population size.
        let prob: Vec<f64> = (0..n_psu)
            .map(|c| {
                let g = stage.group_of_cluster[c] as usize;
                stage.group_npsu(g) as f64 / stage.cluster_popsize[c]
            })
            .collect();
        let stratum: Vec<u32> = stage.group_of_cluster.clone();
        let n_h: Vec<f64> = (0..stage.n_groups())
            .map(|g| stage.group_npsu(g) as f64)
            .collect();
        let kernel = match method {
            PpsMethod::Overton => PpsKernel::Affine {
                a: n_h.iter().map(|&m| 0.5 / (m - 1.0)).collect(),
                b: n_h.iter().map(|&m| -1.0 / (m - 1.0)).collect(),
                prob,
                stratum,
                excluded_sum: None,
            },
            PpsMethod::HartleyRao { psum } => {
                let p2bar: Vec<f64> = if let Some(v) = psum {
                    vec![*v; n_h.len()]
                } else {
                    let mut sum = vec![0.0; n_h.len()];
                    for (&h, &pc) in stratum.iter().zip(&prob) {
                        sum[h as usize] += pc;
                    }
                    sum.iter().zip(&n_h).map(|(s, m)| s / m).collect()
                };
                PpsKernel::Affine {
                    a: n_h.iter().map(|&m| 1.0 / (m - 1.0)).collect(),
                    b: n_h
                        .iter()
                        .zip(&p2bar)
                        .map(|(&m, &p2)| -(1.0 + p2) / (m - 1.0))
                        .collect(),
                    prob,
                    stratum,
                    excluded_sum: Some(1.0),
                }
            }
            PpsMethod::JointProbs { pij } => {
                if pij.len() != n_psu * n_psu {
                    return Err(CoreError::Shape(format!(
                        "the joint-probability matrix has {} entries; the design has {n_psu} PSUs \
                         (needs {n_psu} x {n_psu})",
                        pij.len()
                    )));
                }
                if n_psu != n_rows {
                    return Err(CoreError::Design(
                        "a joint-probability matrix needs one row per PSU (ids=[])".into(),
                    ));
                }
                // R's ppsmat(): D = (pi_ij - pi_i pi_j) / pi_ij, entries below 1e-4 set to 0.
                let tolerance = 1e-4;
                let mut d = vec![0.0; n_psu * n_psu];
                for i in 0..n_psu {
                    for j in 0..n_psu {
                        let p = pij[i * n_psu + j];
                        let v = (p - pij[i * n_psu + i] * pij[j * n_psu + j]) / p;
                        d[i * n_psu + j] = if v.abs() < tolerance { 0.0 } else { v };
                    }
                }
                PpsKernel::Dense(d)
            }
            PpsMethod::Brewer => return Ok(Pps::Brewer),
        };
        Ok(Pps::QuadraticForm { kernel, variance })
    }
}

/// Add stage s's term: for each group (stratum within parent cluster), the scaled
/// centred cross-products of its cluster totals (R's `onestrat`), averaged over ok
/// strata within each parent (`onestage`) and times the earlier stages' fractions.
fn stage_covariance(
    lin: &Linearization,
    s: usize,
    stage: &Stage,
    (totals, p): (&[f64], usize),
    present: Option<&[bool]>,
    entries: Entries,
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
    let lonely = lin.lonely_psu;
    let adj_dom = lin.adjust_domain_lonely;
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
                (lonely, adj_dom),
                entries,
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
            acc.fill(0.0);
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
    (lonely, adj_dom): (LonelyPsu, bool),
    entries: Entries,
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
    mean.fill(0.0);
    if centre {
        for &c in members {
            for j in 0..p {
                mean[j] += ct[c as usize * p + j];
            }
        }
        for x in mean.iter_mut() {
            *x /= n as f64;
        }
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
            let row = match entries {
                Entries::All => 0..p,
                Entries::Variances => i..i + 1,
            };
            for j in row {
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
                dx.fill(0.0);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{a:?} != {b:?}");
        }
    }

    /// One stage, one row per PSU: PSU i in stratum `strata[i]` (codes 0..H, in order),
    /// its population of PSUs `popsize[i]` (infinite: with replacement).
    fn one_stage(strata: &[u32], popsize: &[f64], lonely_psu: LonelyPsu) -> Linearization {
        let n = strata.len();
        let n_groups = strata.iter().max().map_or(0, |&h| h as usize + 1);
        let mut group_start = vec![0; n_groups + 1];
        for &h in strata {
            group_start[h as usize + 1] += 1;
        }
        for g in 0..n_groups {
            group_start[g + 1] += group_start[g];
        }
        Linearization {
            stages: Arc::new(vec![Stage {
                cluster_of_unit: (0..n as u32).collect(),
                n_clusters: n,
                group_of_cluster: strata.to_vec(),
                group_start,
                group_clusters: (0..n as u32).collect(),
                group_parent: vec![0; n_groups],
                group_stratum: (0..n_groups as u32).collect(),
                cluster_popsize: popsize.to_vec(),
                group_multiplier: vec![1.0; n_groups],
            }]),
            pps: None,
            lonely_psu,
            adjust_domain_lonely: false,
            has_strata: true,
        }
    }

    #[test]
    fn two_strata_of_two_psus_by_hand() {
        // PSU totals 3, 5 | 10, 4: V = sum_h n_h/(n_h - 1) sum_i (t_hi - tbar_h)^2
        //   = 2 (1 + 1) + 2 (9 + 9) = 40.
        let strata = [0, 0, 1, 1];
        let lin = one_stage(&strata, &[f64::INFINITY; 4], LonelyPsu::Fail);
        close(
            &lin.covariance(&[3.0, 5.0, 10.0, 4.0], 1, None, Entries::All)
                .unwrap(),
            &[40.0],
        );
        // Each stratum a sample of 2 PSUs out of 4: times (1 - 2/4).
        let lin = one_stage(&strata, &[4.0; 4], LonelyPsu::Fail);
        close(
            &lin.covariance(&[3.0, 5.0, 10.0, 4.0], 1, None, Entries::All)
                .unwrap(),
            &[20.0],
        );
    }

    #[test]
    fn covariance_of_two_estimates_by_hand() {
        // Second estimate's totals 1, 2 | 0, 6.  Cross-products of the centred totals:
        // stratum 0 (-1)(-0.5) + (1)(0.5) = 1, stratum 1 (3)(-3) + (-3)(3) = -18, each
        // times n_h/(n_h - 1) = 2: covariance 2 - 36 = -34; variance 2 (0.5) + 2 (18) = 37.
        let lin = one_stage(&[0, 0, 1, 1], &[f64::INFINITY; 4], LonelyPsu::Fail);
        let totals = [3.0, 1.0, 5.0, 2.0, 10.0, 0.0, 4.0, 6.0];
        close(
            &lin.covariance(&totals, 2, None, Entries::All).unwrap(),
            &[40.0, -34.0, -34.0, 37.0],
        );
        // Only the variances: the diagonal, the covariances left 0.
        close(
            &lin.covariance(&totals, 2, None, Entries::Variances)
                .unwrap(),
            &[40.0, 0.0, 0.0, 37.0],
        );
    }

    #[test]
    fn lonely_psu_rules_by_hand() {
        // Stratum 0 holds PSUs with totals 3 and 5 (adds 4); stratum 1 the single PSU 7.
        let strata = [0, 0, 1];
        let totals = [3.0, 5.0, 7.0];
        let v = |rule| {
            one_stage(&strata, &[f64::INFINITY; 3], rule).covariance(&totals, 1, None, Entries::All)
        };
        assert!(matches!(
            v(LonelyPsu::Fail),
            Err(CoreError::LonelyPsu {
                stratum: 1,
                stage: 1
            })
        ));
        // 'remove' and 'certainty': the lonely stratum adds nothing.
        close(&v(LonelyPsu::Remove).unwrap(), &[4.0]);
        close(&v(LonelyPsu::Certainty).unwrap(), &[4.0]);
        // 'adjust': the lonely PSU is centred at zero (R's grand mean of influence values): 7^2.
        close(&v(LonelyPsu::Adjust).unwrap(), &[4.0 + 49.0]);
        // 'average': the strata that have a variance stand for all: 4 x 2 strata / 1.
        close(&v(LonelyPsu::Average).unwrap(), &[8.0]);
    }

    #[test]
    fn a_domain_absent_from_a_psu_pads_it_with_zero() {
        // A domain only in PSUs 0, 1 and 2: PSU 3's total is a zero, as R pads it; with
        // 'adjust' a stratum of one PSU present (of two) keeps its design count n_h = 2.
        let lin = one_stage(&[0, 0, 1, 1], &[f64::INFINITY; 4], LonelyPsu::Adjust);
        let totals = [3.0, 5.0, 10.0, 0.0];
        let present = [true, true, true, false];
        // Stratum 1: totals 10, 0 around 5: 2 (25 + 25) = 100; stratum 0 adds 4.
        close(
            &lin.covariance(&totals, 1, Some(&present), Entries::All)
                .unwrap(),
            &[104.0],
        );
    }

    #[test]
    fn joint_probabilities_horvitz_thompson_and_yates_grundy_by_hand() {
        // Two PSUs drawn with pi = 0.5, 0.4 (2 of populations 4 and 5), pi_12 = 0.15.
        // D = (pi_ij - pi_i pi_j) / pi_ij: D_11 = 0.5, D_22 = 0.6, D_12 = -1/3.
        let mut lin = one_stage(&[0, 0], &[4.0, 5.0], LonelyPsu::Fail);
        let pij = vec![0.5, 0.15, 0.15, 0.4];
        let x = [2.0, 3.0];
        for (variance, want) in [
            // x'Dx = 0.5 * 4 + 0.6 * 9 - 2/3 * 6 = 3.4
            (PpsVariance::HorvitzThompson, 3.4),
            // -D_12 (x_1 - x_2)^2 = 1/3
            (PpsVariance::YatesGrundy, 1.0 / 3.0),
        ] {
            let method = PpsMethod::JointProbs { pij: pij.clone() };
            lin.pps = Some(Pps::new(&method, variance, &lin.stages, true, 2).unwrap());
            close(&lin.covariance(&x, 1, None, Entries::All).unwrap(), &[want]);
        }
    }

    #[test]
    fn pps_set_up_refuses_what_r_refuses() {
        let lin = one_stage(&[0, 0], &[4.0, 5.0], LonelyPsu::Fail);
        let ht = PpsVariance::HorvitzThompson;
        assert!(Pps::new(&PpsMethod::Overton, ht, &lin.stages, false, 2).is_err());
        assert!(Pps::new(
            &PpsMethod::Brewer,
            PpsVariance::YatesGrundy,
            &lin.stages,
            true,
            2
        )
        .is_err());
        assert!(matches!(
            Pps::new(&PpsMethod::Brewer, ht, &lin.stages, true, 2),
            Ok(Pps::Brewer)
        ));
        let short = PpsMethod::JointProbs { pij: vec![0.5; 3] };
        assert!(matches!(
            Pps::new(&short, ht, &lin.stages, true, 2),
            Err(CoreError::Shape(_))
        ));
    }

    fn jackknife(n: usize, mse: bool) -> Replicates {
        // JK1 of n PSUs: scale (n - 1)/n; the factors do not enter the variance.
        Replicates {
            factors: vec![1.0; n * n],
            per_unit: true,
            n_replicates: n,
            scale: (n as f64 - 1.0) / n as f64,
            rscales: vec![1.0; n],
            mse,
        }
    }

    #[test]
    fn jackknife_variance_by_hand() {
        // Replicate estimates 1, 2, 4 (mean 7/3): 2/3 (16/9 + 1/9 + 25/9) = 28/9.
        let (v, dropped) = replicate_covariance(&jackknife(3, false), &[1.0, 2.0, 4.0], &[2.0]);
        close(&v, &[28.0 / 9.0]);
        assert_eq!(dropped, 0);
        // mse=TRUE centres at the full-sample estimate 2: 2/3 (1 + 0 + 4) = 10/3.
        let (v, _) = replicate_covariance(&jackknife(3, true), &[1.0, 2.0, 4.0], &[2.0]);
        close(&v, &[10.0 / 3.0]);
    }

    #[test]
    fn an_undefined_replicate_is_left_out() {
        // Estimates 1, NaN, 4: centre 2.5, 2/3 (2.25 + 2.25) = 3, one replicate dropped.
        let (v, dropped) =
            replicate_covariance(&jackknife(3, false), &[1.0, f64::NAN, 4.0], &[2.0]);
        close(&v, &[3.0]);
        assert_eq!(dropped, 1);
    }
}
