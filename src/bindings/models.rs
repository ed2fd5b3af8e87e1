//! Model fitting for `sscoverage.models`: numpy arrays in, typed records out.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use rayon::prelude::*;

use super::{errors, PyDesign};
use crate::estimators::glm::{fit_with_influence, influence_covariance};
use crate::models::glm::{
    batch_pass, batch_scores, fit_scored, replicate_coefficients, replicate_fits, run_irls,
    solution_rows, BatchPass, Passes,
};
use crate::models::{Control, Factor, Family, GlmInput, Link, Regressors, Threshold};
use crate::svyvar::WeightedMoments;
use crate::CoreError;

/// A model matrix's columns as the core assembles them (`models::Regressors`), never an
/// n x p matrix: numeric data columns `values`, factor codes `codes`, and for each model
/// column its factors, multiplied in order: `(k, None)` is `values[k]`, `(k, level)` the
/// indicator `codes[k] == level`; no factor is the intercept.  `with_threshold` adds the
/// threshold model's term at a candidate.
#[pyclass(name = "ModelColumns", module = "sscoverage._core", frozen)]
pub struct PyModelColumns {
    #[pyo3(get)]
    n: usize,
    values: Vec<Py<PyArray1<f64>>>,
    codes: Vec<Py<PyArray1<u32>>>,
    columns: Vec<Vec<Layout>>,
}

/// One factor of a model column, by the index of its array.
#[derive(Clone, Copy)]
enum Layout {
    Values(usize),
    Level(usize, u32),
    /// The threshold term of `values[k]` at a candidate.
    Threshold(usize, Threshold, f64),
}

/// A factor of a model column as Python gives it: `(k, level)` or `(k, kind, at)`.
#[derive(FromPyObject)]
enum FactorArg {
    Coded(usize, Option<u32>),
    Threshold(usize, String, f64),
}

/// The arrays of a `ModelColumns` borrowed for one call.
pub(crate) struct Borrowed<'py, 'c> {
    values: Vec<PyReadonlyArray1<'py, f64>>,
    codes: Vec<PyReadonlyArray1<'py, u32>>,
    of: &'c PyModelColumns,
}

impl Borrowed<'_, '_> {
    pub(crate) fn regressors(&self) -> PyResult<Regressors<'_>> {
        let values = self
            .values
            .iter()
            .map(|v| v.as_slice())
            .collect::<Result<Vec<_>, _>>()?;
        let codes = self
            .codes
            .iter()
            .map(|v| v.as_slice())
            .collect::<Result<Vec<_>, _>>()?;
        let columns = self
            .of
            .columns
            .iter()
            .map(|factors| {
                factors
                    .iter()
                    .map(|&factor| match factor {
                        Layout::Values(k) => Factor::Values(values[k]),
                        Layout::Level(k, level) => Factor::Level {
                            codes: codes[k],
                            level,
                        },
                        Layout::Threshold(k, kind, at) => kind.factor(values[k], at),
                    })
                    .collect()
            })
            .collect();
        Regressors::new(self.of.n, columns).map_err(errors::to_py)
    }
}

impl PyModelColumns {
    /// The same columns over the same arrays.
    fn shared(&self, py: Python<'_>) -> Self {
        PyModelColumns {
            n: self.n,
            values: self.values.iter().map(|v| v.clone_ref(py)).collect(),
            codes: self.codes.iter().map(|v| v.clone_ref(py)).collect(),
            columns: self.columns.clone(),
        }
    }

    pub(crate) fn borrow<'py>(&self, py: Python<'py>) -> Borrowed<'py, '_> {
        Borrowed {
            values: self.values.iter().map(|v| v.bind(py).readonly()).collect(),
            codes: self.codes.iter().map(|v| v.bind(py).readonly()).collect(),
            of: self,
        }
    }
}

