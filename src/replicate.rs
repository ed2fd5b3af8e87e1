//! Replicate weights: jackknife (JK1, JKn), BRR and Fay's BRR on Hadamard matrices built
//! as R builds them, and the bootstrap (mirrors `survey::as.svrepdesign`).  The replicate
//! variance they give is the variance engine's (`variance::replicate_covariance`).

use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::rng::SplitMix64;
use crate::variance::LonelyPsu;
/// The replicate weights built here, and the replicate variance they give, belong to the
/// variance engine.
pub use crate::variance::{replicate_covariance, Replicates};

/// Each replicate's weights (column r of `weights`, n rows x `n_replicates`, row-major)
/// handed to `refit(r, weights)`, the replicates in parallel: the one loop over the
/// replicates of the estimators refitted per replicate (GLM, Cox).  The results are in
/// replicate order; an error is the first replicate's, whatever the threads.
pub fn refit_replicates<T, F>(
    weights: &[f64],
    n: usize,
    n_replicates: usize,
    refit: F,
) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(usize, Vec<f64>) -> Result<T> + Sync,
{
    if weights.len() != n * n_replicates {
        return Err(CoreError::Shape(format!(
            "replicate weights have {} values, expected {n} rows x {n_replicates}",
            weights.len()
        )));
    }
    let fits: Vec<Result<T>> = (0..n_replicates)
        .into_par_iter()
        .map(|r| refit(r, (0..n).map(|i| weights[i * n_replicates + r]).collect()))
        .collect();
    fits.into_iter().collect()
}

/// Rank of analysis weights (n x k, row-major), from their Gram matrix (R's `degf`
/// of a replicate design is this rank minus one).
pub fn analysis_rank(rows: &[f64], k: usize) -> usize {
    let n = rows.len().checked_div(k).unwrap_or(0);
    if n < k {
        // More replicates than rows (a large bootstrap of a small design): the rank is
        // that of the n x n Gram of the rows, which needs n^2 memory, not k^2.
        let mut gram = vec![0.0; n * n];
        for (a, ra) in rows.chunks_exact(k).enumerate() {
            for (b, rb) in rows.chunks_exact(k).enumerate().take(a + 1) {
                let dot: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
                gram[a * n + b] = dot;
                gram[b * n + a] = dot;
            }
        }
        return gram_rank(&gram, n);
    }
    let mut gram = vec![0.0; k * k];
    for row in rows.chunks_exact(k) {
        for i in 0..k {
            for j in 0..k {
                gram[i * k + j] += row[i] * row[j];
            }
        }
    }
    gram_rank(&gram, k)
}

/// Rank of the analysis-weight matrix from its Gram matrix (R's `qr(..., tol=1e-5)$rank`,
/// which moves a column aside when its remaining norm falls below tol times its own).
pub fn gram_rank(gram: &[f64], k: usize) -> usize {
    let tol = 1e-5;
    let mut basis: Vec<Vec<f64>> = Vec::new(); // rows of L for accepted columns
    let mut accepted: Vec<usize> = Vec::new();
    for j in 0..k {
        let norm2 = gram[j * k + j];
        if norm2 <= 0.0 {
            continue;
        }
        // Coefficients of column j on the accepted orthonormal directions.
        let mut coef = Vec::with_capacity(accepted.len());
        for (a, &c) in accepted.iter().enumerate() {
            let dot = gram[c * k + j] - (0..a).map(|b| basis[a][b] * coef[b]).sum::<f64>();
            coef.push(dot / basis[a][a]);
        }
        let rest = norm2 - coef.iter().map(|c| c * c).sum::<f64>();
        if rest > tol * tol * norm2 {
            let mut row = coef;
            row.push(rest.sqrt());
            basis.push(row);
            accepted.push(j);
        }
    }
    accepted.len()
}

/// The first-stage layout a replicate scheme is built on: each PSU's stratum and
/// population size (infinite when no fpc).
pub struct PsuLayout<'a> {
    pub stratum: &'a [u32],
    pub popsize: &'a [f64],
    pub n_strata: usize,
    /// Every PSU once, in the order R's `brrweights` pairs them: strata sorted by their
    /// labels as text, PSUs within a stratum in order of first appearance in the data.
    pub r_order: &'a [usize],
}

