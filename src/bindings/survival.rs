//! Survival numerics for `sscoverage.survival`: numpy arrays in, typed records or
//! arrays out.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::{errors, PyDesign};
use crate::models::coxph::{self, Control, CoxInput, Ties};
use crate::models::km::{
    nelson_aalen, product_limits, time_tables, NelsonAalen, SurvivalRows, TimeTable,
};

/// Tabulated times and S at each.
type Curve<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// One survival curve: its tabulated times, S at each, and the rows it was built from.
#[pyclass(name = "SurvivalCurve", module = "sscoverage._core", frozen, get_all)]
struct PySurvivalCurve {
    time: Py<PyArray1<f64>>,
    surv: Py<PyArray1<f64>>,
    n_rows: u64,
}

fn survival_rows<'a>(
    time: &'a PyReadonlyArray1<'_, f64>,
    event: &'a PyReadonlyArray1<'_, f64>,
    weights: &'a PyReadonlyArray1<'_, f64>,
    curve: Option<&'a PyReadonlyArray1<'_, u32>>,
    n_curves: usize,
) -> PyResult<SurvivalRows<'a>> {
    Ok(SurvivalRows {
        time: time.as_slice()?,
        event: event.as_slice()?,
        weights: weights.as_slice()?,
        curve: curve.map(|c| c.as_slice()).transpose()?,
        n_curves,
    })
}

/// Each curve's weighted product-limit estimate (R's `survey:::svykm.fit`), from one
/// pass over the rows: `event` 0/1, `curve` the curve of each row (0..n_curves,
/// OUTSIDE for none; None: one curve of every row).
#[pyfunction]
#[pyo3(signature = (time, event, weights, curve, n_curves))]
fn km_product_limit<'py>(
    py: Python<'py>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    curve: Option<PyReadonlyArray1<'py, u32>>,
    n_curves: usize,
) -> PyResult<Vec<PySurvivalCurve>> {
    let rows = survival_rows(&time, &event, &weights, curve.as_ref(), n_curves)?;
    let curves = py.detach(|| product_limits(&rows)).map_err(errors::to_py)?;
    Ok(curves
        .into_iter()
        .map(|(c, n_rows)| PySurvivalCurve {
            time: c.time.into_pyarray(py).unbind(),
            surv: c.surv.into_pyarray(py).unbind(),
            n_rows,
        })
        .collect())
}

/// A curve's time table as arrays: (times, rows, weight, event weight, events of
/// non-zero weight), one value per distinct time: what a batch of a streamed data set
/// sends back.
type Table<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u64>>,
);
type TableIn<'py> = (
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, u64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, u64>,
);

fn table_out(py: Python<'_>, t: TimeTable) -> Table<'_> {
    (
        t.time.into_pyarray(py),
        t.rows.into_pyarray(py),
        t.weight.into_pyarray(py),
        t.died.into_pyarray(py),
        t.entries.into_pyarray(py),
    )
}

fn table_in(t: &TableIn<'_>) -> PyResult<TimeTable> {
    let table = TimeTable {
        time: t.0.as_slice()?.to_vec(),
        rows: t.1.as_slice()?.to_vec(),
        weight: t.2.as_slice()?.to_vec(),
        died: t.3.as_slice()?.to_vec(),
        entries: t.4.as_slice()?.to_vec(),
    };
    let n = table.time.len();
    if [
        table.rows.len(),
        table.weight.len(),
        table.died.len(),
        table.entries.len(),
    ]
    .iter()
    .any(|&len| len != n)
    {
        return Err(errors::to_py(crate::CoreError::Shape(
            "a time table's arrays differ in length".into(),
        )));
    }
    Ok(table)
}

/// Each curve's rows summed at its distinct times (arguments as `km_product_limit`).
#[pyfunction]
#[pyo3(signature = (time, event, weights, curve, n_curves))]
fn km_time_tables<'py>(
    py: Python<'py>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    curve: Option<PyReadonlyArray1<'py, u32>>,
    n_curves: usize,
) -> PyResult<Vec<Table<'py>>> {
    let rows = survival_rows(&time, &event, &weights, curve.as_ref(), n_curves)?;
    let tables = py.detach(|| time_tables(&rows)).map_err(errors::to_py)?;
    Ok(tables.into_iter().map(|t| table_out(py, t)).collect())
}

/// Two time tables of a curve as one (`later`'s rows after `earlier`'s).
#[pyfunction]
fn km_merge_tables<'py>(
    py: Python<'py>,
    earlier: TableIn<'py>,
    later: TableIn<'py>,
) -> PyResult<Table<'py>> {
    let merged = table_in(&earlier)?.merge(&table_in(&later)?);
    Ok(table_out(py, merged))
}

/// The product-limit curve of a time table.
#[pyfunction]
fn km_table_product_limit(py: Python<'_>, table: TableIn<'_>) -> PyResult<PySurvivalCurve> {
    let table = table_in(&table)?;
    let c = table.product_limit();
    Ok(PySurvivalCurve {
        time: c.time.into_pyarray(py).unbind(),
        surv: c.surv.into_pyarray(py).unbind(),
        n_rows: table.n_rows(),
    })
}

/// Nelson–Aalen curves (R's `svykm(se=TRUE)`), one entry per event of non-zero weight,
/// with the rows they came from, for the variance of log S at any of their entries.
#[pyclass(name = "HazardCurves", module = "sscoverage._core", frozen)]
struct PyHazardCurves {
    time: Py<PyArray1<f64>>,
    event: Py<PyArray1<f64>>,
    weights: Py<PyArray1<f64>>,
    curve: Option<Py<PyArray1<u32>>>,
    n_curves: usize,
    curves: Vec<NelsonAalen>,
    n_rows: Vec<u64>,
}

