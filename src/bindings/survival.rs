//! Survival numerics for `sscoverage.survival`: numpy arrays in, typed records or
//! arrays out.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::models::{design_rows, PyModelColumns};
use super::{errors, PyDesign};
use crate::error::CoreError;
use crate::estimators::coxph::design_covariance;
use crate::estimators::km::{
    merge_entries, nelson_aalen, product_limits, time_tables, unit_bins, BinPlan, NelsonAalen,
    SurvivalCensus, SurvivalRows, TimeTable, UnitBins,
};
use crate::models::coxph::{
    self, Control, Covariates, CoxFit, CoxInput, CoxRows, Evaluation, Moments, RiskSets, Scaling,
    ScoreSteps, Solution, Ties,
};

/// Tabulated times and S at each.
type Curve<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);
/// A Cox model's scaling of its covariates: each column's centre and scale.
type CentreScale<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

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

/// What is missing or wrong in survival columns (`estimators::km::SurvivalCensus`).
#[pyclass(name = "SurvivalCensus", module = "sscoverage._core", frozen, get_all)]
struct PySurvivalCensus {
    missing_time: u64,
    infinite_time: u64,
    negative_time: u64,
    missing_event: u64,
    non_binary_event: u64,
}

/// The counts of missing, infinite and negative times (`time` None: none) and of missing
/// events and events other than 0 and 1: one parallel pass, no temporary.
#[pyfunction]
fn survival_census(
    py: Python<'_>,
    time: Option<PyReadonlyArray1<'_, f64>>,
    event: PyReadonlyArray1<'_, f64>,
) -> PyResult<PySurvivalCensus> {
    let time = time.as_ref().map(|t| t.as_slice()).transpose()?;
    let event = event.as_slice()?;
    let c = errors::in_core(py, || SurvivalCensus::of(time, event))?;
    Ok(PySurvivalCensus {
        missing_time: c.missing_time,
        infinite_time: c.infinite_time,
        negative_time: c.negative_time,
        missing_event: c.missing_event,
        non_binary_event: c.non_binary_event,
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

/// A curve's table with its entries' event weights and variance units.
type TableEntries<'py> = (
    Table<'py>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u32>>,
);

/// A batch's time table and Nelson–Aalen entries per curve: (table, each entry's
/// event weight, its variance unit), entries in (time, row) order.
#[pyfunction]
#[pyo3(signature = (time, event, weights, units, curve, n_curves))]
fn km_batch_entries<'py>(
    py: Python<'py>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    units: PyReadonlyArray1<'py, u32>,
    curve: Option<PyReadonlyArray1<'py, u32>>,
    n_curves: usize,
) -> PyResult<Vec<TableEntries<'py>>> {
    let rows = survival_rows(&time, &event, &weights, curve.as_ref(), n_curves)?;
    let units = units.as_slice()?;
    if units.len() != rows.time.len() {
        return Err(errors::to_py(crate::CoreError::Shape(format!(
            "{} unit codes for {} rows",
            units.len(),
            rows.time.len()
        ))));
    }
    let (tables, curves) = py
        .detach(|| {
            let tables = time_tables(&rows)?;
            let curves = nelson_aalen(&rows, &tables)?;
            Ok((tables, curves))
        })
        .map_err(errors::to_py)?;
    Ok(tables
        .into_iter()
        .zip(curves)
        .map(|(t, na)| {
            let entry_units: Vec<u32> = na.rows.iter().map(|&r| units[r]).collect();
            (
                table_out(py, t),
                na.entry_weights().to_vec().into_pyarray(py),
                entry_units.into_pyarray(py),
            )
        })
        .collect())
}

/// Two batches' entries of a curve (weights, units) as their merged table's.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn km_merge_entries<'py>(
    py: Python<'py>,
    earlier: (
        TableIn<'py>,
        PyReadonlyArray1<'py, f64>,
        PyReadonlyArray1<'py, u32>,
    ),
    later: (
        TableIn<'py>,
        PyReadonlyArray1<'py, f64>,
        PyReadonlyArray1<'py, u32>,
    ),
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<u32>>)> {
    let (a, b) = (table_in(&earlier.0)?, table_in(&later.0)?);
    let w = merge_entries(&a, earlier.1.as_slice()?, &b, later.1.as_slice()?);
    let u = merge_entries(&a, earlier.2.as_slice()?, &b, later.2.as_slice()?);
    let (w, u) = (w.map_err(errors::to_py)?, u.map_err(errors::to_py)?);
    Ok((w.into_pyarray(py), u.into_pyarray(py)))
}