/// R's `brrweights(small=)`: what BRR does with a stratum of one PSU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrrSmall {
    Fail,
    /// Each lonely PSU is its own half-sample pair, weighted 1 in every replicate.
    Split,
    /// Lonely PSUs are paired with each other into pseudo-strata.
    Merge,
}

/// R's `brrweights(large=)`: what BRR does with a stratum of more than two PSUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrrLarge {
    /// Consecutive PSUs form pseudo-strata of two (an even number of PSUs is needed).
    Split,
    /// Each stratum is one pseudo-stratum, its first half against its second half.
    Merge,
    Fail,
}

/// The replicate scheme a linearisation design is turned into.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scheme {
    Jk1,
    Jkn,
    /// Fay's BRR with `rho` (0 = plain BRR).
    Brr {
        rho: f64,
        small: BrrSmall,
        large: BrrLarge,
    },
    /// R's `bootweights`: n_h PSUs drawn with replacement in each stratum.
    Bootstrap {
        replicates: usize,
        seed: u64,
    },
    /// R's `subbootweights`: n_h - 1 PSUs drawn, counts times n_h / (n_h - 1).
    Subbootstrap {
        replicates: usize,
        seed: u64,
    },
}

/// Per-PSU multipliers (n_psu x R, row-major), scale and rscales of a scheme.
pub fn build(
    scheme: Scheme,
    psus: &PsuLayout,
    lonely: LonelyPsu,
    has_strata: bool,
    mse: bool,
) -> Result<Replicates> {
    let n = psus.stratum.len();
    let members: Vec<Vec<usize>> = {
        let mut m = vec![Vec::new(); psus.n_strata];
        for (i, &h) in psus.stratum.iter().enumerate() {
            m[h as usize].push(i);
        }
        m
    };
    let (factors, n_rep, scale, rscales) = match scheme {
        Scheme::Jk1 => {
            if has_strata {
                return Err(CoreError::Design(
                    "JK1 is for unstratified designs; use type='JKn'".into(),
                ));
            }
            let pop = psus.popsize[0];
            let f = if pop.is_infinite() {
                1.0
            } else {
                (pop - n as f64) / pop
            };
            let mut fac = vec![n as f64 / (n as f64 - 1.0); n * n];
            for i in 0..n {
                fac[i * n + i] = 0.0;
            }
            (fac, n, f * (n as f64 - 1.0) / n as f64, vec![1.0; n])
        }
        Scheme::Jkn => jkn(psus, &members, lonely)?,
        Scheme::Brr { rho, small, large } => {
            if !has_strata {
                return Err(CoreError::Design(
                    "BRR and Fay need strata; use type='JK1' or 'bootstrap' for an unstratified design"
                        .into(),
                ));
            }
            brr(psus, rho, small, large)?
        }
        Scheme::Bootstrap { replicates, seed } | Scheme::Subbootstrap { replicates, seed } => {
            let sub = matches!(scheme, Scheme::Subbootstrap { .. });
            bootstrap(psus, &members, replicates, seed, sub)?
        }
    };
    let rep = Replicates {
        factors,
        per_unit: true,
        n_replicates: n_rep,
        scale,
        rscales,
        mse,
    };
    rep.validate(n)?;
    Ok(rep)
}

type Built = (Vec<f64>, usize, f64, Vec<f64>);