#[pymethods]
impl PyHazardCurves {
    /// The curves of (time, event, weights, curve, n_curves) as for `km_product_limit`.
    #[new]
    #[pyo3(signature = (time, event, weights, curve, n_curves))]
    fn new(
        py: Python<'_>,
        time: PyReadonlyArray1<'_, f64>,
        event: PyReadonlyArray1<'_, f64>,
        weights: PyReadonlyArray1<'_, f64>,
        curve: Option<PyReadonlyArray1<'_, u32>>,
        n_curves: usize,
    ) -> PyResult<Self> {
        let rows = survival_rows(&time, &event, &weights, curve.as_ref(), n_curves)?;
        let (curves, n_rows) = py
            .detach(|| {
                let tables = time_tables(&rows)?;
                let n_rows = tables
                    .iter()
                    .map(crate::models::km::TimeTable::n_rows)
                    .collect();
                Ok((nelson_aalen(&rows, &tables)?, n_rows))
            })
            .map_err(errors::to_py)?;
        Ok(PyHazardCurves {
            time: time.as_unbound().clone_ref(py),
            event: event.as_unbound().clone_ref(py),
            weights: weights.as_unbound().clone_ref(py),
            curve: curve.map(|c| c.as_unbound().clone_ref(py)),
            n_curves,
            curves,
            n_rows,
        })
    }

    /// Rows of each curve.
    #[getter]
    fn n_rows(&self) -> Vec<u64> {
        self.n_rows.clone()
    }

    /// Curve `d`: (entry times, S = exp(-cumulative hazard)).
    fn curve<'py>(&self, py: Python<'py>, d: usize) -> PyResult<Curve<'py>> {
        let na = self.get(d)?;
        let surv: Vec<f64> = na.cumhaz.iter().map(|h| (-h).exp()).collect();
        Ok((PyArray1::from_slice(py, &na.time), surv.into_pyarray(py)))
    }

    /// The variance of log S of curve `d` at its `entries` under `design` (R's
    /// `varlog`), and the replicates left out for undefined estimates.
    fn log_variance<'py>(
        &self,
        py: Python<'py>,
        design: &Bound<'py, PyDesign>,
        d: usize,
        entries: Vec<usize>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, usize)> {
        let na = self.get(d)?;
        let (time, event, weights) = (
            self.time.bind(py).readonly(),
            self.event.bind(py).readonly(),
            self.weights.bind(py).readonly(),
        );
        let curve = self.curve.as_ref().map(|c| c.bind(py).readonly());
        let rows = survival_rows(&time, &event, &weights, curve.as_ref(), self.n_curves)?;
        let design = &design.get().inner;
        let (var, dropped) = py
            .detach(|| na.log_survival_variance(design, &rows, &entries))
            .map_err(errors::to_py)?;
        Ok((var.into_pyarray(py), dropped))
    }
}

impl PyHazardCurves {
    fn get(&self, d: usize) -> PyResult<&NelsonAalen> {
        self.curves.get(d).ok_or_else(|| {
            errors::to_py(crate::CoreError::Value(format!(
                "curve {d} asked for, there are {}",
                self.curves.len()
            )))
        })
    }
}

fn control(eps: f64, maxit: usize) -> Control {
    Control {
        eps,
        maxit,
        toler_inf: eps.sqrt(),
        ..Control::default()
    }
}

/// A Cox model fitted as R's `coxph`: the coefficients, the model-based covariance
/// `var` (p x p), the log partial likelihoods (at the start and at the end),
/// iterations, convergence, the columns whose coefficient may be infinite and the
/// weighted dfbeta influence values (n x p).
#[pyclass(name = "CoxFit", module = "sscoverage._core", frozen, get_all)]
struct PyCoxFit {
    coefficients: Py<PyArray1<f64>>,
    var: Py<PyArray2<f64>>,
    loglik: Py<PyArray1<f64>>,
    iterations: usize,
    converged: bool,
    infinite: Vec<usize>,
    influence: Py<PyArray2<f64>>,
}

/// Fit a Cox model as R's `coxph` (`x`: n x p, C order, no intercept).
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
) -> PyResult<PyCoxFit> {
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
    Ok(PyCoxFit {
        coefficients: fit.coefficients.into_pyarray(py).unbind(),
        var: fit.var.into_pyarray(py).reshape([p, p])?.unbind(),
        loglik: fit.loglik.to_vec().into_pyarray(py).unbind(),
        iterations: fit.iterations,
        converged: fit.converged,
        infinite: fit.infinite,
        influence: influence.into_pyarray(py).reshape([n, p])?.unbind(),
    })
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
    m.add_class::<PySurvivalCurve>()?;
    m.add_class::<PyHazardCurves>()?;
    m.add_class::<PyCoxFit>()?;
    m.add_function(wrap_pyfunction!(km_product_limit, m)?)?;
    m.add_function(wrap_pyfunction!(km_time_tables, m)?)?;
    m.add_function(wrap_pyfunction!(km_merge_tables, m)?)?;
    m.add_function(wrap_pyfunction!(km_table_product_limit, m)?)?;
    m.add_function(wrap_pyfunction!(cox_fit, m)?)?;
    m.add_function(wrap_pyfunction!(cox_replicates, m)?)?;
    Ok(())
}
