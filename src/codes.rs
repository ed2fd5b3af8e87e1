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

/// The smallest and largest label, in one parallel pass; `None` when there are none.
pub fn label_range<T: Copy + Into<i64> + Send + Sync>(labels: &[T]) -> Option<(i64, i64)> {
    if labels.is_empty() {
        return None;
    }
    Some(
        labels
            .par_chunks(CHUNK)
            .map(|chunk| chunk_range(chunk).unwrap_or((i64::MAX, i64::MIN)))
            .reduce(|| (i64::MAX, i64::MIN), |a, b| (a.0.min(b.0), a.1.max(b.1))),
    )
}

/// `label_range` of a run of rows, serially.
pub fn chunk_range<T: Copy + Into<i64>>(labels: &[T]) -> Option<(i64, i64)> {
    if labels.is_empty() {
        return None;
    }
    Some(labels.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &v| {
        (lo.min(v.into()), hi.max(v.into()))
    }))
}

/// `dense_codes_i64` for any integer type, so that narrow columns are not widened first.
/// Labels spanning a small range take two parallel passes: their range, then each code
/// as label − min while marking the labels seen; codes are renumbered in place only
/// when some label in the range is absent.  Codes are exact integers: the result is the
/// same for any number of threads.
pub fn dense_codes<T: Copy + Into<i64> + Send + Sync>(labels: &[T]) -> (Vec<u32>, Vec<i64>) {
    let Some((lo, hi)) = label_range(labels) else {
        return (Vec::new(), Vec::new());
    };
    // i128: the range of labels from i64::MIN to i64::MAX is 2^64, one more than u64 holds.
    let range = i128::from(hi) - i128::from(lo) + 1;
    // A table of the range (one flag per label value, per thread) pays when it is not
    // much larger than the column itself.
    if range <= i128::from(DENSE_TABLE_LIMIT) && range <= 2 * labels.len() as i128 + (1 << 16) {
        let range = range as usize;
        let mut codes = vec![0u32; labels.len()];
        let seen = codes
            .par_chunks_mut(CHUNK)
            .zip(labels.par_chunks(CHUNK))
            .fold(
                || vec![false; range],
                |mut seen, (out, chunk)| {
                    for (c, &v) in out.iter_mut().zip(chunk) {
                        let k = (v.into() - lo) as usize;
                        seen[k] = true;
                        *c = k as u32;
                    }
                    seen
                },
            )
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
        if distinct.len() < range {
            // Gaps in the range: renumber.
            codes
                .par_chunks_mut(CHUNK)
                .for_each(|chunk| chunk.iter_mut().for_each(|c| *c = table[*c as usize]));
        }
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
    let nb = b.iter().copied().max().map_or(0, |m| u64::from(m) + 1);
    let combined: Vec<i64> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (u64::from(x) * nb + u64::from(y)) as i64)
        .collect();
    let (codes, distinct) = dense_codes_i64(&combined);
    (codes, distinct.len() as u32)
}

/// Recode arbitrary u32 codes to dense 0..k (sorted order).
pub fn densify(codes: &[u32]) -> (Vec<u32>, u32) {
    let as_i64: Vec<i64> = codes.iter().map(|&c| i64::from(c)).collect();
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
        // A range of 2^64 labels (it wrapped to 0 in u64 and indexed an empty table).
        let (c, k) = dense_codes_i64(&[i64::MAX, i64::MIN, 0]);
        assert_eq!((c, k), (vec![2, 0, 1], vec![i64::MIN, 0, i64::MAX]));
    }

    #[test]
    fn dense_codes_of_a_full_range_and_of_one_with_gaps() {
        let labels: Vec<i32> = (0..200_000).map(|i| (i * 7919 % 13) - 6).collect();
        let (c, k) = dense_codes(&labels);
        assert_eq!(k, (-6..=6).collect::<Vec<i64>>());
        assert!(c
            .iter()
            .zip(&labels)
            .all(|(&c, &l)| i64::from(c) == i64::from(l) + 6));
        let gappy: Vec<u8> = labels.iter().map(|&l| (l + 6) as u8 * 3).collect();
        let (c, k) = dense_codes(&gappy);
        assert_eq!(k, (0..13).map(|v| v * 3).collect::<Vec<i64>>());
        assert!(c
            .iter()
            .zip(&gappy)
            .all(|(&c, &l)| i64::from(c) * 3 == i64::from(l)));
        assert_eq!(label_range(&gappy), Some((0, 36)));
        assert_eq!(label_range::<i64>(&[]), None);
    }

    #[test]
    fn interaction_codes_pairs() {
        let (c, k) = interaction(&[0, 0, 1, 1], &[1, 0, 1, 1]);
        assert_eq!(c, vec![1, 0, 2, 2]);
        assert_eq!(k, 3);
    }
}
