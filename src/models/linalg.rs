//! Small dense least squares for model fitting: a Householder QR of a tall n x p matrix
//! (p small), as R's `lm.fit`/`glm.fit` use through LINPACK's `dqrdc2`.

use rayon::prelude::*;

/// Householder QR of an n x p matrix, columns in their given order.
#[derive(Clone, Debug)]
pub struct Qr {
    n: usize,
    p: usize,
    /// Column-major n x p: R on and above the diagonal, the Householder vectors below it
    /// (their leading 1 implicit).
    a: Vec<f64>,
    tau: Vec<f64>,
}

/// Factor `a` (column-major n x p).  A column whose norm left after projecting out the
/// columns before it is at most `tol` times its own norm is aliased (R's `dqrdc2` moves
/// such columns to the end and gives them NA coefficients): then the positions of all
/// aliased columns are returned instead.
pub fn qr(mut a: Vec<f64>, n: usize, p: usize, tol: f64) -> Result<Qr, Vec<usize>> {
    debug_assert_eq!(a.len(), n * p);
    let mut tau = Vec::with_capacity(p);
    let mut aliased = Vec::new();
    // `r` counts the columns kept so far: the next reflection acts on rows r..n.
    let mut r = 0;
    for j in 0..p {
        let col = j * n;
        let norm = norm2(&a[col..col + n]);
        // Reflections 0..r have been applied to column j already (below).
        let left = if r < n {
            norm2(&a[col + r..col + n])
        } else {
            0.0
        };
        if norm == 0.0 || left <= tol * norm {
            aliased.push(j);
            continue;
        }
        // The reflection that maps a[r.., j] onto beta e_1 (LAPACK's dlarfg).
        let alpha = a[col + r];
        let beta = -alpha.signum() * left;
        let t = (beta - alpha) / beta;
        let scale = 1.0 / (alpha - beta);
        for v in &mut a[col + r + 1..col + n] {
            *v *= scale;
        }
        a[col + r] = beta;
        // The later columns are updated independently of each other: in parallel when
        // the work is large enough to pay for it (each column's result is the same
        // either way).
        let (head, tail) = a.split_at_mut((j + 1) * n);
        let h = &head[col + r..col + n];
        let update = |x: &mut [f64]| reflect(h, t, &mut x[r..n]);
        if (n - r) * (p - j - 1) >= PARALLEL_MIN {
            tail.par_chunks_mut(n).for_each(update);
        } else {
            tail.chunks_mut(n).for_each(update);
        }
        tau.push(t);
        r += 1;
    }
    if aliased.is_empty() {
        Ok(Qr { n, p, a, tau })
    } else {
        Err(aliased)
    }
}

/// Elements of work (rows x columns) from which a reflection is applied to the later
/// columns in parallel.
const PARALLEL_MIN: usize = 1 << 16;

/// Apply I - t v v' (v = (1, h[1..])) to x in place.
#[allow(clippy::inline_always)] // inlined into `reduce_avx2`, to be compiled for AVX2 there
#[inline(always)]
fn reflect(h: &[f64], t: f64, x: &mut [f64]) {
    let d = dot(&h[1..], &x[1..]);
    reflect_with(h, t, x, d);
}

/// [`reflect`] given the dot product `d` of h[1..] and x[1..].
#[allow(clippy::inline_always)] // inlined into `reduce_avx2`, to be compiled for AVX2 there
#[inline(always)]
fn reflect_with(h: &[f64], t: f64, x: &mut [f64], d: f64) {
    let s = t * (x[0] + d);
    x[0] -= s;
    for (xi, hi) in x[1..].iter_mut().zip(&h[1..]) {
        *xi -= s * hi;
    }
}

