//! CoreError: every way the core can refuse its input, without any pyo3.

use std::fmt;

/// One error enum for the whole core; the bindings map each variant to a Python
/// exception class under `sscoverage.SurveyError`.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// The design itself is inconsistent.
    Design(String),
    /// A column the design was given in `role` cannot serve it (clusters not nested,
    /// bad fpc, bad weights); Python names the user's columns of that role.
    DesignColumn { role: Role, problem: String },
    /// A stratum has one PSU and `lonely_psu = "fail"`.  `stratum` is the stratum code at
    /// `stage` (1-based); Python turns it into the stratum's label.
    LonelyPsu { stratum: u32, stage: usize },
    /// Arrays whose lengths or shapes do not agree.
    Shape(String),
    /// A value the estimator cannot use (empty domain, ...).
    Value(String),
    /// A weighting's targets cannot be met at a cell: level `level` of margin `margin`
    /// (post-stratification has one margin, 0), or the margin as a whole (`level`
    /// None).  Python names the margin and the level with the user's labels.
    Cell {
        margin: usize,
        level: Option<usize>,
        problem: String,
    },
    /// Outcome number `outcome` is missing (NaN) at `row`, a row the estimate uses;
    /// Python names the column and counts its missing values.
    MissingOutcome { outcome: usize, row: usize },
    /// A domain whose total weight (a mean) or denominator total (a ratio) is zero;
    /// `domain` is the domain's code, which Python turns into its labels.
    ZeroTotal { what: &'static str, domain: usize },
    /// Model-matrix columns (0-based) that are linear combinations of the columns before
    /// them; Python turns the positions into the model's term names.
    Aliased { columns: Vec<usize> },
    /// Weighting targets that cannot be met: categories without sample weight or without
    /// a target, margins whose totals disagree, infeasible bounds.
    Calibration(String),
    /// Calibration variables (model-matrix columns, 0-based) whose targets cannot be met
    /// for the reason `problem` gives; Python names them by the model's terms.
    CalibrationColumns {
        columns: Vec<usize>,
        problem: String,
    },
    /// A selection that cannot be made: bad sizes or probabilities, more units asked for
    /// than a stratum has, a rejective method that does not finish.
    Sampling(String),
    /// Contribution records of a person that cannot form a history (no first-job year,
    /// a year twice or out of order, a year outside first job ..= survey year); `person`
    /// is the person's code, which Python turns into the person's id.
    History { person: u32, reason: String },
}

/// The part a column plays in a design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ids,
    Strata,
    Fpc,
    Weights,
}

impl Role {
    /// The design argument that names the columns of this role.
    #[must_use]
    pub fn argument(self) -> &'static str {
        match self {
            Role::Ids => "ids",
            Role::Strata => "strata",
            Role::Fpc => "fpc",
            Role::Weights => "weights",
        }
    }
}

impl CoreError {
    /// A design column of `role` that cannot serve it.
    pub fn column(role: Role, problem: impl Into<String>) -> Self {
        CoreError::DesignColumn {
            role,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Design(m)
            | CoreError::DesignColumn { problem: m, .. }
            | CoreError::Shape(m)
            | CoreError::Value(m)
            | CoreError::Calibration(m)
            | CoreError::Sampling(m) => f.write_str(m),
            CoreError::LonelyPsu { stratum, stage } => write!(
                f,
                "stratum {stratum} has only one PSU at stage {stage}; set lonely_psu to \
                 'adjust', 'average', 'remove' or 'certainty'"
            ),
            CoreError::Aliased { columns } => write!(
                f,
                "model-matrix columns {columns:?} are linear combinations of the columns \
                 before them (aliased)"
            ),
            CoreError::History { person, reason } => write!(f, "person #{person} {reason}"),
            CoreError::CalibrationColumns { columns, problem } => {
                write!(f, "model-matrix columns {columns:?}: {problem}")
            }
            CoreError::Cell {
                margin,
                level: Some(level),
                problem,
            } => write!(f, "margin #{margin} level #{level} {problem}"),
            CoreError::Cell {
                margin,
                level: None,
                problem,
            } => write!(f, "margin #{margin} {problem}"),
            CoreError::MissingOutcome { outcome, row } => write!(
                f,
                "outcome #{outcome} is missing at row {row}; pass na_rm=True to leave such rows out"
            ),
            CoreError::ZeroTotal { what, domain } => {
                write!(f, "the {what} is zero in domain {domain}")
            }
        }
    }
}

impl std::error::Error for CoreError {}

pub type Result<T> = std::result::Result<T, CoreError>;
