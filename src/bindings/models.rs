//! Model fitting for `sscoverage.models`: numpy arrays in, typed records out.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::{errors, PyDesign};
use crate::models::glm::{
    batch_pass, batch_scores, replicate_coefficients, replicate_fits, solve_stacked,
};
use crate::models::{glm_fit as fit, Control, Family, GlmInput, Link};
use crate::CoreError;

/// The model's arrays as the core reads them, with the family and the link (None: the
/// family's default).
fn model_input<'a>(
    x: &'a PyReadonlyArray2<'_, f64>,
    y: &'a PyReadonlyArray1<'_, f64>,
    weights: &'a [f64],
    (family, link): (&str, Option<&str>),
    offset: Option<&'a [f64]>,
    control: Control,
) -> PyResult<GlmInput<'a>> {
    let family = Family::parse(family).map_err(errors::to_py)?;
    let link = match link {
        Some(name) => Link::parse(name).map_err(errors::to_py)?,
        None => family.default_link(),
    };
    Ok(GlmInput {
        x: x.as_slice()?,
        n: x.shape()[0],
        p: x.shape()[1],
        y: y.as_slice()?,
        weights,
        offset,
        family,
        link,
        control,
    })
}

/// The number of replicates in `replicate_weights` (rows x replicates), whose rows must
/// be the model matrix's.
fn replicate_count(
    x: &PyReadonlyArray2<'_, f64>,
    replicate_weights: &PyReadonlyArray2<'_, f64>,
) -> PyResult<usize> {
    let n = x.shape()[0];
    if replicate_weights.shape()[0] != n {
        return Err(errors::to_py(crate::CoreError::Shape(format!(
            "replicate weights have {} rows, the model matrix {n}",
            replicate_weights.shape()[0]
        ))));
    }
    Ok(replicate_weights.shape()[1])
}

/// A GLM fit as the core leaves it (`models::GlmFit`): the link's name, coefficients,
/// fitted means, working weights and residuals, Pearson residuals, the unscaled
/// covariance (p x p), the influence values (n x p), deviance, iterations and the
/// convergence flags; and `vcov`, the design-based covariance of the coefficients when
/// a design was given and the fit converged without separation.
#[pyclass(name = "GlmFit", module = "sscoverage._core", frozen, get_all)]
pub struct PyGlmFit {
    link: &'static str,
    coefficients: Py<PyArray1<f64>>,
    fitted: Py<PyArray1<f64>>,
    working_weights: Py<PyArray1<f64>>,
    working_residuals: Py<PyArray1<f64>>,
    pearson_residuals: Py<PyArray1<f64>>,
    cov_unscaled: Py<PyArray2<f64>>,
    influence: Py<PyArray2<f64>>,
    deviance: f64,
    iterations: usize,
    converged: bool,
    boundary: bool,
    separated: bool,
    vcov: Option<Py<PyArray2<f64>>>,
}

