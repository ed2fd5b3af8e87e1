//! R's `svyvar` of one variable: its design-weighted variance with the divisor n - 1 of
//! the rows of non-zero weight.  The design effect's SRS variance, the dispersion of a
//! survey GLM (`summary.svyglm`: `svyvar` of the Pearson residuals) and of `svyciprop`'s
//! fits all use it; every estimator reaches it through [`WeightedMoments`].

use rayon::prelude::*;

/// Weighted sums of one variable over rows: sum w, sum w y, sum w y^2 and the number of
/// rows of non-zero weight.  Sums of batches add up (in a fixed order, for fixed digits).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WeightedMoments {
    pub weight: f64,
    pub first: f64,
    pub second: f64,
    pub n_obs: f64,
}

/// Rows per chunk of [`WeightedMoments::of_rows`]: the chunks are fixed by the data, not
/// by the threads, and added in order, so the digits do not depend on the thread count.
const CHUNK_ROWS: usize = 1 << 14;

impl WeightedMoments {
    /// The moments of `values` under `weights` (same length), in one parallel pass.
    #[must_use]
    pub fn of_rows(values: &[f64], weights: &[f64]) -> Self {
        let parts: Vec<WeightedMoments> = values
            .par_chunks(CHUNK_ROWS)
            .zip(weights.par_chunks(CHUNK_ROWS))
            .map(|(y, w)| {
                y.iter()
                    .zip(w)
                    .fold(WeightedMoments::default(), |m, (&y, &w)| m.with_row(y, w))
            })
            .collect();
        parts
            .iter()
            .fold(WeightedMoments::default(), |a, b| a.add(b))
    }

    /// The moments with one more row, of value `y` and weight `w`.
    #[must_use]
    pub fn with_row(&self, y: f64, w: f64) -> Self {
        WeightedMoments {
            weight: self.weight + w,
            first: self.first + w * y,
            second: self.second + w * y * y,
            n_obs: self.n_obs + f64::from(u8::from(w != 0.0)),
        }
    }

    /// The moments of the rows of both.
    #[must_use]
    pub fn add(&self, other: &Self) -> Self {
        WeightedMoments {
            weight: self.weight + other.weight,
            first: self.first + other.first,
            second: self.second + other.second,
            n_obs: self.n_obs + other.n_obs,
        }
    }

    /// The weighted mean, sum w y / sum w.
    #[must_use]
    pub fn mean(&self) -> f64 {
        self.first / self.weight
    }

    /// R's `svyvar`: (sum w y^2 / sum w - mean^2) n / (n - 1); NaN with fewer than two
    /// rows of non-zero weight (R gives NaN or an error there; callers say which).
    #[must_use]
    pub fn svyvar(&self) -> f64 {
        if self.n_obs < 2.0 {
            return f64::NAN;
        }
        let mean = self.mean();
        (self.second / self.weight - mean * mean) * self.n_obs / (self.n_obs - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svyvar_by_hand() {
        // y = 1, 2, 4 with weights 1, 1, 2: sum w = 4, mean = (1 + 2 + 8) / 4 = 2.75,
        // sum w y^2 / sum w = (1 + 4 + 32) / 4 = 9.25, variance 9.25 - 7.5625 = 1.6875,
        // times 3 / 2 = 2.53125.
        let m = WeightedMoments::of_rows(&[1.0, 2.0, 4.0], &[1.0, 1.0, 2.0]);
        assert_eq!(m.n_obs, 3.0);
        assert!((m.svyvar() - 2.531_25).abs() < 1e-15);
    }

    #[test]
    fn zero_weight_rows_do_not_count_and_one_row_is_undefined() {
        let m = WeightedMoments::of_rows(&[1.0, 5.0, 3.0], &[2.0, 0.0, 2.0]);
        // mean 2, variance (1 + 1) / 2 = 1 times 2 / 1.
        assert_eq!(m.n_obs, 2.0);
        assert!((m.svyvar() - 2.0).abs() < 1e-15);
        assert!(WeightedMoments::of_rows(&[1.0], &[3.0]).svyvar().is_nan());
    }

    #[test]
    fn batches_add_to_the_whole() {
        let y: Vec<f64> = (0..50_000).map(|i| f64::from(i % 97) / 7.0).collect();
        let w: Vec<f64> = (0..50_000).map(|i| 1.0 + f64::from(i % 13)).collect();
        let whole = WeightedMoments::of_rows(&y, &w);
        let parts = WeightedMoments::of_rows(&y[..20_000], &w[..20_000])
            .add(&WeightedMoments::of_rows(&y[20_000..], &w[20_000..]));
        assert!((whole.svyvar() - parts.svyvar()).abs() < 1e-12 * whole.svyvar());
    }
}
