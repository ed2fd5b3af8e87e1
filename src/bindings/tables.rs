//! Proportions with R's `svyciprop` fits, and estimates of every domain with their joint
//! covariance: arrays per domain out.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::weighting::PyCellRake;
use super::{errors, estimator, outcomes, PyDesign, PyDomainEstimates};
use crate::estimate::{check_batch, RowData, OUTSIDE};
use crate::estimate::{BeyondSums, DomainEstimates, Sums};
use crate::estimators::ciprop::{
    first_steps, fit_proportions, proportion_by_domain, proportions_from_sums, DomainProportion,
    FitSums, ModelRows, ProportionFit, ProportionInput,
};
use crate::estimators::joint::{estimate_joint, joint_from_sums, JointEstimates, JointScope};

/// The proportion of `y` in each domain (see `estimators::ciprop`).
#[pyfunction]
#[pyo3(signature = (design, y, used, all, n_domains, fit, dispersion, model_keeps_all_rows))]
#[allow(clippy::too_many_arguments)]
fn proportion<'py>(
    py: Python<'py>,
    design: PyRef<'py, PyDesign>,
    y: PyReadonlyArray1<'py, f64>,
    used: PyReadonlyArray1<'py, u32>,
    all: Option<PyReadonlyArray1<'py, u32>>,
    n_domains: usize,
    fit: bool,
    dispersion: bool,
    model_keeps_all_rows: bool,
) -> PyResult<PyProportions> {
    let input = ProportionInput {
        y: y.as_slice()?,
        used: used.as_slice()?,
        all: all.as_ref().map(|a| a.as_slice()).transpose()?,
        n_domains,
        fit,
        dispersion,
        model_keeps_all_rows,
    };
    let inner = &design.inner;
    let domains = errors::in_core(py, || proportion_by_domain(inner, &input))?;
    let model_rows = ModelRows {
        keeps_all: model_keeps_all_rows,
        n_rows: inner.n_rows,
    };
    Ok(proportions_record(py, &domains, model_rows))
}

/// `proportion` from the sums of a streamed data set (`accumulate_batch`, added over the
/// batches): `table` n_domains x n_units x 3 of the rows with a value of y and `squares`
/// (n_domains x 2, empty without a dispersion), `all` the same table of the domains'
/// rows with a missing y included (None: `table`), for the fit `first`, the sums of
/// `proportion_first_steps` (n_domains x 5) at the first call's `mean_weight`, and
/// `raked` as for `estimate_from_sums`.  `n_rows` counts the data set's rows (R's model
/// frame holds them all when `model_keeps_all_rows`).
#[pyfunction]
#[pyo3(signature = (design, table, squares, n_domains, n_rows, model_keeps_all_rows, all=None, first=None, raked=None))]
#[allow(clippy::too_many_arguments)]
fn proportion_from_sums<'py>(
    py: Python<'py>,
    design: PyRef<'py, PyDesign>,
    table: PyReadonlyArray1<'py, f64>,
    squares: PyReadonlyArray1<'py, f64>,
    n_domains: usize,
    n_rows: usize,
    model_keeps_all_rows: bool,
    all: Option<PyReadonlyArray1<'py, f64>>,
    first: Option<PyReadonlyArray1<'py, f64>>,
    raked: Option<(PyReadonlyArray1<'py, f64>, PyRef<'py, PyCellRake>)>,
) -> PyResult<PyProportions> {
    let sums = Sums {
        stride: 3,
        table: table.as_slice()?.to_vec(),
        squares: squares.as_slice()?.to_vec(),
    };
    let all = match &all {
        Some(t) => Some(Sums {
            stride: 2,
            table: t.as_slice()?.to_vec(),
            squares: Vec::new(),
        }),
        None => None,
    };
    let first: Option<Vec<[f64; 5]>> = match &first {
        Some(f) => Some(
            f.as_slice()?
                .chunks_exact(5)
                .map(|c| [c[0], c[1], c[2], c[3], c[4]])
                .collect(),
        ),
        None => None,
    };
    let cell_sums = match &raked {
        Some((t, _)) => Some(Sums {
            stride: 3,
            table: t.as_slice()?.to_vec(),
            squares: Vec::new(),
        }),
        None => None,
    };
    let beyond = match (&cell_sums, &raked) {
        (Some(s), Some((_, r))) => BeyondSums::RakedCells(s, &r.inner),
        _ => BeyondSums::Nothing,
    };
    let inner = &design.inner;
    // The streamed design's core holds its PSUs, not its rows.
    let model_rows = ModelRows {
        keeps_all: model_keeps_all_rows,
        n_rows,
    };
    let domains = errors::in_core(py, || {
        let mut out = proportions_from_sums(inner, n_domains, &sums, beyond, all.as_ref())?;
        if let Some(first) = &first {
            let pass = FitSums {
                sums: &sums,
                beyond,
                first,
                entropy: None,
            };
            fit_proportions(inner, &mut out, &pass, model_rows, !sums.squares.is_empty())?;
        }
        Ok(out)
    })?;
    Ok(proportions_record(py, &domains, model_rows))
}

