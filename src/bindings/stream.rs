//! Batches of a streamed data set (a polars LazyFrame, Dask partitions) reduced to
//! per-(domain, unit) sums by the core's pass; the sums go back to the design's engine.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::errors;
use super::outcomes;
use crate::estimate::{batch_sums, RowData};

type SumsOut<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// Sums of one batch: (table n_domains x n_units x stride, squares), flat.
#[pyfunction]
#[pyo3(signature = (weights, units, n_units, domain, n_domains, numeric, categorical, with_squares=false))]
#[allow(clippy::too_many_arguments)]
pub fn accumulate_batch<'py>(
    py: Python<'py>,
    weights: PyReadonlyArray1<'py, f64>,
    units: PyReadonlyArray1<'py, u32>,
    n_units: usize,
    domain: PyReadonlyArray1<'py, u32>,
    n_domains: usize,
    numeric: Vec<(usize, PyReadonlyArray1<'py, f64>)>,
    categorical: Vec<(usize, PyReadonlyArray1<'py, u32>, u32)>,
    with_squares: bool,
) -> PyResult<SumsOut<'py>> {
    let outcomes = outcomes(&numeric, &categorical)?;
    let data = RowData {
        weights: weights.as_slice()?,
        unit_of_row: units.as_slice()?,
        n_units,
    };
    let domain = domain.as_slice()?;
    let sums = errors::in_core(py, || {
        batch_sums(&data, &outcomes, domain, n_domains, with_squares)
    })?;
    Ok((sums.table.into_pyarray(py), sums.squares.into_pyarray(py)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(accumulate_batch, m)?)
}