/// Dot product with four running sums: a single sum is one long chain of dependent
/// additions that the compiler may not reorder, four let it vectorise (the rounding
/// differs from a left-to-right sum in the last bits only).
#[allow(clippy::inline_always)] // inlined into `reduce_avx2`, to be compiled for AVX2 there
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f64; 4];
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The dot products of `h` with each of four columns (each at least as long), each
/// summed exactly as [`dot`] sums it, the four sums interleaved: one dot product alone
/// waits for each addition before the next, four keep the adders busy.
#[allow(clippy::inline_always)] // inlined into `reduce_avx2`, to be compiled for AVX2 there
#[inline(always)]
fn dots4(h: &[f64], x: [&[f64]; 4]) -> [f64; 4] {
    let n = h.len();
    let body = n - n % 4;
    let mut acc = [[0.0f64; 4]; 4];
    let columns = x[0][..body]
        .chunks_exact(4)
        .zip(x[1][..body].chunks_exact(4))
        .zip(x[2][..body].chunks_exact(4))
        .zip(x[3][..body].chunks_exact(4));
    for (hh, (((a, b), c), d)) in h[..body].chunks_exact(4).zip(columns) {
        for k in 0..4 {
            acc[0][k] += hh[k] * a[k];
            acc[1][k] += hh[k] * b[k];
            acc[2][k] += hh[k] * c[k];
            acc[3][k] += hh[k] * d[k];
        }
    }
    let mut out = [0.0; 4];
    for ((o, a), x) in out.iter_mut().zip(&acc).zip(x) {
        let tail: f64 = h[body..].iter().zip(&x[body..n]).map(|(h, x)| h * x).sum();
        *o = (a[0] + a[1]) + (a[2] + a[3]) + tail;
    }
    out
}

#[allow(clippy::inline_always)] // inlined into `reduce_avx2`, to be compiled for AVX2 there
#[inline(always)]
fn norm2(x: &[f64]) -> f64 {
    // The plain sum of squares when it neither overflowed nor came near underflow (an
    // element that underflowed is then below 1e-260 of the sum); else scaled.
    let squares = dot(x, x);
    if squares.is_finite() && squares > 1e-280 {
        return squares.sqrt();
    }
    let big = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if big == 0.0 || !big.is_finite() {
        return big;
    }
    big * x.iter().map(|v| (v / big) * (v / big)).sum::<f64>().sqrt()
}

impl Qr {
    /// Least-squares coefficients for the right-hand side `b` (length n).
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let (n, p) = (self.n, self.p);
        let mut qtb = b.to_vec();
        for (k, &t) in self.tau.iter().enumerate() {
            reflect(&self.a[k * n + k..(k + 1) * n], t, &mut qtb[k..]);
        }
        let mut x = qtb[..p].to_vec();
        for i in (0..p).rev() {
            let s: f64 = (i + 1..p).map(|j| self.r(i, j) * x[j]).sum();
            x[i] = (x[i] - s) / self.r(i, i);
        }
        x
    }

    /// Replace `b` (length n) by its least-squares residuals on the columns (R's
    /// `qr.resid`): Q'b with its first p entries zeroed, multiplied back by Q.
    pub fn residuals(&self, b: &mut [f64]) {
        let n = self.n;
        for (k, &t) in self.tau.iter().enumerate() {
            reflect(&self.a[k * n + k..(k + 1) * n], t, &mut b[k..]);
        }
        b[..self.tau.len()].fill(0.0);
        for (k, &t) in self.tau.iter().enumerate().rev() {
            reflect(&self.a[k * n + k..(k + 1) * n], t, &mut b[k..]);
        }
    }

    /// (R'R)^-1 = (A'A)^-1, row-major p x p: the unscaled covariance of the coefficients
    /// (R's `chol2inv(qr$qr)`).
    pub fn inverse_gram(&self) -> Vec<f64> {
        inverse_gram(self.p, |i, j| self.r(i, j))
    }

    /// The R factor alone.
    pub fn triangular(&self) -> Triangular {
        let p = self.p;
        let mut r = vec![0.0; p * p];
        for j in 0..p {
            for i in 0..=j {
                r[j * p + i] = self.r(i, j);
            }
        }
        Triangular { p, r }
    }

    fn r(&self, i: usize, j: usize) -> f64 {
        self.a[j * self.n + i]
    }
}

