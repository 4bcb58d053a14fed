//! `nauthera-tui`: the dashboard's state, tree, sources and drawing, as a library so tests
//! and benchmarks can drive them. The binary (`main.rs`) is a thin shell.

pub mod app;
pub mod editor;
pub mod filter;
pub mod keys;
pub mod model;
pub mod preview;
pub mod run;
pub mod source;
pub mod tree;
pub mod ui;
pub mod view;
