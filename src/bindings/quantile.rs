//! Quantiles by domain: the distributions of one call, held on the Rust side while
//! Python works out the intervals for the proportions; replicate variances; the
//! Woodruff proportions; domain degrees of freedom.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::{errors, PyDesign};
use crate::quantile::{
    domain_degf, proportions_at_or_below, repeated_cumsum, replicate_variances, rows_quantiles,
    window_counts, window_quantiles, DomainQuantiles, QuantileRule, WindowCounts, MIN_WINDOW_ROWS,
};

/// Each domain's weighted distribution of one variable (see
/// `crate::quantile::DomainQuantiles`), with the design, values and domain codes it
/// reads again for further levels.
#[pyclass(name = "DomainQuantiles", module = "sscoverage._core", frozen)]
struct PyDomainQuantiles {
    inner: DomainQuantiles,
    design: Py<PyDesign>,
    values: Py<PyArray1<f64>>,
    domain: Py<PyArray1<u32>>,
}

type Matrix<'py> = Bound<'py, PyArray2<f64>>;

fn matrix(py: Python<'_>, values: Vec<f64>, k: usize) -> PyResult<Bound<'_, PyArray2<f64>>> {
    let rows = values.len().checked_div(k).unwrap_or(0);
    PyArray1::from_vec(py, values).reshape([rows, k])
}

#[pymethods]
impl PyDomainQuantiles {
    /// The distributions of `values` in each domain (codes 0..n_domains in `domain`,
    /// `OUTSIDE` for none) under the design's weights with R's `rule`; domains of at
    /// least `min_window_rows` rows of positive weight read from windows.
    #[new]
    #[pyo3(signature = (design, values, domain, n_domains, rule, min_window_rows = MIN_WINDOW_ROWS))]
    fn new(
        py: Python<'_>,
        design: Bound<'_, PyDesign>,
        values: Bound<'_, PyArray1<f64>>,
        domain: Bound<'_, PyArray1<u32>>,
        n_domains: usize,
        rule: &str,
        min_window_rows: usize,
    ) -> PyResult<Self> {
        let rule = QuantileRule::parse(rule).map_err(errors::to_py)?;
        let inner = {
            let core = &design.get().inner;
            let (x, codes) = (values.readonly(), domain.readonly());
            let (x, codes) = (x.as_slice()?, codes.as_slice()?);
            errors::in_core(py, || {
                DomainQuantiles::new(core, x, codes, n_domains, rule, min_window_rows)
            })?
        };
        Ok(PyDomainQuantiles {
            inner,
            design: design.unbind(),
            values: values.unbind(),
            domain: domain.unbind(),
        })
    }

    /// The quantiles at `levels` (n_domains x k), each domain at its own row.
    fn at<'py>(
        &self,
        py: Python<'py>,
        levels: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let k = levels.shape()[1];
        let levels = levels.as_slice()?;
        let design = &self.design.get().inner;
        let (x, codes) = (
            self.values.bind(py).readonly(),
            self.domain.bind(py).readonly(),
        );
        let (x, codes) = (x.as_slice()?, codes.as_slice()?);
        let inner = &self.inner;
        let out = errors::in_core(py, || inner.at(design, x, codes, levels, k))?;
        matrix(py, out, k)
    }

    /// Replicate variances of the quantiles `full` (n_domains x k, at `probs`): each
    /// replicate's quantiles, then the replicate engine per quantile.  Returns the
    /// variances (n_domains x k) and the replicates dropped for each.
    fn replicate_variances<'py>(
        &self,
        py: Python<'py>,
        probs: Vec<f64>,
        full: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, Vec<usize>)> {
        let k = probs.len();
        let design = &self.design.get().inner;
        let full = full.as_slice()?;
        let (x, codes) = (
            self.values.bind(py).readonly(),
            self.domain.bind(py).readonly(),
        );
        let (x, codes) = (x.as_slice()?, codes.as_slice()?);
        let inner = &self.inner;
        let (var, dropped) = errors::in_core(py, || {
            let thetas = inner.replicate_quantiles(design, x, codes, &probs)?;
            replicate_variances(design, &thetas, full, k)
        })?;
        Ok((matrix(py, var, k)?, dropped))
    }

    #[getter]
    fn n_rows<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<usize>> {
        PyArray1::from_slice(py, &self.inner.n_rows)
    }

    #[getter]
    fn weight_sum<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.weight_sum)
    }
}

/// The proportion of each domain at or below its quantiles `q` (n_domains x k) and its
/// variance, through the design's estimate pass: (estimates, variances), n_domains x k.
#[pyfunction]
fn quantile_proportions<'py>(
    py: Python<'py>,
    design: &Bound<'py, PyDesign>,
    values: PyReadonlyArray1<'py, f64>,
    domain: PyReadonlyArray1<'py, u32>,
    n_domains: usize,
    q: PyReadonlyArray2<'py, f64>,
) -> PyResult<(Matrix<'py>, Matrix<'py>)> {
    let k = q.shape()[1];
    let design = &design.get().inner;
    let (values, domain, q) = (values.as_slice()?, domain.as_slice()?, q.as_slice()?);
    let (estimate, variance) = py
        .detach(|| proportions_at_or_below(design, values, domain, n_domains, q))
        .map_err(errors::to_py)?;
    Ok((matrix(py, estimate, k)?, matrix(py, variance, k)?))
}