/// A batch's rows of curve `d` binned by a curve's plan (`HazardCurves.bin_plan`) per
/// variance unit: (weight, weight times C, units present), to add over the batches.
#[pyfunction]
#[pyo3(signature = (time, event, weights, units, n_units, curve, n_curves, d, plan))]
#[allow(clippy::too_many_arguments)]
fn km_unit_bins<'py>(
    py: Python<'py>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    units: PyReadonlyArray1<'py, u32>,
    n_units: usize,
    curve: Option<PyReadonlyArray1<'py, u32>>,
    n_curves: usize,
    d: u32,
    plan: PlanIn<'py>,
) -> PyResult<Bins<'py>> {
    let rows = survival_rows(&time, &event, &weights, curve.as_ref(), n_curves)?;
    let plan = plan_in(&plan)?;
    let units = units.as_slice()?;
    let bins = py
        .detach(|| unit_bins(&rows, d, units, n_units, &plan))
        .map_err(errors::to_py)?;
    Ok(bins_out(py, bins))
}

/// Where the rows' influence goes: (times, bin of each, C at each, bins).
type Plan<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<f64>>,
    usize,
);
type PlanIn<'py> = (
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, u64>,
    PyReadonlyArray1<'py, f64>,
    usize,
);
/// Per (unit, bin) sums of weight and weight times C, and the units present.
type Bins<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<bool>>,
);
type BinsIn<'py> = (
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, bool>,
);

fn plan_in(plan: &PlanIn<'_>) -> PyResult<BinPlan> {
    Ok(BinPlan {
        time: plan.0.as_slice()?.to_vec(),
        bin: plan.1.as_slice()?.iter().map(|&b| b as usize).collect(),
        c: plan.2.as_slice()?.to_vec(),
        n_bins: plan.3,
    })
}

