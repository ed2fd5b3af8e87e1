//! Probability sampling: inclusion probabilities proportional to size (with certainty
//! units), and selection within strata by simple random sampling, PPS without
//! replacement (systematic, Brewer's method, Sampford's rejective method) or PPS with
//! replacement, reproducibly from a seed; and joint inclusion probabilities of the
//! systematic and Sampford designs.

use crate::error::{CoreError, Result};
use crate::rng::SplitMix64;

/// Attempts of Sampford's rejective method before it is declared hopeless.
const SAMPFORD_ATTEMPTS: usize = 1_000_000;
/// How far a sum of inclusion probabilities may be from a whole number of units.
const WHOLE: f64 = 1e-6;

/// How units are selected within a stratum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Simple random sampling without replacement.
    Srs,
    /// Systematic PPS: a random start and a fixed interval along the cumulated
    /// probabilities, in the frame's order or (`random_order`) a random one.
    Systematic { random_order: bool },
    /// Brewer's draw-by-draw method (R's `sampling::UPbrewer`).
    Brewer,
    /// Sampford's rejective method (R's `sampling::UPsampford`).
    Sampford,
    /// PPS with replacement: n independent draws with probability size / total.
    PpsWr,
}

impl Method {
    pub fn parse(name: &str) -> Result<Method> {
        Ok(match name {
            "srs" => Method::Srs,
            "systematic" => Method::Systematic {
                random_order: false,
            },
            "systematic_random" => Method::Systematic { random_order: true },
            "brewer" => Method::Brewer,
            "sampford" => Method::Sampford,
            "pps_wr" => Method::PpsWr,
            other => {
                return Err(CoreError::Sampling(format!(
                    "method={other:?} is not 'srs', 'systematic', 'systematic_random', 'brewer', \
                     'sampford' or 'pps_wr'"
                )))
            }
        })
    }
}

/// Inclusion probabilities proportional to `size` for a sample of `n` (R's
/// `sampling::inclusionprobabilities`): a unit whose probability would reach 1 is taken
/// with certainty and the others are recomputed for the rest of the sample.
pub fn pps_probabilities(size: &[f64], n: usize) -> Result<Vec<f64>> {
    check_sizes(size)?;
    let positive = size.iter().filter(|&&s| s > 0.0).count();
    if n > positive {
        return Err(CoreError::Sampling(format!(
            "cannot select {n} units from {positive} with a positive size"
        )));
    }
    let mut prob = vec![0.0; size.len()];
    let mut certain = vec![false; size.len()];
    loop {
        let n_certain = certain.iter().filter(|&&c| c).count();
        let left = (n - n_certain) as f64;
        let total: f64 = size
            .iter()
            .zip(&certain)
            .filter(|(_, &c)| !c)
            .map(|(s, _)| s)
            .sum();
        let mut changed = false;
        for (i, &s) in size.iter().enumerate() {
            if certain[i] {
                prob[i] = 1.0;
                continue;
            }
            prob[i] = if total > 0.0 { left * s / total } else { 0.0 };
            if prob[i] >= 1.0 {
                certain[i] = true;
                changed = true;
            }
        }
        if !changed {
            return Ok(prob);
        }
    }
}

fn check_sizes(size: &[f64]) -> Result<()> {
    if let Some(i) = size.iter().position(|s| !s.is_finite() || *s < 0.0) {
        return Err(CoreError::Sampling(format!(
            "size of unit {i} is {}: sizes must be finite and non-negative",
            size[i]
        )));
    }
    Ok(())
}

/// A selection: the selected units (positions in the frame; repeated for draws with
/// replacement) and every unit's inclusion probability (for PPS with replacement, its
/// expected number of draws n size / total).
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub units: Vec<u32>,
    pub prob: Vec<f64>,
}

