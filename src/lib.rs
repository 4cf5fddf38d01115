//! orchestr8 finds the right specialist agent, skill or workflow for a request and loads its
//! definition only when asked. See ARCHITECTURE.md for the map.

pub mod bench;
mod catalog;
pub mod diagnostic;
pub mod embed;
pub mod engine;
pub mod eval;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod library;
pub mod live;
pub mod mcp;
pub mod planner;
mod registry;
pub mod roles;
mod store;
pub mod suggest;
pub mod synth;
mod text;

pub use diagnostic::{Diagnostic, Severity};
pub use engine::{Config, Engine, EngineError, Loaded, RefreshStats};
pub use library::{Definition, Kind};
pub use planner::{Filters, Hit, Plan, Query, SearchResult, Strategy};
