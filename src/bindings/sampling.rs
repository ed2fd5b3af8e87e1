//! Selection for `sscoverage.sampling`: sizes and strata in, selected positions and
//! inclusion probabilities out.

use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;

use super::errors;
use crate::sampling::{self, Joint, Method};

type Drawn<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f64>>);

/// Select `n[h]` units in each stratum by `method`; returns the selected positions and
/// every unit's inclusion probability (expected draws for "pps_wr").
#[pyfunction]
#[pyo3(signature = (size, strata, n, method, seed))]
pub fn select<'py>(
    py: Python<'py>,
    size: Option<PyReadonlyArray1<'py, f64>>,
    strata: PyReadonlyArray1<'py, u32>,
    n: Vec<usize>,
    method: &str,
    seed: u64,
) -> PyResult<Drawn<'py>> {
    let method = Method::parse(method).map_err(errors::to_py)?;
    let size = size.as_ref().map(|s| s.as_slice()).transpose()?;
    let strata = strata.as_slice()?;
    let s = errors::in_core(py, || sampling::select(size, strata, &n, method, seed))?;
    Ok((s.units.into_pyarray(py), s.prob.into_pyarray(py)))
}

/// Inclusion probabilities proportional to size for a sample of n, with certainty units.
#[pyfunction]
pub fn pps_probabilities<'py>(
    py: Python<'py>,
    size: PyReadonlyArray1<'py, f64>,
    n: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let p = sampling::pps_probabilities(size.as_slice()?, n).map_err(errors::to_py)?;
    Ok(p.into_pyarray(py))
}

/// Joint inclusion probabilities (N x N) of "systematic" (in the given order) or
/// "sampford" selection with inclusion probabilities `prob`.
#[pyfunction]
pub fn joint_probabilities<'py>(
    py: Python<'py>,
    prob: PyReadonlyArray1<'py, f64>,
    design: &str,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let design = match design {
        "systematic" => Joint::Systematic,
        "sampford" => Joint::Sampford,
        other => {
            return Err(errors::to_py(crate::CoreError::Sampling(format!(
                "joint probabilities are available for 'systematic' and 'sampford', not {other:?}"
            ))))
        }
    };
    let prob = prob.as_slice()?;
    let n = prob.len();
    let v = errors::in_core(py, || sampling::joint_probabilities(prob, design))?;
    v.into_pyarray(py).reshape([n, n])
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(select, m)?)?;
    m.add_function(wrap_pyfunction!(pps_probabilities, m)?)?;
    m.add_function(wrap_pyfunction!(joint_probabilities, m)?)?;
    Ok(())
}
