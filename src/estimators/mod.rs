//! Estimators finished from the fused pass's sums: proportions with R's `svyciprop`
//! fits, estimates of every domain with their joint covariance (tables, contrasts),
//! and survival curves with the variance of log S (R's `svykm`).

pub mod ciprop;
pub mod glm;
pub mod joint;
pub mod km;