/// R's `jknweights`: one replicate per PSU, dropping it and reweighting its stratum.
fn jkn(psus: &PsuLayout, members: &[Vec<usize>], lonely: LonelyPsu) -> Result<Built> {
    let n = psus.stratum.len();
    let n_strata = members.iter().filter(|m| !m.is_empty()).count();
    let mut columns: Vec<Vec<f64>> = Vec::new();
    let mut rscales = Vec::new();
    for (h, m) in members.iter().enumerate() {
        let nh = m.len();
        if nh == 0 {
            continue;
        }
        let pop = psus.popsize[m[0]];
        let f = if pop.is_infinite() {
            1.0
        } else {
            (pop - nh as f64) / pop
        };
        if f == 0.0 {
            continue; // a stratum sampled completely has no replicates (survey.drop.replicates)
        }
        if nh == 1 {
            match lonely {
                LonelyPsu::Fail => {
                    return Err(CoreError::LonelyPsu {
                        stratum: h as u32,
                        stage: 1,
                    })
                }
                LonelyPsu::Adjust => {
                    let other = n_strata as f64 / (n_strata as f64 - 1.0);
                    columns.push(
                        (0..n)
                            .map(|i| {
                                if psus.stratum[i] as usize == h {
                                    0.0
                                } else {
                                    other
                                }
                            })
                            .collect(),
                    );
                    rscales.push((n_strata as f64 - 1.0) / n_strata as f64);
                }
                _ => {}
            }
            continue;
        }
        for &drop in m {
            let mut col = vec![1.0; n];
            for &i in m {
                col[i] = if i == drop {
                    0.0
                } else {
                    nh as f64 / (nh as f64 - 1.0)
                };
            }
            columns.push(col);
            rscales.push(f * (nh as f64 - 1.0) / nh as f64);
        }
    }
    if columns.is_empty() {
        return Err(CoreError::Design(
            "every stratum was sampled completely: there is no sampling variance".into(),
        ));
    }
    let mut scale = 1.0;
    if lonely == LonelyPsu::Average && columns.len() < n {
        scale = n as f64 / columns.len() as f64;
    }
    let r = columns.len();
    let mut fac = vec![0.0; n * r];
    for (j, col) in columns.iter().enumerate() {
        for i in 0..n {
            fac[i * r + j] = col[i];
        }
    }
    Ok((fac, r, scale, rscales))
}

