//! The `Assessment` aggregate: a draft that is revised, published as immutable numbered versions,
//! and finally retired.

mod aggregate;
mod commands;
mod events;
mod spec;

pub use aggregate::{Assessment, AssessmentError, AssessmentStatus};
pub use commands::AssessmentCommand;
pub use events::AssessmentEvent;
pub use spec::{
    AssessmentKind, AssessmentSpec, Criterion, Difficulty, Format, IntegrityPolicy, Level, Rubric,
    SpecError, StarterFile, Task,
};
