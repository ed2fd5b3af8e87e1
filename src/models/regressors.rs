//! The model matrix as the IRLS reads it: columns assembled from the data's own
//! columns, block by block, never an n x p matrix in memory.
//!
//! A model column is a product of factors, each a numeric data column or the indicator
//! of one level of a factor's codes (treatment contrasts, and the full dummy coding R
//! uses in some interactions, are both indicators); the empty product is the intercept.
//! A formula's columns are built from its variables (`x`, `f`, `x:f`, `f:g`) without a
//! dense matrix; a term the package's grammar hands to formulaic (`I()`, `poly()`,
//! `log()`) comes as a numeric column of its own.  The threshold model's term at a
//! candidate (a kink or a step in a numeric column) is a factor too, made as the rows
//! are read, so each candidate's model is the formula's with one column's factor changed.

use crate::error::{CoreError, Result};
use rayon::prelude::*;

/// One factor of a model column.
#[derive(Clone, Copy, Debug)]
pub enum Factor<'a> {
    /// A numeric column's values.
    Values(&'a [f64]),
    /// 1 where the codes equal `level`, 0 elsewhere.
    Level { codes: &'a [u32], level: u32 },
    /// max(x - at, 0) of a numeric column x: the threshold model's kink at `at`.
    Hinge { values: &'a [f64], at: f64 },
    /// 1 where x < at, 0 elsewhere: the threshold model's step at `at`.
    Below { values: &'a [f64], at: f64 },
}

impl Factor<'_> {
    fn len(&self) -> usize {
        match self {
            Factor::Values(v)
            | Factor::Hinge { values: v, .. }
            | Factor::Below { values: v, .. } => v.len(),
            Factor::Level { codes, .. } => codes.len(),
        }
    }

    /// The factor's value at row i.
    fn at(&self, i: usize) -> f64 {
        match *self {
            Factor::Values(v) => v[i],
            Factor::Level { codes, level } => {
                if codes[i] == level {
                    1.0
                } else {
                    0.0
                }
            }
            Factor::Hinge { values, at } => Threshold::Slope.value(values[i], at),
            Factor::Below { values, at } => Threshold::Level.value(values[i], at),
        }
    }
}

/// The kind of the threshold model's term at a candidate c.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    /// A kink: max(x - c, 0) (R's `pmax(x - c, 0)`).
    Slope,
    /// A step: 1 where x < c (R's `I(x < c)`).
    Level,
}

impl Threshold {
    /// "slope" or "level".
    pub fn parse(kind: &str) -> Result<Self> {
        match kind {
            "slope" => Ok(Threshold::Slope),
            "level" => Ok(Threshold::Level),
            _ => Err(CoreError::Value(format!(
                "threshold kind {kind:?}: use \"slope\" or \"level\""
            ))),
        }
    }

    /// The term's value at x for the candidate `at`: for a slope numpy's
    /// `np.maximum(x - at, 0)` bit for bit (x - at where that is not below 0), for a
    /// level `(x < at)` as 1.0 or 0.0.
    pub fn value(self, x: f64, at: f64) -> f64 {
        match self {
            Threshold::Slope => {
                let d = x - at;
                if d >= 0.0 {
                    d
                } else {
                    0.0
                }
            }
            Threshold::Level => {
                if x < at {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// The term of the numeric column `values` at `at`, as a factor of a model column.
    pub fn factor(self, values: &[f64], at: f64) -> Factor<'_> {
        match self {
            Threshold::Slope => Factor::Hinge { values, at },
            Threshold::Level => Factor::Below { values, at },
        }
    }
}

/// The columns of a model matrix with n rows, each the product of its factors (in
/// their order, as formulaic and R multiply them).
#[derive(Clone, Debug)]
pub struct Regressors<'a> {
    n: usize,
    columns: Vec<Vec<Factor<'a>>>,
}

impl<'a> Regressors<'a> {
    /// Checked columns: every factor has `n` rows and every value is finite.
    pub fn new(n: usize, columns: Vec<Vec<Factor<'a>>>) -> Result<Self> {
        for (j, column) in columns.iter().enumerate() {
            for factor in column {
                if factor.len() != n {
                    return Err(CoreError::Shape(format!(
                        "model column {} has a factor of {} rows, the model {n}",
                        j + 1,
                        factor.len()
                    )));
                }
                let (values, at) = match *factor {
                    Factor::Values(v) => (v, 0.0),
                    Factor::Hinge { values, at } | Factor::Below { values, at } => (values, at),
                    Factor::Level { .. } => continue,
                };
                if !at.is_finite() || values.iter().any(|x| !x.is_finite()) {
                    return Err(CoreError::Value(format!(
                        "model column {} has a missing or infinite value (drop missing \
                         values first)",
                        j + 1
                    )));
                }
            }
        }
        Ok(Regressors { n, columns })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn p(&self) -> usize {
        self.columns.len()
    }

    /// Column j's value at row i.
    pub fn value_at(&self, j: usize, i: usize) -> f64 {
        Self::value(&self.columns[j], i)
    }

    /// The value at row i of a column of factors.
    fn value(column: &[Factor], i: usize) -> f64 {
        let mut out = 1.0;
        for (k, factor) in column.iter().enumerate() {
            let v = factor.at(i);
            out = if k == 0 { v } else { out * v };
        }
        out
    }

    /// Rows `start..start + len` of every column, column j's row b at `out[j * ld + b]`.
    pub fn fill(&self, start: usize, len: usize, out: &mut [f64], ld: usize) {
        for (j, column) in self.columns.iter().enumerate() {
            let dest = &mut out[j * ld..j * ld + len];
            match column.as_slice() {
                [] => dest.fill(1.0),
                [first, rest @ ..] => {
                    match first {
                        Factor::Values(v) => dest.copy_from_slice(&v[start..start + len]),
                        Factor::Level { codes, level } => {
                            // A select, which vectorises (a bool's conversion does not).
                            for (d, &c) in dest.iter_mut().zip(&codes[start..start + len]) {
                                *d = if c == *level { 1.0 } else { 0.0 };
                            }
                        }
                        Factor::Hinge { values, at } => {
                            for (d, &x) in dest.iter_mut().zip(&values[start..start + len]) {
                                *d = Threshold::Slope.value(x, *at);
                            }
                        }
                        Factor::Below { values, at } => {
                            for (d, &x) in dest.iter_mut().zip(&values[start..start + len]) {
                                *d = Threshold::Level.value(x, *at);
                            }
                        }
                    }
                    for factor in rest {
                        match factor {
                            Factor::Values(v) => {
                                for (d, x) in dest.iter_mut().zip(&v[start..start + len]) {
                                    *d *= x;
                                }
                            }
                            Factor::Level { codes, level } => {
                                for (d, &c) in dest.iter_mut().zip(&codes[start..start + len]) {
                                    if c != *level {
                                        *d *= 0.0;
                                    }
                                }
                            }
                            Factor::Hinge { values, at } => {
                                for (d, &x) in dest.iter_mut().zip(&values[start..start + len]) {
                                    *d *= Threshold::Slope.value(x, *at);
                                }
                            }
                            Factor::Below { values, at } => {
                                for (d, &x) in dest.iter_mut().zip(&values[start..start + len]) {
                                    *d *= Threshold::Level.value(x, *at);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Row i of the matrix into `out` (p values).
    pub fn row(&self, i: usize, out: &mut [f64]) {
        for (o, column) in out.iter_mut().zip(&self.columns) {
            *o = Self::value(column, i);
        }
    }

    /// The whole matrix, row-major n x p (for the callers that need the matrix itself:
    /// margins, the Cox model, counterfactual predictions).
    pub fn dense(&self) -> Vec<f64> {
        self.dense_of(&(0..self.p()).collect::<Vec<_>>())
    }

    /// The columns `which` (in that order), row-major n x which.len(): the Cox model's
    /// covariates are the model's columns without its intercept.
    pub fn dense_of(&self, which: &[usize]) -> Vec<f64> {
        const ROWS: usize = 4096;
        let q = which.len().max(1);
        let mut out = vec![0.0; self.n * which.len()];
        out.par_chunks_mut(q * ROWS)
            .enumerate()
            .for_each(|(c, chunk)| {
                for (k, row) in chunk.chunks_exact_mut(q).enumerate() {
                    for (o, &j) in row.iter_mut().zip(which) {
                        *o = Self::value(&self.columns[j], c * ROWS + k);
                    }
                }
            });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y ~ x * f with f's levels 0, 1, 2 (treatment: columns 1, x, f1, f2, x:f1, x:f2),
    /// written out by hand.
    #[test]
    fn columns_are_products_of_values_and_level_indicators() {
        let x = [0.5, -2.0, 3.0, 4.0];
        let f = [0u32, 1, 2, 1];
        let columns = vec![
            vec![],
            vec![Factor::Values(&x)],
            vec![Factor::Level {
                codes: &f,
                level: 1,
            }],
            vec![Factor::Level {
                codes: &f,
                level: 2,
            }],
            vec![
                Factor::Values(&x),
                Factor::Level {
                    codes: &f,
                    level: 1,
                },
            ],
            vec![
                Factor::Values(&x),
                Factor::Level {
                    codes: &f,
                    level: 2,
                },
            ],
        ];
        let m = Regressors::new(4, columns).unwrap();
        assert_eq!((m.n(), m.p()), (4, 6));
        #[rustfmt::skip]
        let expected = [
            1.0, 0.5, 0.0, 0.0, 0.0, 0.0,
            1.0, -2.0, 1.0, 0.0, -2.0, 0.0,
            1.0, 3.0, 0.0, 1.0, 0.0, 3.0,
            1.0, 4.0, 1.0, 0.0, 4.0, 0.0,
        ];
        assert_eq!(m.dense(), expected);
        // The Cox model's covariates: the columns without the intercept, in any order.
        #[rustfmt::skip]
        let picked = [
            0.0, 0.5, 0.0,
            0.0, -2.0, -2.0,
            1.0, 3.0, 0.0,
            0.0, 4.0, 4.0,
        ];
        assert_eq!(m.dense_of(&[3, 1, 4]), picked);
        // Rows 1..3 as a column-major block with a leading dimension of 5.
        let mut block = vec![f64::NAN; 5 * 6];
        m.fill(1, 3, &mut block, 5);
        for j in 0..6 {
            for b in 0..3 {
                assert_eq!(block[j * 5 + b], expected[(1 + b) * 6 + j]);
            }
        }
    }

    #[test]
    fn threshold_terms_are_the_kink_and_the_step_by_hand() {
        // At c = 2.5: max(x - 2.5, 0) and 1 where x < 2.5, x = 2.5 itself on neither side
        // of the kink (0) and not below; as numpy's np.maximum(x - c, 0) and (x < c).
        let x = [1.0, 2.5, 3.0, 4.75, -1e300, 0.1];
        let hinge = [0.0, 0.0, 0.5, 2.25, 0.0, 0.0];
        let step = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        let f = [0u32, 1, 1, 0, 1, 0];
        let kink = Regressors::new(
            6,
            vec![
                vec![],
                vec![Factor::Values(&x)],
                vec![Threshold::Slope.factor(&x, 2.5)],
            ],
        )
        .unwrap();
        let stepped = Regressors::new(
            6,
            vec![
                vec![],
                vec![
                    Factor::Level {
                        codes: &f,
                        level: 1,
                    },
                    Threshold::Level.factor(&x, 2.5),
                ],
                vec![Factor::Values(&x)],
            ],
        )
        .unwrap();
        let mut block = vec![f64::NAN; 3 * 6];
        kink.fill(0, 6, &mut block, 6);
        assert_eq!(block[12..], hinge);
        assert_eq!(block[6..12], x);
        stepped.fill(0, 6, &mut block, 6);
        let product: Vec<f64> = step
            .iter()
            .zip(&f)
            .map(|(s, &c)| if c == 1 { *s } else { 0.0 })
            .collect();
        assert_eq!(block[6..12], product);
        // The row-wise route agrees with the blocks.
        let dense = kink.dense();
        for (i, h) in hinge.iter().enumerate() {
            assert_eq!(dense[i * 3 + 2], *h);
        }
        // 0.1 - 0.3 is not exactly -0.2, but the kink's value is x - c where x >= c.
        assert_eq!(Threshold::Slope.value(0.3, 0.1), 0.3 - 0.1);
        assert_eq!(Threshold::Slope.value(0.1, 0.3), 0.0);
        let err = Regressors::new(6, vec![vec![], vec![Threshold::Slope.factor(&x, f64::NAN)]])
            .unwrap_err();
        assert!(err.to_string().contains("model column 2 has a missing"));
        assert_eq!(Threshold::parse("level").unwrap(), Threshold::Level);
        assert!(Threshold::parse("kink").is_err());
    }

    #[test]
    fn refuses_short_factors_and_missing_values() {
        let x = [1.0, f64::NAN];
        let short = [1.0];
        let err = Regressors::new(2, vec![vec![Factor::Values(&short)]]).unwrap_err();
        assert!(err
            .to_string()
            .contains("model column 1 has a factor of 1 rows"));
        let err = Regressors::new(2, vec![vec![], vec![Factor::Values(&x)]]).unwrap_err();
        assert!(err.to_string().contains("model column 2 has a missing"));
    }
}
