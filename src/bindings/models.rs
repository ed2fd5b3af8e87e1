//! Model fitting for `sscoverage.models`: numpy arrays in, a dict of arrays out.

use numpy::{
    IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors;
use crate::models::{glm_fit as fit, Control, Family, GlmInput, Link};

/// Fit a GLM by R's IRLS.  `x` is the n x p model matrix (C order), `weights` the prior
/// weights; `link` None = the family's default.  Returns coefficients, fitted values,
/// working weights and residuals, Pearson residuals, the unscaled covariance, the
/// influence values (n x p), deviance, iterations and the convergence flags.
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link=None, offset=None, epsilon=1e-8, maxit=25))]
#[allow(clippy::too_many_arguments)]
pub fn glm_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    offset: Option<PyReadonlyArray1<'py, f64>>,
    epsilon: f64,
    maxit: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let family = Family::parse(family).map_err(errors::to_py)?;
    let link = match link {
        Some(name) => Link::parse(name).map_err(errors::to_py)?,
        None => family.default_link(),
    };
    let (n, p) = (x.shape()[0], x.shape()[1]);
    let input = GlmInput {
        x: x.as_slice()?,
        n,
        p,
        y: y.as_slice()?,
        weights: weights.as_slice()?,
        offset: offset.as_ref().map(|o| o.as_slice()).transpose()?,
        family,
        link,
        control: Control { epsilon, maxit },
    };
    let res = py.detach(|| fit(&input)).map_err(errors::to_py)?;
    let out = PyDict::new(py);
    out.set_item("link", link.name())?;
    out.set_item("coefficients", res.coefficients.into_pyarray(py))?;
    out.set_item("fitted", res.fitted.into_pyarray(py))?;
    out.set_item("working_weights", res.working_weights.into_pyarray(py))?;
    out.set_item("working_residuals", res.working_residuals.into_pyarray(py))?;
    out.set_item("pearson_residuals", res.pearson_residuals.into_pyarray(py))?;
    out.set_item(
        "cov_unscaled",
        res.cov_unscaled.into_pyarray(py).reshape([p, p])?,
    )?;
    out.set_item("influence", res.influence.into_pyarray(py).reshape([n, p])?)?;
    out.set_item("deviance", res.deviance)?;
    out.set_item("iterations", res.iterations)?;
    out.set_item("converged", res.converged)?;
    out.set_item("boundary", res.boundary)?;
    out.set_item("separated", res.separated)?;
    Ok(out)
}
