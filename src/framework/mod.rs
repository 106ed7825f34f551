//! What a provider author sees: values, schemas, diagnostics, planning and
//! the resource traits. Knows nothing of protobuf, hosts or Kubernetes.

pub mod codec;
pub mod diagnostics;
pub mod path;
pub mod plan;
pub mod plan_modifier;
pub mod private;
pub mod resource;
pub mod schema;
pub mod server;
pub mod timeouts;
pub mod typed;
pub mod types;
pub mod validate;
pub mod validator;
pub mod value;
mod value_eq;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use path::{AttributePath, PathStep};
pub use schema::{Attribute, Block, Description, NestedBlock, Nesting, Schema};
pub use types::Type;
pub use value::{Number, Refinements, Value};
