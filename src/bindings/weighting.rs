//! Weighting for `sscoverage.weighting`: a design and codes or a model matrix in, the
//! adjusted design and a report (dict) out.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::{errors, PyDesign};
use crate::weighting::{
    self, Bounds, CalFun, CalibrationSpec, CellRaking, Margin, RakeControl, Report,
};

type Adjusted = (PyDesign, PyWeightingReport);

fn finish(py: Python<'_>, result: (crate::Design, Report)) -> Adjusted {
    let (inner, report) = result;
    (PyDesign { inner }, PyWeightingReport::new(py, report))
}

/// How a weighting went (see `weighting::Report`): iterations, convergence, the largest
/// misfit left, the weights' summaries before and after, and replicates whose own
/// weighting did not converge.
#[pyclass(name = "WeightingReport", module = "sscoverage._core", frozen, get_all)]
pub struct PyWeightingReport {
    iterations: usize,
    converged: bool,
    misfit: f64,
    before: Py<PyArray1<f64>>,
    after: Py<PyArray1<f64>>,
    replicates_not_converged: usize,
}

impl PyWeightingReport {
    fn new(py: Python<'_>, report: Report) -> Self {
        PyWeightingReport {
            iterations: report.iterations,
            converged: report.converged,
            misfit: report.misfit,
            before: report.before.into_pyarray(py).unbind(),
            after: report.after.into_pyarray(py).unbind(),
            replicates_not_converged: report.replicates_not_converged,
        }
    }
}

/// The rake of a streamed design, as its variance needs it (see `CellRaking`).
#[pyclass(name = "CellRake", module = "sscoverage._core", frozen)]
pub struct PyCellRake {
    pub inner: CellRaking,
}

type RakedCells<'py> = (Bound<'py, PyArray1<f64>>, PyCellRake, PyWeightingReport);

/// Rake the cells of a streamed data set: each margin's level of every cell and its
/// population counts, the cells' base weights, their rows of positive and zero base
/// weight (2 per cell), and the base weight and zero-weight rows of each (unit, cell)
/// (n_units x n_cells, flat).  Returns each cell's factor, the rake and the report.
#[pyfunction]
#[pyo3(signature = (margins, weight, counts, base_by_unit, zero_by_unit, maxit=10, epsilon=1.0))]
#[allow(clippy::too_many_arguments)]
pub fn rake_cells<'py>(
    py: Python<'py>,
    margins: Vec<(PyReadonlyArray1<'py, u32>, PyReadonlyArray1<'py, f64>)>,
    weight: PyReadonlyArray1<'py, f64>,
    counts: PyReadonlyArray1<'py, f64>,
    base_by_unit: PyReadonlyArray1<'py, f64>,
    zero_by_unit: PyReadonlyArray1<'py, f64>,
    maxit: usize,
    epsilon: f64,
) -> PyResult<RakedCells<'py>> {
    let levels = margins
        .iter()
        .map(|(l, _)| Ok(l.as_slice()?.to_vec()))
        .collect::<PyResult<Vec<_>>>()?;
    let targets = margins
        .iter()
        .map(|(_, t)| t.as_slice())
        .collect::<Result<Vec<_>, _>>()?;
    let tables = (
        counts.as_slice()?.to_vec(),
        base_by_unit.as_slice()?.to_vec(),
        zero_by_unit.as_slice()?.to_vec(),
    );
    let weight = weight.as_slice()?;
    let (factor, inner, report) = errors::in_core(py, || {
        weighting::rake_cells(
            levels,
            &targets,
            weight,
            tables,
            RakeControl { maxit, epsilon },
        )
    })?;
    Ok((
        factor.into_pyarray(py),
        PyCellRake { inner },
        PyWeightingReport::new(py, report),
    ))
}

/// Post-stratify (R's `postStratify`): `cells` each row's post-stratum, `targets` the
/// population count of each.
#[pyfunction]
pub fn poststratify<'py>(
    py: Python<'py>,
    design: PyRef<'py, PyDesign>,
    cells: PyReadonlyArray1<'py, u32>,
    targets: PyReadonlyArray1<'py, f64>,
) -> PyResult<Adjusted> {
    let (cells, targets) = (cells.as_slice()?, targets.as_slice()?);
    let d = &design.inner;
    let res = errors::in_core(py, || weighting::poststratify(d, cells, targets))?;
    Ok(finish(py, res))
}

/// Rake (R's `rake`) to margins given as (level codes, population counts) pairs.
#[pyfunction]
#[pyo3(signature = (design, margins, maxit=10, epsilon=1.0))]
pub fn rake<'py>(
    py: Python<'py>,
    design: PyRef<'py, PyDesign>,
    margins: Vec<(PyReadonlyArray1<'py, u32>, PyReadonlyArray1<'py, f64>)>,
    maxit: usize,
    epsilon: f64,
) -> PyResult<Adjusted> {
    let margins: Vec<Margin> = margins
        .iter()
        .map(|(c, t)| {
            Ok(Margin {
                cells: c.as_slice()?,
                targets: t.as_slice()?,
            })
        })
        .collect::<PyResult<_>>()?;
    let d = &design.inner;
    let res = errors::in_core(py, || {
        weighting::rake(d, &margins, RakeControl { maxit, epsilon })
    })?;
    Ok(finish(py, res))
}

/// Calibrate (R's `calibrate`) the model matrix `x` (n x q, C order) to `population`.
#[pyfunction]
#[pyo3(signature = (design, x, population, calfun="linear", lower=f64::NEG_INFINITY,
                    upper=f64::INFINITY, epsilon=1e-7, maxit=50))]
#[allow(clippy::too_many_arguments)]
pub fn calibrate<'py>(
    py: Python<'py>,
    design: PyRef<'py, PyDesign>,
    x: PyReadonlyArray2<'py, f64>,
    population: PyReadonlyArray1<'py, f64>,
    calfun: &str,
    lower: f64,
    upper: f64,
    epsilon: f64,
    maxit: usize,
) -> PyResult<Adjusted> {
    let calfun = CalFun::parse(calfun).map_err(errors::to_py)?;
    let spec = CalibrationSpec {
        x: x.as_slice()?,
        q: x.shape()[1],
        population: population.as_slice()?,
        calfun,
        bounds: Bounds { lower, upper },
        epsilon,
        maxit,
    };
    let d = &design.inner;
    let res = errors::in_core(py, || weighting::calibrate(d, &spec))?;
    Ok(finish(py, res))
}

/// Trim the weights to [lower, upper] (R's `trimWeights`).
#[pyfunction]
#[pyo3(signature = (design, lower=f64::NEG_INFINITY, upper=f64::INFINITY, strict=false))]
pub fn trim_weights<'py>(
    py: Python<'py>,
    design: PyRef<'py, PyDesign>,
    lower: f64,
    upper: f64,
    strict: bool,
) -> PyResult<Adjusted> {
    let d = &design.inner;
    let res = errors::in_core(py, || weighting::trim_weights(d, lower, upper, strict))?;
    Ok(finish(py, res))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(poststratify, m)?)?;
    m.add_function(wrap_pyfunction!(rake, m)?)?;
    m.add_function(wrap_pyfunction!(rake_cells, m)?)?;
    m.add_class::<PyCellRake>()?;
    m.add_function(wrap_pyfunction!(calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(trim_weights, m)?)?;
    Ok(())
}
