//! Regression models fitted to survey data: the model numerics (families, IRLS, small
//! dense least squares, Cox regression), kept free of any design so the
//! variance of the estimates goes through the one variance engine from their influence
//! values.

pub mod coxph;
pub mod family;
pub mod glm;
pub mod linalg;
pub mod regressors;

pub use family::{Family, Link};
pub use glm::{fit as glm_fit, Control, GlmInput, IrlsRun};
pub use regressors::{Factor, Regressors, Threshold};