/// A = L D L' of a symmetric p x p matrix, as the `survival` package's `cholesky2`,
/// `chsolve2` and `chinv2` (which `coxph` uses): a pivot below `toler` times the largest
/// diagonal counts as zero, and its column takes no part (zero in solutions and inverse).
#[derive(Clone, Debug)]
pub struct Ldl {
    p: usize,
    /// Row-major: L below the diagonal (unit diagonal implicit), D on it.
    a: Vec<f64>,
    singular: Vec<usize>,
}

impl Ldl {
    /// Factor `a` (row-major p x p; only the lower triangle is read).
    pub fn new(a: &[f64], p: usize, toler: f64) -> Ldl {
        debug_assert_eq!(a.len(), p * p);
        let mut m = a.to_vec();
        let largest = (0..p).map(|i| m[i * p + i]).fold(0.0f64, f64::max);
        let eps = if largest > 0.0 {
            largest * toler
        } else {
            toler
        };
        let mut singular = Vec::new();
        for i in 0..p {
            let pivot = m[i * p + i];
            if !pivot.is_finite() || pivot < eps {
                singular.push(i);
                m[i * p + i] = 0.0;
                for j in i + 1..p {
                    m[j * p + i] = 0.0;
                }
                continue;
            }
            for j in i + 1..p {
                let t = m[j * p + i] / pivot;
                m[j * p + i] = t;
                m[j * p + j] -= t * t * pivot;
                for k in j + 1..p {
                    m[k * p + j] -= t * m[k * p + i];
                }
            }
        }
        Ldl { p, a: m, singular }
    }

    /// Columns whose pivot was taken as zero (linear combinations of those before them).
    pub fn singular(&self) -> &[usize] {
        &self.singular
    }

    /// x with A x = b, zero in the singular columns.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let (p, a) = (self.p, &self.a);
        let mut x = b.to_vec();
        for i in 0..p {
            let s: f64 = (0..i).map(|j| a[i * p + j] * x[j]).sum();
            x[i] -= s;
        }
        for i in (0..p).rev() {
            let d = a[i * p + i];
            x[i] = if d == 0.0 {
                0.0
            } else {
                x[i] / d - (i + 1..p).map(|j| a[j * p + i] * x[j]).sum::<f64>()
            };
        }
        x
    }

    /// A^-1 (row-major), with zero rows and columns for the singular columns.
    pub fn inverse(&self) -> Vec<f64> {
        let p = self.p;
        let mut out = vec![0.0; p * p];
        let mut e = vec![0.0; p];
        for k in 0..p {
            e.fill(0.0);
            e[k] = 1.0;
            for (i, v) in self.solve(&e).into_iter().enumerate() {
                out[i * p + k] = v;
            }
        }
        for &k in &self.singular {
            for i in 0..p {
                out[i * p + k] = 0.0;
                out[k * p + i] = 0.0;
            }
        }
        out
    }
}

/// (R'R)^-1, row-major p x p, of an upper-triangular R given by its entries r(i, j).
fn inverse_gram(p: usize, r: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    // R^-1 is upper triangular; column by column from R R^-1 = I.
    let mut rinv = vec![0.0; p * p];
    for c in 0..p {
        for i in (0..=c).rev() {
            let e = if i == c { 1.0 } else { 0.0 };
            let s: f64 = (i + 1..=c).map(|j| r(i, j) * rinv[j * p + c]).sum();
            rinv[i * p + c] = (e - s) / r(i, i);
        }
    }
    let mut out = vec![0.0; p * p];
    for i in 0..p {
        for j in i..p {
            let s: f64 = (j..p).map(|k| rinv[i * p + k] * rinv[j * p + k]).sum();
            out[i * p + j] = s;
            out[j * p + i] = s;
        }
    }
    out
}