#[pymethods]
impl PyModelColumns {
    /// Model columns over `n` rows; every factor names an array of n values: `(k, None)`
    /// `values[k]`, `(k, level)` the indicator `codes[k] == level`, `(k, kind, at)` the
    /// threshold model's term of `values[k]` at `at` (see `with_threshold`).
    #[new]
    fn new(
        py: Python<'_>,
        n: usize,
        values: Vec<Bound<'_, PyArray1<f64>>>,
        codes: Vec<Bound<'_, PyArray1<u32>>>,
        columns: Vec<Vec<FactorArg>>,
    ) -> PyResult<Self> {
        let columns = columns
            .into_iter()
            .map(|factors| {
                factors
                    .into_iter()
                    .map(|factor| {
                        let (layout, k, known) = match factor {
                            FactorArg::Coded(k, None) => (Layout::Values(k), k, values.len()),
                            FactorArg::Coded(k, Some(l)) => (Layout::Level(k, l), k, codes.len()),
                            FactorArg::Threshold(k, kind, at) => (
                                Layout::Threshold(
                                    k,
                                    Threshold::parse(&kind).map_err(errors::to_py)?,
                                    at,
                                ),
                                k,
                                values.len(),
                            ),
                        };
                        if k >= known {
                            return Err(errors::to_py(CoreError::Shape(format!(
                                "a model column names array {k} of {known}"
                            ))));
                        }
                        Ok(layout)
                    })
                    .collect::<PyResult<Vec<_>>>()
            })
            .collect::<PyResult<Vec<_>>>()?;
        let out = PyModelColumns {
            n,
            values: values.into_iter().map(Bound::unbind).collect(),
            codes: codes.into_iter().map(Bound::unbind).collect(),
            columns,
        };
        // Lengths and finite values, checked once here as every call checks them.
        out.borrow(py).regressors()?;
        Ok(out)
    }

    /// The number of model columns.
    #[getter]
    fn p(&self) -> usize {
        self.columns.len()
    }

    /// The same columns (the arrays shared, not copied) with the threshold model's term
    /// of the numeric column `x` (n values) at the candidate `at` inserted as column `j`:
    /// `kind` "slope" is max(x - at, 0), "level" 1 where x < at.
    fn with_threshold(
        &self,
        py: Python<'_>,
        j: usize,
        x: Bound<'_, PyArray1<f64>>,
        kind: &str,
        at: f64,
    ) -> PyResult<Self> {
        let kind = Threshold::parse(kind).map_err(errors::to_py)?;
        if j > self.columns.len() {
            return Err(errors::to_py(CoreError::Shape(format!(
                "column {j} inserted in a model matrix of {} columns",
                self.columns.len()
            ))));
        }
        let mut out = self.shared(py);
        out.columns
            .insert(j, vec![Layout::Threshold(out.values.len(), kind, at)]);
        out.values.push(x.unbind());
        out.borrow(py).regressors()?;
        Ok(out)
    }

    /// The model matrix itself, row-major n x p, or its `columns` in that order (for
    /// margins, the Cox model and counterfactual predictions, which need the rows).
    #[pyo3(signature = (columns=None))]
    fn dense<'py>(
        &self,
        py: Python<'py>,
        columns: Option<Vec<usize>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let borrowed = self.borrow(py);
        let x = borrowed.regressors()?;
        let which = columns.unwrap_or_else(|| (0..x.p()).collect());
        if let Some(j) = which.iter().find(|&&j| j >= x.p()) {
            return Err(errors::to_py(CoreError::Shape(format!(
                "column {j} of a model matrix of {} columns",
                x.p()
            ))));
        }
        let q = which.len();
        x.dense_of(&which).into_pyarray(py).reshape([self.n, q])
    }
}

/// The model's arrays as the core reads them, with the family and the link (None: the
/// family's default).
pub(super) fn model_input<'a>(
    x: &'a Regressors<'a>,
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
        x,
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
    x: &PyModelColumns,
    replicate_weights: &PyReadonlyArray2<'_, f64>,
) -> PyResult<usize> {
    let n = x.n;
    if replicate_weights.shape()[0] != n {
        return Err(errors::to_py(crate::CoreError::Shape(format!(
            "replicate weights have {} rows, the model matrix {n}",
            replicate_weights.shape()[0]
        ))));
    }
    Ok(replicate_weights.shape()[1])
}