fn bins_out(py: Python<'_>, bins: UnitBins) -> Bins<'_> {
    (
        bins.weight.into_pyarray(py),
        bins.weight_c.into_pyarray(py),
        bins.present.into_pyarray(py),
    )
}

/// Nelson–Aalen curves (R's `svykm(se=TRUE)`), one entry per event of non-zero weight,
/// with the rows they came from, for the variance of log S at any of their entries.
#[pyclass(name = "HazardCurves", module = "sscoverage._core", frozen)]
struct PyHazardCurves {
    /// The rows (time, event, weights, curve codes), None for a streamed data set's
    /// curves (built from its batches' tables).
    rows: Option<HeldRows>,
    n_curves: usize,
    curves: Vec<NelsonAalen>,
    n_rows: Vec<u64>,
}

struct HeldRows {
    time: Py<PyArray1<f64>>,
    event: Py<PyArray1<f64>>,
    weights: Py<PyArray1<f64>>,
    curve: Option<Py<PyArray1<u32>>>,
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
                    .map(crate::estimators::km::TimeTable::n_rows)
                    .collect();
                Ok((nelson_aalen(&rows, &tables)?, n_rows))
            })
            .map_err(errors::to_py)?;
        Ok(PyHazardCurves {
            rows: Some(HeldRows {
                time: time.as_unbound().clone_ref(py),
                event: event.as_unbound().clone_ref(py),
                weights: weights.as_unbound().clone_ref(py),
                curve: curve.map(|c| c.as_unbound().clone_ref(py)),
            }),
            n_curves,
            curves,
            n_rows,
        })
    }

    /// The curves of a streamed data set from each curve's time table and entry
    /// weights (merged over its batches).
    #[staticmethod]
    fn from_tables(
        tables: Vec<TableIn<'_>>,
        entry_weights: Vec<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Self> {
        if tables.len() != entry_weights.len() {
            return Err(errors::to_py(crate::CoreError::Shape(format!(
                "{} tables and {} entry weights",
                tables.len(),
                entry_weights.len()
            ))));
        }
        let mut curves = Vec::with_capacity(tables.len());
        let mut n_rows = Vec::with_capacity(tables.len());
        for (d, (table, weight)) in tables.iter().zip(&entry_weights).enumerate() {
            let table = table_in(table)?;
            n_rows.push(table.n_rows());
            let na = NelsonAalen::from_entries(
                d as u32,
                &table,
                Vec::new(),
                weight.as_slice()?.to_vec(),
            )
            .map_err(errors::to_py)?;
            curves.push(na);
        }
        Ok(PyHazardCurves {
            rows: None,
            n_curves: tables.len(),
            curves,
            n_rows,
        })
    }

    /// Where the rows of curve `d` put their influence at its `entries` (for
    /// `km_unit_bins` on each batch).
    fn bin_plan<'py>(&self, py: Python<'py>, d: usize, entries: Vec<usize>) -> PyResult<Plan<'py>> {
        let plan = self.get(d)?.bin_plan(&entries).map_err(errors::to_py)?;
        let bin: Vec<u64> = plan.bin.iter().map(|&b| b as u64).collect();
        Ok((
            plan.time.into_pyarray(py),
            bin.into_pyarray(py),
            plan.c.into_pyarray(py),
            plan.n_bins,
        ))
    }

    /// The variance of log S of curve `d` at its `entries` from the rows' bins (added
    /// over the batches) and the variance unit of each entry.
    fn variance_from_bins<'py>(
        &self,
        py: Python<'py>,
        design: &Bound<'py, PyDesign>,
        d: usize,
        entries: Vec<usize>,
        entry_units: PyReadonlyArray1<'py, u32>,
        bins: BinsIn<'py>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let na = self.get(d)?;
        let bins = UnitBins {
            weight: bins.0.as_slice()?.to_vec(),
            weight_c: bins.1.as_slice()?.to_vec(),
            present: bins.2.as_slice()?.to_vec(),
        };
        let units = entry_units.as_slice()?;
        let design = &design.get().inner;
        let var = py
            .detach(|| na.variance_from_bins(design, &entries, units, &bins))
            .map_err(errors::to_py)?;
        Ok(var.into_pyarray(py))
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
        let held = self.rows.as_ref().ok_or_else(|| {
            errors::to_py(crate::CoreError::Value(
                "these curves do not hold their rows: use bin_plan and variance_from_bins".into(),
            ))
        })?;
        let (time, event, weights) = (
            held.time.bind(py).readonly(),
            held.event.bind(py).readonly(),
            held.weights.bind(py).readonly(),
        );
        let curve = held.curve.as_ref().map(|c| c.bind(py).readonly());
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
/// iterations, convergence, the columns whose coefficient may be infinite, the
/// weighted dfbeta influence values (n x p) of rows in memory (None for a streamed
/// fit) and the solution that sums a batch's to units.
#[pyclass(name = "CoxFit", module = "sscoverage._core", frozen, get_all)]
struct PyCoxFit {
    coefficients: Py<PyArray1<f64>>,
    var: Py<PyArray2<f64>>,
    loglik: Py<PyArray1<f64>>,
    iterations: usize,
    converged: bool,
    infinite: Vec<usize>,
    influence: Option<Py<PyArray2<f64>>>,
    vcov: Option<Py<PyArray2<f64>>>,
    solution: Py<PyCoxSolution>,
}

impl PyCoxFit {
    fn new(
        py: Python<'_>,
        fit: CoxFit,
        influence: Option<Vec<f64>>,
        vcov: Option<Vec<f64>>,
    ) -> PyResult<Self> {
        let p = fit.coefficients.len();
        Ok(PyCoxFit {
            vcov: vcov
                .map(|v| v.into_pyarray(py).reshape([p, p]).map(Bound::unbind))
                .transpose()?,
            coefficients: fit.coefficients.into_pyarray(py).unbind(),
            var: fit.var.into_pyarray(py).reshape([p, p])?.unbind(),
            loglik: fit.loglik.to_vec().into_pyarray(py).unbind(),
            iterations: fit.iterations,
            converged: fit.converged,
            infinite: fit.infinite,
            influence: influence
                .map(|v| {
                    let n = v.len() / p.max(1);
                    v.into_pyarray(py).reshape([n, p]).map(Bound::unbind)
                })
                .transpose()?,
            solution: Py::new(
                py,
                PyCoxSolution {
                    solution: fit.solution,
                },
            )?,
        })
    }
}

fn cox_rows<'a>(
    x: &'a PyReadonlyArray2<'_, f64>,
    time: &'a PyReadonlyArray1<'_, f64>,
    event: &'a PyReadonlyArray1<'_, bool>,
    weights: &'a PyReadonlyArray1<'_, f64>,
) -> PyResult<CoxRows<'a>> {
    Ok(CoxRows {
        x: Covariates::Dense(x.as_slice()?),
        n: x.shape()[0],
        p: x.shape()[1],
        time: time.as_slice()?,
        event: event.as_slice()?,
        weights: weights.as_slice()?,
    })
}