/// Rows per block of [`tall_r`]: the block's work matrix (q + block rows x q columns)
/// stays in the cache while its Householder reflections are applied.
pub const BLOCK_ROWS: usize = 256;

/// Rows per chunk of [`tall_r`] (64 blocks): the unit of parallel work.  The partition
/// is fixed, so the digits do not depend on the number of threads.
pub const CHUNK_ROWS: usize = 64 * BLOCK_ROWS;

/// The triangular factor R (q x q, column-major, upper) of a tall n x q matrix A = QR,
/// without Q, from blocks of rows that `fill(start, len, block, ld, sums)` writes (row b
/// of column j at `block[j * ld + b]`, b < len), adding what else the pass gathers to its
/// chunk's `sums`.  `fill` returns whether the rows are still to be factored: once it
/// says no (or `factor` is false) its chunk's rows are only filled, and no R comes back.
/// Returns R and each chunk's sums, in chunk order.
///
/// [`qr`] applies each reflection to whole columns, which for a tall matrix means
/// streaming all of it from memory p times.  Here the rows are cut into chunks of
/// [`CHUNK_ROWS`] (in parallel); within a chunk each block of rows is reduced in the
/// cache together with the triangle of the blocks before it, and the chunks' triangles
/// are stacked in chunk order, so the result does not depend on the number of threads.
/// Householder reflections throughout: as stable as [`qr`], R equal to its R up to the
/// signs of rows and rounding.  With a right-hand side as the last column, R's last
/// column holds Q'b (first q - 1 entries) and the residual norm (last).
pub fn tall_r<S, F>(n: usize, q: usize, factor: bool, fill: F) -> (Option<Vec<f64>>, Vec<S>)
where
    S: Default + Send,
    F: Fn(usize, usize, &mut [f64], usize, &mut S) -> bool + Sync,
{
    let chunks: Vec<(Option<Vec<f64>>, S)> = (0..n.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|c| {
            let (first, end) = (c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(n));
            // Work matrix: the chunk's triangle so far on top, the next block below.
            let m = q + BLOCK_ROWS;
            let mut work = vec![0.0; m * q];
            let mut sums = S::default();
            let mut factoring = factor;
            for start in (first..end).step_by(BLOCK_ROWS) {
                let len = BLOCK_ROWS.min(end - start);
                factoring &= fill(start, len, &mut work[q..], m, &mut sums);
                if !factoring {
                    continue;
                }
                if len < BLOCK_ROWS {
                    // Rows of zeros leave the factor exactly as it is.
                    for col in work.chunks_exact_mut(m) {
                        col[q + len..].fill(0.0);
                    }
                }
                reduce(&mut work, m, q);
                // Below the diagonal of the top rows: Householder vectors, not R.
                for (j, col) in work.chunks_exact_mut(m).enumerate() {
                    col[j + 1..q].fill(0.0);
                }
            }
            let r = factoring.then(|| {
                let mut r = vec![0.0; q * q];
                for (j, col) in work.chunks_exact(m).enumerate() {
                    r[j * q..(j + 1) * q].copy_from_slice(&col[..q]);
                }
                r
            });
            (r, sums)
        })
        .collect();
    let mut r = Some(vec![0.0; q * q]);
    let mut all = Vec::with_capacity(chunks.len());
    for (t, sums) in chunks {
        r = r.zip(t).map(|(r, t)| stack_triangles(&r, &t, q));
        all.push(sums);
    }
    (r, all)
}

/// The triangular factor of two stacked ones (q x q, column-major, upper): R of
/// [R1; R2], which is the R of the rows behind both.  Combining in a fixed order keeps
/// the digits independent of how the rows were split (blocks, batches, partitions).
pub fn stack_triangles(r1: &[f64], r2: &[f64], q: usize) -> Vec<f64> {
    let mut stacked = vec![0.0; 2 * q * q];
    for j in 0..q {
        stacked[j * 2 * q..j * 2 * q + q].copy_from_slice(&r1[j * q..(j + 1) * q]);
        stacked[j * 2 * q + q..(j + 1) * 2 * q].copy_from_slice(&r2[j * q..(j + 1) * q]);
    }
    triangle_of(stacked, 2 * q, q)
}

