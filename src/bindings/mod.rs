//! The Python module `sscoverage._core`: thin wrappers that borrow numpy arrays, release
//! the GIL, call the core and map its errors to exception classes.
// pyo3 extracts each argument as an owned value (a numpy borrow, a Vec), so wrappers
// take them by value even where they only read them.
#![allow(clippy::needless_pass_by_value)]

mod coverage;
mod errors;
mod models;
mod quantile;
mod sampling;
mod small_area;
mod stream;
mod survival;
mod tables;
mod threshold;
mod weighting;

use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::codes::dense_codes;
use crate::design::{Design, DesignSpec, LonelyPsu, PpsMethod, PpsVariance};
use crate::estimate::{
    estimate_by_domain, estimate_by_label_span, estimates_from_sums, BeyondSums, DomainEstimates,
    Estimator, Outcome, Sums,
};
use crate::replicate::{BrrLarge, BrrSmall, Scheme};
use crate::svyvar::WeightedMoments;
use crate::variance::Influence;

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
    /// `weights_roundtrip`: the weights are taken as 1/(1/w) (as R does with weights
    /// given as 1/probabilities), computed in the one pass that copies them; invalid
    /// values give a DesignError.  `ids_labels`: the first stage's clusters as integer
    /// labels (int8 to int64, uint8 to uint32), coded here straight into the design's
    /// own codes (`clusters[0]` is then ignored).
    #[pyo3(signature = (n_rows, clusters, strata, fpc, weights, nest, lonely_psu,
                        adjust_domain_lonely, pps_method=None, pps_psum=None, pps_joint=None,
                        pps_variance="HT", weights_roundtrip=false, ids_labels=None))]
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
        weights_roundtrip: bool,
        ids_labels: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let first_ids = ids_labels
            .as_ref()
            .map(|labels| owned_codes(py, labels))
            .transpose()?;
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
        let inner = errors::in_core(py, || {
            let owned_weights = weight_slice.filter(|_| weights_roundtrip).map(|w| {
                let mut owned = vec![0.0; w.len()];
                owned
                    .par_chunks_mut(1 << 16)
                    .zip(w.par_chunks(1 << 16))
                    .for_each(|(o, w)| {
                        // A subnormal weight has no finite reciprocal: it is kept.
                        o.iter_mut().zip(w).for_each(|(o, &x)| {
                            let back = 1.0 / (1.0 / x);
                            *o = if back == 0.0 && x > 0.0 { x } else { back }
                        });
                    });
                owned
            });
            if owned_weights.is_none() && first_ids.is_none() {
                Design::new(&spec)
            } else {
                Design::with_owned(&spec, owned_weights, first_ids)
            }
        })?;
        Ok(PyDesign { inner })
    }

    /// A design given by replicate weights (R's `svrepdesign`); `analysis` is n x R.
    #[staticmethod]
    #[pyo3(signature = (weights, analysis, scale, rscales, mse))]
    fn from_replicate_weights(
        py: Python<'_>,
        weights: PyReadonlyArray1<'_, f64>,
        analysis: numpy::PyReadonlyArray2<'_, f64>,
        scale: f64,
        rscales: Vec<f64>,
        mse: bool,
    ) -> PyResult<Self> {
        let n_rep = analysis.shape()[1];
        let analysis = analysis.as_slice()?.to_vec();
        let weights = weights.as_slice()?;
        let inner = errors::in_core(py, || {
            Design::from_replicate_weights(weights, analysis, n_rep, scale, rscales, mse)
        })?;
        Ok(PyDesign { inner })
    }

    /// This design with replicate weights of `kind` built from its first stage.
    /// `stratum_rank`: each stratum code's place among the labels sorted as text (R's
    /// BRR order); `small` and `large`: R's `brrweights` options.
    #[pyo3(signature = (kind, rho=0.0, mse=false, replicates=50, seed=0, stratum_rank=None,
                        small="fail", large="split"))]
    #[allow(clippy::too_many_arguments)]
    fn as_replicates(
        &self,
        py: Python<'_>,
        kind: &str,
        rho: f64,
        mse: bool,
        replicates: usize,
        seed: u64,
        stratum_rank: Option<Vec<u32>>,
        small: &str,
        large: &str,
    ) -> PyResult<Self> {
        let small = match small {
            "fail" => BrrSmall::Fail,
            "split" => BrrSmall::Split,
            "merge" => BrrSmall::Merge,
            other => {
                return Err(errors::to_py(crate::CoreError::Design(format!(
                    "small={other:?} is not 'fail', 'split' or 'merge'"
                ))))
            }
        };
        let large = match large {
            "split" => BrrLarge::Split,
            "merge" => BrrLarge::Merge,
            "fail" => BrrLarge::Fail,
            other => {
                return Err(errors::to_py(crate::CoreError::Design(format!(
                    "large={other:?} is not 'split', 'merge' or 'fail'"
                ))))
            }
        };
        let scheme = match kind {
            "JK1" => Scheme::Jk1,
            "JKn" => Scheme::Jkn,
            "BRR" => Scheme::Brr {
                rho: 0.0,
                small,
                large,
            },
            "Fay" => Scheme::Brr { rho, small, large },
            "bootstrap" => Scheme::Bootstrap { replicates, seed },
            "subbootstrap" => Scheme::Subbootstrap { replicates, seed },
            other => {
                return Err(errors::to_py(crate::CoreError::Design(format!(
                    "replicate type {other:?} is not 'JK1', 'JKn', 'BRR', 'Fay', 'bootstrap' or 'subbootstrap'"
                ))))
            }
        };
        let design = &self.inner;
        let inner = errors::in_core(py, || {
            design.to_replicates(scheme, mse, stratum_rank.as_deref())
        })?;
        Ok(PyDesign { inner })
    }

    #[getter]
    fn is_replicate(&self) -> bool {
        self.inner.replicates().is_some()
    }

    /// (scale, rscales, mse, number of replicates) of a replicate design.
    #[getter]
    fn replicate_scheme(&self) -> Option<(f64, Vec<f64>, bool, usize)> {
        self.inner
            .replicates()
            .map(|r| (r.scale, r.rscales.clone(), r.mse, r.n_replicates))
    }

    /// Each replicate's analysis weights, n x R (zero-copy is not possible for the
    /// compressed form: this expands it).
    fn replicate_weights<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let d = &self.inner;
        let rep = d.replicates().ok_or_else(|| {
            errors::to_py(crate::CoreError::Design("not a replicate design".into()))
        })?;
        let out = rep.analysis_weights(&d.unit_of_row, &d.weights);
        numpy::PyArray1::from_vec(py, out).reshape([d.n_rows, rep.n_replicates])
    }

    /// Replicate covariance (p x p) of estimates whose replicate values are `thetas`
    /// (R x p) and full-sample values `full`; and how many replicates were left out.
    fn replicate_vcov<'py>(
        &self,
        py: Python<'py>,
        thetas: numpy::PyReadonlyArray2<'py, f64>,
        full: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<(Bound<'py, numpy::PyArray2<f64>>, usize)> {
        let full = full.as_slice()?;
        let p = full.len();
        if thetas.shape()[1] != p {
            return Err(errors::to_py(crate::CoreError::Shape(format!(
                "thetas have {} columns for {p} estimates",
                thetas.shape()[1]
            ))));
        }
        let thetas = thetas.as_slice()?;
        let cov = self
            .inner
            .covariance(Influence::ReplicateEstimates { thetas, full })
            .map_err(errors::to_py)?;
        Ok((
            numpy::PyArray1::from_vec(py, cov.matrix).reshape([p, p])?,
            cov.dropped_replicates,
        ))
    }

    #[getter]
    fn degf(&self) -> usize {
        self.inner.degf
    }

    /// Degrees of freedom of the domain `in_domain` of a replicate design (R recomputes
    /// them from the rank of the domain's replicate weights).
    fn replicate_degf_in(&self, in_domain: PyReadonlyArray1<'_, bool>) -> PyResult<usize> {
        self.inner
            .replicate_degf_in(in_domain.as_slice()?)
            .map_err(errors::to_py)
    }

    /// Whether some row has weight zero (one parallel pass, no copy of the weights).
    #[getter]
    fn any_zero_weight(&self, py: Python<'_>) -> bool {
        let w = &self.inner.weights;
        py.detach(|| w.par_chunks(1 << 16).any(|c| c.contains(&0.0)))
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
        let cov = errors::in_core(py, || {
            design.covariance(Influence::Rows {
                values: rows,
                p,
                in_domain: mask,
            })
        })?;
        numpy::PyArray1::from_vec(py, cov.matrix).reshape([p, p])
    }

    /// Covariance (p x p) from influence values already summed to the design's variance
    /// units (n_units x p, C order): a streamed estimator's totals.
    fn totals_vcov<'py>(
        &self,
        py: Python<'py>,
        totals: numpy::PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let p = totals.shape()[1];
        let values = totals.as_slice()?;
        let design = &self.inner;
        let cov = errors::in_core(py, || {
            design.covariance(Influence::UnitTotals {
                totals: values,
                p,
                present: None,
            })
        })?;
        numpy::PyArray1::from_vec(py, cov.matrix).reshape([p, p])
    }

    /// Estimate by domain; `kind` is "total", "mean" or "ratio".  Returns a `DomainEstimates` record.
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
    ) -> PyResult<PyDomainEstimates> {
        let estimator = estimator(kind, n_numerators)?;
        let outcomes = outcomes(&numeric, &categorical)?;
        let domain = domain.as_slice()?;
        let design = &self.inner;
        let res = errors::in_core(py, || {
            estimate_by_domain(design, estimator, &outcomes, domain, n_domains, deff)
        })?;
        Ok(PyDomainEstimates::new(py, res, None))
    }

    /// `estimate` with the domains given by a column of integer labels (int8 to int64,
    /// uint8 to uint32, read in place) that span at most `max_domains` values: a row's
    /// domain is its label less the smallest label (returned as "offset"), so the column
    /// needs no coding first; values no row carries come back with no rows.  None when
    /// the labels span more values, or the table of sums would be large.
    #[pyo3(signature = (kind, labels, numeric, categorical, n_numerators=0, deff=false, max_domains=256))]
    #[allow(clippy::too_many_arguments)]
    fn estimate_labels<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        labels: &Bound<'py, PyAny>,
        numeric: Vec<(usize, PyReadonlyArray1<'py, f64>)>,
        categorical: Vec<(usize, PyReadonlyArray1<'py, u32>, u32)>,
        n_numerators: usize,
        deff: bool,
        max_domains: usize,
    ) -> PyResult<Option<PyDomainEstimates>> {
        let estimator = estimator(kind, n_numerators)?;
        let outcomes = outcomes(&numeric, &categorical)?;
        let attempts = [
            labels_estimate::<i64>,
            labels_estimate::<i32>,
            labels_estimate::<i16>,
            labels_estimate::<i8>,
            labels_estimate::<u32>,
            labels_estimate::<u16>,
            labels_estimate::<u8>,
        ];
        for attempt in attempts {
            if let Some(r) = attempt(
                py,
                &self.inner,
                labels,
                (estimator, &outcomes, deff),
                max_domains,
            )? {
                return Ok(r);
            }
        }
        Err(pyo3::exceptions::PyTypeError::new_err(
            "estimate_labels needs a contiguous integer array (int8 to int64, uint8 to uint32)",
        ))
    }

    /// Estimates from sums of a streamed data set (`accumulate_batch`, added over the
    /// batches): `table` n_domains x n_units x (2 + width), `squares` empty or the design
    /// effects' sums.
    /// A raked streamed design adds `raked`: the sums per (domain, cell) with weights over
    /// base weights (n_domains x n_cells x (2 + width)) and its rake.
    #[pyo3(signature = (kind, table, squares, n_domains, width, n_numerators=0, raked=None))]
    #[allow(clippy::too_many_arguments)]
    fn estimate_from_sums<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        table: PyReadonlyArray1<'py, f64>,
        squares: PyReadonlyArray1<'py, f64>,
        n_domains: usize,
        width: usize,
        n_numerators: usize,
        raked: Option<(
            PyReadonlyArray1<'py, f64>,
            PyRef<'py, weighting::PyCellRake>,
        )>,
    ) -> PyResult<PyDomainEstimates> {
        let estimator = estimator(kind, n_numerators)?;
        let sums = Sums {
            stride: 2 + width,
            table: table.as_slice()?.to_vec(),
            squares: squares.as_slice()?.to_vec(),
        };
        let cell_sums = raked
            .as_ref()
            .map(|(t, _)| {
                Ok::<_, PyErr>(Sums {
                    stride: 2 + width,
                    table: t.as_slice()?.to_vec(),
                    squares: Vec::new(),
                })
            })
            .transpose()?;
        let beyond = match (&cell_sums, &raked) {
            (Some(s), Some((_, r))) => BeyondSums::RakedCells(s, &r.inner),
            _ => BeyondSums::Nothing,
        };
        let design = &self.inner;
        let res = errors::in_core(py, || {
            estimates_from_sums(design, estimator, n_domains, &sums, beyond)
        })?;
        Ok(PyDomainEstimates::new(py, res, None))
    }

    /// The variance unit of each row (for a design over PSUs: each PSU's code).
    #[getter]
    fn unit_of_row<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<u32>> {
        numpy::PyArray1::from_slice(py, &self.inner.unit_of_row)
    }
}

