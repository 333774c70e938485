//! Showing a run as it goes: progress bars on a terminal, a JSON-line event stream for tools
//! (`--json`), and nothing but warnings and failures otherwise (logs stay readable).

use crate::exec::job::Event;
use crate::exec::run::{RunEvent, Status};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write as _;
use std::time::Duration;

pub enum Mode {
    Bars,
    Json,
    Quiet,
}

pub struct Progress {
    mode: Mode,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    nodes: ProgressBar,
    epochs: Option<ProgressBar>,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress { mode, bars: None }
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
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
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
                    let line = match &outcome.status {
                        Status::Computed => Some(format!("   done  {} ({})", outcome.id, seconds(outcome.seconds))),
                        Status::Failed { message } => Some(format!(" failed  {}: {message}", outcome.id)),
                        Status::Skipped { because } => Some(format!("skipped  {} ({because})", outcome.id)),
                        Status::Cached | Status::CachedByOther => None,
                    };
                    if let Some(line) = line {
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