/// Select `n[h]` units in each stratum h (`strata`: each unit's stratum code; empty =
/// one stratum).  `size` is the size measure (PPS methods) and unused by SRS.  Each
/// stratum draws from its own stream of `seed`, so one stratum's selection does not
/// depend on the others.
pub fn select(
    size: Option<&[f64]>,
    strata: &[u32],
    n: &[usize],
    method: Method,
    seed: u64,
) -> Result<Selection> {
    let n_units = match size {
        Some(s) => s.len(),
        None => strata.len(),
    };
    if !strata.is_empty() && strata.len() != n_units {
        return Err(CoreError::Shape(format!(
            "strata have {} units, sizes {n_units}",
            strata.len()
        )));
    }
    let members: Vec<Vec<usize>> = {
        let k = strata.iter().map(|&h| h as usize + 1).max().unwrap_or(1);
        let mut m = vec![Vec::new(); k.max(n.len())];
        for i in 0..n_units {
            m[strata.get(i).map_or(0, |&h| h as usize)].push(i);
        }
        m
    };
    if members.len() != n.len() {
        return Err(CoreError::Shape(format!(
            "{} sample sizes for {} strata",
            n.len(),
            members.len()
        )));
    }
    let mut prob = vec![0.0; n_units];
    let mut units = Vec::new();
    for (h, m) in members.iter().enumerate() {
        let mut rng = SplitMix64::stream(seed, h as u64);
        let stratum_size: Option<Vec<f64>> = size.map(|s| m.iter().map(|&i| s[i]).collect());
        let (p, chosen) = select_one(stratum_size.as_deref(), m.len(), n[h], method, &mut rng)
            .map_err(|e| match e {
                CoreError::Sampling(msg) if n.len() > 1 => {
                    CoreError::Sampling(format!("stratum #{h}: {msg}"))
                }
                other => other,
            })?;
        for (&i, pi) in m.iter().zip(p) {
            prob[i] = pi;
        }
        units.extend(chosen.into_iter().map(|k| m[k] as u32));
    }
    Ok(Selection { units, prob })
}

/// One stratum of `count` units: probabilities and the selected positions (0..count).
fn select_one(
    size: Option<&[f64]>,
    count: usize,
    n: usize,
    method: Method,
    rng: &mut SplitMix64,
) -> Result<(Vec<f64>, Vec<usize>)> {
    if method == Method::Srs {
        if n > count {
            return Err(CoreError::Sampling(format!(
                "cannot select {n} units from {count}"
            )));
        }
        return Ok((vec![n as f64 / count as f64; count], srs(count, n, rng)));
    }
    let size =
        size.ok_or_else(|| CoreError::Sampling("PPS selection needs a size measure".into()))?;
    if method == Method::PpsWr {
        check_sizes(size)?;
        let total: f64 = size.iter().sum();
        if n > 0 && total <= 0.0 {
            return Err(CoreError::Sampling(
                "every unit has size 0: nothing can be drawn".into(),
            ));
        }
        let p: Vec<f64> = size.iter().map(|s| s / total).collect();
        let cum = cumulative(&p);
        let draws = (0..n).map(|_| draw(&cum, rng)).collect();
        return Ok((p.iter().map(|v| v * n as f64).collect(), draws));
    }
    let prob = pps_probabilities(size, n)?;
    Ok((prob.clone(), select_with(&prob, method, rng)?))
}

/// Inclusion probabilities must be numbers between 0 and 1.
fn check_probabilities(prob: &[f64]) -> Result<()> {
    if let Some(i) = prob
        .iter()
        .position(|p| !p.is_finite() || *p < 0.0 || *p > 1.0)
    {
        return Err(CoreError::Sampling(format!(
            "inclusion probability of unit {i} is {}, not between 0 and 1",
            prob[i]
        )));
    }
    Ok(())
}

/// Select units with inclusion probabilities `prob` (summing to a whole number):
/// certainty units (probability 1) always, the rest by `method`.
fn select_with(prob: &[f64], method: Method, rng: &mut SplitMix64) -> Result<Vec<usize>> {
    check_probabilities(prob)?;
    let certain: Vec<usize> = (0..prob.len()).filter(|&i| prob[i] >= 1.0).collect();
    let open: Vec<usize> = (0..prob.len())
        .filter(|&i| prob[i] > 0.0 && prob[i] < 1.0)
        .collect();
    let p: Vec<f64> = open.iter().map(|&i| prob[i]).collect();
    let total: f64 = p.iter().sum();
    let n = total.round();
    if (total - n).abs() > WHOLE * n.max(1.0) {
        return Err(CoreError::Sampling(format!(
            "the inclusion probabilities of the units not taken with certainty sum to {total}, \
             not a whole number of units"
        )));
    }
    let n = n as usize;
    let picked = match method {
        Method::Systematic { random_order } => systematic(&p, n, random_order, rng),
        Method::Brewer => brewer(&p, n, rng)?,
        Method::Sampford => sampford(&p, n, rng)?,
        Method::Srs | Method::PpsWr => {
            return Err(CoreError::Sampling(
                "selection with given inclusion probabilities needs 'systematic', 'brewer' or 'sampford'"
                    .into(),
            ))
        }
    };
    let mut out = certain;
    out.extend(picked.into_iter().map(|k| open[k]));
    out.sort_unstable();
    Ok(out)
}

