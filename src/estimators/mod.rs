//! Estimators finished from the fused pass's sums: proportions with R's `svyciprop`
//! fits, estimates of every domain with their joint covariance (tables, contrasts),
//! survival curves with the variance of log S (R's `svykm`), and the survey GLM's and
//! Cox model's design-based covariances, and the threshold GLM's grid of candidates.

pub mod ciprop;
pub mod coxph;
pub mod glm;
pub mod joint;
pub mod km;
pub mod threshold;
