//! Proportions with R's `svyciprop` fits, and estimates of every domain with their joint
//! covariance: arrays per domain out.

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{errors, estimator, outcomes, PyDesign};
use crate::estimators::ciprop::{proportion_by_domain, ProportionInput};
use crate::estimators::joint::estimate_joint;

/// The proportion of `y` in each domain (see `estimators::ciprop`): a dict of arrays,
/// one value per domain (NaN where a domain has no fit).
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
) -> PyResult<Bound<'py, PyDict>> {
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
    let domains = py
        .detach(|| proportion_by_domain(inner, &input))
        .map_err(errors::to_py)?;
    let column = |f: &dyn Fn(&crate::estimators::ciprop::DomainProportion) -> f64| {
        domains.iter().map(f).collect::<Vec<f64>>().into_pyarray(py)
    };
    let fitted = |f: &dyn Fn(&crate::estimators::ciprop::ProportionFit) -> f64| {
        column(&|p| p.fit.as_ref().map_or(f64::NAN, f))
    };
    let out = PyDict::new(py);
    out.set_item("n_rows", column(&|p| p.n_rows))?;
    out.set_item("weight_sum", column(&|p| p.weight_sum))?;
    out.set_item("n_domain_rows", column(&|p| p.n_domain_rows))?;
    out.set_item("domain_weight_sum", column(&|p| p.domain_weight_sum))?;
    out.set_item("estimate", column(&|p| p.estimate))?;
    out.set_item("variance", column(&|p| p.variance))?;
    out.set_item("degf", column(&|p| p.degf.map_or(f64::NAN, |g| g as f64)))?;
    out.set_item(
        "dropped_replicates",
        domains
            .iter()
            .map(|p| p.dropped_replicates)
            .max()
            .unwrap_or(0),
    )?;
    out.set_item("coefficient", fitted(&|f| f.fit.coefficient))?;
    out.set_item("cov_unscaled", fitted(&|f| f.cov_unscaled))?;
    out.set_item("naive_cov", fitted(&|f| f.naive_cov))?;
    out.set_item("deviance", fitted(&|f| f.fit.deviance))?;
    out.set_item("dispersion", fitted(&|f| f.dispersion))?;
    out.set_item("model_rows", fitted(&|f| f.model_rows))?;
    out.set_item("prior_weight", fitted(&|f| f.sums.weight))?;
    out.set_item("prior_weighted_y", fitted(&|f| f.sums.weighted_y))?;
    out.set_item("prior_entropy", fitted(&|f| f.sums.entropy))?;
    Ok(out)
}

/// Totals or means (`kind`) of every domain with their joint covariance across domains
/// and variables: a dict with "estimate" (n_domains x p), "vcov" ((n_domains p)^2,
/// domain-major), "n_rows", "weight_sum", "p" and "dropped_replicates".
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
) -> PyResult<Bound<'py, PyDict>> {
    let estimator = estimator(kind, 0)?;
    let outcomes = outcomes(&numeric, &categorical)?;
    let domain = domain.as_slice()?;
    let in_design = in_design.as_ref().map(|m| m.as_slice()).transpose()?;
    let inner = &design.inner;
    let res = py
        .detach(|| estimate_joint(inner, estimator, &outcomes, domain, n_domains, in_design))
        .map_err(errors::to_py)?;
    let out = PyDict::new(py);
    out.set_item("p", res.p)?;
    out.set_item("estimate", res.estimate.into_pyarray(py))?;
    out.set_item("vcov", res.vcov.into_pyarray(py))?;
    out.set_item("n_rows", res.n_rows.into_pyarray(py))?;
    out.set_item("weight_sum", res.weight_sum.into_pyarray(py))?;
    out.set_item("dropped_replicates", res.dropped_replicates)?;
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(proportion, m)?)?;
    m.add_function(wrap_pyfunction!(joint_estimate, m)?)?;
    Ok(())
}
