//! Coverage kernels of the domain layer: contribution histories turned into interruption
//! spells (the estimates on top of them go through the generic estimators).

pub mod spells;

pub use spells::{interruption_spells, Histories, Records, Spell};
