//! Fay–Herriot small-area estimation for `sscoverage.small_area`: numpy arrays in, a typed
//! record out.

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::errors;
use crate::error::CoreError;
use crate::small_area::{self, Control, FhFit, Method, Model, Replicates, Scale};

/// A fitted Fay–Herriot model with its Prasad–Rao MSEs (in-sample areas, then the
/// out-of-sample areas' synthetic estimates).
#[pyclass(name = "FayHerriotFit", module = "sscoverage._core", frozen)]
struct PyFayHerriotFit {
    inner: FhFit,
    mse: Vec<f64>,
    synthetic_out: Vec<f64>,
    mse_out: Vec<f64>,
}

#[pymethods]
impl PyFayHerriotFit {
    #[getter]
    fn variance(&self) -> f64 {
        self.inner.variance
    }
    #[getter]
    fn iterations(&self) -> usize {
        self.inner.iterations
    }
    #[getter]
    fn converged(&self) -> bool {
        self.inner.converged
    }
    #[getter]
    fn at_zero(&self) -> bool {
        self.inner.at_zero
    }
    #[getter]
    fn loglik(&self) -> f64 {
        self.inner.loglik
    }
    #[getter]
    fn beta<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.beta)
    }
    #[getter]
    fn beta_vcov<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let p = self.inner.beta.len();
        PyArray1::from_slice(py, &self.inner.beta_vcov).reshape([p, p])
    }
    #[getter]
    fn synthetic<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.synthetic)
    }
    #[getter]
    fn gamma<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.gamma)
    }
    #[getter]
    fn eblup<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.eblup)
    }
    #[getter]
    fn mse<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.mse)
    }
    #[getter]
    fn synthetic_out<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.synthetic_out)
    }
    #[getter]
    fn mse_out<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.mse_out)
    }
}

/// The model's arrays: y (m), x (m x p, C order), psi (m).
fn model<'a>(
    y: &'a PyReadonlyArray1<'_, f64>,
    x: &'a PyReadonlyArray2<'_, f64>,
    psi: &'a PyReadonlyArray1<'_, f64>,
) -> PyResult<Model<'a>> {
    Ok(Model {
        y: y.as_slice()?,
        x: x.as_slice()?,
        psi: psi.as_slice()?,
        p: x.shape()[1],
    })
}

fn out_of_sample<'a>(x_out: &'a PyReadonlyArray2<'_, f64>, p: usize) -> PyResult<&'a [f64]> {
    if x_out.shape()[1] != p {
        return Err(errors::to_py(CoreError::Shape(format!(
            "out-of-sample covariates have {} columns, the model {p}",
            x_out.shape()[1]
        ))));
    }
    Ok(x_out.as_slice()?)
}

/// Fit the Fay–Herriot model (sae's `eblupFH`) and its Prasad–Rao MSE (`mseFH`).
#[pyfunction]
#[pyo3(signature = (y, x, psi, x_out, method="REML", max_iter=100, precision=1e-4))]
#[allow(clippy::too_many_arguments)]
fn fay_herriot_fit(
    py: Python<'_>,
    y: PyReadonlyArray1<'_, f64>,
    x: PyReadonlyArray2<'_, f64>,
    psi: PyReadonlyArray1<'_, f64>,
    x_out: PyReadonlyArray2<'_, f64>,
    method: &str,
    max_iter: usize,
    precision: f64,
) -> PyResult<PyFayHerriotFit> {
    let method = Method::parse(method).map_err(errors::to_py)?;
    let model = model(&y, &x, &psi)?;
    let x_out = out_of_sample(&x_out, model.p)?;
    let control = Control {
        max_iter,
        precision,
    };
    errors::in_core(py, || {
        let fit = small_area::fit(&model, method, control)?;
        let (mse, mse_out) = small_area::prasad_rao(&model, &fit, x_out);
        let synthetic_out = x_out
            .chunks_exact(model.p)
            .map(|row| row.iter().zip(&fit.beta).map(|(a, b)| a * b).sum())
            .collect();
        Ok(PyFayHerriotFit {
            inner: fit,
            mse,
            synthetic_out,
            mse_out,
        })
    })
}

/// Sums of squared errors (EBLUPs, then out-of-sample synthetic estimates) over bootstrap
/// replicates `first .. first + count` of `seed`, and the number of replicates whose
/// refit did not converge.
#[pyfunction]
#[pyo3(signature = (fit, y, x, psi, x_out, scale, seed, first, count, max_iter=100, precision=1e-4))]
#[allow(clippy::too_many_arguments)]
fn fay_herriot_bootstrap<'py>(
    py: Python<'py>,
    fit: &PyFayHerriotFit,
    y: PyReadonlyArray1<'py, f64>,
    x: PyReadonlyArray2<'py, f64>,
    psi: PyReadonlyArray1<'py, f64>,
    x_out: PyReadonlyArray2<'py, f64>,
    scale: &str,
    seed: u64,
    first: u64,
    count: u64,
    max_iter: usize,
    precision: f64,
) -> PyResult<(Bound<'py, PyArray1<f64>>, usize)> {
    let scale = match scale {
        "identity" => Scale::Identity,
        "arcsin" => Scale::Arcsin,
        "logit" => Scale::Logit,
        other => {
            return Err(errors::to_py(CoreError::Value(format!(
                "scale={other:?} is not 'identity', 'arcsin' or 'logit'"
            ))))
        }
    };
    let model = model(&y, &x, &psi)?;
    let x_out = out_of_sample(&x_out, model.p)?;
    let control = Control {
        max_iter,
        precision,
    };
    let fitted = &fit.inner;
    let sums = errors::in_core(py, || {
        small_area::bootstrap(
            &model,
            fitted,
            x_out,
            control,
            scale,
            Replicates { seed, first, count },
        )
    })?;
    Ok((PyArray1::from_vec(py, sums.squared_error), sums.failed))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFayHerriotFit>()?;
    m.add_function(wrap_pyfunction!(fay_herriot_fit, m)?)?;
    m.add_function(wrap_pyfunction!(fay_herriot_bootstrap, m)?)?;
    Ok(())
}