/// R's `brrweights` with `fay.rho`, `small` and `large`: pseudo-strata of two halves,
/// numbered as R numbers them (lonely PSUs, then large strata, then strata of two, each
/// in the text order of the stratum labels), so that pseudo-stratum k takes row k + 1 of
/// R's Hadamard matrix.
fn brr(psus: &PsuLayout, rho: f64, small: BrrSmall, large: BrrLarge) -> Result<Built> {
    if !(0.0..1.0).contains(&rho) {
        return Err(CoreError::Design(format!(
            "Fay's rho must be in [0, 1), not {rho}"
        )));
    }
    let n = psus.stratum.len();
    if psus.r_order.len() != n {
        return Err(CoreError::Shape(format!(
            "the BRR order lists {} PSUs, the design has {n}",
            psus.r_order.len()
        )));
    }
    // The strata as runs of PSUs in R's order.
    let runs: Vec<&[usize]> = psus
        .r_order
        .chunk_by(|&a, &b| psus.stratum[a] == psus.stratum[b])
        .collect();
    if runs.len() != psus.n_strata {
        return Err(CoreError::Design(
            "the BRR order does not keep the PSUs of a stratum together".into(),
        ));
    }
    let lonely: Vec<usize> = runs.iter().filter(|r| r.len() == 1).map(|r| r[0]).collect();
    if !lonely.is_empty() && small == BrrSmall::Fail {
        return Err(CoreError::Design(
            "BRR: some strata have fewer than 2 PSUs; set small='split' or 'merge'".into(),
        ));
    }
    if runs.iter().any(|r| r.len() > 2) && large == BrrLarge::Fail {
        return Err(CoreError::Design(
            "BRR: some strata have more than 2 PSUs; set large='split' or 'merge'".into(),
        ));
    }
    // R's weights[, 1] of each PSU (weights[, 2] is 1 minus it) and its pseudo-stratum.
    let mut first = vec![0.0; n];
    let mut pseudo = vec![0usize; n];
    let mut upto = 0;
    if !lonely.is_empty() {
        if small == BrrSmall::Split {
            for (k, &u) in lonely.iter().enumerate() {
                first[u] = 0.5;
                pseudo[u] = k;
            }
            upto = lonely.len();
        } else {
            let k = lonely.len();
            if k == 1 {
                return Err(CoreError::Design(
                    "BRR: cannot merge a single stratum of one PSU; set small='split'".into(),
                ));
            }
            let half = k / 2;
            for (j, &u) in lonely.iter().enumerate() {
                first[u] = (j % 2) as f64;
                // R: rep(1:(k/2), 2) for even k, c(1, rep(1:(k%/%2), 2)) for odd k.
                pseudo[u] = if k % 2 == 0 {
                    j % half
                } else if j == 0 {
                    0
                } else {
                    (j - 1) % half
                };
            }
            upto = half;
        }
    }
    let big: Vec<&[usize]> = runs.iter().filter(|r| r.len() > 2).copied().collect();
    if large == BrrLarge::Split {
        if big.iter().any(|r| r.len() % 2 == 1) {
            return Err(CoreError::Design(
                "BRR cannot split a stratum with an odd number of PSUs; set large='merge'".into(),
            ));
        }
        for run in &big {
            for (j, &u) in run.iter().enumerate() {
                first[u] = (j % 2) as f64;
                pseudo[u] = upto + j / 2;
            }
            upto += run.len() / 2;
        }
    } else {
        for (k, run) in big.iter().enumerate() {
            for (j, &u) in run.iter().enumerate() {
                first[u] = if j < run.len() / 2 { 0.0 } else { 1.0 };
                pseudo[u] = upto + k;
            }
        }
        upto += big.len();
    }
    for run in runs.iter().filter(|r| r.len() == 2) {
        first[run[0]] = 0.0;
        first[run[1]] = 1.0;
        pseudo[run[0]] = upto;
        pseudo[run[1]] = upto;
        upto += 1;
    }
    if upto == 0 {
        return Err(CoreError::Design("BRR needs at least one stratum".into()));
    }
    let hmat = hadamard(upto);
    let r = hmat.len();
    let mut fac = vec![0.0; n * r];
    for u in 0..n {
        let (a, b) = (first[u], 1.0 - first[u]);
        for rep in 0..r {
            // H = 0 takes weights[, 1] as the half given 2 - rho, H = 1 weights[, 2].
            let (main, other) = if hmat[pseudo[u] + 1][rep] {
                (b, a)
            } else {
                (a, b)
            };
            fac[u * r + rep] = main * (2.0 - rho) + other * rho;
        }
    }
    Ok((fac, r, 1.0 / (r as f64 * (1.0 - rho).powi(2)), vec![1.0; r]))
}

/// R's `bootweights` / `subbootweights`, with a counter-based generator so that the
/// same seed gives the same weights on any machine and thread count.
fn bootstrap(
    psus: &PsuLayout,
    members: &[Vec<usize>],
    replicates: usize,
    seed: u64,
    sub: bool,
) -> Result<Built> {
    if replicates < 2 {
        return Err(CoreError::Design(
            "the bootstrap needs at least 2 replicates".into(),
        ));
    }
    let n = psus.stratum.len();
    let mut fac = vec![0.0; n * replicates];
    for (h, m) in members.iter().enumerate() {
        let nh = m.len();
        if nh == 0 {
            continue;
        }
        if nh == 1 {
            return Err(CoreError::LonelyPsu {
                stratum: h as u32,
                stage: 1,
            });
        }
        let pop = psus.popsize[m[0]];
        for rep in 0..replicates {
            let mut rng = SplitMix64::new(
                seed ^ (h as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((rep as u64) << 32),
            );
            let draws = if sub { nh - 1 } else { nh };
            for _ in 0..draws {
                // Without fpc: PSUs with replacement.  With fpc (R): draw from the PSUs
                // repeated up to the population size, without replacement.
                let pick = if pop.is_infinite() || sub {
                    m[rng.below(nh as u64) as usize]
                } else {
                    m[rng.below(pop as u64) as usize % nh]
                };
                fac[pick * replicates + rep] += if sub {
                    nh as f64 / (nh as f64 - 1.0)
                } else {
                    1.0
                };
            }
        }
    }
    let scale = if sub {
        1.0 / (replicates as f64 - 1.0)
    } else {
        let sizes: Vec<f64> = members
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| m.len() as f64)
            .collect();
        let harmonic = sizes.len() as f64 / sizes.iter().map(|s| 1.0 / s).sum::<f64>();
        harmonic / ((harmonic - 1.0) * (replicates as f64 - 1.0))
    };
    Ok((fac, replicates, scale, vec![1.0; replicates]))
}

