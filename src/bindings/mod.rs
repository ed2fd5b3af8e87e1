//! The Python module `sscoverage._core`: thin wrappers that borrow numpy arrays, release
//! the GIL, call the core and map its errors to exception classes.

mod errors;

use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::codes::dense_codes_i64;
use crate::design::{Design, DesignSpec, LonelyPsu, PpsMethod, PpsVariance};
use crate::estimate::{estimate_by_domain, Estimator, Outcome};
use crate::variance::covariance_of_rows;

/// A built design, held on the Rust side.
#[pyclass(name = "CoreDesign", module = "sscoverage._core", frozen)]
struct PyDesign {
    inner: Design,
}

fn slices<'a, T: numpy::Element>(arrays: &'a [PyReadonlyArray1<'_, T>]) -> PyResult<Vec<&'a [T]>> {
    arrays.iter().map(|a| Ok(a.as_slice()?)).collect()
}

#[pymethods]
impl PyDesign {
    /// Build a design from per-row codes and numbers (see python/sscoverage/design.py).
    #[new]
    #[pyo3(signature = (n_rows, clusters, strata, fpc, weights, nest, lonely_psu,
                        adjust_domain_lonely, pps_method=None, pps_psum=None, pps_joint=None,
                        pps_variance="HT"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        n_rows: usize,
        clusters: Vec<Option<PyReadonlyArray1<'_, u32>>>,
        strata: Vec<PyReadonlyArray1<'_, u32>>,
        fpc: Vec<PyReadonlyArray1<'_, f64>>,
        weights: Option<PyReadonlyArray1<'_, f64>>,
        nest: bool,
        lonely_psu: &str,
        adjust_domain_lonely: bool,
        pps_method: Option<&str>,
        pps_psum: Option<f64>,
        pps_joint: Option<PyReadonlyArray1<'_, f64>>,
        pps_variance: &str,
    ) -> PyResult<Self> {
        let cluster_slices: Vec<Option<&[u32]>> = clusters
            .iter()
            .map(|c| c.as_ref().map(|a| a.as_slice()).transpose())
            .collect::<Result<_, _>>()?;
        let strata_slices = slices(&strata)?;
        let fpc_slices = slices(&fpc)?;
        let weight_slice = weights.as_ref().map(|w| w.as_slice()).transpose()?;
        let lonely = LonelyPsu::parse(lonely_psu).map_err(errors::to_py)?;
        let variance = match pps_variance {
            "HT" => PpsVariance::HorvitzThompson,
            "YG" => PpsVariance::YatesGrundy,
            other => {
                return Err(errors::to_py(crate::CoreError::Design(format!(
                    "variance={other:?} is not 'HT' or 'YG'"
                ))))
            }
        };
        let pps = match pps_method {
            None => None,
            Some("brewer") => Some((PpsMethod::Brewer, variance)),
            Some("overton") => Some((PpsMethod::Overton, variance)),
            Some("HR") => Some((PpsMethod::HartleyRao { psum: pps_psum }, variance)),
            Some("ppsmat") => {
                let pij = pps_joint
                    .as_ref()
                    .ok_or_else(|| {
                        errors::to_py(crate::CoreError::Design(
                            "ppsmat needs a joint-probability matrix".into(),
                        ))
                    })?
                    .as_slice()?
                    .to_vec();
                Some((PpsMethod::JointProbs { pij }, variance))
            }
            Some(other) => {
                return Err(errors::to_py(crate::CoreError::Design(format!(
                    "pps={other:?} is not 'brewer', 'overton', 'HR' or 'ppsmat'"
                ))))
            }
        };
        let spec = DesignSpec {
            n_rows,
            clusters: cluster_slices,
            strata: strata_slices,
            fpc: fpc_slices,
            weights: weight_slice,
            nest,
            lonely_psu: lonely,
            adjust_domain_lonely,
            pps,
        };
        let inner = py.detach(|| Design::new(&spec)).map_err(errors::to_py)?;
        Ok(PyDesign { inner })
    }

    #[getter]
    fn degf(&self) -> usize {
        self.inner.degf
    }

    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        numpy::PyArray1::from_slice(py, &self.inner.weights)
    }

    #[getter]
    fn n_units(&self) -> usize {
        self.inner.n_units
    }

    /// Covariance (p x p) from per-row influence values (n x p, C order), zero outside
    /// the domain whose rows `in_domain` marks.
    #[pyo3(signature = (influence, in_domain=None))]
    fn influence_vcov<'py>(
        &self,
        py: Python<'py>,
        influence: numpy::PyReadonlyArray2<'py, f64>,
        in_domain: Option<PyReadonlyArray1<'py, bool>>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let p = influence.shape()[1];
        let rows = influence.as_slice()?;
        let mask = in_domain.as_ref().map(|m| m.as_slice()).transpose()?;
        let design = &self.inner;
        let v = py
            .detach(|| covariance_of_rows(design, rows, p, mask))
            .map_err(errors::to_py)?;
        numpy::PyArray1::from_vec(py, v).reshape([p, p])
    }

    /// Estimate by domain; `kind` is "total", "mean" or "ratio".  Returns a dict of arrays.
    #[pyo3(signature = (kind, domain, n_domains, numeric, categorical, n_numerators=0, deff=false))]
    #[allow(clippy::too_many_arguments)]
    fn estimate<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        domain: PyReadonlyArray1<'py, u32>,
        n_domains: usize,
        numeric: Vec<(usize, PyReadonlyArray1<'py, f64>)>,
        categorical: Vec<(usize, PyReadonlyArray1<'py, u32>, u32)>,
        n_numerators: usize,
        deff: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let estimator = match kind {
            "total" => Estimator::Total,
            "mean" => Estimator::Mean,
            "ratio" => Estimator::Ratio { n_numerators },
            other => {
                return Err(errors::to_py(crate::CoreError::Value(format!(
                    "unknown estimator {other:?}"
                ))))
            }
        };
        // Outcomes arrive tagged with their position, so numeric and factor columns keep
        // the caller's order.
        let mut outcomes: Vec<(usize, Outcome)> =
            Vec::with_capacity(numeric.len() + categorical.len());
        for (pos, y) in &numeric {
            outcomes.push((*pos, Outcome::Numeric(y.as_slice()?)));
        }
        for (pos, codes, n_levels) in &categorical {
            outcomes.push((
                *pos,
                Outcome::Categorical {
                    codes: codes.as_slice()?,
                    n_levels: *n_levels,
                },
            ));
        }
        outcomes.sort_by_key(|(pos, _)| *pos);
        let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();
        let domain = domain.as_slice()?;
        let design = &self.inner;
        let res = py
            .detach(|| estimate_by_domain(design, estimator, &outcomes, domain, n_domains, deff))
            .map_err(errors::to_py)?;
        let out = PyDict::new(py);
        out.set_item("p", res.p)?;
        out.set_item("estimate", res.estimate.into_pyarray(py))?;
        out.set_item("vcov", res.vcov.into_pyarray(py))?;
        out.set_item("n_rows", res.n_rows.into_pyarray(py))?;
        out.set_item("weight_sum", res.weight_sum.into_pyarray(py))?;
        if let Some(d) = res.deff {
            out.set_item("deff", d.into_pyarray(py))?;
        }
        Ok(out)
    }
}

type CodesAndLabels<'py> = (
    Bound<'py, numpy::PyArray1<u32>>,
    Bound<'py, numpy::PyArray1<i64>>,
);

/// Dense codes 0..k of integer labels, in sorted label order, and the k labels.
#[pyfunction]
fn dense_codes<'py>(
    py: Python<'py>,
    labels: PyReadonlyArray1<'py, i64>,
) -> PyResult<CodesAndLabels<'py>> {
    let labels = labels.as_slice()?;
    let (codes, distinct) = py.detach(|| dense_codes_i64(labels));
    Ok((codes.into_pyarray(py), distinct.into_pyarray(py)))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyDesign>()?;
    m.add_function(wrap_pyfunction!(dense_codes, m)?)?;
    errors::register(m)?;
    Ok(())
}
