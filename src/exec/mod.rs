//! Execution: walks the plan, skips cached nodes, feeds the rest to a worker process and commits
//! what it returns to the cache.

pub mod explain;
pub mod interrupt;
pub mod job;
pub mod local;
pub mod run;
pub mod slurm;
pub mod worker;