/// R's precooked Hadamard matrices (`survey:::hadamard.list`), 0/1 entries, row by row.
const PRECOOKED: [&[&str]; 4] = [
    &["1111", "1010", "1100", "1001"],
    &[
        "1111111111111111",
        "1010101010101010",
        "1100110011001100",
        "1001100110011001",
        "1111000011110000",
        "1010010110100101",
        "1100001111000011",
        "1001011010010110",
        "1111111100000000",
        "1010101001010101",
        "1100110000110011",
        "1001100101100110",
        "1111000000001111",
        "1010010101011010",
        "1100001100111100",
        "1001011001101001",
    ],
    &[
        "1111111111111111111111111111",
        "1001110001110001110001111000",
        "1000001111001101001101111000",
        "1000001110110010111001100110",
        "1001101000001111100011010110",
        "1001010100101100010110101110",
        "1000110011010010001110011110",
        "0101100010101010011111110000",
        "0100010110110101100111010100",
        "0100011011001011110010101100",
        "0101011000010111011101001010",
        "0100101101100100111010011010",
        "0101100101011001101100100110",
        "0010110100011110101011101000",
        "0011011001100110101100110100",
        "0010101100111011010100011100",
        "0011000111010111010010110010",
        "0011001011111000100111001010",
        "0010110011101101011001000110",
        "1110101001010100010111100100",
        "1111000101100011001011001100",
        "1111000010011100111000011100",
        "1110010101001010110101010010",
        "1110011000111001001010110010",
        "1110100010100111100100101010",
        "1101111111111110000000000000",
        "1011111110000001111110000000",
        "0111111110000000000001111110",
    ],
    &[
        "111111111111111111111111111111111111",
        "010111000111110111001000010101100100",
        "101110001111101110010000101011001000",
        "011100011111011100100001010110010010",
        "111000111110111001000010101100100100",
        "110001111101110010000101011001001010",
        "100011111011100100001010110010010110",
        "000111110111001000010101100100101110",
        "001111101110010000101011001001011100",
        "011111011100100001010110010010111000",
        "111110111001000010101100100101110000",
        "111101110010000101011001001011100010",
        "111011100100001010110010010111000110",
        "110111001000010101100100101110001110",
        "101110010000101011001001011100011110",
        "011100100001010110010010111000111110",
        "111001000010101100100101110001111100",
        "110010000101011001001011100011111010",
        "100100001010110010010111000111110110",
        "001000010101100100101110001111101110",
        "010000101011001001011100011111011100",
        "100001010110010010111000111110111000",
        "000010101100100101110001111101110010",
        "000101011001001011100011111011100100",
        "001010110010010111000111110111001000",
        "010101100100101110001111101110010000",
        "101011001001011100011111011100100000",
        "010110010010111000111110111001000010",
        "101100100101110001111101110010000100",
        "011001001011100011111011100100001010",
        "110010010111000111110111001000010100",
        "100100101110001111101110010000101010",
        "001001011100011111011100100001010110",
        "010010111000111110111001000010101100",
        "100101110001111101110010000101011000",
        "001011100011111011100100001010110010",
    ],
];

const PRECOOKED_SIZES: [usize; 4] = [4, 16, 28, 36];

fn precooked(i: usize) -> Vec<Vec<bool>> {
    PRECOOKED[i]
        .iter()
        .map(|row| row.bytes().map(|b| b == b'1').collect())
        .collect()
}

fn doubled(h: &[Vec<bool>]) -> Vec<Vec<bool>> {
    let mut out: Vec<Vec<bool>> = h
        .iter()
        .map(|row| row.iter().chain(row.iter()).copied().collect())
        .collect();
    out.extend(
        h.iter()
            .map(|row| row.iter().copied().chain(row.iter().map(|&b| !b)).collect()),
    );
    out
}