/// Householder-reduce a column-major m x q matrix and return its upper q x q triangle
/// (column-major; rows below min(m, q) zero).
fn triangle_of(mut w: Vec<f64>, m: usize, q: usize) -> Vec<f64> {
    reduce(&mut w, m, q);
    let mut r = vec![0.0; q * q];
    for j in 0..q {
        for i in 0..=j.min(m.saturating_sub(1)) {
            r[j * q + i] = w[j * m + i];
        }
    }
    r
}

/// Householder-reduce a column-major m x q matrix in place: R on and above the
/// diagonal, the reflections' vectors below it.  A column with nothing left below the
/// diagonal is skipped: aliasing is judged by the caller from the whole R.
///
/// On a processor with AVX2 the same code runs compiled for its wider vectors: the
/// same operations in the same order lane by lane (no fused multiply-adds), so the same
/// digits, twice the arithmetic per instruction.
fn reduce(w: &mut [f64], m: usize, q: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has just been found to support AVX2, the only
        // requirement of `reduce_avx2`.
        unsafe { reduce_avx2(w, m, q) };
        return;
    }
    reduce_portable(w, m, q);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn reduce_avx2(w: &mut [f64], m: usize, q: usize) {
    reduce_portable(w, m, q);
}

#[allow(clippy::inline_always)] // inlined into `reduce_avx2`, to be compiled for AVX2 there
#[inline(always)]
fn reduce_portable(w: &mut [f64], m: usize, q: usize) {
    for j in 0..q.min(m) {
        let col = j * m;
        let left = norm2(&w[col + j..col + m]);
        if left == 0.0 {
            continue;
        }
        let alpha = w[col + j];
        let beta = -alpha.signum() * left;
        let t = (beta - alpha) / beta;
        let scale = 1.0 / (alpha - beta);
        for v in &mut w[col + j + 1..col + m] {
            *v *= scale;
        }
        w[col + j] = beta;
        let (head, tail) = w.split_at_mut((j + 1) * m);
        let h = &head[col + j..col + m];
        // Four later columns at a time: their dot products with h interleaved.
        let mut groups = tail.chunks_exact_mut(4 * m);
        for group in &mut groups {
            let d = {
                let x = |c: usize| &group[c * m + j + 1..(c + 1) * m];
                dots4(&h[1..], [x(0), x(1), x(2), x(3)])
            };
            for (x, d) in group.chunks_exact_mut(m).zip(d) {
                reflect_with(h, t, &mut x[j..m], d);
            }
        }
        for x in groups.into_remainder().chunks_mut(m) {
            reflect(h, t, &mut x[j..m]);
        }
    }
}

/// An upper-triangular factor R (p x p) of a least-squares problem, with Q'b beside it.
#[derive(Clone, Debug)]
pub struct Triangular {
    p: usize,
    /// Column-major p x p, upper.
    r: Vec<f64>,
}

impl Triangular {
    /// From the factor of [`tall_r`] over [A | b]: the A part, and Q'b.
    pub fn from_augmented(r: &[f64], q: usize) -> (Self, Vec<f64>) {
        let p = q - 1;
        let mut a = vec![0.0; p * p];
        for j in 0..p {
            a[j * p..(j + 1) * p].copy_from_slice(&r[j * q..j * q + p]);
        }
        (Triangular { p, r: a }, r[p * q..p * q + p].to_vec())
    }

    /// Columns whose part not explained by the columns before them is at most `tol`
    /// times their norm (|R_jj| <= tol ||a_j||, as [`qr`] judges it; ||a_j|| is the
    /// norm of column j of R).
    pub fn aliased(&self, tol: f64) -> Vec<usize> {
        let p = self.p;
        (0..p)
            .filter(|&j| {
                let norm = norm2(&self.r[(j * p)..=(j * p + j)]);
                norm == 0.0 || self.r[j * p + j].abs() <= tol * norm
            })
            .collect()
    }