/// A GLM fit as the core leaves it (`models::IrlsRun`): the link's name, coefficients,
/// those the last step started from (`previous`; None: the starting means), the unscaled
/// covariance (p x p), deviance, iterations and the convergence flags; for a fit that
/// converged without separation, the Pearson residuals' moments under the prior weights
/// (`pearson`: sums of w, w e, w e^2 and the rows of non-zero w) and, when a design was
/// given, `vcov`, the design-based covariance of the coefficients.
#[pyclass(name = "GlmFit", module = "sscoverage._core", frozen, get_all)]
pub struct PyGlmFit {
    link: &'static str,
    coefficients: Py<PyArray1<f64>>,
    previous: Option<Py<PyArray1<f64>>>,
    cov_unscaled: Py<PyArray2<f64>>,
    deviance: f64,
    iterations: usize,
    converged: bool,
    boundary: bool,
    separated: bool,
    pearson: Option<Py<PyArray1<f64>>>,
    vcov: Option<Py<PyArray2<f64>>>,
}

/// Fit a GLM by R's IRLS.  `x` holds the model's n columns, `weights` the prior weights;
/// `link` None = the family's default.  With `design` (a linearisation design) and
/// `rows` (the design row of each model row, ascending), the influence values are
/// summed to the design's units in a pass over the rows and the covariance comes back
/// as `vcov` (R's `svy.varcoef`), the fitted rows being the domain.  The rows at the
/// solution themselves come from `glm_rows`.
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link=None, offset=None, epsilon=1e-8, maxit=25,
                    design=None, rows=None))]
#[allow(clippy::too_many_arguments)]
pub fn glm_fit<'py>(
    py: Python<'py>,
    x: PyRef<'py, PyModelColumns>,
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
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let input = model_input(
        &regressors,
        &y,
        weights.as_slice()?,
        (family, link),
        offset,
        control,
    )?;
    let (n, p) = (input.n(), input.p());
    let on_design = design_and_rows(design.as_ref(), rows.as_ref())?;
    let (run, pearson, vcov) = errors::in_core(py, || {
        let Some((design, rows)) = on_design else {
            // No design: the Pearson moments of the rows, as one unit.
            let (run, scores) = fit_scored(&input, |_| 0, 1)?;
            return Ok((run, scores.map(|s| s.pearson), None));
        };
        let rows = design_rows(rows, n)?;
        let (run, influence) = fit_with_influence(&input, design, &rows)?;
        let Some((influence, pearson)) = influence else {
            return Ok((run, None, None));
        };
        let vcov = influence_covariance(design, &influence, p, &rows)?;
        Ok((run, Some(pearson), Some(vcov)))
    })?;
    let matrix = |v: Vec<f64>| -> PyResult<Py<PyArray2<f64>>> {
        Ok(v.into_pyarray(py).reshape([p, p])?.unbind())
    };
    Ok(PyGlmFit {
        link: input.link.name(),
        coefficients: run.coefficients.into_pyarray(py).unbind(),
        previous: run.previous.map(|b| b.into_pyarray(py).unbind()),
        cov_unscaled: matrix(run.cov_unscaled)?,
        deviance: run.deviance,
        iterations: run.iterations,
        converged: run.converged,
        boundary: run.boundary,
        separated: run.separated,
        pearson: pearson.map(|m| moments(m).into_pyarray(py).unbind()),
        vcov: vcov.map(matrix).transpose()?,
    })
}

/// Weighted moments as the array [sum w, sum w e, sum w e^2, rows of non-zero w].
fn moments(m: WeightedMoments) -> Vec<f64> {
    vec![m.weight, m.first, m.second, m.n_obs]
}

