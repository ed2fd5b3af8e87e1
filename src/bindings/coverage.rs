//! Bindings of the coverage kernels: contribution histories to interruption spells.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::errors;
use crate::coverage::{interruption_spells, Records};

/// Interruption spells from person-year records (see `coverage::spells`).
#[pyfunction(name = "interruption_spells")]
fn interruption_spells_py<'py>(
    py: Python<'py>,
    person: PyReadonlyArray1<'py, u32>,
    year: PyReadonlyArray1<'py, i32>,
    contributed: PyReadonlyArray1<'py, bool>,
    first_job: PyReadonlyArray1<'py, f64>,
    survey_year: i32,
) -> PyResult<PyInterruptionSpells> {
    let records = Records {
        person: person.as_slice()?,
        year: year.as_slice()?,
        contributed: contributed.as_slice()?,
    };
    let first_job = first_job.as_slice()?;
    let h = errors::in_core(py, || interruption_spells(&records, first_job, survey_year))?;
    let first: Vec<f64> = h
        .first_contribution
        .iter()
        .map(|y| y.map_or(f64::NAN, f64::from))
        .collect();
    let spells = &h.spells;
    let column = |f: fn(&crate::coverage::Spell) -> i64| {
        spells
            .iter()
            .map(f)
            .collect::<Vec<i64>>()
            .into_pyarray(py)
            .unbind()
    };
    Ok(PyInterruptionSpells {
        first_contribution: first.into_pyarray(py).unbind(),
        paid_years: h.paid_years.into_pyarray(py).unbind(),
        n_interruptions: h.n_interruptions.into_pyarray(py).unbind(),
        years_interrupted: h.years_interrupted.into_pyarray(py).unbind(),
        years_since_first_job: h.years_since_first_job.into_pyarray(py).unbind(),
        density: h.density.into_pyarray(py).unbind(),
        n_reentries: h.n_reentries.into_pyarray(py).unbind(),
        spell_person: column(|s| i64::from(s.person)),
        spell_start: column(|s| i64::from(s.start)),
        spell_years: column(|s| i64::from(s.years)),
        spell_reentered: spells
            .iter()
            .map(|s| s.reentered)
            .collect::<Vec<bool>>()
            .into_pyarray(py)
            .unbind(),
    })
}

/// Contribution histories: per person (indexed by person code) and per spell.
#[pyclass(
    name = "InterruptionSpells",
    module = "sscoverage._core",
    frozen,
    get_all
)]
pub struct PyInterruptionSpells {
    first_contribution: Py<PyArray1<f64>>,
    paid_years: Py<PyArray1<u32>>,
    n_interruptions: Py<PyArray1<u32>>,
    years_interrupted: Py<PyArray1<u32>>,
    years_since_first_job: Py<PyArray1<u32>>,
    density: Py<PyArray1<f64>>,
    n_reentries: Py<PyArray1<u32>>,
    spell_person: Py<PyArray1<i64>>,
    spell_start: Py<PyArray1<i64>>,
    spell_years: Py<PyArray1<i64>>,
    spell_reentered: Py<PyArray1<bool>>,
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(interruption_spells_py, m)?)?;
    Ok(())
}
