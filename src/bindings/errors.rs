//! CoreError -> Python exceptions under `sscoverage.SurveyError`.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::CoreError;

create_exception!(
    sscoverage.exceptions,
    SurveyError,
    PyValueError,
    "Base class of every sscoverage error."
);
create_exception!(
    sscoverage.exceptions,
    DesignError,
    SurveyError,
    "The design is inconsistent."
);
create_exception!(
    sscoverage.exceptions,
    LonelyPsuError,
    DesignError,
    "A stratum has a single PSU."
);
create_exception!(
    sscoverage.exceptions,
    ShapeError,
    SurveyError,
    "Lengths or shapes disagree."
);
create_exception!(
    sscoverage.exceptions,
    EstimationError,
    SurveyError,
    "An estimate cannot be formed."
);

create_exception!(
    sscoverage.exceptions,
    CalibrationError,
    SurveyError,
    "Weighting targets cannot be met (categories, margins, bounds)."
);

create_exception!(
    sscoverage.exceptions,
    SamplingError,
    SurveyError,
    "A sample cannot be selected as asked (sizes, probabilities, sample sizes)."
);

create_exception!(
    sscoverage.exceptions,
    HistoryError,
    SurveyError,
    "Contribution records cannot form a history (first-job year, repeated or out-of-order years)."
);

pub fn to_py(err: CoreError) -> PyErr {
    let msg = err.to_string();
    match err {
        CoreError::Design(_) => DesignError::new_err(msg),
        CoreError::DesignColumn { role, .. } => DesignError::new_err((msg, role.argument())),
        CoreError::LonelyPsu { stratum, stage } => LonelyPsuError::new_err((msg, stratum, stage)),
        CoreError::Shape(_) => ShapeError::new_err(msg),
        CoreError::Value(_) => EstimationError::new_err(msg),
        CoreError::Aliased { columns } => EstimationError::new_err((msg, columns)),
        CoreError::ZeroTotal { what, domain } => EstimationError::new_err((msg, what, domain)),
        CoreError::Cell {
            margin,
            level,
            ref problem,
        } => CalibrationError::new_err((msg.clone(), "cell", margin, level, problem.clone())),
        CoreError::MissingOutcome { outcome, row } => {
            EstimationError::new_err((msg, "missing outcome", outcome, row))
        }
        CoreError::Calibration(_) => CalibrationError::new_err(msg),
        CoreError::CalibrationColumns {
            columns,
            ref problem,
        } => CalibrationError::new_err((msg.clone(), "columns", columns, problem.clone())),
        CoreError::Sampling(_) => SamplingError::new_err(msg),
        CoreError::History { person, reason } => HistoryError::new_err((msg, person, reason)),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SurveyError", py.get_type::<SurveyError>())?;
    m.add("DesignError", py.get_type::<DesignError>())?;
    m.add("LonelyPsuError", py.get_type::<LonelyPsuError>())?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("EstimationError", py.get_type::<EstimationError>())?;
    m.add("CalibrationError", py.get_type::<CalibrationError>())?;
    m.add("SamplingError", py.get_type::<SamplingError>())?;
    m.add("HistoryError", py.get_type::<HistoryError>())?;
    Ok(())
}

/// Run core work with the GIL released and its error mapped to the Python exception:
/// the one way every binding calls into the core.
pub fn in_core<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: Send + FnOnce() -> Result<T, CoreError>,
{
    py.detach(work).map_err(to_py)
}
