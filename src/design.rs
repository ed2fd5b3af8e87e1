//! The sampling design: strata and clusters at each stage, fpc, weights and the
//! lonely-PSU rule, laid out once for the variance engine (mirrors `survey::svydesign`).

use crate::codes::{densify, interaction};
use crate::error::{CoreError, Result};
use crate::replicate::{build, gram_rank, PsuLayout, Replicates, Scheme};

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

/// Everything the user said about the design, as codes and numbers.
pub struct DesignSpec<'a> {
    pub n_rows: usize,
    /// One entry per stage, outermost first; `None` = each row its own cluster.
    pub clusters: Vec<Option<&'a [u32]>>,
    /// Stratum codes: none, one (first stage), or one per stage.
    pub strata: Vec<&'a [u32]>,
    /// fpc per stage: population counts (>= 1) or sampling fractions (<= 1); empty = none.
    pub fpc: Vec<&'a [f64]>,
    /// Sampling weights (already 1/probs when probabilities were given).
    pub weights: Option<&'a [f64]>,
    pub nest: bool,
    pub lonely_psu: LonelyPsu,
    pub adjust_domain_lonely: bool,
    pub pps: Option<(PpsMethod, PpsVariance)>,
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

#[derive(Clone, Debug)]
pub struct Pps {
    pub kernel: PpsKernel,
    pub variance: PpsVariance,
}

/// A design ready for estimation.
#[derive(Clone, Debug)]
pub struct Design {
    pub n_rows: usize,
    pub weights: Vec<f64>,
    /// Variance unit of each row: the clusters of the deepest stage the variance uses.
    pub unit_of_row: Vec<u32>,
    pub n_units: usize,
    pub stages: Vec<Stage>,
    pub lonely_psu: LonelyPsu,
    pub adjust_domain_lonely: bool,
    /// PPS quadratic-form variance (Overton, Hartley-Rao, joint probabilities).
    pub pps: Option<Pps>,
    /// Domains keep their rows with zero weight instead of leaving the design (R does
    /// this for PPS designs), so every stratum and PSU takes part in every domain.
    pub domains_keep_rows: bool,
    /// Design degrees of freedom: first-stage PSUs minus strata (R's `degf`); for a
    /// replicate design, the rank of the replicate weights minus one.
    pub degf: usize,
    /// The user gave strata (JK1 needs none, JKn and BRR need them).
    pub has_strata: bool,
    /// Replicate weights: when present they, not the linearisation, give the variance.
    pub replicates: Option<Replicates>,
}

fn check_len(name: &str, len: usize, n: usize) -> Result<()> {
    if len != n {
        return Err(CoreError::Shape(format!(
            "{name} has {len} rows, the data have {n}"
        )));
    }
    Ok(())
}

/// Number of distinct clusters in each stratum, per row (R's `as.fpc` sampsize).
fn sampsize(strata: &[u32], clusters: &[u32]) -> Vec<f64> {
    let (pairs, _) = interaction(strata, clusters);
    let n_strata = strata.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut first_seen = vec![false; pairs.iter().copied().max().map_or(0, |m| m as usize + 1)];
    let mut count = vec![0u32; n_strata];
    for (&p, &s) in pairs.iter().zip(strata) {
        if !first_seen[p as usize] {
            first_seen[p as usize] = true;
            count[s as usize] += 1;
        }
    }
    strata.iter().map(|&s| count[s as usize] as f64).collect()
}