fn estimator(kind: &str, n_numerators: usize) -> PyResult<Estimator> {
    match kind {
        "total" => Ok(Estimator::Total),
        "mean" => Ok(Estimator::Mean),
        "ratio" => Ok(Estimator::Ratio { n_numerators }),
        other => Err(errors::to_py(crate::CoreError::Value(format!(
            "unknown estimator {other:?}"
        )))),
    }
}

/// Outcomes arrive tagged with their position, so numeric and factor columns keep the
/// caller's order.
fn outcomes<'a>(
    numeric: &'a [(usize, PyReadonlyArray1<'_, f64>)],
    categorical: &'a [(usize, PyReadonlyArray1<'_, u32>, u32)],
) -> PyResult<Vec<Outcome<'a>>> {
    let mut tagged: Vec<(usize, Outcome)> = Vec::with_capacity(numeric.len() + categorical.len());
    for (pos, y) in numeric {
        tagged.push((*pos, Outcome::Numeric(y.as_slice()?)));
    }
    for (pos, codes, n_levels) in categorical {
        tagged.push((
            *pos,
            Outcome::Categorical {
                codes: codes.as_slice()?,
                n_levels: *n_levels,
            },
        ));
    }
    tagged.sort_by_key(|(pos, _)| *pos);
    Ok(tagged.into_iter().map(|(_, o)| o).collect())
}