    /// x with R x = qtb.
    pub fn solve(&self, qtb: &[f64]) -> Vec<f64> {
        let p = self.p;
        let mut x = qtb[..p].to_vec();
        for i in (0..p).rev() {
            let s: f64 = (i + 1..p).map(|j| self.r[j * p + i] * x[j]).sum();
            x[i] = (x[i] - s) / self.r[i * p + i];
        }
        x
    }

    /// (R'R)^-1, row-major p x p.
    pub fn inverse_gram(&self) -> Vec<f64> {
        inverse_gram(self.p, |i, j| self.r[j * self.p + i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Column-major from rows.
    fn colmajor(rows: &[&[f64]]) -> (Vec<f64>, usize, usize) {
        let (n, p) = (rows.len(), rows[0].len());
        let mut a = vec![0.0; n * p];
        for (i, row) in rows.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                a[j * n + i] = *v;
            }
        }
        (a, n, p)
    }

    #[test]
    fn tall_r_gives_the_least_squares_solution_of_qr() {
        // 40000 rows (several blocks and chunks, the last ones partial) of a well-conditioned 4-column matrix and a response.
        let (n, p) = (40_000usize, 4usize);
        let value = |i: usize, j: usize| {
            ((i * 7 + j * 13) % 17) as f64 / 17.0 + if j == 0 { 1.0 } else { 0.0 }
        };
        let b: Vec<f64> = (0..n).map(|i| ((i * 5) % 11) as f64 - 3.0).collect();
        let mut a = vec![0.0; n * p];
        for j in 0..p {
            for i in 0..n {
                a[j * n + i] = value(i, j);
            }
        }
        let dense = qr(a, n, p, 1e-7).unwrap();
        let want = dense.solve(&b);
        let (r, rows) = tall_r(n, p + 1, true, |start, len, block, ld, rows: &mut usize| {
            for i in 0..len {
                for j in 0..p {
                    block[j * ld + i] = value(start + i, j);
                }
                block[p * ld + i] = b[start + i];
            }
            *rows += len;
            true
        });
        assert_eq!(rows.iter().sum::<usize>(), n);
        let r = r.unwrap();
        let (tri, qtb) = Triangular::from_augmented(&r, p + 1);
        assert!(tri.aliased(1e-7).is_empty());
        for (x, y) in tri.solve(&qtb).iter().zip(&want) {
            assert!((x - y).abs() < 1e-10 * y.abs().max(1.0), "{x} vs {y}");
        }
        for (x, y) in tri.inverse_gram().iter().zip(dense.inverse_gram()) {
            assert!((x - y).abs() < 1e-10 * y.abs().max(1e-3), "{x} vs {y}");
        }
    }

    #[test]
    fn reduce_gives_the_same_bits_on_every_path() {
        // Four-column groups, a remainder column and the processor's own vectors (AVX2
        // where it has them) take the same operations in the same order as one column
        // at a time in portable code.
        let (m, q) = (70usize, 7usize);
        let w: Vec<f64> = (0..m * q)
            .map(|k| ((k * 37 + 11) % 101) as f64 / 13.0 - 3.0)
            .collect();
        let mut fast = w.clone();
        reduce(&mut fast, m, q);
        let mut plain = w;
        for j in 0..q {
            let col = j * m;
            let left = norm2(&plain[col + j..col + m]);
            let alpha = plain[col + j];
            let beta = -alpha.signum() * left;
            let t = (beta - alpha) / beta;
            let scale = 1.0 / (alpha - beta);
            for v in &mut plain[col + j + 1..col + m] {
                *v *= scale;
            }
            plain[col + j] = beta;
            let (head, tail) = plain.split_at_mut((j + 1) * m);
            for x in tail.chunks_mut(m) {
                reflect(&head[col + j..col + m], t, &mut x[j..m]);
            }
        }
        assert!(fast
            .iter()
            .zip(&plain)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn least_squares_line() {
        // y = 1 + 2x exactly, plus a point off the line: the normal equations by hand.
        let (a, n, p) = colmajor(&[&[1.0, 0.0], &[1.0, 1.0], &[1.0, 2.0], &[1.0, 3.0]]);
        let y = [1.0, 3.0, 5.0, 8.0];
        let f = qr(a, n, p, 1e-11).unwrap();
        let b = f.solve(&y);
        // X'X = [[4, 6], [6, 14]], X'y = [17, 37]: b = (X'X)^-1 X'y.
        assert!(
            (b[0] - 0.8).abs() < 1e-14 && (b[1] - 2.3).abs() < 1e-14,
            "{b:?}"
        );
        let v = f.inverse_gram();
        let det = 4.0 * 14.0 - 36.0;
        let want = [14.0 / det, -6.0 / det, -6.0 / det, 4.0 / det];
        for (g, w) in v.iter().zip(want) {
            assert!((g - w).abs() < 1e-14, "{v:?}");
        }
    }

    #[test]
    fn aliased_columns_are_named() {
        // Column 2 = column 0 + column 1; column 3 is all zero.
        let (a, n, p) = colmajor(&[
            &[1.0, 0.0, 1.0, 0.0, 5.0],
            &[1.0, 1.0, 2.0, 0.0, 1.0],
            &[1.0, 2.0, 3.0, 0.0, 2.0],
            &[1.0, 5.0, 6.0, 0.0, 0.0],
            &[1.0, 3.0, 4.0, 0.0, 7.0],
        ]);
        assert_eq!(qr(a, n, p, 1e-11).unwrap_err(), vec![2, 3]);
        // More columns than rows: the last ones cannot be estimated.
        let (a, n, p) = colmajor(&[&[1.0, 2.0, 3.0], &[1.0, 5.0, 4.0]]);
        assert_eq!(qr(a, n, p, 1e-11).unwrap_err(), vec![2]);
    }

    #[test]
    fn solves_a_square_system_exactly() {
        let (a, n, p) = colmajor(&[&[2.0, -1.0, 0.0], &[-1.0, 2.0, -1.0], &[0.0, -1.0, 2.0]]);
        let f = qr(a, n, p, 1e-11).unwrap();
        let x = f.solve(&[1.0, 0.0, 1.0]);
        for v in x {
            assert!((v - 1.0).abs() < 1e-14);
        }
    }

    #[test]
    fn ldl_solves_and_inverts() {
        // A symmetric positive definite matrix and its inverse by hand.
        let a = [4.0, 2.0, 0.0, 2.0, 3.0, 1.0, 0.0, 1.0, 2.0];
        let f = Ldl::new(&a, 3, 1e-12);
        assert!(f.singular().is_empty());
        let x = f.solve(&[6.0, 6.0, 3.0]);
        for v in &x {
            assert!((v - 1.0).abs() < 1e-14, "{x:?}");
        }
        let inv = f.inverse();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((s - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn ldl_drops_a_dependent_column() {
        // Column 2 = column 0 + column 1 of a Gram matrix.
        let a = [2.0, 1.0, 3.0, 1.0, 2.0, 3.0, 3.0, 3.0, 6.0];
        let f = Ldl::new(&a, 3, 1e-10);
        assert_eq!(f.singular(), &[2]);
        let x = f.solve(&[3.0, 3.0, 6.0]);
        assert!((x[0] - 1.0).abs() < 1e-14 && (x[1] - 1.0).abs() < 1e-14 && x[2] == 0.0);
        let inv = f.inverse();
        assert!(
            inv[2..].iter().step_by(3).all(|v| *v == 0.0) && inv[6..].iter().all(|v| *v == 0.0)
        );
    }
}