/// One batch's sums of the first IRLS step of y ~ 1 per domain (n_domains x 5, see
/// `estimators::ciprop::first_steps`) at prior weights w / `mean_weight[d]`; `used` is
/// each row's domain, `OUTSIDE` for a row without y.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn proportion_first_steps<'py>(
    py: Python<'py>,
    weights: PyReadonlyArray1<'py, f64>,
    units: PyReadonlyArray1<'py, u32>,
    n_units: usize,
    y: PyReadonlyArray1<'py, f64>,
    used: PyReadonlyArray1<'py, u32>,
    mean_weight: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let data = RowData {
        weights: weights.as_slice()?,
        unit_of_row: units.as_slice()?,
        n_units,
    };
    let (y, used, mean_weight) = (y.as_slice()?, used.as_slice()?, mean_weight.as_slice()?);
    let n_domains = mean_weight.len();
    let sums = errors::in_core(py, || {
        check_batch(&data, used)?;
        if y.len() != used.len() {
            return Err(crate::CoreError::Shape(
                "a batch's columns have different lengths".into(),
            ));
        }
        if let Some(r) = used
            .iter()
            .position(|&d| d != OUTSIDE && d as usize >= n_domains)
        {
            return Err(crate::CoreError::Value(format!(
                "domain code at row {r} of the batch is out of range"
            )));
        }
        Ok(first_steps(&data, y, used, n_domains, mean_weight))
    })?;
    Ok(sums.concat().into_pyarray(py))
}

/// The record of `proportion` and `proportion_from_sums`.
fn proportions_record(
    py: Python<'_>,
    domains: &[DomainProportion],
    model_rows: ModelRows,
) -> PyProportions {
    let column = |f: &dyn Fn(&DomainProportion) -> f64| -> Column {
        domains
            .iter()
            .map(f)
            .collect::<Vec<f64>>()
            .into_pyarray(py)
            .unbind()
    };
    let fitted =
        |f: &dyn Fn(&ProportionFit) -> f64| column(&|p| p.fit.as_ref().map_or(f64::NAN, f));
    PyProportions {
        n_rows: column(&|p| p.n_rows),
        weight_sum: column(&|p| p.weight_sum),
        n_domain_rows: column(&|p| p.n_domain_rows),
        domain_weight_sum: column(&|p| p.domain_weight_sum),
        estimate: column(&|p| p.estimate),
        variance: column(&|p| p.variance),
        degf: column(&|p| p.degf.map_or(f64::NAN, |g| g as f64)),
        dropped_replicates: domains
            .iter()
            .map(|p| p.dropped_replicates)
            .max()
            .unwrap_or(0),
        mean_weight: model_rows.mean_weights(domains).into_pyarray(py).unbind(),
        coefficient: fitted(&|f| f.fit.coefficient),
        cov_unscaled: fitted(&|f| f.cov_unscaled),
        naive_cov: fitted(&|f| f.naive_cov),
        deviance: fitted(&|f| f.fit.deviance),
        dispersion: fitted(&|f| f.dispersion),
        model_rows: fitted(&|f| f.model_rows),
        prior_weight: fitted(&|f| f.sums.weight),
        prior_weighted_y: fitted(&|f| f.sums.weighted_y),
        prior_entropy: fitted(&|f| f.sums.entropy),
    }
}

type Column = Py<PyArray1<f64>>;

/// The proportion of each domain (see `estimators::ciprop::DomainProportion`): one value
/// per domain in each array, NaN where a domain has no fit; the fit's prior sums let
/// Python refit the intercept for the likelihood interval.
#[pyclass(name = "Proportions", module = "sscoverage._core", frozen, get_all)]
pub struct PyProportions {
    n_rows: Column,
    weight_sum: Column,
    n_domain_rows: Column,
    domain_weight_sum: Column,
    estimate: Column,
    variance: Column,
    degf: Column,
    dropped_replicates: usize,
    /// svyglm's prior weights are w over this mean weight of the domain's model rows.
    mean_weight: Column,
    coefficient: Column,
    cov_unscaled: Column,
    naive_cov: Column,
    deviance: Column,
    dispersion: Column,
    model_rows: Column,
    prior_weight: Column,
    prior_weighted_y: Column,
    prior_entropy: Column,
}