/// Fit a GLM by R's IRLS.  `x` is the n x p model matrix (C order), `weights` the prior
/// weights; `link` None = the family's default.  With `design` (a linearisation design)
/// and `rows` (the design row of each model row, ascending), the influence values are
/// summed to the design's units where they are and the covariance comes back as `vcov`
/// (R's `svy.varcoef`), the fitted rows being the domain.
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link=None, offset=None, epsilon=1e-8, maxit=25,
                    design=None, rows=None))]
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
    design: Option<Bound<'py, PyDesign>>,
    rows: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<PyGlmFit> {
    let offset = offset.as_ref().map(|o| o.as_slice()).transpose()?;
    let control = Control { epsilon, maxit };
    let input = model_input(&x, &y, weights.as_slice()?, (family, link), offset, control)?;
    let (n, p) = (input.n, input.p);
    let on_design = match (&design, &rows) {
        (Some(d), Some(r)) => Some((&d.get().inner, r.as_slice()?)),
        (None, None) => None,
        _ => {
            return Err(errors::to_py(CoreError::Shape(
                "give the design and the design rows of the model rows together".into(),
            )))
        }
    };
    let (res, vcov) = errors::in_core(py, || {
        let res = fit(&input)?;
        let vcov = match on_design {
            Some((design, rows)) if res.converged && !res.separated => {
                let rows = design_rows(rows, n)?;
                Some(design.covariance_of_rows(&res.influence, p, &rows)?.matrix)
            }
            _ => None,
        };
        Ok((res, vcov))
    })?;
    let matrix = |v: Vec<f64>, r: usize| -> PyResult<Py<PyArray2<f64>>> {
        Ok(v.into_pyarray(py).reshape([r, p])?.unbind())
    };
    Ok(PyGlmFit {
        link: input.link.name(),
        coefficients: res.coefficients.into_pyarray(py).unbind(),
        fitted: res.fitted.into_pyarray(py).unbind(),
        working_weights: res.working_weights.into_pyarray(py).unbind(),
        working_residuals: res.working_residuals.into_pyarray(py).unbind(),
        pearson_residuals: res.pearson_residuals.into_pyarray(py).unbind(),
        cov_unscaled: matrix(res.cov_unscaled, p)?,
        influence: matrix(res.influence, n)?,
        deviance: res.deviance,
        iterations: res.iterations,
        converged: res.converged,
        boundary: res.boundary,
        separated: res.separated,
        vcov: vcov.map(|v| matrix(v, p)).transpose()?,
    })
}

/// The design rows of the model's n rows, as indices.
fn design_rows(rows: &[i64], n: usize) -> crate::error::Result<Vec<usize>> {
    if rows.len() != n {
        return Err(CoreError::Shape(format!(
            "{} design rows for the model's {n} rows",
            rows.len()
        )));
    }
    rows.iter()
        .map(|&r| {
            usize::try_from(r)
                .map_err(|_| CoreError::Shape(format!("{r} is not a row of the design")))
        })
        .collect()
}

/// The coefficients of the model refitted with each replicate's weights (R's
/// `svyglm.svyrep.design`): `replicate_weights` n x R (the rows of the model), each
/// normalised to sum 1, every fit starting from the full-sample coefficients `start`.
/// Returns R x p.
#[pyfunction]
#[pyo3(signature = (x, y, replicate_weights, start, family, link=None, epsilon=1e-8, maxit=25))]
#[allow(clippy::too_many_arguments)]
pub fn glm_replicate_coefficients<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    replicate_weights: PyReadonlyArray2<'py, f64>,
    start: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    epsilon: f64,
    maxit: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let control = Control { epsilon, maxit };
    let n_replicates = replicate_count(&x, &replicate_weights)?;
    let ones = vec![1.0; x.shape()[0]];
    let input = model_input(&x, &y, &ones, (family, link), None, control)?;
    let (reps, start) = (replicate_weights.as_slice()?, start.as_slice()?);
    let coef = py
        .detach(|| replicate_coefficients(&input, reps, n_replicates, start))
        .map_err(errors::to_py)?;
    let p = input.p;
    coef.into_pyarray(py).reshape([n_replicates, p])
}

/// Replicate coefficients (R x p) and deviances (R).
type Fits<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>);

/// The model refitted with each replicate's weights (`replicate_weights` n x R, each
/// rescaled to mean 1), from scratch: (coefficients R x p, deviances R), NaN / inf for
/// a replicate whose fit fails.
#[pyfunction]
#[pyo3(signature = (x, y, replicate_weights, family, link=None, epsilon=1e-8, maxit=25))]
#[allow(clippy::too_many_arguments)]
pub fn glm_replicate_fits<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    replicate_weights: PyReadonlyArray2<'py, f64>,
    family: &str,
    link: Option<&str>,
    epsilon: f64,
    maxit: usize,
) -> PyResult<Fits<'py>> {
    let control = Control { epsilon, maxit };
    let n_replicates = replicate_count(&x, &replicate_weights)?;
    let ones = vec![1.0; x.shape()[0]];
    let input = model_input(&x, &y, &ones, (family, link), None, control)?;
    let reps = replicate_weights.as_slice()?;
    let (coef, deviance) = py
        .detach(|| replicate_fits(&input, reps, n_replicates))
        .map_err(errors::to_py)?;
    let p = input.p;
    Ok((
        coef.into_pyarray(py).reshape([n_replicates, p])?,
        deviance.into_pyarray(py),
    ))
}

