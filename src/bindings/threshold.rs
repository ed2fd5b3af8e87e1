//! The threshold GLM's grid for `sscoverage.models.threshold`: one candidate's fit, the
//! candidates' covariance, and the score test of no threshold, as typed records.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::models::{design_and_rows, design_rows, model_input, PyModelColumns};
use super::{errors, PyDesign};
use crate::estimators::threshold::{candidates_covariance, fit_candidate, score_test};
use crate::models::glm::fit;
use crate::models::{Control, Threshold};

/// One candidate's fit (`estimators::threshold::CandidateFit`): the deviance, the
/// threshold coefficient and its unscaled variance ((X'WX)^-1 [j, j]), the convergence
/// flags, and, on a design for a fit that converged without separation, the influence
/// values of the threshold coefficient: unit totals (n_units), or on a calibrated design
/// the model's rows.
#[pyclass(
    name = "ThresholdCandidate",
    module = "sscoverage._core",
    frozen,
    get_all
)]
pub struct PyThresholdCandidate {
    deviance: f64,
    coefficient: f64,
    naive_variance: f64,
    converged: bool,
    boundary: bool,
    separated: bool,
    influence: Option<Py<PyArray1<f64>>>,
}

/// Fit the model `x` (its column `j` the threshold term at a candidate, see
/// `ModelColumns.with_threshold`) by R's IRLS; with `design` (a linearisation design)
/// and `rows` (the design row of each model row, ascending), also the influence values
/// of coefficient j.
#[pyfunction]
#[pyo3(signature = (x, j, y, weights, family, link=None, epsilon=1e-8, maxit=25, design=None,
                    rows=None))]
#[allow(clippy::too_many_arguments)]
pub fn threshold_candidate<'py>(
    py: Python<'py>,
    x: PyRef<'py, PyModelColumns>,
    j: usize,
    y: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    epsilon: f64,
    maxit: usize,
    design: Option<Bound<'py, PyDesign>>,
    rows: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<PyThresholdCandidate> {
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let control = Control { epsilon, maxit };
    let input = model_input(
        &regressors,
        &y,
        weights.as_slice()?,
        (family, link),
        None,
        control,
    )?;
    let on_design = design_and_rows(design.as_ref(), rows.as_ref())?;
    let p = input.p();
    let fitted = errors::in_core(py, || {
        let rows = on_design
            .map(|(_, rows)| design_rows(rows, input.n()))
            .transpose()?;
        let on = on_design.zip(rows.as_deref()).map(|((d, _), r)| (d, r));
        fit_candidate(&input, j, on)
    })?;
    let run = &fitted.run;
    Ok(PyThresholdCandidate {
        deviance: run.deviance,
        coefficient: run.coefficients[j],
        naive_variance: run.cov_unscaled[j * p + j],
        converged: run.converged,
        boundary: run.boundary,
        separated: run.separated,
        influence: fitted.influence.map(|v| v.into_pyarray(py).unbind()),
    })
}

/// The covariance (G x G) of the candidates' threshold coefficients from their
/// influence values (G x m: each candidate's `ThresholdCandidate.influence`), the model's
/// design rows `rows` being the domain.
#[pyfunction]
pub fn threshold_covariance<'py>(
    py: Python<'py>,
    design: Bound<'py, PyDesign>,
    influence: PyReadonlyArray2<'py, f64>,
    rows: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let g = influence.shape()[0];
    let values = influence.as_slice()?;
    let rows = rows.as_slice()?;
    let design = &design.get().inner;
    let cov = errors::in_core(py, || {
        let rows = design_rows(rows, rows.len())?;
        candidates_covariance(design, values, g, &rows)
    })?;
    cov.into_pyarray(py).reshape([g, g])
}

/// The score test of no threshold: the fit of the model without the term, its flags,
/// and (for a fit that converged without separation) each draw's score sums and their
/// variances (draws x G each; draw d flips unit u by `signs[d, u]`).
#[pyclass(
    name = "ThresholdScoreTest",
    module = "sscoverage._core",
    frozen,
    get_all
)]
pub struct PyThresholdScoreTest {
    converged: bool,
    boundary: bool,
    separated: bool,
    sums: Option<Py<PyArray2<f64>>>,
    variances: Option<Py<PyArray2<f64>>>,
}

/// Fit `x` (the model without the threshold term: the formula's own columns), then the
/// scores of the term of `values` (the threshold variable on the model's rows) of `kind`
/// at every candidate, summed to the design's units, and the wild bootstrap over the
/// units with `signs` (draws x n_units): `estimators::threshold::score_test`.
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link, epsilon, maxit, values, kind, candidates,
                    design, rows, signs))]
#[allow(clippy::too_many_arguments)]
pub fn threshold_score_test<'py>(
    py: Python<'py>,
    x: PyRef<'py, PyModelColumns>,
    y: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    epsilon: f64,
    maxit: usize,
    values: PyReadonlyArray1<'py, f64>,
    kind: &str,
    candidates: PyReadonlyArray1<'py, f64>,
    design: Bound<'py, PyDesign>,
    rows: PyReadonlyArray1<'py, i64>,
    signs: PyReadonlyArray2<'py, f64>,
) -> PyResult<PyThresholdScoreTest> {
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let control = Control { epsilon, maxit };
    let input = model_input(
        &regressors,
        &y,
        weights.as_slice()?,
        (family, link),
        None,
        control,
    )?;
    let kind = Threshold::parse(kind).map_err(errors::to_py)?;
    let (values, candidates) = (values.as_slice()?, candidates.as_slice()?);
    let (rows, draws) = (rows.as_slice()?, signs.shape()[0]);
    let signs = signs.as_slice()?;
    let design = &design.get().inner;
    let g = candidates.len();
    let (run, test) = errors::in_core(py, || {
        let run = fit(&input)?;
        if !run.converged || run.separated {
            return Ok((run, None));
        }
        let rows = design_rows(rows, input.n())?;
        let test = score_test(&input, &run, kind, values, candidates, design, &rows, signs)?;
        Ok((run, Some(test)))
    })?;
    let (sums, variances) = match test {
        Some((sums, variances)) => (
            Some(sums.into_pyarray(py).reshape([draws, g])?.unbind()),
            Some(variances.into_pyarray(py).reshape([draws, g])?.unbind()),
        ),
        None => (None, None),
    };
    Ok(PyThresholdScoreTest {
        converged: run.converged,
        boundary: run.boundary,
        separated: run.separated,
        sums,
        variances,
    })
}