/// Estimates of every domain as the core returns them (see `DomainEstimates`): `p`
/// estimates per domain, `estimate` (n_domains x p), `vcov` (n_domains x p x p, or
/// (n_domains p)^2 for the joint covariance), `n_rows` and `weight_sum` per domain, the
/// most replicates any domain left out, `deff` when asked for, and `offset`, the
/// smallest label of the labels path.
#[pyclass(name = "DomainEstimates", module = "sscoverage._core", frozen, get_all)]
pub struct PyDomainEstimates {
    p: usize,
    estimate: Py<numpy::PyArray1<f64>>,
    vcov: Py<numpy::PyArray1<f64>>,
    n_rows: Py<numpy::PyArray1<f64>>,
    weight_sum: Py<numpy::PyArray1<f64>>,
    dropped_replicates: usize,
    deff: Option<Py<numpy::PyArray1<f64>>>,
    offset: Option<i64>,
}

impl PyDomainEstimates {
    fn new(py: Python<'_>, res: DomainEstimates, offset: Option<i64>) -> Self {
        PyDomainEstimates {
            p: res.p,
            estimate: res.estimate.into_pyarray(py).unbind(),
            vcov: res.vcov.into_pyarray(py).unbind(),
            n_rows: res.n_rows.into_pyarray(py).unbind(),
            weight_sum: res.weight_sum.into_pyarray(py).unbind(),
            dropped_replicates: res.dropped_replicates.into_iter().max().unwrap_or(0),
            deff: res.deff.map(|d| d.into_pyarray(py).unbind()),
            offset,
        }
    }
}

