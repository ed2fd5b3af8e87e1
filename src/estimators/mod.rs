//! Estimators finished from the fused pass's sums: proportions with R's `svyciprop`
//! fits, and estimates of every domain with their joint covariance (tables, contrasts).

pub mod ciprop;
pub mod joint;