/// Totals or means (`kind`) of every domain with their joint covariance across domains
/// and variables: a `DomainEstimates` record whose `vcov` is (n_domains p)^2,
/// domain-major.
#[pyfunction]
#[pyo3(signature = (design, kind, domain, n_domains, numeric, categorical, in_design=None))]
#[allow(clippy::too_many_arguments)]
fn joint_estimate<'py>(
    py: Python<'py>,
    design: PyRef<'py, PyDesign>,
    kind: &str,
    domain: PyReadonlyArray1<'py, u32>,
    n_domains: usize,
    numeric: Vec<(usize, PyReadonlyArray1<'py, f64>)>,
    categorical: Vec<(usize, PyReadonlyArray1<'py, u32>, u32)>,
    in_design: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<PyDomainEstimates> {
    let estimator = estimator(kind, 0)?;
    let outcomes = outcomes(&numeric, &categorical)?;
    let domain = domain.as_slice()?;
    let in_design = in_design.as_ref().map(|m| m.as_slice()).transpose()?;
    let inner = &design.inner;
    let res = errors::in_core(py, || {
        estimate_joint(inner, estimator, &outcomes, domain, n_domains, in_design)
    })?;
    Ok(joint_record(py, n_domains, res))
}

/// `joint_estimate` from the sums of a streamed data set (`accumulate_batch`, added over
/// the batches): `table` n_domains x n_units x (2 + width); `present` marks the units
/// holding a row of a subset (None: every unit); `raked` as for `estimate_from_sums`.
#[pyfunction]
#[pyo3(signature = (design, kind, table, n_domains, width, present=None, raked=None))]
#[allow(clippy::too_many_arguments)]
fn joint_estimate_from_sums<'py>(
    py: Python<'py>,
    design: PyRef<'py, PyDesign>,
    kind: &str,
    table: PyReadonlyArray1<'py, f64>,
    n_domains: usize,
    width: usize,
    present: Option<PyReadonlyArray1<'py, bool>>,
    raked: Option<(PyReadonlyArray1<'py, f64>, PyRef<'py, PyCellRake>)>,
) -> PyResult<PyDomainEstimates> {
    let estimator = estimator(kind, 0)?;
    let sums = Sums {
        stride: 2 + width,
        table: table.as_slice()?.to_vec(),
        squares: Vec::new(),
    };
    let cell_sums = match &raked {
        Some((t, _)) => Some(Sums {
            stride: 2 + width,
            table: t.as_slice()?.to_vec(),
            squares: Vec::new(),
        }),
        None => None,
    };
    let beyond = match (&cell_sums, &raked) {
        (Some(s), Some((_, r))) => BeyondSums::RakedCells(s, &r.inner),
        _ => BeyondSums::Nothing,
    };
    let present = present.as_ref().map(|m| m.as_slice()).transpose()?;
    let scope = present.map_or(JointScope::Whole, JointScope::Units);
    let inner = &design.inner;
    let res = errors::in_core(py, || {
        joint_from_sums(inner, estimator, n_domains, &sums, beyond, scope)
    })?;
    Ok(joint_record(py, n_domains, res))
}

/// The joint estimates as a `DomainEstimates` record whose `vcov` is (n_domains p)^2.
fn joint_record(py: Python<'_>, n_domains: usize, res: JointEstimates) -> PyDomainEstimates {
    PyDomainEstimates::new(
        py,
        DomainEstimates {
            n_domains,
            p: res.p,
            estimate: res.estimate,
            vcov: res.vcov,
            deff: None,
            n_rows: res.n_rows,
            weight_sum: res.weight_sum,
            dropped_replicates: vec![res.dropped_replicates],
        },
        None,
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(proportion, m)?)?;
    m.add_function(wrap_pyfunction!(proportion_from_sums, m)?)?;
    m.add_function(wrap_pyfunction!(proportion_first_steps, m)?)?;
    m.add_function(wrap_pyfunction!(joint_estimate, m)?)?;
    m.add_function(wrap_pyfunction!(joint_estimate_from_sums, m)?)?;
    Ok(())
}