/// R's `hadamard(n)`: a 0/1 Hadamard matrix with more than n rows, chosen exactly as
/// R chooses it (precooked sizes, Paley's construction, or doubling).
pub fn hadamard(n: usize) -> Vec<Vec<bool>> {
    let m = n - n % 4;
    if let Some(i) = (0..4).find(|&i| m < PRECOOKED_SIZES[i] && m + 4 >= PRECOOKED_SIZES[i]) {
        return precooked(i);
    }
    if PRECOOKED_SIZES.iter().all(|&s| m < s) {
        return precooked(0);
    }
    let sizes: Vec<usize> = PRECOOKED_SIZES
        .iter()
        .map(|&s| {
            let k = ((n as f64 + 1.0) / s as f64).log2().ceil().max(0.0) as u32;
            s << k
        })
        .collect();
    let best = (0..4)
        .min_by_key(|&i| sizes[i] as i64 - n as i64)
        .unwrap_or(0);
    if sizes[best] - n > 4 {
        if let Some(h) = paley(n, sizes[best]) {
            return h;
        }
    }
    let doublings = (sizes[best] / PRECOOKED_SIZES[best]).trailing_zeros();
    let mut h = precooked(best);
    for _ in 0..doublings {
        h = doubled(&h);
    }
    h
}

fn is_prime(p: usize) -> bool {
    p >= 2 && (2..=p.isqrt()).all(|d| p % d != 0)
}

/// R's `paley(n, nmax)` for primes p with p + 1 divisible by 4 (up to 7919, as R's list).
fn paley(n: usize, nmax: usize) -> Option<Vec<Vec<bool>>> {
    let good_prime = |p: usize| p <= 7919 && p % 4 == 3 && is_prime(p);
    let nceil = n + 4 - n % 4;
    if n % 4 + 4 == n % 8 {
        let mut nn = nceil;
        while nn % 8 == 0 {
            nn /= 2;
        }
        if good_prime(nn - 1) {
            let mut m = paley_prime(nn - 1);
            while nn < nceil {
                m = doubled(&m);
                nn *= 2;
            }
            return Some(m);
        }
    }
    if n > 7919 {
        return None;
    }
    let p = (n..=7919).find(|&p| good_prime(p))?;
    if p + 1 > nceil + 4 && nceil + 4 < nmax {
        return paley(nceil + 3, 2 * (nceil + 3));
    }
    if p > nmax {
        return None;
    }
    Some(paley_prime(p))
}

