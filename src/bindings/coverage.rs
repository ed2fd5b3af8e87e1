//! Bindings of the coverage kernels: contribution histories to interruption spells.

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors;
use crate::coverage::{interruption_spells, Records};

/// Interruption spells from person-year records (see `coverage::spells`).  Returns a
/// dict of per-person arrays (indexed by person code) and per-spell arrays.
#[pyfunction(name = "interruption_spells")]
fn interruption_spells_py<'py>(
    py: Python<'py>,
    person: PyReadonlyArray1<'py, u32>,
    year: PyReadonlyArray1<'py, i32>,
    contributed: PyReadonlyArray1<'py, bool>,
    first_job: PyReadonlyArray1<'py, f64>,
    survey_year: i32,
) -> PyResult<Bound<'py, PyDict>> {
    let records = Records {
        person: person.as_slice()?,
        year: year.as_slice()?,
        contributed: contributed.as_slice()?,
    };
    let first_job = first_job.as_slice()?;
    let h = py
        .detach(|| interruption_spells(&records, first_job, survey_year))
        .map_err(errors::to_py)?;
    let first: Vec<f64> = h
        .first_contribution
        .iter()
        .map(|y| y.map_or(f64::NAN, f64::from))
        .collect();
    let out = PyDict::new(py);
    out.set_item("first_contribution", first.into_pyarray(py))?;
    out.set_item("paid_years", h.paid_years.into_pyarray(py))?;
    out.set_item("n_interruptions", h.n_interruptions.into_pyarray(py))?;
    out.set_item("years_interrupted", h.years_interrupted.into_pyarray(py))?;
    out.set_item(
        "years_since_first_job",
        h.years_since_first_job.into_pyarray(py),
    )?;
    out.set_item("density", h.density.into_pyarray(py))?;
    out.set_item("n_reentries", h.n_reentries.into_pyarray(py))?;
    let spells = &h.spells;
    let column = |f: fn(&crate::coverage::Spell) -> i64| spells.iter().map(f).collect::<Vec<i64>>();
    out.set_item(
        "spell_person",
        column(|s| i64::from(s.person)).into_pyarray(py),
    )?;
    out.set_item(
        "spell_start",
        column(|s| i64::from(s.start)).into_pyarray(py),
    )?;
    out.set_item(
        "spell_years",
        column(|s| i64::from(s.years)).into_pyarray(py),
    )?;
    out.set_item(
        "spell_reentered",
        spells
            .iter()
            .map(|s| s.reentered)
            .collect::<Vec<bool>>()
            .into_pyarray(py),
    )?;
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(interruption_spells_py, m)?)?;
    Ok(())
}
