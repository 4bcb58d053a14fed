//! `nauthera-operator`'s parts, as a library so tests can drive them.

pub mod provider;
