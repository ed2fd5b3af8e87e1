//! Survival numerics for `sscoverage.survival`: numpy arrays in, arrays or a dict out.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors;
use crate::models::coxph::{self, Control, CoxInput, Ties};
use crate::models::km::{product_limit, NelsonAalen};

type Curve<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);
/// Entry rows, entry times and cumulative hazard of a Nelson–Aalen curve.
type Hazard<'py> = (
    Bound<'py, PyArray1<usize>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// The weighted product-limit curve (R's `survey:::svykm.fit`): (times, survival).
#[pyfunction]
fn km_product_limit<'py>(
    py: Python<'py>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
) -> PyResult<Curve<'py>> {
    let (t, e, w) = (time.as_slice()?, event.as_slice()?, weights.as_slice()?);
    let c = py
        .detach(|| product_limit(t, e, w))
        .map_err(errors::to_py)?;
    Ok((c.time.into_pyarray(py), c.surv.into_pyarray(py)))
}

/// The Nelson–Aalen curve of R's `svykm(se=TRUE)`: (entry rows, entry times,
/// cumulative hazard), one entry per event of non-zero weight.
#[pyfunction]
fn km_nelson_aalen<'py>(
    py: Python<'py>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
) -> PyResult<Hazard<'py>> {
    let (t, e, w) = (time.as_slice()?, event.as_slice()?, weights.as_slice()?);
    let na = py
        .detach(|| NelsonAalen::new(t, e, w))
        .map_err(errors::to_py)?;
    Ok((
        na.rows.into_pyarray(py),
        na.time.into_pyarray(py),
        na.cumhaz.into_pyarray(py),
    ))
}

/// Influence values (n x len(at)) of log S at the Nelson–Aalen entries `at`.
#[pyfunction]
fn km_log_influence<'py>(
    py: Python<'py>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
    at: Vec<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (t, e, w) = (time.as_slice()?, event.as_slice()?, weights.as_slice()?);
    let infl = py
        .detach(|| NelsonAalen::new(t, e, w)?.log_survival_influence(t, w, &at))
        .map_err(errors::to_py)?;
    infl.into_pyarray(py).reshape([t.len(), at.len()])
}

/// The cumulative hazard at the Nelson–Aalen entries `at` of (time, event, weights),
/// recomputed with each replicate's weights (n x R): R x len(at).
#[pyfunction]
fn km_replicate_cumhaz<'py>(
    py: Python<'py>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
    replicate_weights: PyReadonlyArray2<'py, f64>,
    at: Vec<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (t, e, w) = (time.as_slice()?, event.as_slice()?, weights.as_slice()?);
    let r = replicate_weights.shape()[1];
    let reps = replicate_weights.as_slice()?;
    let h = py
        .detach(|| NelsonAalen::new(t, e, w)?.replicate_cumhaz(t, reps, r, &at))
        .map_err(errors::to_py)?;
    h.into_pyarray(py).reshape([r, at.len()])
}

fn control(eps: f64, maxit: usize) -> Control {
    Control {
        eps,
        maxit,
        toler_inf: eps.sqrt(),
        ..Control::default()
    }
}

/// Fit a Cox model as R's `coxph` (`x`: n x p, C order, no intercept).  Returns the
/// coefficients, the model-based covariance `var`, the log partial likelihoods,
/// iterations, convergence, the columns that may be infinite and the weighted dfbeta
/// influence values (n x p).
#[pyfunction]
#[pyo3(signature = (x, time, event, weights, ties="efron", eps=1e-9, maxit=20))]
#[allow(clippy::too_many_arguments)]
fn cox_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
    ties: &str,
    eps: f64,
    maxit: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let (n, p) = (x.shape()[0], x.shape()[1]);
    let input = CoxInput {
        x: x.as_slice()?,
        n,
        p,
        time: time.as_slice()?,
        event: event.as_slice()?,
        weights: weights.as_slice()?,
        ties: Ties::parse(ties).map_err(errors::to_py)?,
        control: control(eps, maxit),
    };
    let (fit, influence) = py
        .detach(|| {
            let fit = coxph::fit(&input, None)?;
            let influence = coxph::influence(&input, &fit)?;
            Ok((fit, influence))
        })
        .map_err(errors::to_py)?;
    let out = PyDict::new(py);
    out.set_item("coefficients", fit.coefficients.into_pyarray(py))?;
    out.set_item("var", fit.var.into_pyarray(py).reshape([p, p])?)?;
    out.set_item("loglik", fit.loglik.to_vec().into_pyarray(py))?;
    out.set_item("iterations", fit.iterations)?;
    out.set_item("converged", fit.converged)?;
    out.set_item("infinite", fit.infinite)?;
    out.set_item("influence", influence.into_pyarray(py).reshape([n, p])?)?;
    Ok(out)
}

/// The Cox model fitted with `weights` (whose coefficients are `init`) refitted with
/// each replicate's weights (n x R) in their place: R x p, NaN rows for replicates whose
/// fit fails.
#[pyfunction]
#[pyo3(signature = (x, time, event, weights, replicate_weights, init, ties="efron", eps=1e-9, maxit=20))]
#[allow(clippy::too_many_arguments)]
fn cox_replicates<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
    replicate_weights: PyReadonlyArray2<'py, f64>,
    init: Vec<f64>,
    ties: &str,
    eps: f64,
    maxit: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (n, p) = (x.shape()[0], x.shape()[1]);
    let r = replicate_weights.shape()[1];
    let reps = replicate_weights.as_slice()?;
    let input = CoxInput {
        x: x.as_slice()?,
        n,
        p,
        time: time.as_slice()?,
        event: event.as_slice()?,
        weights: weights.as_slice()?,
        ties: Ties::parse(ties).map_err(errors::to_py)?,
        control: control(eps, maxit),
    };
    let coefs = py
        .detach(|| coxph::replicate_coefficients(&input, reps, r, &init))
        .map_err(errors::to_py)?;
    coefs.into_pyarray(py).reshape([r, p])
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(km_product_limit, m)?)?;
    m.add_function(wrap_pyfunction!(km_nelson_aalen, m)?)?;
    m.add_function(wrap_pyfunction!(km_log_influence, m)?)?;
    m.add_function(wrap_pyfunction!(km_replicate_cumhaz, m)?)?;
    m.add_function(wrap_pyfunction!(cox_fit, m)?)?;
    m.add_function(wrap_pyfunction!(cox_replicates, m)?)?;
    Ok(())
}
