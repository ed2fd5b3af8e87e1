//! The sampling design: the rows' weights and variance units, and how the variance is
//! made from them (a [`Variance`]: the stages of a linearisation design, laid out once,
//! or replicate weights); mirrors `survey::svydesign` and `survey::svrepdesign`.

use std::borrow::Cow;
use std::sync::Arc;

use rayon::prelude::*;

use crate::calibration::Calibration;
use crate::codes::{densify, interaction};
use crate::error::{CoreError, Result, Role};
use crate::replicate::{analysis_rank, build, gram_rank, PsuLayout, Scheme};
use crate::variance::{
    replicate_covariance, Covariance, Entries, Influence, Linearization, Pps, Replicates, Stage,
    Variance,
};
/// The design's own vocabulary, defined with the variance they select.
pub use crate::variance::{LonelyPsu, PpsMethod, PpsVariance};

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

impl<'a> DesignSpec<'a> {
    /// Rows sampled independently (each its own cluster) with these weights: no strata,
    /// fpc or PPS, and a stratum with one PSU refused (R's default).  Other designs from
    /// it by struct update: `DesignSpec { clusters: vec![Some(&psu)], ..DesignSpec::weighted(&w) }`.
    pub fn weighted(weights: &'a [f64]) -> Self {
        DesignSpec {
            n_rows: weights.len(),
            clusters: vec![None],
            strata: vec![],
            fpc: vec![],
            weights: Some(weights),
            nest: false,
            lonely_psu: LonelyPsu::Fail,
            adjust_domain_lonely: false,
            pps: None,
        }
    }
}

/// A design ready for estimation.
#[derive(Clone, Debug)]
pub struct Design {
    pub n_rows: usize,
    /// Shared (as are the unit codes) by the designs derived from this one.
    pub weights: Arc<Vec<f64>>,
    /// Variance unit of each row: the clusters of the deepest stage the variance uses.
    pub unit_of_row: Arc<Vec<u32>>,
    pub n_units: usize,
    /// How the variance is made: linearisation over the stages (with PPS and the
    /// lonely-PSU rule), or replicate weights.
    pub variance: Variance,
    /// Design degrees of freedom: first-stage PSUs minus strata (R's `degf`); for a
    /// replicate design, the rank of the replicate weights minus one.
    pub degf: usize,
    /// Weighting adjustments whose residuals replace the influence values (R's
    /// `postStrata`): a property of the weights, not a route of its own.  Empty for a
    /// design as sampled and for replicate designs (whose replicates are adjusted).
    pub calibration: Calibration,
}

fn check_len(name: &str, len: usize, n: usize) -> Result<()> {
    if len != n {
        return Err(CoreError::Shape(format!(
            "{name} has {len} rows, the data have {n}"
        )));
    }
    Ok(())
}

/// Rows per chunk of the parallel passes over the rows here.
const CHUNK: usize = 1 << 16;

/// Per-cluster tables of this many entries or fewer are kept per thread in the parallel
/// passes; designs with more clusters (e.g. one row per PSU) take the serial ones.
const PER_THREAD_TABLE_LIMIT: usize = 1 << 20;