/// Degrees of freedom of each domain of a linearisation design (R's `degf` of a subset).
#[pyfunction(name = "domain_degf")]
fn domain_degf_py<'py>(
    py: Python<'py>,
    design: &Bound<'py, PyDesign>,
    domain: PyReadonlyArray1<'py, u32>,
    n_domains: usize,
) -> PyResult<Bound<'py, PyArray1<usize>>> {
    let design = &design.get().inner;
    let domain = domain.as_slice()?;
    let degf = py
        .detach(|| domain_degf(design, domain, n_domains))
        .map_err(errors::to_py)?;
    Ok(degf.into_pyarray(py))
}

/// One batch's counts in the windows of its domains' distributions (see
/// `crate::quantile::window_counts`).
#[pyclass(name = "WindowCounts", module = "sscoverage._core", frozen, get_all)]
struct PyWindowCounts {
    target: Py<PyArray1<u32>>,
    bin: Py<PyArray1<u64>>,
    count: Py<PyArray1<u64>>,
    weight: Py<PyArray1<f64>>,
    first: Py<PyArray1<f64>>,
    low: Py<PyArray1<u64>>,
    high: Py<PyArray1<u64>>,
    below_count: Py<PyArray1<u64>>,
    below_weight: Py<PyArray1<f64>>,
    below_max: Py<PyArray1<u64>>,
    above_min: Py<PyArray1<u64>>,
}

impl PyWindowCounts {
    fn new(py: Python<'_>, c: WindowCounts) -> Self {
        PyWindowCounts {
            target: c.target.into_pyarray(py).unbind(),
            bin: c.bin.into_pyarray(py).unbind(),
            count: c.count.into_pyarray(py).unbind(),
            weight: c.weight.into_pyarray(py).unbind(),
            first: c.first.into_pyarray(py).unbind(),
            low: c.low.into_pyarray(py).unbind(),
            high: c.high.into_pyarray(py).unbind(),
            below_count: c.below_count.into_pyarray(py).unbind(),
            below_weight: c.below_weight.into_pyarray(py).unbind(),
            below_max: c.below_max.into_pyarray(py).unbind(),
            above_min: c.above_min.into_pyarray(py).unbind(),
        }
    }
}

/// A batch's window counts (see `crate::quantile::window_counts`).
#[pyfunction(name = "window_counts")]
#[allow(clippy::too_many_arguments)]
fn window_counts_py<'py>(
    py: Python<'py>,
    values: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    domain: PyReadonlyArray1<'py, u32>,
    slot: PyReadonlyArray1<'py, u32>,
    per_domain: usize,
    lo: PyReadonlyArray1<'py, u64>,
    hi: PyReadonlyArray1<'py, u64>,
    shift: PyReadonlyArray1<'py, u32>,
) -> PyResult<PyWindowCounts> {
    let (values, weights, domain, slot) = (
        values.as_slice()?,
        weights.as_slice()?,
        domain.as_slice()?,
        slot.as_slice()?,
    );
    let (lo, hi, shift) = (lo.as_slice()?, hi.as_slice()?, shift.as_slice()?);
    let counts = errors::in_core(py, || {
        window_counts(values, weights, domain, slot, per_domain, lo, hi, shift)
    })?;
    Ok(PyWindowCounts::new(py, counts))
}

/// Quantiles from windows of distributions (see `crate::quantile::window_quantiles`).
#[pyfunction(name = "window_quantiles")]
fn window_quantiles_py<'py>(
    py: Python<'py>,
    rule: &str,
    x: PyReadonlyArray1<'py, f64>,
    cumw: PyReadonlyArray1<'py, f64>,
    starts: PyReadonlyArray1<'py, u64>,
    totals: PyReadonlyArray1<'py, f64>,
    levels: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let rule = QuantileRule::parse(rule).map_err(errors::to_py)?;
    let starts: Vec<usize> = starts
        .as_slice()?
        .iter()
        .map(|&s| usize::try_from(s).unwrap_or(usize::MAX))
        .collect();
    let (x, cumw, totals, levels) = (
        x.as_slice()?,
        cumw.as_slice()?,
        totals.as_slice()?,
        levels.as_slice()?,
    );
    let out = errors::in_core(py, || {
        window_quantiles(rule, x, cumw, &starts, totals, levels)
    })?;
    Ok(out.into_pyarray(py))
}

/// R's `cumsum` of `weight` repeated, read after each of `counts` additions.
#[pyfunction(name = "repeated_cumsum")]
fn repeated_cumsum_py<'py>(
    py: Python<'py>,
    weight: f64,
    counts: PyReadonlyArray1<'py, u64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let counts = counts.as_slice()?;
    let out = py.detach(|| repeated_cumsum(weight, counts));
    Ok(out.into_pyarray(py))
}

/// One domain's quantiles at `levels` from its rows (values, weights in row order).
#[pyfunction(name = "rows_quantiles")]
fn rows_quantiles_py<'py>(
    py: Python<'py>,
    rule: &str,
    values: PyReadonlyArray1<'py, f64>,
    weights: PyReadonlyArray1<'py, f64>,
    levels: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let rule = QuantileRule::parse(rule).map_err(errors::to_py)?;
    let (values, weights, levels) = (values.as_slice()?, weights.as_slice()?, levels.as_slice()?);
    let out = errors::in_core(py, || rows_quantiles(rule, values, weights, levels))?;
    Ok(out.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDomainQuantiles>()?;
    m.add_function(wrap_pyfunction!(quantile_proportions, m)?)?;
    m.add_function(wrap_pyfunction!(domain_degf_py, m)?)?;
    m.add_class::<PyWindowCounts>()?;
    m.add_function(wrap_pyfunction!(window_counts_py, m)?)?;
    m.add_function(wrap_pyfunction!(window_quantiles_py, m)?)?;
    m.add_function(wrap_pyfunction!(repeated_cumsum_py, m)?)?;
    m.add_function(wrap_pyfunction!(rows_quantiles_py, m)?)
}