/// n of 0..count without replacement (partial Fisher-Yates), sorted.
fn srs(count: usize, n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut pool: Vec<usize> = (0..count).collect();
    for k in 0..n {
        let j = k + rng.below((count - k) as u64) as usize;
        pool.swap(k, j);
    }
    let mut out = pool[..n].to_vec();
    out.sort_unstable();
    out
}

fn cumulative(p: &[f64]) -> Vec<f64> {
    let mut acc = 0.0;
    p.iter()
        .map(|v| {
            acc += v;
            acc
        })
        .collect()
}

/// One draw from the distribution whose cumulative sums are `cum`.
fn draw(cum: &[f64], rng: &mut SplitMix64) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    let u = rng.uniform() * total;
    cum.partition_point(|&c| c <= u).min(cum.len() - 1)
}

fn systematic(p: &[f64], n: usize, random_order: bool, rng: &mut SplitMix64) -> Vec<usize> {
    let order: Vec<usize> = if random_order {
        let mut o: Vec<usize> = (0..p.len()).collect();
        for k in (1..o.len()).rev() {
            o.swap(k, rng.below(k as u64 + 1) as usize);
        }
        o
    } else {
        (0..p.len()).collect()
    };
    let u = rng.uniform();
    let mut out = Vec::with_capacity(n);
    let mut cum = 0.0;
    for (pos, &k) in order.iter().enumerate() {
        let lo = cum;
        // The last unit ends exactly at n, so that exactly n points u, u+1, ... fall in.
        cum = if pos + 1 == order.len() {
            n as f64
        } else {
            cum + p[k]
        };
        if (cum - u).floor() > (lo - u).floor() {
            out.push(k);
        }
    }
    out
}

/// Brewer's method: n draws, draw i taking unselected unit k with probability
/// proportional to p_k (n - a - p_k) / (n - a - p_k (n - i + 1)), a the sum of the
/// selected units' probabilities (Brewer 1975; Tillé 2006, *Sampling Algorithms*,
/// ch. 7; R's `UPbrewer`).
fn brewer(p: &[f64], n: usize, rng: &mut SplitMix64) -> Result<Vec<usize>> {
    let mut taken = vec![false; p.len()];
    let mut out = Vec::with_capacity(n);
    let mut a = 0.0;
    let mut weight = vec![0.0; p.len()];
    for i in 1..=n {
        let rest = n as f64 - a;
        for (k, w) in weight.iter_mut().enumerate() {
            *w = if taken[k] {
                0.0
            } else {
                p[k] * (rest - p[k]) / (rest - p[k] * (n - i + 1) as f64)
            };
        }
        if weight.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(CoreError::Sampling(
                "Brewer's method met a probability too close to 1; take such units with certainty"
                    .into(),
            ));
        }
        let k = draw(&cumulative(&weight), rng);
        taken[k] = true;
        a += p[k];
        out.push(k);
    }
    Ok(out)
}