/// The rows of a GLM at its solution (`models::glm::SolutionRows`): fitted means,
/// working weights and residuals, Pearson residuals (n each) and the influence values
/// (n x p).
#[pyclass(name = "GlmRows", module = "sscoverage._core", frozen, get_all)]
pub struct PyGlmRows {
    fitted: Py<PyArray1<f64>>,
    working_weights: Py<PyArray1<f64>>,
    working_residuals: Py<PyArray1<f64>>,
    pearson_residuals: Py<PyArray1<f64>>,
    influence: Py<PyArray2<f64>>,
}

/// The rows at the solution `beta` of a fit (`previous`, `cov_unscaled`: the fit's), for
/// the callers that read them row by row (margins).
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link, beta, previous, cov_unscaled))]
#[allow(clippy::too_many_arguments)]
pub fn glm_rows<'py>(
    py: Python<'py>,
    x: PyRef<'py, PyModelColumns>,
    y: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    beta: PyReadonlyArray1<'py, f64>,
    previous: Option<PyReadonlyArray1<'py, f64>>,
    cov_unscaled: PyReadonlyArray2<'py, f64>,
) -> PyResult<PyGlmRows> {
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let input = model_input(
        &regressors,
        &y,
        weights.as_slice()?,
        (family, link),
        None,
        Control::default(),
    )?;
    let (n, p) = (input.n(), input.p());
    let beta = beta.as_slice()?;
    let previous = previous.as_ref().map(|b| b.as_slice()).transpose()?;
    let cov = cov_unscaled.as_slice()?;
    let rows = errors::in_core(py, || solution_rows(&input, beta, previous, cov))?;
    Ok(PyGlmRows {
        fitted: rows.fitted.into_pyarray(py).unbind(),
        working_weights: rows.working_weights.into_pyarray(py).unbind(),
        working_residuals: rows.working_residuals.into_pyarray(py).unbind(),
        pearson_residuals: rows.pearson_residuals.into_pyarray(py).unbind(),
        influence: rows.influence.into_pyarray(py).reshape([n, p])?.unbind(),
    })
}

/// A model's design and the design rows of its rows, given together or not at all.
pub(crate) fn design_and_rows<'a>(
    design: Option<&'a Bound<'_, PyDesign>>,
    rows: Option<&'a PyReadonlyArray1<'_, i64>>,
) -> PyResult<Option<(&'a crate::design::Design, &'a [i64])>> {
    match (design, rows) {
        (Some(d), Some(r)) => Ok(Some((&d.get().inner, r.as_slice()?))),
        (None, None) => Ok(None),
        _ => Err(errors::to_py(CoreError::Shape(
            "give the design and the design rows of the model rows together".into(),
        ))),
    }
}

/// The design rows of the model's n rows, as indices.
pub(crate) fn design_rows(rows: &[i64], n: usize) -> crate::error::Result<Vec<usize>> {
    if rows.len() != n {
        return Err(CoreError::Shape(format!(
            "{} design rows for the model's {n} rows",
            rows.len()
        )));
    }
    if let Some(r) = rows.par_iter().find_first(|&&r| r < 0) {
        return Err(CoreError::Shape(format!("{r} is not a row of the design")));
    }
    // In parallel: a sequential pass over a million rows was 6 ms of the fit.
    Ok(rows
        .par_iter()
        .map(|&r| usize::try_from(r).unwrap_or(usize::MAX))
        .collect())
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
    x: PyRef<'py, PyModelColumns>,
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
    let ones = vec![1.0; x.n];
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let input = model_input(&regressors, &y, &ones, (family, link), None, control)?;
    let (reps, start) = (replicate_weights.as_slice()?, start.as_slice()?);
    let coef = py
        .detach(|| replicate_coefficients(&input, reps, n_replicates, start))
        .map_err(errors::to_py)?;
    let p = input.p();
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
    x: PyRef<'py, PyModelColumns>,
    y: PyReadonlyArray1<'py, f64>,
    replicate_weights: PyReadonlyArray2<'py, f64>,
    family: &str,
    link: Option<&str>,
    epsilon: f64,
    maxit: usize,
) -> PyResult<Fits<'py>> {
    let control = Control { epsilon, maxit };
    let n_replicates = replicate_count(&x, &replicate_weights)?;
    let ones = vec![1.0; x.n];
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let input = model_input(&regressors, &y, &ones, (family, link), None, control)?;
    let reps = replicate_weights.as_slice()?;
    let (coef, deviance) = py
        .detach(|| replicate_fits(&input, reps, n_replicates))
        .map_err(errors::to_py)?;
    let p = input.p();
    Ok((
        coef.into_pyarray(py).reshape([n_replicates, p])?,
        deviance.into_pyarray(py),
    ))
}

