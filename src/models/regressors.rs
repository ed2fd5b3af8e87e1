//! The model matrix as the IRLS reads it: columns assembled from the data's own
//! columns, block by block, never an n x p matrix in memory.
//!
//! A model column is a product of factors, each a numeric data column or the indicator
//! of one level of a factor's codes (treatment contrasts, and the full dummy coding R
//! uses in some interactions, are both indicators); the empty product is the intercept.
//! A formula's columns are built from its variables (`x`, `f`, `x:f`, `f:g`) without a
//! dense matrix; a term the package's grammar hands to formulaic (`I()`, `poly()`,
//! `log()`) comes as a numeric column of its own.

use crate::error::{CoreError, Result};
use rayon::prelude::*;

/// One factor of a model column.
#[derive(Clone, Copy, Debug)]
pub enum Factor<'a> {
    /// A numeric column's values.
    Values(&'a [f64]),
    /// 1 where the codes equal `level`, 0 elsewhere.
    Level { codes: &'a [u32], level: u32 },
}

impl Factor<'_> {
    fn len(&self) -> usize {
        match self {
            Factor::Values(v) => v.len(),
            Factor::Level { codes, .. } => codes.len(),
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
                if let Factor::Values(v) = factor {
                    if v.iter().any(|x| !x.is_finite()) {
                        return Err(CoreError::Value(format!(
                            "model column {} has a missing or infinite value (drop missing \
                             values first)",
                            j + 1
                        )));
                    }
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
            let v = match factor {
                Factor::Values(v) => v[i],
                Factor::Level { codes, level } => f64::from(u8::from(codes[i] == *level)),
            };
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
