//! Nauthera's heart: the CRD types, the policy engine and the impact (blast-radius)
//! engine. Pure functions over plain data; the only I/O is [`manifests::load_dir`], which
//! reads a folder of manifests.

pub mod crds;
pub mod duration;
#[doc(hidden)]
pub mod fixtures;
pub mod impact;
pub mod inventory;
pub mod manifests;
pub mod policy;
pub mod resources;
mod yaml_location;

pub use inventory::Inventory;