/// Sampford's rejective method: a first draw with probability p / n, n - 1 more with
/// replacement with probability proportional to p / (1 - p); the sample is kept when all
/// n units differ (Sampford 1967).
fn sampford(p: &[f64], n: usize, rng: &mut SplitMix64) -> Result<Vec<usize>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let first = cumulative(p);
    let odds: Vec<f64> = p.iter().map(|v| v / (1.0 - v)).collect();
    let rest = cumulative(&odds);
    let mut seen = vec![false; p.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..SAMPFORD_ATTEMPTS {
        for &k in &out {
            seen[k] = false;
        }
        out.clear();
        let k = draw(&first, rng);
        seen[k] = true;
        out.push(k);
        while out.len() < n {
            let k = draw(&rest, rng);
            if seen[k] {
                break;
            }
            seen[k] = true;
            out.push(k);
        }
        if out.len() == n {
            return Ok(out);
        }
    }
    Err(CoreError::Sampling(format!(
        "Sampford's method rejected {SAMPFORD_ATTEMPTS} samples in a row (probabilities close to \
         1); use 'brewer' or take the largest units with certainty"
    )))
}

/// Which design's joint inclusion probabilities to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joint {
    /// Systematic selection in the given order.
    Systematic,
    Sampford,
}

/// Joint inclusion probabilities pi_ij (N x N, row-major; pi_i on the diagonal) of the
/// design selecting with inclusion probabilities `prob` (certainty units included).
pub fn joint_probabilities(prob: &[f64], design: Joint) -> Result<Vec<f64>> {
    let n_units = prob.len();
    check_probabilities(prob)?;
    let mut out = vec![0.0; n_units * n_units];
    match design {
        Joint::Systematic => systematic_joint(prob, &mut out),
        Joint::Sampford => sampford_joint(prob, &mut out)?,
    }
    Ok(out)
}

/// Unit i is selected when the random start u lies in [frac(V_{i-1}), frac(V_{i-1}) + pi_i)
/// modulo 1 (V the cumulated probabilities): pi_ij is the length where both sets meet.
fn systematic_joint(prob: &[f64], out: &mut [f64]) {
    let n_units = prob.len();
    let mut start = Vec::with_capacity(n_units);
    let mut cum = 0.0f64;
    for &p in prob {
        start.push(cum - cum.floor());
        cum += p;
    }
    let pieces = |i: usize| -> [(f64, f64); 2] {
        if prob[i] >= 1.0 {
            return [(0.0, 1.0), (0.0, 0.0)];
        }
        let (a, b) = (start[i], start[i] + prob[i]);
        if b <= 1.0 {
            [(a, b), (0.0, 0.0)]
        } else {
            [(a, 1.0), (0.0, b - 1.0)]
        }
    };
    for i in 0..n_units {
        let pi = pieces(i);
        for j in 0..n_units {
            let pj = pieces(j);
            let mut len = 0.0;
            for (a, b) in pi {
                for (c, d) in pj {
                    len += (b.min(d) - a.max(c)).max(0.0);
                }
            }
            out[i * n_units + j] = len;
        }
    }
}