/// Largest table of sums per chunk (domains x units x columns) for the labels path.
const LABELS_TABLE_LIMIT: usize = 1 << 18;

/// `estimate_labels` for labels of type T: None if they are not T; Some(None) if they
/// span too many values.
#[allow(clippy::option_option)]
fn labels_estimate<'py, T>(
    py: Python<'py>,
    design: &Design,
    labels: &Bound<'py, PyAny>,
    (estimator, outcomes, deff): (Estimator, &[Outcome], bool),
    max_domains: usize,
) -> PyResult<Option<Option<PyDomainEstimates>>>
where
    T: numpy::Element + Copy + Into<i64> + Send + Sync,
{
    let Ok(array) = labels.extract::<PyReadonlyArray1<'py, T>>() else {
        return Ok(None);
    };
    let slice = array.as_slice()?;
    let found = errors::in_core(py, || {
        estimate_by_label_span(
            design,
            estimator,
            outcomes,
            slice,
            max_domains,
            LABELS_TABLE_LIMIT,
            deff,
        )
    })?;
    let Some((lo, res)) = found else {
        return Ok(Some(None));
    };
    Ok(Some(Some(PyDomainEstimates::new(py, res, Some(lo)))))
}

/// Dense codes (sorted label order) of a column of integer labels, owned.
fn owned_codes(py: Python<'_>, labels: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    fn typed<'py, T>(py: Python<'py>, labels: &Bound<'py, PyAny>) -> PyResult<Option<Vec<u32>>>
    where
        T: numpy::Element + Copy + Into<i64> + Send + Sync,
    {
        let Ok(array) = labels.extract::<PyReadonlyArray1<'py, T>>() else {
            return Ok(None);
        };
        let slice = array.as_slice()?;
        Ok(Some(py.detach(|| dense_codes(slice).0)))
    }
    let attempts = [
        typed::<i64>,
        typed::<i32>,
        typed::<i16>,
        typed::<i8>,
        typed::<u32>,
        typed::<u16>,
        typed::<u8>,
    ];
    for attempt in attempts {
        if let Some(codes) = attempt(py, labels)? {
            return Ok(codes);
        }
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "ids labels must be a contiguous integer array (int8 to int64, uint8 to uint32)",
    ))
}

