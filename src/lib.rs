//! sscoverage: a pure-Rust core for design-based survey estimation, with Python bindings
//! behind the `python` feature.

pub mod calibration;
pub mod codes;
pub mod coverage;
pub mod design;
pub mod error;
pub mod estimate;
pub mod estimators;
pub mod long_double;
pub mod models;
pub mod quantile;
pub mod replicate;
mod rng;
pub mod sampling;
pub mod small_area;
pub mod svyvar;
pub mod variance;
pub mod weighting;

#[cfg(feature = "python")]
mod bindings;

pub use design::{Design, DesignSpec, LonelyPsu, PpsMethod, PpsVariance};
pub use error::CoreError;
pub use estimate::{Estimator, Outcome};
