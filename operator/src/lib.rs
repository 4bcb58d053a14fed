//! `nauthera-operator`'s parts, as a library so tests can drive them.

pub mod act;
pub mod context;
pub mod controller;
pub mod error;
pub mod gather;
pub mod journal;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod provider;
pub mod reconcile;
pub mod records;
pub mod register;
pub mod rotation;
pub mod secrets;
pub mod status;
pub mod summaries;
pub mod template_keys;
pub mod uninstall;
pub mod watch;
pub mod webhook;

pub use error::Error;