/// A Cox model whose covariates are the columns `which` of a model's columns, at the
/// model rows `positions` (None: each in turn), read as the fit needs them.
#[allow(clippy::too_many_arguments)]
fn model_cox_input<'a>(
    x: &'a crate::models::Regressors<'a>,
    which: &'a [usize],
    positions: Option<&'a [usize]>,
    time: &'a PyReadonlyArray1<'_, f64>,
    event: &'a PyReadonlyArray1<'_, bool>,
    weights: &'a PyReadonlyArray1<'_, f64>,
    ties: &str,
    (eps, maxit): (f64, usize),
) -> PyResult<CoxInput<'a>> {
    Ok(CoxInput {
        rows: CoxRows {
            x: Covariates::Model {
                columns: x,
                which,
                rows: positions,
                first: 0,
            },
            n: time.len(),
            p: which.len(),
            time: time.as_slice()?,
            event: event.as_slice()?,
            weights: weights.as_slice()?,
        },
        ties: Ties::parse(ties).map_err(errors::to_py)?,
        control: control(eps, maxit),
    })
}

/// Model rows as indices (None: every row).
fn positions(rows: Option<&PyReadonlyArray1<'_, i64>>) -> PyResult<Option<Vec<usize>>> {
    rows.map(|r| {
        let r = r.as_slice()?;
        design_rows(r, r.len()).map_err(errors::to_py)
    })
    .transpose()
}

/// Fit a Cox model as R's `coxph`: its covariates the columns `columns` of the model's
/// columns `x` (no intercept) at the model rows `model_rows` (None: every row), read as
/// the fit needs them.  With `design` (a linearisation design), `rows` (the design row
/// of each fitted row, ascending) and `domain` (the design rows of the model, zero
/// weights included), the influence values are summed to the design's units in the core
/// and the covariance comes back as `vcov` (R's `svycoxph`); without, the influence
/// values (n x p) come back.
#[pyfunction]
#[pyo3(signature = (x, columns, model_rows, time, event, weights, ties="efron", eps=1e-9, maxit=20,
                    design=None, rows=None, domain=None))]
#[allow(clippy::too_many_arguments)]
fn cox_fit<'py>(
    py: Python<'py>,
    x: PyRef<'py, PyModelColumns>,
    columns: Vec<usize>,
    model_rows: Option<PyReadonlyArray1<'py, i64>>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
    ties: &str,
    eps: f64,
    maxit: usize,
    design: Option<Bound<'py, PyDesign>>,
    rows: Option<PyReadonlyArray1<'py, i64>>,
    domain: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<PyCoxFit> {
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let model_rows = positions(model_rows.as_ref())?;
    let input = model_cox_input(
        &regressors,
        &columns,
        model_rows.as_deref(),
        &time,
        &event,
        &weights,
        ties,
        (eps, maxit),
    )?;
    let on_design = match (&design, &rows, &domain) {
        (Some(d), Some(r), Some(m)) => Some((&d.get().inner, r.as_slice()?, m.as_slice()?)),
        (None, None, None) => None,
        _ => return Err(errors::to_py(CoreError::Shape(
            "give the design, the design rows of the model rows and the model's domain together"
                .into(),
        ))),
    };
    let (fit, influence, vcov) = errors::in_core(py, || {
        let fit = coxph::fit(&input, None)?;
        if let Some((design, rows, domain)) = on_design {
            let rows = design_rows(rows, input.rows.n)?;
            let domain = design_rows(domain, domain.len())?;
            let vcov = design_covariance(&input.rows, &fit, design, &rows, &domain)?;
            return Ok((fit, None, Some(vcov)));
        }
        let influence = coxph::influence(&input.rows, &fit)?;
        Ok((fit, Some(influence), None))
    })?;
    PyCoxFit::new(py, fit, influence, vcov)
}

/// The Cox model fitted with `weights` (whose coefficients are `init`) refitted with
/// each replicate's weights (n x R) in their place: R x p, NaN rows for replicates whose
/// fit fails.  The covariates as [`cox_fit`] reads them.
#[pyfunction]
#[pyo3(signature = (x, columns, model_rows, time, event, weights, replicate_weights, init, ties="efron",
                    eps=1e-9, maxit=20))]