impl Design {
    pub fn new(spec: &DesignSpec) -> Result<Design> {
        let n = spec.n_rows;
        if n == 0 {
            return Err(CoreError::Value("the data have no rows".into()));
        }
        if spec.clusters.is_empty() {
            return Err(CoreError::Design(
                "ids must name at least one stage (or none: one row per PSU)".into(),
            ));
        }
        let n_stages = spec.clusters.len();
        // Stage clusters, forced to nest in the clusters of the stage above (R does the same).
        let mut clusters: Vec<Vec<u32>> = Vec::with_capacity(n_stages);
        for (s, c) in spec.clusters.iter().enumerate() {
            let codes = match c {
                Some(c) => {
                    check_len(&format!("ids (stage {})", s + 1), c.len(), n)?;
                    densify(c).0
                }
                None => (0..n as u32).collect(),
            };
            let codes = if s == 0 {
                codes
            } else {
                interaction(&clusters[s - 1], &codes).0
            };
            clusters.push(codes);
        }
        let strata: Vec<Vec<u32>> = spec
            .strata
            .iter()
            .enumerate()
            .map(|(i, st)| {
                check_len(&format!("strata (stage {})", i + 1), st.len(), n)?;
                Ok(densify(st).0)
            })
            .collect::<Result<_>>()?;
        let has_strata = !strata.is_empty();
        if has_strata && spec.nest {
            for (s, c) in clusters.iter_mut().enumerate() {
                let k = (s + 1).min(strata.len());
                let mut combined = strata[0].clone();
                for st in &strata[1..k] {
                    combined = interaction(&combined, st).0;
                }
                *c = interaction(&combined, c).0;
            }
        }
        let n_psu = clusters[0].iter().copied().max().unwrap_or(0) as usize + 1;
        if n_psu == 1 && !(spec.nest && has_strata) {
            return Err(CoreError::Design(
                "the design has only one primary sampling unit: check ids".into(),
            ));
        }
        if has_strata && !spec.nest {
            let mut stratum_of_psu = vec![u32::MAX; n_psu];
            for (&c, &s) in clusters[0].iter().zip(&strata[0]) {
                let slot = &mut stratum_of_psu[c as usize];
                if *slot == u32::MAX {
                    *slot = s;
                } else if *slot != s {
                    return Err(CoreError::Design(
                        "clusters are not nested in strata at the first stage: PSU labels repeat \
                         across strata; set nest=True"
                            .into(),
                    ));
                }
            }
        }
        // Strata of each stage: the given strata column nested in the parent cluster.
        let zeros = vec![0u32; n];
        let stage_strata: Vec<Vec<u32>> = (0..n_stages)
            .map(|s| {
                let st = if has_strata {
                    &strata[s.min(strata.len() - 1)]
                } else {
                    &zeros
                };
                if s == 0 {
                    st.clone()
                } else {
                    // Parent first, so that the groups of one parent are contiguous.
                    interaction(&clusters[s - 1], st).0
                }
            })
            .collect();
        let sampsizes: Vec<Vec<f64>> = (0..n_stages)
            .map(|s| sampsize(&stage_strata[s], &clusters[s]))
            .collect();

        let popsizes = Self::popsizes(spec, &sampsizes)?;
        let weights = match spec.weights {
            Some(w) => {
                check_len("weights", w.len(), n)?;
                if let Some(i) = w.iter().position(|x| !x.is_finite() || *x < 0.0) {
                    return Err(CoreError::Design(format!(
                        "weights must be finite and non-negative: row {i} has {}",
                        w[i]
                    )));
                }
                w.to_vec()
            }
            None => match &popsizes {
                Some(pop) => (0..n)
                    .map(|r| (0..n_stages).map(|s| pop[s][r] / sampsizes[s][r]).product())
                    .collect(),
                None => vec![1.0; n],
            },
        };
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err(CoreError::Design(
                "weights sum to zero: at least one row needs a positive weight".into(),
            ));
        }

        // With an fpc every stage adds its own term; without, the first stage stands for all.
        let used = if popsizes.is_some() { n_stages } else { 1 };
        let (unit_of_row, n_units) = densify(&clusters[used - 1]);
        let n_units = n_units as usize;
        let mut stages: Vec<Stage> = Vec::with_capacity(used);
        for s in 0..used {
            let stage = Self::stage(
                s,
                &unit_of_row,
                n_units,
                &clusters,
                &stage_strata[s],
                if has_strata {
                    Some(&strata[s.min(strata.len() - 1)])
                } else {
                    None
                },
                &sampsizes,
                popsizes.as_deref(),
                stages.last(),
            );
            stages.push(stage);
        }