type CodesAndLabels<'py> = (
    Bound<'py, numpy::PyArray1<u32>>,
    Bound<'py, numpy::PyArray1<i64>>,
);

fn dense_codes_of<'py, T>(
    py: Python<'py>,
    labels: &Bound<'py, PyAny>,
) -> PyResult<Option<CodesAndLabels<'py>>>
where
    T: numpy::Element + Copy + Into<i64> + Send + Sync,
{
    let Ok(array) = labels.extract::<PyReadonlyArray1<'py, T>>() else {
        return Ok(None);
    };
    let slice = array.as_slice()?;
    let (codes, distinct) = py.detach(|| dense_codes(slice));
    Ok(Some((codes.into_pyarray(py), distinct.into_pyarray(py))))
}

/// Dense codes 0..k of integer labels (int8 to int64, uint8 to uint32, read in place),
/// in sorted label order, and the k labels.
#[pyfunction(name = "dense_codes")]
fn dense_codes_py<'py>(
    py: Python<'py>,
    labels: &Bound<'py, PyAny>,
) -> PyResult<CodesAndLabels<'py>> {
    let attempts = [
        dense_codes_of::<i64>,
        dense_codes_of::<i32>,
        dense_codes_of::<i16>,
        dense_codes_of::<i8>,
        dense_codes_of::<u32>,
        dense_codes_of::<u16>,
        dense_codes_of::<u8>,
    ];
    for attempt in attempts {
        if let Some(r) = attempt(py, labels)? {
            return Ok(r);
        }
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "dense_codes needs a contiguous integer array (int8 to int64, uint8 to uint32)",
    ))
}

