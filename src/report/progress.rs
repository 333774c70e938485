//! Showing a run as it goes: progress bars on a terminal, a JSON-line event stream for tools
//! (`--json`), and nothing but warnings and failures otherwise (logs stay readable).
//!
//! `--colour never` on a terminal gets plain lines instead of bars: redrawing a bar needs cursor
//! escapes, and "never" promises a stream with no escape codes at all (for `script`, for
//! terminals that do not understand them, for copying into a lab notebook).

use crate::exec::interrupt::Interruption;
use crate::exec::job::Event;
use crate::exec::run::{RunEvent, Status};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write as _;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    /// One plain line per finished node and per epoch: a terminal without escape codes, or `-v`.
    Lines,
    Json,
    Quiet,
}

pub struct Progress {
    mode: Mode,
    /// Created up front in bar mode so a signal can be announced between the bars.
    multi: Option<MultiProgress>,
    bars: Option<Bars>,
    /// `-v`: cached nodes are listed too.
    verbose: bool,
}

/// Tells the user about a signal, from the signal thread, without tearing the bars.
pub struct Announcer {
    mode: Mode,
    multi: Option<MultiProgress>,
}

impl Announcer {
    pub fn announce(&self, interruption: Interruption) {
        let name = interruption.name();
        if self.mode == Mode::Json {
            let event = serde_json::json!({ "event": "interrupted", "signal": name, "at_once": interruption.at_once });
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{event}");
            let _ = out.flush();
            return;
        }
        let line = if interruption.at_once {
            format!("{name} again: stopped at once; the unfinished node resumes from its last saved epoch next run")
        } else {
            format!("{name}: stopping after the current epoch or node (send it again to stop at once)")
        };
        match &self.multi {
            Some(multi) if interruption.at_once => {
                // Leave the terminal clean: no half-drawn bar before the process exits.
                let _ = multi.clear();
                multi.set_draw_target(ProgressDrawTarget::hidden());
                eprintln_safe(&line);
            }
            Some(multi) => multi.suspend(|| eprintln_safe(&line)),
            None => eprintln_safe(&line),
        }
    }
}

struct Bars {
    multi: MultiProgress,
    nodes: ProgressBar,
    epochs: Option<ProgressBar>,
}

impl Progress {
    pub fn new(mode: Mode, verbose: bool) -> Progress {
        let multi = (mode == Mode::Bars).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { mode, multi, bars: None, verbose }
    }

    pub fn announcer(&self) -> Announcer {
        Announcer { mode: self.mode, multi: self.multi.clone() }
    }

