//! Proportions with R's `svyciprop` fits, and estimates of every domain with their joint
//! covariance: arrays per domain out.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::{errors, estimator, outcomes, PyDesign, PyDomainEstimates};
use crate::estimate::DomainEstimates;
use crate::estimators::ciprop::{
    proportion_by_domain, DomainProportion, ProportionFit, ProportionInput,
};
use crate::estimators::joint::estimate_joint;

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
    Ok(PyProportions {
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
        coefficient: fitted(&|f| f.fit.coefficient),
        cov_unscaled: fitted(&|f| f.cov_unscaled),
        naive_cov: fitted(&|f| f.naive_cov),
        deviance: fitted(&|f| f.fit.deviance),
        dispersion: fitted(&|f| f.dispersion),
        model_rows: fitted(&|f| f.model_rows),
        prior_weight: fitted(&|f| f.sums.weight),
        prior_weighted_y: fitted(&|f| f.sums.weighted_y),
        prior_entropy: fitted(&|f| f.sums.entropy),
    })
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
    Ok(PyDomainEstimates::new(
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
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(proportion, m)?)?;
    m.add_function(wrap_pyfunction!(joint_estimate, m)?)?;
    Ok(())
}