/// Whether every value is finite (no NaN, no infinity): one parallel pass, no temporary.
#[pyfunction]
fn all_finite(py: Python<'_>, values: PyReadonlyArray1<'_, f64>) -> PyResult<bool> {
    let values = values.as_slice()?;
    Ok(py.detach(|| {
        values
            .par_chunks(1 << 16)
            .all(|chunk| chunk.iter().all(|x| x.is_finite()))
    }))
}

/// R's `svyvar` of `values` under `weights` (see `svyvar::WeightedMoments`).
#[pyfunction]
fn svyvar(
    py: Python<'_>,
    values: PyReadonlyArray1<'_, f64>,
    weights: PyReadonlyArray1<'_, f64>,
) -> PyResult<f64> {
    let (values, weights) = (values.as_slice()?, weights.as_slice()?);
    if values.len() != weights.len() {
        return Err(errors::to_py(crate::CoreError::Shape(format!(
            "svyvar: {} values and {} weights",
            values.len(),
            weights.len()
        ))));
    }
    Ok(py.detach(|| WeightedMoments::of_rows(values, weights).svyvar()))
}

/// R's `svyvar` from sums gathered elsewhere (batches of a streamed data set):
/// sum w, sum w y, sum w y^2 and the rows of non-zero weight.
#[pyfunction]
fn svyvar_of_sums(weight: f64, first: f64, second: f64, n_obs: f64) -> f64 {
    WeightedMoments {
        weight,
        first,
        second,
        n_obs,
    }
    .svyvar()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyDesign>()?;
    m.add_class::<models::PyModelColumns>()?;
    m.add_function(wrap_pyfunction!(models::glm_fit, m)?)?;
    m.add_function(wrap_pyfunction!(models::glm_rows, m)?)?;
    m.add_function(wrap_pyfunction!(models::glm_replicate_coefficients, m)?)?;
    m.add_function(wrap_pyfunction!(models::glm_replicate_fits, m)?)?;
    m.add_function(wrap_pyfunction!(models::glm_batch_pass, m)?)?;
    m.add_function(wrap_pyfunction!(models::glm_streamed_fit, m)?)?;
    m.add_class::<models::PyIrlsRun>()?;
    m.add_function(wrap_pyfunction!(models::glm_batch_scores, m)?)?;
    m.add_function(wrap_pyfunction!(threshold::threshold_candidate, m)?)?;
    m.add_function(wrap_pyfunction!(threshold::threshold_covariance, m)?)?;
    m.add_function(wrap_pyfunction!(threshold::threshold_score_test, m)?)?;
    m.add_class::<threshold::PyThresholdCandidate>()?;
    m.add_class::<threshold::PyThresholdScoreTest>()?;
    m.add_function(wrap_pyfunction!(dense_codes_py, m)?)?;
    m.add_function(wrap_pyfunction!(all_finite, m)?)?;
    m.add_function(wrap_pyfunction!(svyvar, m)?)?;
    m.add_function(wrap_pyfunction!(svyvar_of_sums, m)?)?;
    m.add_class::<PyDomainEstimates>()?;
    m.add_class::<tables::PyProportions>()?;
    m.add_class::<weighting::PyWeightingReport>()?;
    m.add_class::<coverage::PyInterruptionSpells>()?;
    m.add_class::<models::PyGlmFit>()?;
    m.add_class::<models::PyGlmRows>()?;
    m.add_class::<models::PyGlmBatchPass>()?;
    weighting::register(m)?;
    coverage::register(m)?;
    sampling::register(m)?;
    small_area::register(m)?;
    stream::register(m)?;
    survival::register(m)?;
    tables::register(m)?;
    quantile::register(m)?;
    errors::register(m)?;
    Ok(())
}