/// Codes that are already dense (0..k, every value used) are borrowed, others recoded.
/// One parallel pass marks the codes seen (the table grows to the largest code).
fn dense(codes: &[u32]) -> (Cow<'_, [u32]>, usize) {
    let seen = codes
        .par_chunks(CHUNK)
        .fold(Vec::new, |mut seen: Vec<bool>, chunk| {
            for &c in chunk {
                let c = c as usize;
                if c >= seen.len() {
                    seen.resize(c + 1, false);
                }
                seen[c] = true;
            }
            seen
        })
        .reduce(Vec::new, |a, b| {
            let (mut long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
            long.iter_mut().zip(&short).for_each(|(x, y)| *x |= *y);
            long
        });
    let k = seen.len();
    if seen.into_iter().all(|s| s) {
        (Cow::Borrowed(codes), k)
    } else {
        let (c, k) = densify(codes);
        (Cow::Owned(c), k as usize)
    }
}

/// `dense` of codes owned already: kept as they are when dense.
fn dense_owned(codes: Vec<u32>) -> (Cow<'static, [u32]>, usize) {
    let recoded = match dense(&codes) {
        (Cow::Borrowed(_), k) => (None, k),
        (Cow::Owned(c), k) => (Some(c), k),
    };
    match recoded {
        (None, k) => (Cow::Owned(codes), k),
        (Some(c), k) => (Cow::Owned(c), k),
    }
}

fn weights_error(w: &[f64]) -> Result<()> {
    let bad = |x: &f64| !x.is_finite() || *x < 0.0;
    // Chunks in parallel, each one a plain loop; the first bad row only if there is one.
    if !w.par_chunks(CHUNK).any(|chunk| chunk.iter().any(bad)) {
        return Ok(());
    }
    if let Some(i) = w.iter().position(bad) {
        return Err(CoreError::column(
            Role::Weights,
            format!(
                "weights must be finite and non-negative: row {i} has {}",
                w[i]
            ),
        ));
    }
    Ok(())
}

/// A checked copy of the sampling weights: one parallel pass copies them and looks for
/// a value that is not finite and non-negative.
fn copy_weights(w: &[f64]) -> Result<Vec<f64>> {
    let mut out = vec![0.0; w.len()];
    let bad = out
        .par_chunks_mut(CHUNK)
        .zip(w.par_chunks(CHUNK))
        .map(|(o, i)| {
            o.copy_from_slice(i);
            o.iter().any(|x| !x.is_finite() || *x < 0.0)
        })
        .reduce(|| false, |a, b| a || b);
    if bad {
        weights_error(w)?;
    }
    Ok(out)
}

/// One stage's clusters summarised once: the first row of each cluster, its stratum
/// (dense, in parent-then-stratum order) and the number of clusters per stratum (R's
/// `nPSU`, the design's count whatever the domain).
struct StageFacts {
    first_row: Vec<u32>,
    stratum_of_cluster: Vec<u32>,
    npsu: Vec<u32>,
    popsize: Vec<f64>,
}

impl StageFacts {
    fn new(
        clusters: &[u32],
        n_clusters: usize,
        strata: &[u32],
        check_nested: bool,
    ) -> Result<StageFacts> {
        let not_nested = || {
            CoreError::column(
                Role::Strata,
                "clusters are not nested in strata at the first stage: PSU labels repeat \
                 across strata; set nest=True",
            )
        };
        // The first row of each cluster of a run of rows; whether every row of a cluster
        // in the run has the stratum of that first row.
        let scan = |first_row: &mut [u32], rows: std::ops::Range<usize>| -> bool {
            let start = rows.start;
            for (i, &c) in clusters[rows].iter().enumerate() {
                let r = start + i;
                let slot = &mut first_row[c as usize];
                if *slot == u32::MAX {
                    *slot = r as u32;
                } else if check_nested && strata[*slot as usize] != strata[r] {
                    return false;
                }
            }
            true
        };
        let first_row = if n_clusters <= PER_THREAD_TABLE_LIMIT && clusters.len() > CHUNK {
            // Runs of rows in parallel; a cluster's first row is the earliest of the runs'
            // and the runs' first rows must share a stratum.
            let n_chunks = clusters.len().div_ceil(CHUNK);
            (0..n_chunks)
                .into_par_iter()
                .fold(
                    || Ok(vec![u32::MAX; n_clusters]),
                    |acc: Result<Vec<u32>>, k| {
                        let mut first = acc?;
                        let rows = k * CHUNK..((k + 1) * CHUNK).min(clusters.len());
                        if scan(&mut first, rows) {
                            Ok(first)
                        } else {
                            Err(not_nested())
                        }
                    },
                )
                .reduce(
                    || Ok(vec![u32::MAX; n_clusters]),
                    |a, b| {
                        let (mut a, b) = (a?, b?);
                        for (x, &y) in a.iter_mut().zip(&b) {
                            if y == u32::MAX {
                                continue;
                            }
                            if *x == u32::MAX {
                                *x = y;
                            } else {
                                if check_nested && strata[*x as usize] != strata[y as usize] {
                                    return Err(not_nested());
                                }
                                *x = (*x).min(y);
                            }
                        }
                        Ok(a)
                    },
                )?
        } else {
            let mut first_row = vec![u32::MAX; n_clusters];
            if !scan(&mut first_row, 0..clusters.len()) {
                return Err(not_nested());
            }
            first_row
        };
        let raw: Vec<u32> = first_row.iter().map(|&r| strata[r as usize]).collect();
        let (stratum_of_cluster, k) = densify(&raw);
        let mut npsu = vec![0u32; k as usize];
        for &h in &stratum_of_cluster {
            npsu[h as usize] += 1;
        }
        Ok(StageFacts {
            first_row,
            stratum_of_cluster,
            npsu,
            popsize: vec![f64::INFINITY; n_clusters],
        })
    }

    fn sampled(&self, c: usize) -> f64 {
        f64::from(self.npsu[self.stratum_of_cluster[c] as usize])
    }
}

impl Design {
    pub fn new(spec: &DesignSpec) -> Result<Design> {
        Self::build(spec, None, None)
    }

    /// `Design::new` with the sampling weights, or the first stage's cluster codes, handed
    /// over instead of copied: `weights` stands for `spec.weights` and `first_ids` for
    /// `spec.clusters[0]` (which are then ignored); they are checked the same way.
    pub fn with_owned(
        spec: &DesignSpec,
        weights: Option<Vec<f64>>,
        first_ids: Option<Vec<u32>>,
    ) -> Result<Design> {
        Self::build(spec, weights, first_ids)
    }

    fn build(
        spec: &DesignSpec,
        owned_weights: Option<Vec<f64>>,
        mut owned_ids: Option<Vec<u32>>,
    ) -> Result<Design> {
        let n = spec.n_rows;
        if n == 0 {
            return Err(CoreError::Value("the data have no rows".into()));
        }
        if spec.clusters.is_empty() {
            return Err(CoreError::column(
                Role::Ids,
                "ids must name at least one stage (or none: one row per PSU)",
            ));
        }
        let n_stages = spec.clusters.len();
        // Stage clusters, forced to nest in the clusters of the stage above (R does the same).
        let mut clusters: Vec<(Cow<[u32]>, usize)> = Vec::with_capacity(n_stages);
        for (s, c) in spec.clusters.iter().enumerate() {
            let codes = match c {
                _ if s == 0 && owned_ids.is_some() => {
                    let c = owned_ids.take().unwrap_or_default();
                    check_len("ids (stage 1)", c.len(), n)?;
                    dense_owned(c)
                }
                Some(c) => {
                    check_len(&format!("ids (stage {})", s + 1), c.len(), n)?;
                    dense(c)
                }
                None => (Cow::Owned((0..n as u32).collect()), n),
            };
            let codes = if s == 0 {
                codes
            } else {
                let (c, k) = interaction(&clusters[s - 1].0, &codes.0);
                (Cow::Owned(c), k as usize)
            };
            clusters.push(codes);
        }
        let mut strata: Vec<(Cow<[u32]>, usize)> = Vec::with_capacity(spec.strata.len());
        for (i, st) in spec.strata.iter().enumerate() {
            check_len(&format!("strata (stage {})", i + 1), st.len(), n)?;
            strata.push(dense(st));
        }
        let has_strata = !strata.is_empty();
        if has_strata && spec.nest {
            for (s, c) in clusters.iter_mut().enumerate() {
                let k = (s + 1).min(strata.len());
                let mut combined = strata[0].0.to_vec();
                for st in &strata[1..k] {
                    combined = interaction(&combined, &st.0).0;
                }
                let (codes, kk) = interaction(&combined, &c.0);
                *c = (Cow::Owned(codes), kk as usize);
            }
        }
        if clusters[0].1 == 1 && !(spec.nest && has_strata) {
            return Err(CoreError::column(
                Role::Ids,
                "the design has only one primary sampling unit: check ids",
            ));
        }
        // Strata of each stage: the given strata column nested in the parent cluster
        // (parent first, so that the groups of one parent are contiguous).
        let zeros = vec![0u32; n];
        let user_strata = |s: usize| -> &[u32] {
            if has_strata {
                &strata[s.min(strata.len() - 1)].0
            } else {
                &zeros
            }
        };
        let mut facts = Vec::with_capacity(n_stages);
        for s in 0..n_stages {
            let stage_strata: Cow<[u32]> = if s == 0 {
                Cow::Borrowed(user_strata(0))
            } else {
                Cow::Owned(interaction(&clusters[s - 1].0, user_strata(s)).0)
            };
            facts.push(StageFacts::new(
                &clusters[s].0,
                clusters[s].1,
                &stage_strata,
                s == 0 && has_strata && !spec.nest,
            )?);
        }
        let has_fpc = Self::set_popsizes(spec, &mut facts)?;
        let given = owned_weights.is_some() || spec.weights.is_some();
        let weights = match (owned_weights, spec.weights) {
            (Some(w), _) => {
                check_len("weights", w.len(), n)?;
                weights_error(&w)?;
                w
            }
            (None, Some(w)) => {
                check_len("weights", w.len(), n)?;
                // A parallel copy: the page faults of a fresh buffer dominate at 10M rows.
                copy_weights(w)?
            }
            (None, None) if has_fpc => (0..n)
                .map(|r| {
                    facts
                        .iter()
                        .zip(&clusters)
                        .map(|(f, (c, _))| {
                            let c = c[r] as usize;
                            f.popsize[c] / f.sampled(c)
                        })
                        .product()
                })
                .collect(),
            (None, None) => vec![1.0; n],
        };
        // Given weights are finite and non-negative: their sum is positive if one is.
        let zero_sum = if given {
            !weights.par_iter().any(|&w| w > 0.0)
        } else {
            weights.iter().sum::<f64>() <= 0.0
        };
        if zero_sum {
            return Err(CoreError::column(
                Role::Weights,
                "weights sum to zero: at least one row needs a positive weight",
            ));
        }

        // With an fpc every stage adds its own term; without, the first stage stands for all.
        let used = if has_fpc { n_stages } else { 1 };
        let n_units = clusters[used - 1].1;
        let unit_first_row = &facts[used - 1].first_row;
        let mut stages: Vec<Stage> = Vec::with_capacity(used);
        for s in 0..used {
            let f = &facts[s];
            let cluster_of_unit: Vec<u32> = unit_first_row
                .iter()
                .map(|&r| clusters[s].0[r as usize])
                .collect();
            let n_groups = f.npsu.len();
            let mut group_start = vec![0usize; n_groups + 1];
            for (g, &m) in f.npsu.iter().enumerate() {
                group_start[g + 1] = group_start[g] + m as usize;
            }
            let mut fill = group_start.clone();
            let mut group_clusters = vec![0u32; clusters[s].1];
            let mut group_first_row = vec![0u32; n_groups];
            for (c, &g) in f.stratum_of_cluster.iter().enumerate() {
                let g = g as usize;
                if fill[g] == group_start[g] {
                    group_first_row[g] = f.first_row[c];
                }
                group_clusters[fill[g]] = c as u32;
                fill[g] += 1;
            }
            let mut group_parent = vec![0u32; n_groups];
            let mut group_multiplier = vec![1.0; n_groups];
            if s > 0 {
                let parent: &Stage = &stages[s - 1];
                for g in 0..n_groups {
                    let r = group_first_row[g] as usize;
                    let pc = clusters[s - 1].0[r] as usize;
                    group_parent[g] = pc as u32;
                    let pg = parent.group_of_cluster[pc] as usize;
                    // R's multistage(): later stages are scaled by the sampling fraction above.
                    group_multiplier[g] = parent.group_multiplier[pg] * facts[s - 1].sampled(pc)
                        / facts[s - 1].popsize[pc];
                }
            }
            stages.push(Stage {
                cluster_of_unit,
                n_clusters: clusters[s].1,
                group_of_cluster: f.stratum_of_cluster.clone(),
                group_start,
                group_clusters,
                group_parent,
                group_stratum: group_first_row
                    .iter()
                    .map(|&r| user_strata(s)[r as usize])
                    .collect(),
                cluster_popsize: f.popsize.clone(),
                group_multiplier,
            });
        }

        let degf = {
            let n_psu = clusters[0].1;
            let mark = |seen: &mut [bool], w: &[f64], c: &[u32]| {
                for (&w, &c) in w.iter().zip(c) {
                    if w != 0.0 {
                        seen[c as usize] = true;
                    }
                }
            };
            let psu_seen = if n_psu <= PER_THREAD_TABLE_LIMIT {
                weights
                    .par_chunks(CHUNK)
                    .zip(clusters[0].0.par_chunks(CHUNK))
                    .fold(
                        || vec![false; n_psu],
                        |mut seen, (w, c)| {
                            mark(&mut seen, w, c);
                            seen
                        },
                    )
                    .reduce(
                        || vec![false; n_psu],
                        |mut a, b| {
                            a.iter_mut().zip(&b).for_each(|(x, y)| *x |= *y);
                            a
                        },
                    )
            } else {
                let mut seen = vec![false; n_psu];
                mark(&mut seen, &weights, &clusters[0].0);
                seen
            };
            let mut strat_seen = vec![false; facts[0].npsu.len()];
            for (c, _) in psu_seen.iter().enumerate().filter(|(_, &s)| s) {
                strat_seen[facts[0].stratum_of_cluster[c] as usize] = true;
            }
            let a = psu_seen.iter().filter(|&&b| b).count();
            let b = strat_seen.iter().filter(|&&b| b).count();
            a.saturating_sub(b)
        };

        let pps = spec
            .pps
            .as_ref()
            .map(|(method, variance)| Pps::new(method, *variance, &stages, has_fpc, n))
            .transpose()?;
        Ok(Design {
            n_rows: n,
            weights: Arc::new(weights),
            unit_of_row: Arc::new(match std::mem::take(&mut clusters[used - 1].0) {
                Cow::Owned(v) => v,
                Cow::Borrowed(b) => b.par_iter().copied().collect(),
            }),
            n_units,
            variance: Variance::Linearization(Linearization {
                stages: Arc::new(stages),
                pps,
                lonely_psu: spec.lonely_psu,
                adjust_domain_lonely: spec.adjust_domain_lonely,
                has_strata,
            }),
            degf,
            calibration: Calibration::default(),
        })
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
            return Err(CoreError::column(
                Role::Weights,
                format!(
                    "weights must be finite and non-negative: row {i} has {}",
                    weights[i]
                ),
            ));
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
        let degf = analysis_rank(&rep.factors, n_replicates).saturating_sub(1);
        Ok(Design {
            n_rows: n,
            weights: Arc::new(weights.to_vec()),
            // One variance unit: the full-sample sums; replicates carry the variance.
            unit_of_row: Arc::new(vec![0; n]),
            n_units: 1,
            variance: Variance::Replicates(rep),
            degf,
            calibration: Calibration::default(),
        })
    }

    /// This design with replicate weights built from its first stage (R's
    /// `as.svrepdesign`): the variance then comes from the replicates.  `stratum_rank`
    /// gives each first-stage stratum (by code) its place when the labels are sorted as
    /// text, as R's `brrweights` sorts them (None: the codes' order).
    pub fn to_replicates(
        &self,
        scheme: Scheme,
        mse: bool,
        stratum_rank: Option<&[u32]>,
    ) -> Result<Design> {
        let Variance::Linearization(lin) = &self.variance else {
            return Err(CoreError::Design(
                "the design already has replicate weights".into(),
            ));
        };
        let stage = lin
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
        // R's order of the PSUs for BRR: strata by their labels' text, then PSUs by
        // their first row.
        let mut first_row = vec![u32::MAX; stage.n_clusters];
        for (r, &c) in psu_of_row.iter().enumerate().rev() {
            first_row[c as usize] = r as u32;
        }
        let rank_of_group = |g: usize| -> Result<u32> {
            let code = stage.group_stratum[g] as usize;
            match stratum_rank {
                None => Ok(code as u32),
                Some(ranks) => ranks.get(code).copied().ok_or_else(|| {
                    CoreError::Shape(format!(
                        "stratum ranks cover {} strata, the design has stratum code {code}",
                        ranks.len()
                    ))
                }),
            }
        };
        let group_rank: Vec<u32> = (0..stage.n_groups())
            .map(rank_of_group)
            .collect::<Result<_>>()?;
        let mut r_order: Vec<usize> = (0..stage.n_clusters).collect();
        r_order.sort_by_key(|&c| (group_rank[stage.group_of_cluster[c] as usize], first_row[c]));
        let layout = PsuLayout {
            stratum: &stage.group_of_cluster,
            popsize: &popsize,
            n_strata: stage.n_groups(),
            r_order: &r_order,
        };
        let rep = build(scheme, &layout, lin.lonely_psu, lin.has_strata, mse)?;
        let degf = unit_gram_rank(&rep, &psu_of_row, &self.weights, stage.n_clusters, None)
            .saturating_sub(1);
        Ok(Design {
            n_rows: self.n_rows,
            weights: Arc::clone(&self.weights),
            unit_of_row: Arc::new(psu_of_row),
            n_units: stage.n_clusters,
            variance: Variance::Replicates(rep),
            degf,
            calibration: Calibration::default(),
        })
    }

    /// Degrees of freedom of a domain of a replicate design (R's `degf` of `design[rows, ]`):
    /// the rank of the replicate analysis weights of the rows in `in_domain`, minus one.
    pub fn replicate_degf_in(&self, in_domain: &[bool]) -> Result<usize> {
        let Variance::Replicates(rep) = &self.variance else {
            return Err(CoreError::Design("not a replicate design".into()));
        };
        check_len("the domain mask", in_domain.len(), self.n_rows)?;
        let rank = if rep.per_unit {
            unit_gram_rank(
                rep,
                &self.unit_of_row,
                &self.weights,
                self.n_units,
                Some(in_domain),
            )
        } else {
            let k = rep.n_replicates;
            let rows: Vec<f64> = rep
                .factors
                .chunks_exact(k)
                .zip(in_domain)
                .filter(|(_, &keep)| keep)
                .flat_map(|(row, _)| row.iter().copied())
                .collect();
            analysis_rank(&rows, k)
        };
        Ok(rank.saturating_sub(1))
    }

    /// The replicate weights, for a replicate design.
    pub fn replicates(&self) -> Option<&Replicates> {
        match &self.variance {
            Variance::Replicates(rep) => Some(rep),
            Variance::Linearization(_) => None,
        }
    }

    /// Whether the design has been calibrated (its variance then needs the rows).
    pub fn is_calibrated(&self) -> bool {
        !self.calibration.is_empty()
    }

    /// The covariance of estimates from their influence: every estimator's variance
    /// comes through here.  A linearisation design takes unit totals, or per-row values
    /// (replaced by their residuals from the design's calibration, R's `postStrata`, and
    /// summed to units); a replicate design takes the replicate estimates.
    pub fn covariance(&self, influence: Influence) -> Result<Covariance> {
        self.covariance_entries(influence, Entries::All)
    }

    /// The variances of [`Design::covariance`] alone (its diagonal, p values): on a
    /// linearisation design the engine forms only these.
    pub fn variances(&self, influence: Influence) -> Result<Vec<f64>> {
        Ok(self
            .covariance_entries(influence, Entries::Variances)?
            .variances())
    }

    fn covariance_entries(&self, influence: Influence, entries: Entries) -> Result<Covariance> {
        let (p, matrix, dropped_replicates) = match (&self.variance, influence) {
            (Variance::Replicates(rep), Influence::ReplicateEstimates { thetas, full }) => {
                let p = full.len();
                if thetas.len() != rep.n_replicates * p {
                    return Err(CoreError::Shape(format!(
                        "replicate estimates have {} values, expected {} replicates x {p}",
                        thetas.len(),
                        rep.n_replicates
                    )));
                }
                let (matrix, dropped) = replicate_covariance(rep, thetas, full);
                (p, matrix, dropped)
            }
            (Variance::Linearization(lin), Influence::UnitTotals { totals, p, present }) => {
                if self.is_calibrated() {
                    return Err(CoreError::Design(
                        "a calibrated design needs per-row influence values for its variance"
                            .into(),
                    ));
                }
                if totals.len() != self.n_units * p {
                    return Err(CoreError::Shape(format!(
                        "influence totals have {} values, expected {} units x {p}",
                        totals.len(),
                        self.n_units
                    )));
                }
                (p, lin.covariance(totals, p, present, entries)?, 0)
            }
            (
                Variance::Linearization(lin),
                Influence::Rows {
                    values,
                    p,
                    in_domain,
                },
            ) => {
                let (totals, present) = self.unit_totals(values, p, in_domain)?;
                // Domains of a calibrated design keep their rows (weight zero), as R's do.
                let present = (!self.is_calibrated()).then_some(&present[..]);
                (p, lin.covariance(&totals, p, present, entries)?, 0)
            }
            (Variance::Replicates(_), _) => {
                return Err(CoreError::Design(
                    "a replicate design has no linearisation variance: re-estimate with each \
                     replicate's weights and give the replicate estimates"
                        .into(),
                ))
            }
            (Variance::Linearization(_), Influence::ReplicateEstimates { .. }) => {
                return Err(CoreError::Design(
                    "replicate estimates need a replicate design".into(),
                ))
            }
        };
        Ok(Covariance {
            p,
            matrix,
            dropped_replicates,
        })
    }

    /// A wild bootstrap of per-row influence values (n_rows x p): draw d multiplies the
    /// rows of variance unit u by `signs[d * n_units + u]` (Rademacher signs, say).
    /// Returns each draw's column sums and variances (draws x p each, row-major), every
    /// draw's variance through [`Design::covariance`], the draws in parallel.  The rows
    /// are summed to units once ([`Design::sign_flip_variances_of_totals`]), unless the
    /// design is calibrated.
    pub fn sign_flip_variances(
        &self,
        values: &[f64],
        p: usize,
        in_domain: Option<&[bool]>,
        signs: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let units = self.n_units;
        if units == 0 || signs.len() % units != 0 || values.len() != self.n_rows * p {
            return Err(CoreError::Shape(format!(
                "{} signs for {units} units, {} influence values for {} rows x {p}",
                signs.len(),
                values.len(),
                self.n_rows
            )));
        }
        if !self.is_calibrated() {
            let (totals, present) = self.unit_totals(values, p, in_domain)?;
            return self.sign_flip_variances_of_totals(&totals, p, &present, signs);
        }
        // The calibration's residuals mix the units: each draw's rows.
        let draws: Vec<(Vec<f64>, Vec<f64>)> = signs
            .par_chunks(units)
            .map(|sign| {
                let mut flipped = values.to_vec();
                let mut sums = vec![0.0; p];
                for (row, &u) in flipped.chunks_mut(p).zip(self.unit_of_row.iter()) {
                    for (v, s) in row.iter_mut().zip(&mut sums) {
                        *v *= sign[u as usize];
                        *s += *v;
                    }
                }
                let variances = self.variances(Influence::Rows {
                    values: &flipped,
                    p,
                    in_domain,
                })?;
                Ok((sums, variances))
            })
            .collect::<Result<_>>()?;
        let (sums, variances): (Vec<Vec<f64>>, Vec<Vec<f64>>) = draws.into_iter().unzip();
        Ok((sums.concat(), variances.concat()))
    }

    /// [`Design::sign_flip_variances`] of influence values already summed to the units
    /// (`totals`, n_units x p; `present`: the units holding a row of the domain).  A sign
    /// multiplies a whole unit, so a draw's unit totals are the totals times the signs
    /// (the same bits as its rows summed: x (+-1) is exact); each draw costs units x p.
    pub fn sign_flip_variances_of_totals(
        &self,
        totals: &[f64],
        p: usize,
        present: &[bool],
        signs: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let units = self.n_units;
        if units == 0
            || signs.len() % units != 0
            || totals.len() != units * p
            || present.len() != units
        {
            return Err(CoreError::Shape(format!(
                "{} signs, {} influence totals and {} present flags for {units} units x {p}",
                signs.len(),
                totals.len(),
                present.len()
            )));
        }
        let draws: Vec<(Vec<f64>, Vec<f64>)> = signs
            .par_chunks(units)
            .map(|sign| {
                let mut flipped = totals.to_vec();
                let mut sums = vec![0.0; p];
                for (unit, s) in flipped.chunks_mut(p).zip(sign) {
                    for (v, total) in unit.iter_mut().zip(&mut sums) {
                        *v *= s;
                        *total += *v;
                    }
                }
                let variances = self.variances(Influence::UnitTotals {
                    totals: &flipped,
                    p,
                    present: Some(present),
                })?;
                Ok((sums, variances))
            })
            .collect::<Result<_>>()?;
        let (sums, variances): (Vec<Vec<f64>>, Vec<Vec<f64>>) = draws.into_iter().unzip();
        Ok((sums.concat(), variances.concat()))
    }

    /// Which variance units hold one of the design rows `rows` (a model's rows: the
    /// domain of its influence values' unit totals).
    pub fn units_holding(&self, rows: &[usize]) -> Result<Vec<bool>> {
        if let Some(r) = rows.iter().find(|&&r| r >= self.n_rows) {
            return Err(CoreError::Shape(format!(
                "row {r} is not a row of the design's {}",
                self.n_rows
            )));
        }
        let mut present = vec![false; self.n_units];
        for &r in rows {
            present[self.unit_of_row[r] as usize] = true;
        }
        Ok(present)
    }

    /// [`Design::covariance`] of influence values already summed to the design's units
    /// (`totals`, n_units x p), the domain being the design rows `domain`: the units
    /// holding one of them are present (a model's rows summed as the fit makes them).
    pub fn covariance_of_domain_totals(
        &self,
        totals: &[f64],
        p: usize,
        domain: &[usize],
    ) -> Result<Covariance> {
        let present = self.units_holding(domain)?;
        if let Some(k) = totals.iter().position(|v| v.is_nan()) {
            return Err(CoreError::Value(format!(
                "influence values are NaN in variance unit {}",
                k / p.max(1)
            )));
        }
        self.covariance(Influence::UnitTotals {
            totals,
            p,
            present: Some(&present),
        })
    }

    /// [`Design::covariance`] of per-row influence values given only on some rows:
    /// `values` (rows.len() x p, row-major) belong to the design rows `rows` (ascending
    /// keeps R's order of addition), every other row's are zero, and the domain is those
    /// rows.  They are summed to units where they are, without being placed on all the
    /// design's rows first, unless the design's calibration needs every row.
    pub fn covariance_of_rows(
        &self,
        values: &[f64],
        p: usize,
        rows: &[usize],
    ) -> Result<Covariance> {
        if p == 0 || values.len() != rows.len() * p {
            return Err(CoreError::Shape(format!(
                "influence values have {} entries, expected {} rows x {p}",
                values.len(),
                rows.len()
            )));
        }
        if let Some(r) = rows.iter().find(|&&r| r >= self.n_rows) {
            return Err(CoreError::Shape(format!(
                "row {r} is not a row of the design's {}",
                self.n_rows
            )));
        }
        if self.is_calibrated() || self.replicates().is_some() {
            let mut all = vec![0.0; self.n_rows * p];
            let mut in_domain = vec![false; self.n_rows];
            for (&r, v) in rows.iter().zip(values.chunks_exact(p)) {
                all[r * p..(r + 1) * p].copy_from_slice(v);
                in_domain[r] = true;
            }
            return self.covariance(Influence::Rows {
                values: &all,
                p,
                in_domain: Some(&in_domain),
            });
        }
        if let Some(k) = values.iter().position(|v| v.is_nan()) {
            return Err(CoreError::Value(format!(
                "influence value is NaN at row {}",
                rows[k / p]
            )));
        }
        let mut totals = vec![0.0; self.n_units * p];
        let mut present = vec![false; self.n_units];
        for (&r, v) in rows.iter().zip(values.chunks_exact(p)) {
            let u = self.unit_of_row[r] as usize;
            for (t, x) in totals[u * p..(u + 1) * p].iter_mut().zip(v) {
                *t += x;
            }
            present[u] = true;
        }
        self.covariance(Influence::UnitTotals {
            totals: &totals,
            p,
            present: Some(&present),
        })
    }

    /// Per-row influence values (n_rows x p) as residuals from the calibration, summed to
    /// the variance units; and which units hold a row of the domain `in_domain`.
    fn unit_totals(
        &self,
        rows: &[f64],
        p: usize,
        in_domain: Option<&[bool]>,
    ) -> Result<(Vec<f64>, Vec<bool>)> {
        if rows.len() != self.n_rows * p {
            return Err(CoreError::Shape(format!(
                "influence values have {} entries, expected {} rows x {p}",
                rows.len(),
                self.n_rows
            )));
        }
        if let Some(m) = in_domain {
            if m.len() != self.n_rows {
                return Err(CoreError::Shape(format!(
                    "domain mask has {} rows, the design {}",
                    m.len(),
                    self.n_rows
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
        let rows = if self.is_calibrated() {
            let mut r = rows.to_vec();
            self.calibration.residualise(&mut r, p);
            residuals = r;
            &residuals[..]
        } else {
            rows
        };
        let mut totals = vec![0.0; self.n_units * p];
        let mut present = vec![in_domain.is_none(); self.n_units];
        for (r, &u) in self.unit_of_row.iter().enumerate() {
            let u = u as usize;
            let row = &rows[r * p..(r + 1) * p];
            for (t, v) in totals[u * p..(u + 1) * p].iter_mut().zip(row) {
                *t += v;
            }
            if let Some(m) = in_domain {
                present[u] |= m[r];
            }
        }
        Ok((totals, present))
    }

    /// Population sizes per stage and cluster, from counts or sampling fractions (R's
    /// `as.fpc`; R reads the fpc of each cluster's first row).  Returns whether an fpc was given.
    fn set_popsizes(spec: &DesignSpec, facts: &mut [StageFacts]) -> Result<bool> {
        if spec.fpc.is_empty() {
            return Ok(false);
        }
        let n_stages = spec.clusters.len();
        if spec.fpc.len() != n_stages {
            return Err(CoreError::column(
                Role::Fpc,
                format!(
                    "fpc has {} columns for {} stages of ids: give one fpc column per stage",
                    spec.fpc.len(),
                    n_stages
                ),
            ));
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
        if any_big && !all_ge1 {
            return Err(CoreError::column(
                Role::Fpc,
                "fpc must be all population sizes (>= 1) or all sampling fractions (<= 1)",
            ));
        }
        if all_ge1 && !any_big {
            // Every fpc exactly 1: a census as fractions, one unit per stratum as
            // population sizes (R's as.fpc refuses it too).
            return Err(CoreError::column(
                Role::Fpc,
                "fpc is 1 in every row, which reads both as sampling fractions (a census: every \
                 SE 0) and as population sizes (one PSU in each stratum's population); give \
                 population sizes, fractions below 1, or no fpc",
            ));
        }
        if any_big && spec.pps.is_some() {
            return Err(CoreError::column(
                Role::Fpc,
                "with pps, fpc must hold inclusion probabilities (<= 1), not population sizes",
            ));
        }
        for (s, (f, fpc)) in facts.iter_mut().zip(&spec.fpc).enumerate() {
            for c in 0..f.first_row.len() {
                let r = f.first_row[c] as usize;
                let sampled = f.sampled(c);
                let pop = if any_big { fpc[r] } else { sampled / fpc[r] };
                if pop < sampled {
                    return Err(CoreError::column(Role::Fpc, format!(
                        "fpc (stage {}) is smaller than the number of sampled PSUs: row {r} has population {pop} \
                         but {sampled} sampled units in its stratum",
                        s + 1
                    )));
                }
                f.popsize[c] = pop;
            }
        }
        Ok(true)
    }
}

/// Rank of the analysis weights of per-unit replicate factors (rows in `in_domain`, or
/// all), from their Gram matrix summed per unit: sum over rows of w^2 f_u f_u'.
fn unit_gram_rank(
    rep: &Replicates,
    unit_of_row: &[u32],
    weights: &[f64],
    n_units: usize,
    in_domain: Option<&[bool]>,
) -> usize {
    let k = rep.n_replicates;
    let mut w2 = vec![0.0; n_units];
    for (r, (&u, &w)) in unit_of_row.iter().zip(weights).enumerate() {
        if in_domain.is_none_or(|m| m[r]) {
            w2[u as usize] += w * w;
        }
    }
    let mut gram = vec![0.0; k * k];
    for (u, row) in rep.factors.chunks_exact(k).enumerate() {
        if w2[u] == 0.0 {
            continue;
        }
        for i in 0..k {
            for j in 0..k {
                gram[i * k + j] += w2[u] * row[i] * row[j];
            }
        }
    }
    gram_rank(&gram, k)
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

    fn spec<'a>(clusters: &'a [u32], strata: &'a [u32], fpc: Vec<&'a [f64]>) -> DesignSpec<'a> {
        DesignSpec {
            n_rows: clusters.len(),
            clusters: vec![Some(clusters)],
            strata: if strata.is_empty() {
                vec![]
            } else {
                vec![strata]
            },
            fpc,
            weights: None,
            nest: false,
            lonely_psu: LonelyPsu::Fail,
            adjust_domain_lonely: false,
            pps: None,
        }
    }

    fn variance(design: &Design, influence: Influence) -> Vec<f64> {
        design.covariance(influence).unwrap().matrix
    }

    /// Two strata of two PSUs, two rows in each PSU.
    const PSU: [u32; 8] = [0, 0, 1, 1, 2, 2, 3, 3];
    const STRATUM: [u32; 8] = [0, 0, 0, 0, 1, 1, 1, 1];

    #[test]
    fn per_row_influence_is_summed_to_psus() {
        let design = Design::new(&spec(&PSU, &STRATUM, vec![])).unwrap();
        assert_eq!((design.n_units, design.degf), (4, 2));
        // PSU totals 3, 5 | 10, 4: 2 (1 + 1) + 2 (9 + 9) = 40, from rows or from totals.
        let rows = [1.0, 2.0, 5.0, 0.0, 4.0, 6.0, 3.0, 1.0];
        let from_rows = Influence::Rows {
            values: &rows,
            p: 1,
            in_domain: None,
        };
        close(&variance(&design, from_rows), &[40.0]);
        let totals = [3.0, 5.0, 10.0, 4.0];
        let from_totals = Influence::UnitTotals {
            totals: &totals,
            p: 1,
            present: None,
        };
        close(&variance(&design, from_totals), &[40.0]);
    }

    #[test]
    fn fpc_as_population_sizes_or_fractions() {
        // 2 PSUs sampled of 4 in each stratum: the variance times 1 - 2/4.
        let rows = [1.0, 2.0, 5.0, 0.0, 4.0, 6.0, 3.0, 1.0];
        let rows = Influence::Rows {
            values: &rows,
            p: 1,
            in_domain: None,
        };
        for fpc in [[4.0; 8], [0.5; 8]] {
            let design = Design::new(&spec(&PSU, &STRATUM, vec![&fpc])).unwrap();
            close(&variance(&design, rows), &[20.0]);
            // Without weights, each row weighs N_h / n_h = 2.
            assert_eq!(design.weights[0], 2.0);
        }
        let design = Design::new(&spec(&PSU, &STRATUM, vec![&[1.0; 8]]));
        assert!(matches!(
            design,
            Err(CoreError::DesignColumn {
                role: Role::Fpc,
                ..
            })
        ));
    }

    #[test]
    fn sign_flips_are_variances_of_the_flipped_totals_by_hand() {
        // Three PSUs of one row, y = 3, 5, 10: unflipped, the total's variance is
        // 3/2 ((3-6)^2 + (5-6)^2 + (10-6)^2) = 39 and its sum 18; with the second unit
        // flipped, 3, -5, 10 around 8/3: 3/2 (1 + 529 + 484) / 9 = 169, sum 8.
        let design = Design::new(&spec(&[0, 1, 2], &[], vec![])).unwrap();
        let (sums, variances) = design
            .sign_flip_variances(&[3.0, 5.0, 10.0], 1, None, &[1.0, 1.0, 1.0, 1.0, -1.0, 1.0])
            .unwrap();
        assert_eq!(sums, vec![18.0, 8.0]);
        close(&variances, &[39.0, 169.0]);
        assert!(design
            .sign_flip_variances(&[3.0, 5.0, 10.0], 1, None, &[1.0, 1.0])
            .is_err());
    }

    #[test]
    fn sign_flips_of_unit_totals_are_those_of_the_rows() {
        // Two rows per PSU in two strata, two columns, a domain without row 5: each
        // draw's variance is that of its flipped rows, to the bit; its sums to rounding.
        let values = [
            1.0, 0.5, 2.0, -1.0, 5.0, 0.25, 0.0, 3.0, 4.0, 1.5, 6.0, -2.0, 3.0, 0.0, 1.0, 2.5,
        ];
        let in_domain = [true, true, true, true, true, false, true, true];
        let signs = [
            1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0, -1.0, 1.0,
        ];
        let design = Design::new(&spec(&PSU, &STRATUM, vec![])).unwrap();
        let (sums, variances) = design
            .sign_flip_variances(&values, 2, Some(&in_domain), &signs)
            .unwrap();
        for (d, sign) in signs.chunks(4).enumerate() {
            let flipped: Vec<f64> = values
                .chunks(2)
                .zip(PSU)
                .flat_map(|(row, u)| row.iter().map(move |v| v * sign[u as usize]))
                .collect();
            let cov = design
                .covariance(Influence::Rows {
                    values: &flipped,
                    p: 2,
                    in_domain: Some(&in_domain),
                })
                .unwrap();
            assert_eq!(variances[d * 2..d * 2 + 2], [cov.matrix[0], cov.matrix[3]]);
            for j in 0..2 {
                let sum: f64 = flipped.iter().skip(j).step_by(2).sum();
                assert!((sums[d * 2 + j] - sum).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn variances_alone_are_the_covariance_diagonal_to_the_bit() {
        // Two stages with fpc at both, a stratum of one PSU (lonely_psu = adjust) and a
        // domain without two rows: the engine's variances-only mode gives the diagonal
        // of the whole covariance of three estimates, bit for bit.
        let psu = [0u32, 0, 1, 1, 2, 2, 2, 3, 3, 4];
        let ssu = [0u32, 1, 2, 2, 3, 4, 4, 5, 6, 7];
        let stratum = [0u32, 0, 0, 0, 1, 1, 1, 1, 1, 2];
        let fpc1 = [10.0; 10];
        let fpc2 = [4.0; 10];
        let design = Design::new(&DesignSpec {
            clusters: vec![Some(&psu), Some(&ssu)],
            strata: vec![&stratum],
            fpc: vec![&fpc1, &fpc2],
            lonely_psu: LonelyPsu::Adjust,
            ..spec(&psu, &[], vec![])
        })
        .unwrap();
        let values: Vec<f64> = (0..30).map(|k| f64::from((k * 7 + 3) % 11) - 4.5).collect();
        let in_domain = [true, true, false, true, true, true, true, false, true, true];
        let rows = || Influence::Rows {
            values: &values,
            p: 3,
            in_domain: Some(&in_domain),
        };
        let whole = variance(&design, rows());
        let alone = design.variances(rows()).unwrap();
        assert_eq!(alone, [whole[0], whole[4], whole[8]]);
        assert!(alone.iter().all(|v| *v > 0.0));
    }

    #[test]
    fn jackknife_of_a_total_equals_its_linearisation_by_hand() {
        // Three PSUs of one row, y = 3, 5, 10, weights 1.  Linearisation of the total:
        // 3/2 ((3-6)^2 + (5-6)^2 + (10-6)^2) = 39.  JK1 replicate totals drop one PSU and
        // weigh the others 3/2: 22.5, 19.5, 12 around 18: 2/3 (20.25 + 2.25 + 36) = 39.
        let y = [3.0, 5.0, 10.0];
        let design = Design::new(&spec(&[0, 1, 2], &[], vec![])).unwrap();
        let linear = Influence::UnitTotals {
            totals: &y,
            p: 1,
            present: None,
        };
        close(&variance(&design, linear), &[39.0]);
        let jk = design.to_replicates(Scheme::Jk1, false, None).unwrap();
        let rep = jk.replicates().unwrap();
        let weights = rep.analysis_weights(&jk.unit_of_row, &jk.weights);
        let thetas: Vec<f64> = (0..3)
            .map(|r| (0..3).map(|i| weights[i * 3 + r] * y[i]).sum())
            .collect();
        close(&thetas, &[22.5, 19.5, 12.0]);
        let replicated = Influence::ReplicateEstimates {
            thetas: &thetas,
            full: &[18.0],
        };
        close(&variance(&jk, replicated), &[39.0]);
        assert_eq!(jk.degf, 2);
    }

    #[test]
    fn influence_of_the_wrong_kind_is_an_error() {
        let design = Design::new(&spec(&[0, 1, 2], &[], vec![])).unwrap();
        let replicated = Influence::ReplicateEstimates {
            thetas: &[1.0, 2.0, 3.0],
            full: &[2.0],
        };
        assert!(matches!(
            design.covariance(replicated),
            Err(CoreError::Design(_))
        ));
        let short = Influence::UnitTotals {
            totals: &[1.0, 2.0],
            p: 1,
            present: None,
        };
        assert!(matches!(design.covariance(short), Err(CoreError::Shape(_))));
        let nan = Influence::Rows {
            values: &[1.0, f64::NAN, 3.0],
            p: 1,
            in_domain: None,
        };
        assert!(matches!(design.covariance(nan), Err(CoreError::Value(_))));
        let jk = design.to_replicates(Scheme::Jk1, false, None).unwrap();
        let totals = Influence::UnitTotals {
            totals: &[1.0, 2.0, 3.0],
            p: 1,
            present: None,
        };
        assert!(matches!(jk.covariance(totals), Err(CoreError::Design(_))));
        let wrong_count = Influence::ReplicateEstimates {
            thetas: &[1.0, 2.0],
            full: &[2.0],
        };
        assert!(matches!(
            jk.covariance(wrong_count),
            Err(CoreError::Shape(_))
        ));
    }
}