    pub fn observe(&mut self, event: &RunEvent) {
        match self.mode {
            Mode::Json => {
                if let Ok(line) = serde_json::to_string(event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
            Mode::Lines => self.line(event),
            Mode::Quiet => match event {
                RunEvent::Warning { message } => eprintln_safe(&format!("warning: {message}")),
                RunEvent::NodeDone { outcome, .. } => {
                    if let Status::Failed { message } = &outcome.status {
                        eprintln_safe(&format!("error: `{}` failed: {message}", outcome.id));
                    }
                }
                _ => {}
            },
            Mode::Bars => self.draw(event),
        }
    }

    fn draw(&mut self, event: &RunEvent) {
        match event {
            RunEvent::Planned { total, cached } => {
                let Some(multi) = self.multi.clone() else { return };
                let nodes = multi.add(ProgressBar::new(*total as u64));
                nodes.set_style(
                    ProgressStyle::with_template("{prefix:>8.bold} [{bar:30}] {pos}/{len} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                nodes.set_prefix("nodes");
                nodes.set_message(format!("{cached} cached"));
                nodes.enable_steady_tick(Duration::from_millis(200));
                self.bars = Some(Bars { multi, nodes, epochs: None });
            }
            RunEvent::WorkerStarting => self.message("starting the worker (libtorch)"),
            RunEvent::Job { node, job, state, host } => self.message(&format!(
                "job {job} ({node}): {}{}",
                state.to_lowercase(),
                host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default()
            )),
            RunEvent::Worker { worker } => self.worker_event(worker),
            RunEvent::NodeDone { outcome, .. } => {
                if let Some(bars) = self.bars.as_mut() {
                    if let Some(epochs) = bars.epochs.take() {
                        epochs.finish_and_clear();
                    }
                    bars.nodes.inc(1);
                    if let Some(line) = node_line(outcome, self.verbose) {
                        bars.multi.suspend(|| eprintln_safe(&line));
                    }
                }
            }
            RunEvent::Warning { message } => match self.bars.as_ref() {
                Some(bars) => bars.multi.suspend(|| eprintln_safe(&format!("warning: {message}"))),
                None => eprintln_safe(&format!("warning: {message}")),
            },
        }
    }

    /// Plain lines, no escape codes.
    fn line(&self, event: &RunEvent) {
        let line = match event {
            RunEvent::Planned { total, cached } => Some(format!("{total} nodes, {cached} cached")),
            RunEvent::WorkerStarting => Some("starting the worker (libtorch)".to_owned()),
            RunEvent::Worker { worker: Event::Ready { device, threads } } => Some(format!("worker on {device}, {threads} threads")),
            RunEvent::Worker { worker: Event::Epoch { node, epoch, epochs, loss, accuracy, val_accuracy } } => {
                let val = val_accuracy.map(|v| format!(", val {:.1}%", v * 100.0)).unwrap_or_default();
                Some(format!("  epoch  {node} {epoch}/{epochs}: loss {loss:.3}, train {:.1}%{val}", accuracy * 100.0))
            }
            RunEvent::Worker { worker: Event::Progress { node, message } } => Some(format!("         {node}: {message}")),
            RunEvent::Worker { .. } => None,
            RunEvent::NodeDone { outcome, .. } => node_line(outcome, self.verbose),
            RunEvent::Warning { message } => Some(format!("warning: {message}")),
            RunEvent::Job { node, job, state, host } => Some(format!(
                "  job    {job} ({node}): {}{}",
                state.to_lowercase(),
                host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default()
            )),
        };
        if let Some(line) = line {
            eprintln_safe(&line);
        }
    }

    fn message(&self, message: &str) {
        if let Some(bars) = &self.bars {
            bars.nodes.set_message(message.to_owned());
        }
    }

    fn worker_event(&mut self, event: &Event) {
        let Some(bars) = self.bars.as_mut() else { return };
        match event {
            Event::Ready { device, threads } => bars.nodes.set_message(format!("worker on {device}, {threads} threads")),
            Event::Started { node } => bars.nodes.set_message(node.clone()),
            Event::Progress { node, message } => bars.nodes.set_message(format!("{node}: {message}")),
            Event::Epoch { node, epoch, epochs, loss, accuracy, val_accuracy } => {
                let bar = bars.epochs.get_or_insert_with(|| {
                    let bar = bars.multi.add(ProgressBar::new(u64::from(*epochs)));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} epochs {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    bar.set_prefix("epochs");
                    bar
                });
                bar.set_length(u64::from(*epochs));
                bar.set_position(u64::from(*epoch));
                let val = val_accuracy.map(|v| format!(", val {:.1}%", v * 100.0)).unwrap_or_default();
                bar.set_message(format!("{node}: loss {loss:.3}, train {:.1}%{val}", accuracy * 100.0));
            }
            Event::Finished { .. } | Event::Failed { .. } | Event::Warning { .. } => {}
        }
    }

    pub fn finish(&mut self) {
        if let Some(bars) = self.bars.take() {
            if let Some(epochs) = bars.epochs {
                epochs.finish_and_clear();
            }
            bars.nodes.finish_and_clear();
        }
    }
}

/// The line for a finished node; cached ones only when verbose.
fn node_line(outcome: &crate::exec::run::NodeOutcome, verbose: bool) -> Option<String> {
    let id = &outcome.id;
    match &outcome.status {
        Status::Computed => Some(format!("   done  {id} ({})", seconds(outcome.seconds))),
        Status::Failed { message } => Some(format!(" failed  {id}: {message}")),
        Status::Skipped { because } => Some(format!("skipped  {id} ({because})")),
        Status::Interrupted { detail } if detail != crate::exec::run::NOT_STARTED => Some(format!("stopped  {id}: {detail}")),
        Status::Interrupted { .. } => None,
        Status::Cached | Status::CachedByOther => verbose.then(|| format!(" cached  {id}")),
    }
}

pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

fn eprintln_safe(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