/// One batch's part of a streamed IRLS pass (`models::glm::BatchPass`): deviance,
/// validity, the triangular factor of its step (q x q flat, q = p + 1; None unless asked
/// for and valid), its informative rows, and the drift.  It travels from a Dask worker
/// to the client, so it pickles.
#[pyclass(name = "GlmBatchPass", module = "sscoverage._core", frozen, get_all)]
pub struct PyGlmBatchPass {
    deviance: f64,
    valid: bool,
    triangle: Option<Py<PyArray1<f64>>>,
    informative: usize,
    drift: f64,
}

#[pymethods]
impl PyGlmBatchPass {
    #[new]
    fn new(
        deviance: f64,
        valid: bool,
        triangle: Option<Py<PyArray1<f64>>>,
        informative: usize,
        drift: f64,
    ) -> Self {
        PyGlmBatchPass {
            deviance,
            valid,
            triangle,
            informative,
            drift,
        }
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let py = slf.py();
        let me = slf.get();
        let args = (
            me.deviance,
            me.valid,
            me.triangle.as_ref().map(|t| t.clone_ref(py)),
            me.informative,
            me.drift,
        );
        Ok((
            slf.get_type().into_any(),
            args.into_pyobject(py)?.into_any(),
        ))
    }
}

impl PyGlmBatchPass {
    fn to_core(&self, py: Python<'_>) -> PyResult<BatchPass> {
        Ok(BatchPass {
            deviance: self.deviance,
            valid: self.valid,
            triangle: self
                .triangle
                .as_ref()
                .map(|t| t.bind(py).readonly().as_slice().map(<[f64]>::to_vec))
                .transpose()?,
            informative: self.informative,
            drift: self.drift,
        })
    }
}

/// One batch's part of a streamed IRLS pass at `beta` (None: the starting means):
/// deviance, validity, the triangular factor of its step (when `step`), its informative
/// rows, and the drift from `reference`.
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link=None, beta=None, step=true, reference=None))]
#[allow(clippy::too_many_arguments)]
pub fn glm_batch_pass<'py>(
    py: Python<'py>,
    x: PyRef<'py, PyModelColumns>,
    y: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    beta: Option<PyReadonlyArray1<'py, f64>>,
    step: bool,
    reference: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<PyGlmBatchPass> {
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let input = model_input(
        &regressors,
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
        deviance: res.deviance,
        valid: res.valid,
        triangle: res.triangle.map(|t| t.into_pyarray(py).unbind()),
        informative: res.informative,
        drift: res.drift,
    })
}

/// A streamed design's batches as the IRLS passes over them: `pass_fn(beta, step,
/// reference)` maps `glm_batch_pass` over the batches (on Dask workers or here) and
/// returns their parts in batch order.  A Python error in a pass ends the fit with it.
struct StreamedPasses<'py> {
    pass_fn: Bound<'py, PyAny>,
    failure: Option<PyErr>,
}

impl Passes for StreamedPasses<'_> {
    fn pass(
        &mut self,
        beta: Option<&[f64]>,
        step: bool,
        reference: Option<&[f64]>,
    ) -> crate::error::Result<Vec<BatchPass>> {
        let py = self.pass_fn.py();
        let parts = (|| -> PyResult<Vec<BatchPass>> {
            let beta = beta.map(|b| b.to_vec().into_pyarray(py));
            let reference = reference.map(|b| b.to_vec().into_pyarray(py));
            let parts: Vec<Bound<'_, PyGlmBatchPass>> =
                self.pass_fn.call1((beta, step, reference))?.extract()?;
            parts.iter().map(|part| part.get().to_core(py)).collect()
        })();
        parts.map_err(|err| {
            self.failure = Some(err);
            CoreError::Value("a pass over the batches failed".into())
        })
    }
}