/// Sampford's design gives sample s probability C prod_{k in s} lambda_k (n - sum_{k in s}
/// pi_k), lambda = pi / (1 - pi); summing over the samples that hold i and j,
/// pi_ij = C lambda_i lambda_j [(n - pi_i - pi_j) e_{n-2} - f_{n-2}] over the other units,
/// with e_m the elementary symmetric polynomials of lambda and f_m their pi-weighted
/// version.  Units taken with certainty (pi = 1) join every sample.  Each pair costs a
/// pass over the units, O(N^3 n) in all: meant for frames of up to a few hundred units.
fn sampford_joint(prob: &[f64], out: &mut [f64]) -> Result<()> {
    let n_units = prob.len();
    let open: Vec<usize> = (0..n_units)
        .filter(|&i| prob[i] > 0.0 && prob[i] < 1.0)
        .collect();
    let p: Vec<f64> = open.iter().map(|&i| prob[i]).collect();
    let n = p.iter().sum::<f64>().round() as usize;
    let lambda: Vec<f64> = p.iter().map(|v| v / (1.0 - v)).collect();
    // Polynomials e_m, f_m (m = 0..=n) over the units `keep` marks.
    let polys = |keep: &dyn Fn(usize) -> bool| -> (Vec<f64>, Vec<f64>) {
        let mut e = vec![0.0; n + 1];
        let mut f = vec![0.0; n + 1];
        e[0] = 1.0;
        for k in (0..p.len()).filter(|&k| keep(k)) {
            for m in (1..=n).rev() {
                f[m] += lambda[k] * (f[m - 1] + p[k] * e[m - 1]);
                e[m] += lambda[k] * e[m - 1];
            }
        }
        (e, f)
    };
    let (e, f) = polys(&|_| true);
    let norm = n as f64 * e[n] - f[n];
    for (a, &i) in open.iter().enumerate() {
        for (b, &j) in open.iter().enumerate().skip(a + 1) {
            let v = if n >= 2 {
                let (e, f) = polys(&|k| k != a && k != b);
                lambda[a] * lambda[b] * ((n as f64 - p[a] - p[b]) * e[n - 2] - f[n - 2]) / norm
            } else {
                0.0
            };
            out[i * n_units + j] = v;
            out[j * n_units + i] = v;
        }
    }
    for i in 0..n_units {
        for j in 0..n_units {
            if i == j {
                out[i * n_units + j] = prob[i];
            } else if prob[i] >= 1.0 || prob[j] >= 1.0 {
                // A certainty unit is in every sample: pi_ij is the other unit's pi.
                out[i * n_units + j] = prob[i].min(prob[j]);
            }
        }
    }
    // Each row of an exact design sums to (n_total - 1) pi_i off the diagonal.
    let n_total: f64 = prob.iter().sum();
    for &i in &open {
        let off: f64 = (0..n_units)
            .filter(|&j| j != i)
            .map(|j| out[i * n_units + j])
            .sum();
        let want = (n_total - 1.0) * prob[i];
        if (off - want).abs() > 1e-8 * want.max(1.0) {
            return Err(CoreError::Sampling(format!(
                "Sampford joint probabilities lost precision (row {i} sums to {off}, not {want})"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certainty_units_are_taken_out() {
        let p = pps_probabilities(&[50.0, 10.0, 10.0, 20.0, 10.0], 3).unwrap();
        // 3 * 50 / 100 >= 1: certainty; the other 2 go by size 10:10:20:10.
        assert_eq!(p, vec![1.0, 0.4, 0.4, 0.8, 0.4]);
        assert!(pps_probabilities(&[1.0, 0.0, 0.0], 2).is_err());
        assert!(pps_probabilities(&[1.0, -1.0, 3.0], 1).is_err());
    }

    #[test]
    fn fixed_size_and_reproducible() {
        let size: Vec<f64> = (1..=20).map(f64::from).collect();
        for method in [
            Method::Systematic { random_order: true },
            Method::Brewer,
            Method::Sampford,
        ] {
            let a = select(Some(&size), &[], &[6], method, 11).unwrap();
            let b = select(Some(&size), &[], &[6], method, 11).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.units.len(), 6);
            let mut u = a.units.clone();
            u.dedup();
            assert_eq!(u.len(), 6, "{method:?}");
        }
    }

    /// Sampford's pi_ij by enumerating every sample of 2 from 4 units.
    #[test]
    fn sampford_joint_matches_enumeration() {
        let prob = [0.2, 0.4, 0.6, 0.8];
        let lambda: Vec<f64> = prob.iter().map(|p| p / (1.0 - p)).collect();
        let mut weight = [[0.0; 4]; 4];
        let mut total = 0.0;
        for i in 0..4 {
            for j in i + 1..4 {
                let w = lambda[i] * lambda[j] * (2.0 - prob[i] - prob[j]);
                weight[i][j] = w;
                total += w;
            }
        }
        let joint = joint_probabilities(&prob, Joint::Sampford).unwrap();
        for i in 0..4 {
            for j in i + 1..4 {
                assert!((joint[i * 4 + j] - weight[i][j] / total).abs() < 1e-14);
            }
        }
        // First-order probabilities are reproduced.
        for i in 0..4 {
            let s: f64 = (0..4).filter(|&j| j != i).map(|j| joint[i * 4 + j]).sum();
            assert!((s - prob[i]).abs() < 1e-14);
        }
    }

    #[test]
    fn systematic_joint_of_a_simple_frame() {
        // Probabilities 0.5 each, n = 2 of 4 in order: units 0 and 2 always together.
        let joint = joint_probabilities(&[0.5; 4], Joint::Systematic).unwrap();
        assert_eq!(joint[2], 0.5);
        assert_eq!(joint[1], 0.0);
    }
}
