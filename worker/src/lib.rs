//! Stage implementations: the only code that touches tch. Each category has one file (or folder)
//! and [`run`] is the single registry mapping `(category, method)` to its implementation.

pub mod allocator;
pub mod arrays;
pub mod augmentation;
pub mod checkpoint;
pub mod completeness;
pub mod concepts;
pub mod data;
pub mod datasets;
pub mod embed;
#[cfg(test)]
pub mod fixtures;
pub mod models;
pub mod pcbm;
pub mod precision;
pub mod prune;
pub mod rows;
pub mod saliency;
pub mod selection;
pub mod stop;
pub mod tcav;
pub mod torch_file;
pub mod train;

use lthlang::check::Value;
use lthlang::exec::job::{Event, NodeRequest, Upstream};
use lthlang::kinds::Category;
use std::fmt;
use std::path::Path;
use tch::Device;

/// A stage failure: a message for the user, naming the file or field at fault.
#[derive(Debug, Clone)]
pub struct StageError(pub String);

impl StageError {
    pub fn new(message: impl Into<String>) -> Self {
        StageError(message.into())
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<tch::TchError> for StageError {
    fn from(e: tch::TchError) -> Self {
        StageError(format!("libtorch: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, StageError>;

pub fn io_error(path: &Path, e: &std::io::Error) -> StageError {
    StageError(format!("{}: {e}", path.display()))
}

/// How often a long loop reports how far it has come ([`Context::loop_progress`]).
pub const LOOP_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// A loop progress callback that reports nothing, for callers outside a node (tests, benches).
pub fn no_progress(_done: i64, _total: i64) {}

/// What a stage sees: its request, the device, and a way to report progress.
pub struct Context<'a> {
    pub request: &'a NodeRequest,
    pub device: Device,
    pub emit: &'a dyn Fn(Event),
}

impl Context<'_> {
    pub fn field(&self, name: &str) -> Result<&Value> {
        self.request.fields.get(name).ok_or_else(|| {
            StageError::new(format!("`{}` has no field `{name}` (the front end and worker disagree; rebuild both)", self.request.stage))
        })
    }

    pub fn int(&self, name: &str) -> Result<i64> {
        match self.field(name)? {
            Value::Int(n) => Ok(*n),
            other => Err(StageError::new(format!("field `{name}` should be an integer, got {other:?}"))),
        }
    }

    pub fn float(&self, name: &str) -> Result<f64> {
        match self.field(name)? {
            Value::Float(x) | Value::Fraction(x) => Ok(*x),
            Value::Int(n) => Ok(*n as f64),
            other => Err(StageError::new(format!("field `{name}` should be a number, got {other:?}"))),
        }
    }

    pub fn word(&self, name: &str) -> Result<&str> {
        match self.field(name)? {
            Value::Word(w) => Ok(w),
            other => Err(StageError::new(format!("field `{name}` should be a word, got {other:?}"))),
        }
    }

    pub fn text(&self, name: &str) -> Result<&str> {
        match self.field(name)? {
            Value::Str(s) => Ok(s),
            other => Err(StageError::new(format!("field `{name}` should be a string, got {other:?}"))),
        }
    }

    /// The stage a field names (`of = tickets`).
    pub fn stage_name(&self, name: &str) -> Result<&str> {
        match self.field(name)? {
            Value::Stage(s) => Ok(s),
            other => Err(StageError::new(format!("field `{name}` should name a stage, got {other:?}"))),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<bool> {
        match self.field(name)? {
            Value::Bool(b) => Ok(*b),
            other => Err(StageError::new(format!("field `{name}` should be true or false, got {other:?}"))),
        }
    }

    /// The upstream node a field refers to (for this node's round, when it is a series).
    pub fn upstream(&self, stage: &str) -> Result<&Upstream> {
        self.request
            .upstream_of(stage, self.request.round)
            .ok_or_else(|| StageError::new(format!("`{}` reads `{stage}`, whose output was not provided", self.request.stage)))
    }

    /// The batches a loop may run in a smoke run (`run --smoke N`); `None` in a real run.
    pub fn smoke(&self) -> Option<usize> {
        self.request.smoke.map(|n| usize::try_from(n.max(1)).unwrap_or(1))
    }

    pub fn progress(&self, message: impl Into<String>) {
        (self.emit)(Event::Progress { node: self.request.id.clone(), message: message.into() });
    }

    /// A callback for a long loop, called with (done, total) after each batch: at most every
    /// [`LOOP_PROGRESS_EVERY`] it sends "`what` done/total". The user sees how far an epoch of
    /// ResNet-50 on a CPU (hours) has come, and the front end, which stops a worker that stays
    /// silent for `LTHLANG_WORKER_TIMEOUT`, can tell a long loop from a stuck one.
    pub fn loop_progress(&self, what: impl Into<String>) -> impl Fn(i64, i64) + '_ {
        self.loop_progress_every(what.into(), LOOP_PROGRESS_EVERY)
    }

    fn loop_progress_every(&self, what: String, every: std::time::Duration) -> impl Fn(i64, i64) + '_ {
        let last = std::cell::Cell::new(std::time::Instant::now());
        move |done, total| {
            if last.get().elapsed() >= every {
                last.set(std::time::Instant::now());
                self.progress(format!("{what} {done}/{total}"));
            }
        }
    }

    pub fn warn(&self, message: impl Into<String>) {
        (self.emit)(Event::Warning { node: self.request.id.clone(), message: message.into() });
    }
}

/// Runs one node; returns the metrics written beside its artifacts.
pub fn run(ctx: &Context) -> Result<serde_json::Value> {
    let r = ctx.request;
    match (r.category, r.method.as_str()) {
        (Category::Dataset, method) => datasets::run(ctx, method),
        (Category::Model, _) => models::init_stage(ctx),
        (Category::Train, _) => train::stage(ctx),
        (Category::Prune, _) => prune::stage(ctx),
        (Category::Embed, _) => embed::stage(ctx),
        (Category::Explain, "tcav") => tcav::stage(ctx),
        (Category::Explain, method) if saliency::Method::parse(method).is_some() => saliency::stage(ctx),
        (Category::Concepts, _) => concepts::stage(ctx),
        (Category::Explain, "pcbm") => pcbm::stage(ctx),
        (Category::Explain, "completeness") => completeness::stage(ctx),
        (category, method) => Err(StageError::new(format!("`{category} {method}` is not implemented in this version of the worker"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn loop_progress_says_how_far_and_stays_quiet_within_its_interval() {
        let request = fixtures::Workspace::new().request("dense", Category::Train, "sgd", &[]);
        let events = std::cell::RefCell::new(Vec::new());
        let emit = |e| events.borrow_mut().push(e);
        let ctx = Context { request: &request, device: Device::Cpu, emit: &emit };
        let every_time = ctx.loop_progress_every("epoch 2/5: batches".to_owned(), Duration::ZERO);
        every_time(1, 3);
        every_time(3, 3);
        let quiet = ctx.loop_progress_every("scoring the val split: images".to_owned(), Duration::from_secs(3600));
        quiet(256, 600);
        let messages: Vec<String> = events
            .borrow()
            .iter()
            .map(|e| match e {
                Event::Progress { node, message } => format!("{node}: {message}"),
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(messages, ["dense: epoch 2/5: batches 1/3", "dense: epoch 2/5: batches 3/3"]);
    }
}