/// Where a streamed IRLS ended (`models::glm::IrlsRun`), with the link's name.
#[pyclass(name = "IrlsRun", module = "sscoverage._core", frozen, get_all)]
pub struct PyIrlsRun {
    link: &'static str,
    coefficients: Py<PyArray1<f64>>,
    previous: Option<Py<PyArray1<f64>>>,
    cov_unscaled: Py<PyArray2<f64>>,
    deviance: f64,
    iterations: usize,
    converged: bool,
    boundary: bool,
    separated: bool,
}

/// R's IRLS over a streamed design's batches: the core's one `glm.fit` loop (steps,
/// halving, convergence, the separation probe), each pass `pass_fn(beta, step,
/// reference)` -> the batches' `GlmBatchPass` parts in batch order.
#[pyfunction]
#[pyo3(signature = (pass_fn, p, family, link=None, epsilon=1e-8, maxit=25))]
pub fn glm_streamed_fit(
    py: Python<'_>,
    pass_fn: Bound<'_, PyAny>,
    p: usize,
    family: &str,
    link: Option<&str>,
    epsilon: f64,
    maxit: usize,
) -> PyResult<PyIrlsRun> {
    let family = Family::parse(family).map_err(errors::to_py)?;
    let link = match link {
        Some(name) => Link::parse(name).map_err(errors::to_py)?,
        None => family.default_link(),
    };
    let control = Control { epsilon, maxit };
    let mut passes = StreamedPasses {
        pass_fn,
        failure: None,
    };
    let run = run_irls(&mut passes, p, &control, family.has_bounded_mean(), None);
    if let Some(err) = passes.failure.take() {
        return Err(err);
    }
    let run = run.map_err(errors::to_py)?;
    Ok(PyIrlsRun {
        link: link.name(),
        coefficients: run.coefficients.into_pyarray(py).unbind(),
        previous: run.previous.map(|b| b.into_pyarray(py).unbind()),
        cov_unscaled: run.cov_unscaled.into_pyarray(py).reshape([p, p])?.unbind(),
        deviance: run.deviance,
        iterations: run.iterations,
        converged: run.converged,
        boundary: run.boundary,
        separated: run.separated,
    })
}

/// One batch's scores at `beta` (working weights from `previous`; None: the starting
/// means) summed to units (n_units x p), rows of non-zero weight per unit, and the sums
/// of w, w e, w e^2 and non-zero rows of the Pearson residuals e.
#[pyfunction]
#[pyo3(signature = (x, y, weights, family, link, beta, previous, units, n_units))]
#[allow(clippy::too_many_arguments)]
pub fn glm_batch_scores<'py>(
    py: Python<'py>,
    x: PyRef<'py, PyModelColumns>,
    y: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    family: &str,
    link: Option<&str>,
    beta: PyReadonlyArray1<'py, f64>,
    previous: Option<PyReadonlyArray1<'py, f64>>,
    units: PyReadonlyArray1<'py, u32>,
    n_units: usize,
) -> PyResult<ScoresOut<'py>> {
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let input = model_input(
        &regressors,
        &y,
        weights.as_slice()?,
        (family, link),
        None,
        Control::default(),
    )?;
    let p = input.p();
    let beta = beta.as_slice()?;
    let previous = previous.as_ref().map(|b| b.as_slice()).transpose()?;
    let units = units.as_slice()?;
    let res = py
        .detach(|| batch_scores(&input, beta, previous, units, n_units))
        .map_err(errors::to_py)?;
    Ok((
        res.unit_scores.into_pyarray(py).reshape([n_units, p])?,
        res.unit_rows.into_pyarray(py),
        moments(res.pearson).into_pyarray(py),
    ))
}

type ScoresOut<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);