/// One batch's part of a streamed IRLS pass (`models::glm::BatchPass`), with the link's
/// name: deviance, validity, the triangular factor of its step (q x q flat, q = p + 1;
/// None unless asked for and valid), its informative rows, and the drift.
#[pyclass(name = "GlmBatchPass", module = "sscoverage._core", frozen, get_all)]
pub struct PyGlmBatchPass {
    link: &'static str,
    deviance: f64,
    valid: bool,
    triangle: Option<Py<PyArray1<f64>>>,
    informative: usize,
    drift: f64,
}

/// One batch's part of a streamed IRLS pass at `beta` (None: the starting means):
/// deviance, validity, the triangular factor of its step (when `step`), its informative
/// rows, and the drift from `reference`.
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link=None, beta=None, step=true, reference=None))]
#[allow(clippy::too_many_arguments)]
pub fn glm_batch_pass<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    beta: Option<PyReadonlyArray1<'py, f64>>,
    step: bool,
    reference: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<PyGlmBatchPass> {
    let input = model_input(
        &x,
        &y,
        weights.as_slice()?,
        (family, link),
        None,
        Control::default(),
    )?;
    let beta = beta.as_ref().map(|b| b.as_slice()).transpose()?;
    let reference = reference.as_ref().map(|b| b.as_slice()).transpose()?;
    let res = errors::in_core(py, || batch_pass(&input, beta, step, reference))?;
    Ok(PyGlmBatchPass {
        link: input.link.name(),
        deviance: res.deviance,
        valid: res.valid,
        triangle: res.triangle.map(|t| t.into_pyarray(py).unbind()),
        informative: res.informative,
        drift: res.drift,
    })
}

/// The step from the batches' factors stacked in order: (coefficients, (X'WX)^-1 p x p).
#[pyfunction]
#[pyo3(signature = (triangles, p, epsilon=1e-8))]
pub fn glm_solve_stacked<'py>(
    py: Python<'py>,
    triangles: Vec<PyReadonlyArray1<'py, f64>>,
    p: usize,
    epsilon: f64,
) -> PyResult<StepOut<'py>> {
    let slices = triangles
        .iter()
        .map(|t| t.as_slice())
        .collect::<Result<Vec<_>, _>>()?;
    let control = Control {
        epsilon,
        ..Control::default()
    };
    let (coef, cov) = solve_stacked(&slices, p, &control).map_err(errors::to_py)?;
    Ok((coef.into_pyarray(py), cov.into_pyarray(py).reshape([p, p])?))
}

/// One batch's scores at `beta` (working weights from `previous`; None: the starting
/// means) summed to units (n_units x p), rows of non-zero weight per unit, and the sums
/// of w, w e, w e^2 and non-zero rows of the Pearson residuals e.
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link, beta, previous, units, n_units))]
#[allow(clippy::too_many_arguments)]
pub fn glm_batch_scores<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    beta: PyReadonlyArray1<'py, f64>,
    previous: Option<PyReadonlyArray1<'py, f64>>,
    units: PyReadonlyArray1<'py, u32>,
    n_units: usize,
) -> PyResult<ScoresOut<'py>> {
    let input = model_input(
        &x,
        &y,
        weights.as_slice()?,
        (family, link),
        None,
        Control::default(),
    )?;
    let p = input.p;
    let beta = beta.as_slice()?;
    let previous = previous.as_ref().map(|b| b.as_slice()).transpose()?;
    let units = units.as_slice()?;
    let res = py
        .detach(|| batch_scores(&input, beta, previous, units, n_units))
        .map_err(errors::to_py)?;
    Ok((
        res.unit_scores.into_pyarray(py).reshape([n_units, p])?,
        res.unit_rows.into_pyarray(py),
        res.pearson.to_vec().into_pyarray(py),
    ))
}

type StepOut<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>);

type ScoresOut<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);
