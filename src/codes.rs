//! Dense u32 codes: turning integer labels and pairs of codes into 0..k codes.

use std::collections::HashMap;

use rayon::prelude::*;

/// The largest lookup table (entries) used instead of a hash map when re-coding.
const DENSE_TABLE_LIMIT: u64 = 1 << 26;

/// Recode integer labels to dense codes 0..k in sorted label order; returns the codes
/// and the k distinct labels.  A small label range goes through a lookup table (one
/// pass, no hashing).
pub fn dense_codes_i64(labels: &[i64]) -> (Vec<u32>, Vec<i64>) {
    dense_codes(labels)
}

/// Rows per parallel chunk; fixed so results never depend on the thread count.
const CHUNK: usize = 1 << 16;

/// `dense_codes_i64` for any integer type, so that narrow columns are not widened first.
/// Both passes run in parallel over fixed chunks (codes are exact integers: the
/// result is the same for any number of threads).
pub fn dense_codes<T: Copy + Into<i64> + Send + Sync>(labels: &[T]) -> (Vec<u32>, Vec<i64>) {
    if labels.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let (lo, hi) = labels
        .par_chunks(CHUNK)
        .map(|chunk| {
            chunk.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &v| {
                (lo.min(v.into()), hi.max(v.into()))
            })
        })
        .reduce(|| (i64::MAX, i64::MIN), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    let range = (hi as i128 - lo as i128 + 1) as u64;
    if range <= DENSE_TABLE_LIMIT {
        let range = range as usize;
        let seen = labels
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut seen = vec![false; range];
                for &v in chunk {
                    seen[(v.into() - lo) as usize] = true;
                }
                seen
            })
            .reduce(
                || vec![false; range],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x |= *y);
                    a
                },
            );
        let mut table = vec![0u32; range];
        let mut distinct = Vec::new();
        for (i, (slot, s)) in table.iter_mut().zip(&seen).enumerate() {
            if *s {
                *slot = distinct.len() as u32;
                distinct.push(lo + i as i64);
            }
        }
        let codes = labels
            .par_iter()
            .map(|&v| table[(v.into() - lo) as usize])
            .collect();
        (codes, distinct)
    } else {
        let mut sorted: Vec<i64> = labels.iter().map(|&v| v.into()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let map: HashMap<i64, u32> = sorted
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, i as u32))
            .collect();
        (labels.iter().map(|&v| map[&v.into()]).collect(), sorted)
    }
}

/// Dense codes of the interaction of two coded factors (R's `interaction`), ordered by
/// (a, b); returns (codes, k).
pub fn interaction(a: &[u32], b: &[u32]) -> (Vec<u32>, u32) {
    let nb = b.iter().copied().max().map_or(0, |m| m as u64 + 1);
    let combined: Vec<i64> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as u64 * nb + y as u64) as i64)
        .collect();
    let (codes, distinct) = dense_codes_i64(&combined);
    (codes, distinct.len() as u32)
}

/// Recode arbitrary u32 codes to dense 0..k (sorted order).
pub fn densify(codes: &[u32]) -> (Vec<u32>, u32) {
    let as_i64: Vec<i64> = codes.iter().map(|&c| c as i64).collect();
    let (codes, distinct) = dense_codes_i64(&as_i64);
    (codes, distinct.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_codes_follow_sorted_labels() {
        let (c, k) = dense_codes_i64(&[30, 10, 30, 20]);
        assert_eq!(c, vec![2, 0, 2, 1]);
        assert_eq!(k, vec![10, 20, 30]);
        let (c, k) = dense_codes_i64(&[i64::MAX, -5, i64::MAX]);
        assert_eq!((c, k), (vec![1, 0, 1], vec![-5, i64::MAX]));
    }

    #[test]
    fn interaction_codes_pairs() {
        let (c, k) = interaction(&[0, 0, 1, 1], &[1, 0, 1, 1]);
        assert_eq!(c, vec![1, 0, 2, 2]);
        assert_eq!(k, 3);
    }
}