#[allow(clippy::too_many_arguments)]
fn cox_replicates<'py>(
    py: Python<'py>,
    x: PyRef<'py, PyModelColumns>,
    columns: Vec<usize>,
    model_rows: Option<PyReadonlyArray1<'py, i64>>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
    replicate_weights: PyReadonlyArray2<'py, f64>,
    init: Vec<f64>,
    ties: &str,
    eps: f64,
    maxit: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let r = replicate_weights.shape()[1];
    let reps = replicate_weights.as_slice()?;
    let borrowed = x.borrow(py);
    let regressors = borrowed.regressors()?;
    let model_rows = positions(model_rows.as_ref())?;
    let input = model_cox_input(
        &regressors,
        &columns,
        model_rows.as_deref(),
        &time,
        &event,
        &weights,
        ties,
        (eps, maxit),
    )?;
    let p = input.rows.p;
    let coefs = errors::in_core(py, || coxph::replicate_coefficients(&input, reps, r, &init))?;
    coefs.into_pyarray(py).reshape([r, p])
}

/// A batch's part of the moments that set R's scaling of the covariates: (total
/// weight, each column's weighted sum, whether each column holds only -1, 0 and 1).
#[pyfunction]
fn cox_batch_moments<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
) -> PyResult<(f64, Bound<'py, PyArray1<f64>>, Vec<bool>)> {
    let rows = cox_rows(&x, &time, &event, &weights)?;
    let m = errors::in_core(py, || Moments::of(&rows))?;
    Ok((m.total, m.sums.into_pyarray(py), m.dummy))
}

/// R's scaling from the batches' moments (added in batch order) and spreads: (centre,
/// scale) per column; without the spreads, the centres they are taken about.
#[pyfunction]
#[pyo3(signature = (total, sums, dummy, spread=None))]
fn cox_scaling(
    py: Python<'_>,
    total: f64,
    sums: Vec<f64>,
    dummy: Vec<bool>,
    spread: Option<Vec<f64>>,
) -> CentreScale<'_> {
    let moments = Moments { total, sums, dummy };
    let spread = spread.unwrap_or_else(|| vec![0.0; moments.sums.len()]);
    let scaling = Scaling::new(&moments, &spread);
    (
        scaling.centre.into_pyarray(py),
        scaling.scale.into_pyarray(py),
    )
}

/// A batch's sum of w |x - centre| per column.
#[pyfunction]
fn cox_batch_spread<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
    centre: Vec<f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let rows = cox_rows(&x, &time, &event, &weights)?;
    Ok(errors::in_core(py, || coxph::spread(&rows, &centre))?.into_pyarray(py))
}

/// A batch's rows summed to the bins of the fit's event times at `beta` (on the scaled
/// covariates): `coxph::risk_table`, flat.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn cox_batch_table<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    time: PyReadonlyArray1<'py, f64>,
    event: PyReadonlyArray1<'py, bool>,
    weights: PyReadonlyArray1<'py, f64>,
    centre: Vec<f64>,
    scale: Vec<f64>,
    beta: PyReadonlyArray1<'py, f64>,
    event_times: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let rows = cox_rows(&x, &time, &event, &weights)?;
    let scaling = Scaling { centre, scale };
    let (beta, times) = (beta.as_slice()?, event_times.as_slice()?);
    Ok(errors::in_core(py, || coxph::risk_table(&rows, &scaling, beta, times))?.into_pyarray(py))
}

/// A streamed fit's risk sets: each evaluation one pass over the batches,
/// `pass_fn(beta)` -> the batches' tables added in batch order.
struct StreamedRiskSets<'py> {
    pass_fn: Bound<'py, PyAny>,
    event_times: Vec<f64>,
    p: usize,
    ties: Ties,
    failure: Option<PyErr>,
}

impl RiskSets for StreamedRiskSets<'_> {
    fn evaluate(&mut self, beta: &[f64]) -> crate::error::Result<Evaluation> {
        let py = self.pass_fn.py();
        let table = (|| -> PyResult<Vec<f64>> {
            let table: PyReadonlyArray1<'_, f64> = self
                .pass_fn
                .call1((beta.to_vec().into_pyarray(py),))?
                .extract()?;
            Ok(table.as_slice()?.to_vec())
        })();
        match table {
            Ok(table) => coxph::walk_table(&self.event_times, &table, self.p, self.ties),
            Err(err) => {
                self.failure = Some(err);
                Err(CoreError::Value("a pass over the batches failed".into()))
            }
        }
    }
}

/// A Cox model's solution as each row's influence value reads it (`coxph::Solution`):
/// it travels to the workers that sum a streamed design's rows (pickles by value).
#[pyclass(name = "CoxSolution", module = "sscoverage._core", frozen)]
struct PyCoxSolution {
    solution: Solution,
}