/// Paley's construction on GF(p): quadratic residues give the 0 entries.
fn paley_prime(p: usize) -> Vec<Vec<bool>> {
    let mut residues = vec![false; p];
    residues[0] = true;
    residues[1] = true;
    for i in 2..=(p - 1) / 2 {
        residues[(i * i) % p] = true;
    }
    let mut h = vec![vec![true; p + 1]];
    for i in 0..p {
        let mut row = vec![true];
        row.extend((0..p).map(|j| !residues[(i + j) % p]));
        h.push(row);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refits_each_replicate_column_in_order() {
        // 3 rows x 2 replicates, row-major: column 0 is (1, 2, 3), column 1 (4, 5, 6).
        let weights = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
        let sums = refit_replicates(&weights, 3, 2, |r, w| Ok((r, w.iter().sum::<f64>()))).unwrap();
        assert_eq!(sums, vec![(0, 6.0), (1, 15.0)]);
        let err = refit_replicates(&weights, 4, 2, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("expected 4 rows x 2"));
        let first: Result<Vec<()>> =
            refit_replicates(&weights, 3, 2, |r, _| Err(CoreError::Value(format!("{r}"))));
        assert_eq!(
            first.unwrap_err().to_string(),
            CoreError::Value("0".into()).to_string()
        );
    }

    fn is_hadamard(h: &[Vec<bool>]) -> bool {
        let n = h.len();
        (0..n).all(|i| {
            (0..n).all(|j| {
                let dot: i64 = (0..n)
                    .map(|k| if h[i][k] == h[j][k] { 1 } else { -1 })
                    .sum();
                dot == if i == j { n as i64 } else { 0 }
            })
        })
    }

    #[test]
    fn hadamard_sizes_follow_r() {
        // R: nrow(survey:::hadamard(n)) for these n.
        for (n, size) in [
            (1, 4),
            (3, 4),
            (4, 8),
            (7, 8),
            (12, 16),
            (15, 16),
            (20, 24),
            (27, 28),
            (35, 36),
            (40, 44),
            (60, 64),
        ] {
            let h = hadamard(n);
            assert_eq!(h.len(), size, "n = {n}");
            assert!(is_hadamard(&h), "n = {n}");
        }
    }

    #[test]
    fn hadamard_matrices_are_r_s() {
        // survey:::hadamard(n) printed by R 4.2 / survey 4.1.1 (Paley, Paley doubled, precooked doubled).
        for (n, rows) in [(20, "111111111111111111111111,100100011101100100011101,101000111010101000111010,110001110100110001110100,100011101001100011101001,100111010010100111010010,101110100100101110100100,111101001000111101001000,111010010001111010010001,110100100011110100100011,101001000111101001000111,110010001110110010001110,111111111111000000000000,100100011101011011100010,101000111010010111000101,110001110100001110001011,100011101001011100010110,100111010010011000101101,101110100100010001011011,111101001000000010110111,111010010001000101101110,110100100011001011011100,101001000111010110111000,110010001110001101110001"), (40, "11111111111111111111111111111111111111111111,10011010110001000001110100011111011100101001,10110101100010000011101000111110111001010010,11101011000100000111010001111101110010100100,11010110001000001110100011111011100101001001,10101100010000011101000111110111001010010011,11011000100000111010001111101110010100100110,10110001000001110100011111011100101001001101,11100010000011101000111110111001010010011010,11000100000111010001111101110010100100110101,10001000001110100011111011100101001001101011,10010000011101000111110111001010010011010110,10100000111010001111101110010100100110101100,11000001110100011111011100101001001101011000,10000011101000111110111001010010011010110001,10000111010001111101110010100100110101100010,10001110100011111011100101001001101011000100,10011101000111110111001010010011010110001000,10111010001111101110010100100110101100010000,11110100011111011100101001001101011000100000,11101000111110111001010010011010110001000001,11010001111101110010100100110101100010000011,10100011111011100101001001101011000100000111,11000111110111001010010011010110001000001110,10001111101110010100100110101100010000011101,10011111011100101001001101011000100000111010,10111110111001010010011010110001000001110100,11111101110010100100110101100010000011101000,11111011100101001001101011000100000111010001,11110111001010010011010110001000001110100011,11101110010100100110101100010000011101000111,11011100101001001101011000100000111010001111,10111001010010011010110001000001110100011111,11110010100100110101100010000011101000111110,11100101001001101011000100000111010001111101,11001010010011010110001000001110100011111011,10010100100110101100010000011101000111110111,10101001001101011000100000111010001111101110,11010010011010110001000001110100011111011100,10100100110101100010000011101000111110111001,11001001101011000100000111010001111101110010,10010011010110001000001110100011111011100101,10100110101100010000011101000111110111001010,11001101011000100000111010001111101110010100"), (4, "11111111,10101010,11001100,10011001,11110000,10100101,11000011,10010110")] {
            let want: Vec<&str> = rows.split(',').collect();
            let got: Vec<String> = hadamard(n).iter().map(|r| r.iter().map(|&b| if b { '1' } else { '0' }).collect()).collect();
            assert_eq!(got, want, "n = {n}");
        }
    }

    #[test]
    fn jackknife_drops_one_psu() {
        let stratum = [0u32, 0, 0];
        let popsize = [f64::INFINITY; 3];
        let psus = PsuLayout {
            stratum: &stratum,
            popsize: &popsize,
            n_strata: 1,
            r_order: &[0, 1, 2],
        };
        let rep = build(Scheme::Jk1, &psus, LonelyPsu::Fail, false, false).unwrap();
        assert_eq!(rep.n_replicates, 3);
        assert_eq!(&rep.factors[0..3], &[0.0, 1.5, 1.5]);
        assert!((rep.scale - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn bootstrap_is_reproducible_and_draws_n_psus() {
        let stratum = [0u32, 0, 0, 1, 1];
        let popsize = [f64::INFINITY; 5];
        let psus = PsuLayout {
            stratum: &stratum,
            popsize: &popsize,
            n_strata: 2,
            r_order: &[0, 1, 2, 3, 4],
        };
        let a = build(
            Scheme::Bootstrap {
                replicates: 20,
                seed: 7,
            },
            &psus,
            LonelyPsu::Fail,
            true,
            false,
        )
        .unwrap();
        let b = build(
            Scheme::Bootstrap {
                replicates: 20,
                seed: 7,
            },
            &psus,
            LonelyPsu::Fail,
            true,
            false,
        )
        .unwrap();
        assert_eq!(a.factors, b.factors);
        for r in 0..20 {
            let s0: f64 = (0..3).map(|i| a.factors[i * 20 + r]).sum();
            let s1: f64 = (3..5).map(|i| a.factors[i * 20 + r]).sum();
            assert_eq!((s0, s1), (3.0, 2.0));
        }
    }

    #[test]
    fn rank_of_more_replicates_than_rows() {
        // 3 rows x 5 replicates, the third row the sum of the first two: rank 2 from
        // either Gram matrix.
        let rows = [
            1.0, 0.0, 2.0, 1.0, 0.5, 0.0, 1.0, 1.0, 3.0, 0.0, 1.0, 1.0, 3.0, 4.0, 0.5,
        ];
        assert_eq!(analysis_rank(&rows, 5), 2);
        let transposed: Vec<f64> = (0..5)
            .flat_map(|j| (0..3).map(move |i| rows[i * 5 + j]))
            .collect();
        assert_eq!(analysis_rank(&transposed, 3), 2);
    }

    #[test]
    fn brr_pairs_follow_r_order_and_split_or_merge_large_strata() {
        // Stratum 0: PSUs 0 and 1, R's order putting PSU 1 first; stratum 1: PSUs 2..5.
        let stratum = [0u32, 0, 1, 1, 1, 1];
        let popsize = [f64::INFINITY; 6];
        let psus = PsuLayout {
            stratum: &stratum,
            popsize: &popsize,
            n_strata: 2,
            r_order: &[1, 0, 2, 3, 4, 5],
        };
        let scheme = |large| Scheme::Brr {
            rho: 0.0,
            small: BrrSmall::Fail,
            large,
        };
        let split = build(scheme(BrrLarge::Split), &psus, LonelyPsu::Fail, true, false).unwrap();
        // Pseudo-strata: (2, 3) and (4, 5) from the large stratum, then (1, 0); pseudo-
        // stratum k takes row k + 1 of H, whose 0 leaves the pair's first PSU out.
        let h = hadamard(3);
        let r = split.n_replicates;
        assert_eq!(r, 4);
        let f = |rep: &Replicates, u: usize, i: usize| rep.factors[u * r + i];
        let on = |row: usize, i: usize| if h[row][i] { 2.0 } else { 0.0 };
        for i in 0..r {
            assert_eq!(f(&split, 2, i), on(1, i));
            assert_eq!(f(&split, 4, i), on(2, i));
            assert_eq!(f(&split, 1, i), on(3, i));
            assert_eq!(f(&split, 0, i) + f(&split, 1, i), 2.0);
        }
        let merged = build(scheme(BrrLarge::Merge), &psus, LonelyPsu::Fail, true, false).unwrap();
        for i in 0..merged.n_replicates {
            let g = |u: usize| merged.factors[u * merged.n_replicates + i];
            assert_eq!((g(2), g(4)), (g(3), g(5)));
            assert_eq!(g(2) + g(4), 2.0);
        }
    }

    #[test]
    fn rank_of_gram() {
        // Columns (1,0), (2,0), (0,1): rank 2.
        let g = [1.0, 2.0, 0.0, 2.0, 4.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(gram_rank(&g, 3), 2);
    }
}