        let degf = {
            let mut psu_seen = vec![false; n_psu];
            let mut strat_seen =
                vec![false; stage_strata[0].iter().copied().max().unwrap_or(0) as usize + 1];
            for r in 0..n {
                if weights[r] != 0.0 {
                    psu_seen[clusters[0][r] as usize] = true;
                    strat_seen[stage_strata[0][r] as usize] = true;
                }
            }
            let a = psu_seen.iter().filter(|&&b| b).count();
            let b = strat_seen.iter().filter(|&&b| b).count();
            a.saturating_sub(b)
        };

        let mut design = Design {
            n_rows: n,
            weights,
            unit_of_row,
            n_units,
            stages,
            lonely_psu: spec.lonely_psu,
            adjust_domain_lonely: spec.adjust_domain_lonely,
            pps: None,
            domains_keep_rows: false,
            degf,
            has_strata,
            replicates: None,
        };
        if let Some((method, variance)) = &spec.pps {
            design.set_pps(method, *variance, n_stages, popsizes.is_some())?;
        }
        Ok(design)
    }

    /// A design given by replicate weights (R's `svrepdesign`): `analysis` holds each
    /// replicate's final weights, row-major n_rows x n_replicates.
    pub fn from_replicate_weights(
        weights: &[f64],
        analysis: Vec<f64>,
        n_replicates: usize,
        scale: f64,
        rscales: Vec<f64>,
        mse: bool,
    ) -> Result<Design> {
        let n = weights.len();
        if n == 0 {
            return Err(CoreError::Value("the data have no rows".into()));
        }
        if let Some(i) = weights.iter().position(|x| !x.is_finite() || *x < 0.0) {
            return Err(CoreError::Design(format!(
                "weights must be finite and non-negative: row {i} has {}",
                weights[i]
            )));
        }
        let rep = Replicates {
            factors: analysis,
            per_unit: false,
            n_replicates,
            scale,
            rscales,
            mse,
        };
        rep.validate(n)?;
        let mut gram = vec![0.0; n_replicates * n_replicates];
        for row in rep.factors.chunks_exact(n_replicates) {
            for i in 0..n_replicates {
                for j in 0..n_replicates {
                    gram[i * n_replicates + j] += row[i] * row[j];
                }
            }
        }
        Ok(Design {
            n_rows: n,
            weights: weights.to_vec(),
            // One variance unit: the full-sample sums; replicates carry the variance.
            unit_of_row: vec![0; n],
            n_units: 1,
            stages: Vec::new(),
            lonely_psu: LonelyPsu::Fail,
            adjust_domain_lonely: false,
            pps: None,
            domains_keep_rows: false,
            degf: gram_rank(&gram, n_replicates).saturating_sub(1),
            has_strata: false,
            replicates: Some(rep),
        })
    }

    /// This design with replicate weights built from its first stage (R's
    /// `as.svrepdesign`): the variance then comes from the replicates.
    pub fn to_replicates(&self, scheme: Scheme, mse: bool) -> Result<Design> {
        if self.replicates.is_some() {
            return Err(CoreError::Design(
                "the design already has replicate weights".into(),
            ));
        }
        let stage = self
            .stages
            .first()
            .ok_or_else(|| CoreError::Design("the design has no stages".into()))?;
        let psu_of_row: Vec<u32> = self
            .unit_of_row
            .iter()
            .map(|&u| stage.cluster_of_unit[u as usize])
            .collect();
        // BRR and Fay drop the fpc, as R does.
        let keep_fpc = matches!(scheme, Scheme::Jk1 | Scheme::Jkn | Scheme::Bootstrap { .. });
        let popsize: Vec<f64> = if keep_fpc {
            stage.cluster_popsize.clone()
        } else {
            vec![f64::INFINITY; stage.n_clusters]
        };
        let layout = PsuLayout {
            stratum: &stage.group_of_cluster,
            popsize: &popsize,
            n_strata: stage.n_groups(),
        };
        let rep = build(scheme, &layout, self.lonely_psu, self.has_strata, mse)?;
        // Rank of the analysis weights from their Gram matrix, summed per PSU.
        let r_count = rep.n_replicates;
        let mut w2 = vec![0.0; stage.n_clusters];
        for (&c, &w) in psu_of_row.iter().zip(&self.weights) {
            w2[c as usize] += w * w;
        }
        let mut gram = vec![0.0; r_count * r_count];
        for (c, row) in rep.factors.chunks_exact(r_count).enumerate() {
            for i in 0..r_count {
                for j in 0..r_count {
                    gram[i * r_count + j] += w2[c] * row[i] * row[j];
                }
            }
        }
        Ok(Design {
            n_rows: self.n_rows,
            weights: self.weights.clone(),
            unit_of_row: psu_of_row,
            n_units: stage.n_clusters,
            stages: Vec::new(),
            lonely_psu: self.lonely_psu,
            adjust_domain_lonely: false,
            pps: None,
            domains_keep_rows: false,
            degf: gram_rank(&gram, r_count).saturating_sub(1),
            has_strata: self.has_strata,
            replicates: Some(rep),
        })
    }

    /// Population sizes per stage and row, from counts or sampling fractions (R's `as.fpc`).
    fn popsizes(spec: &DesignSpec, sampsizes: &[Vec<f64>]) -> Result<Option<Vec<Vec<f64>>>> {
        if spec.fpc.is_empty() {
            return Ok(None);
        }
        let n_stages = spec.clusters.len();
        if spec.fpc.len() != n_stages {
            return Err(CoreError::Design(format!(
                "fpc has {} columns for {} stages of ids: give one fpc column per stage",
                spec.fpc.len(),
                n_stages
            )));
        }
        for (s, f) in spec.fpc.iter().enumerate() {
            check_len(&format!("fpc (stage {})", s + 1), f.len(), spec.n_rows)?;
            if let Some(r) = f.iter().position(|x| !x.is_finite() || *x <= 0.0) {
                return Err(CoreError::Value(format!(
                    "fpc (stage {}) must be positive and finite: row {r} has {}",
                    s + 1,
                    f[r]
                )));
            }
        }
        let any_big = spec.fpc.iter().any(|f| f.iter().any(|&x| x > 1.0));
        let all_ge1 = spec.fpc.iter().all(|f| f.iter().all(|&x| x >= 1.0));
        if any_big != all_ge1 {
            return Err(CoreError::Design(
                "fpc must be all population sizes (>= 1) or all sampling fractions (<= 1)".into(),
            ));
        }
        if any_big && spec.pps.is_some() {
            return Err(CoreError::Design(
                "with pps, fpc must hold inclusion probabilities (<= 1), not population sizes"
                    .into(),
            ));
        }
        let mut out = Vec::with_capacity(n_stages);
        for (s, f) in spec.fpc.iter().enumerate() {
            let pop: Vec<f64> = if any_big {
                f.to_vec()
            } else {
                f.iter()
                    .zip(&sampsizes[s])
                    .map(|(&fr, &m)| m / fr)
                    .collect()
            };
            if let Some(r) = (0..spec.n_rows).find(|&r| pop[r] < sampsizes[s][r]) {
                return Err(CoreError::Design(format!(
                    "fpc (stage {}) is smaller than the number of sampled PSUs: row {r} has \
                     population {} but {} sampled units in its stratum",
                    s + 1,
                    pop[r],
                    sampsizes[s][r]
                )));
            }
            out.push(pop);
        }
        Ok(Some(out))
    }

    #[allow(clippy::too_many_arguments)]
    fn stage(
        s: usize,
        unit_of_row: &[u32],
        n_units: usize,
        clusters: &[Vec<u32>],
        stage_strata: &[u32],
        user_strata: Option<&Vec<u32>>,
        sampsizes: &[Vec<f64>],
        popsizes: Option<&[Vec<f64>]>,
        parent: Option<&Stage>,
    ) -> Stage {
        let n = unit_of_row.len();
        let (group_codes, n_groups) = densify(stage_strata);
        let n_groups = n_groups as usize;
        let n_clusters = clusters[s].iter().copied().max().unwrap_or(0) as usize + 1;
        let mut cluster_of_unit = vec![0u32; n_units];
        let mut group_of_cluster = vec![0u32; n_clusters];
        let mut cluster_popsize = vec![f64::INFINITY; n_clusters];
        let mut cluster_seen = vec![false; n_clusters];
        let mut group_parent = vec![0u32; n_groups];
        let mut group_stratum = vec![0u32; n_groups];
        let mut group_multiplier = vec![1.0; n_groups];
        for r in 0..n {
            let c = clusters[s][r] as usize;
            cluster_of_unit[unit_of_row[r] as usize] = c as u32;
            if !cluster_seen[c] {
                // R takes the fpc of the first row of each cluster.
                cluster_seen[c] = true;
                let g = group_codes[r] as usize;
                group_of_cluster[c] = g as u32;
                if let Some(pop) = popsizes {
                    cluster_popsize[c] = pop[s][r];
                }
                group_stratum[g] = user_strata.map_or(0, |st| st[r]);
                if let (Some(p), Some(pop)) = (parent, popsizes) {
                    let pc = clusters[s - 1][r] as usize;
                    group_parent[g] = pc as u32;
                    let pg = p.group_of_cluster[pc] as usize;
                    group_multiplier[g] =
                        p.group_multiplier[pg] * sampsizes[s - 1][r] / pop[s - 1][r];
                }
            }
        }
        let mut group_start = vec![0usize; n_groups + 1];
        for &g in &group_of_cluster {
            group_start[g as usize + 1] += 1;
        }
        for g in 0..n_groups {
            group_start[g + 1] += group_start[g];
        }
        let mut fill = group_start.clone();
        let mut group_clusters = vec![0u32; n_clusters];
        for (c, &g) in group_of_cluster.iter().enumerate() {
            group_clusters[fill[g as usize]] = c as u32;
            fill[g as usize] += 1;
        }
        Stage {
            cluster_of_unit,
            n_clusters,
            group_of_cluster,
            group_start,
            group_clusters,
            group_parent,
            group_stratum,
            cluster_popsize,
            group_multiplier,
        }
    }

    fn set_pps(
        &mut self,
        method: &PpsMethod,
        variance: PpsVariance,
        n_stages: usize,
        has_fpc: bool,
    ) -> Result<()> {
        if !has_fpc {
            return Err(CoreError::Design(
                "pps needs fpc: a column of inclusion probabilities".into(),
            ));
        }
        self.domains_keep_rows = true;
        if *method == PpsMethod::Brewer {
            if variance != PpsVariance::HorvitzThompson {
                return Err(CoreError::Design(
                    "pps='brewer' supports only variance='HT' (as R)".into(),
                ));
            }
            return Ok(());
        }
        if n_stages > 1 {
            return Err(CoreError::Design(
                "multistage PPS is supported only with pps='brewer'".into(),
            ));
        }
        let stage = &self.stages[0];
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
                let p2bar: Vec<f64> = match psum {
                    Some(v) => vec![*v; n_h.len()],
                    None => {
                        let mut sum = vec![0.0; n_h.len()];
                        for (&h, &pc) in stratum.iter().zip(&prob) {
                            sum[h as usize] += pc;
                        }
                        sum.iter().zip(&n_h).map(|(s, m)| s / m).collect()
                    }
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
                if n_psu != self.n_rows {
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
            PpsMethod::Brewer => return Ok(()),
        };
        self.pps = Some(Pps { kernel, variance });
        Ok(())
    }
}