#[pymethods]
impl PyCoxSolution {
    #[new]
    fn new(
        centre: Vec<f64>,
        scale: Vec<f64>,
        beta: Vec<f64>,
        var: Vec<f64>,
        times: Vec<f64>,
        steps: Vec<f64>,
    ) -> PyResult<Self> {
        let steps = ScoreSteps::new(beta.len(), times, steps).map_err(errors::to_py)?;
        let solution =
            Solution::new(Scaling { centre, scale }, beta, var, steps).map_err(errors::to_py)?;
        Ok(PyCoxSolution { solution })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let py = slf.py();
        let s = &slf.get().solution;
        let args = (
            s.scaling.centre.clone(),
            s.scaling.scale.clone(),
            s.beta.clone(),
            s.var.clone(),
            s.steps.times.clone(),
            s.steps.rows.clone(),
        );
        Ok((
            slf.get_type().into_any(),
            args.into_pyobject(py)?.into_any(),
        ))
    }

    /// A batch's influence values summed to its units (n_units x p), and each unit's
    /// rows of positive weight.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn unit_totals<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        time: PyReadonlyArray1<'py, f64>,
        event: PyReadonlyArray1<'py, bool>,
        weights: PyReadonlyArray1<'py, f64>,
        units: PyReadonlyArray1<'py, u32>,
        n_units: usize,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>)> {
        let rows = cox_rows(&x, &time, &event, &weights)?;
        let units = units.as_slice()?;
        let p = rows.p;
        let (totals, counts) =
            errors::in_core(py, || self.solution.unit_totals(&rows, units, n_units))?;
        Ok((
            totals.into_pyarray(py).reshape([n_units, p])?,
            counts.into_pyarray(py),
        ))
    }
}

/// R's Newton–Raphson for a Cox model over a streamed design's batches (the core's one
/// `coxfit6` loop): covariates scaled by (centre, scale), bins at `event_times`
/// (ascending), each evaluation `pass_fn(beta)` -> the batches' added tables.
#[pyfunction]
#[pyo3(signature = (pass_fn, centre, scale, event_times, ties="efron", eps=1e-9, maxit=20))]
#[allow(clippy::too_many_arguments)]
fn cox_streamed_fit(
    py: Python<'_>,
    pass_fn: Bound<'_, PyAny>,
    centre: Vec<f64>,
    scale: Vec<f64>,
    event_times: Vec<f64>,
    ties: &str,
    eps: f64,
    maxit: usize,
) -> PyResult<PyCoxFit> {
    let p = scale.len();
    let mut sets = StreamedRiskSets {
        pass_fn,
        event_times,
        p,
        ties: Ties::parse(ties).map_err(errors::to_py)?,
        failure: None,
    };
    let fit = coxph::newton(
        &mut sets,
        Scaling { centre, scale },
        None,
        control(eps, maxit),
    );
    if let Some(err) = sets.failure.take() {
        return Err(err);
    }
    PyCoxFit::new(py, fit.map_err(errors::to_py)?, None, None)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySurvivalCurve>()?;
    m.add_class::<PySurvivalCensus>()?;
    m.add_function(wrap_pyfunction!(survival_census, m)?)?;
    m.add_class::<PyHazardCurves>()?;
    m.add_class::<PyCoxFit>()?;
    m.add_class::<PyCoxSolution>()?;
    m.add_function(wrap_pyfunction!(km_product_limit, m)?)?;
    m.add_function(wrap_pyfunction!(km_time_tables, m)?)?;
    m.add_function(wrap_pyfunction!(km_merge_tables, m)?)?;
    m.add_function(wrap_pyfunction!(km_table_product_limit, m)?)?;
    m.add_function(wrap_pyfunction!(km_batch_entries, m)?)?;
    m.add_function(wrap_pyfunction!(km_merge_entries, m)?)?;
    m.add_function(wrap_pyfunction!(km_unit_bins, m)?)?;
    m.add_function(wrap_pyfunction!(cox_fit, m)?)?;
    m.add_function(wrap_pyfunction!(cox_replicates, m)?)?;
    m.add_function(wrap_pyfunction!(cox_batch_moments, m)?)?;
    m.add_function(wrap_pyfunction!(cox_scaling, m)?)?;
    m.add_function(wrap_pyfunction!(cox_batch_spread, m)?)?;
    m.add_function(wrap_pyfunction!(cox_batch_table, m)?)?;
    m.add_function(wrap_pyfunction!(cox_streamed_fit, m)?)?;
    Ok(())
}
