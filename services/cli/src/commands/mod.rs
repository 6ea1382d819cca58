//! What each subcommand does once its flags are parsed; one module each.

mod batch;
mod health;
mod job;
mod mask;
mod run;
mod serve;

pub use batch::batch;
pub use health::health;
pub use job::job;
pub use mask::mask;
pub use run::run;
pub use serve::serve;
