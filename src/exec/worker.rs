//! A worker process seen from the front end: started on the first node that needs computing (so
//! a run with everything cached never loads libtorch), fed one node request at a time on stdin,
//! its events read on a thread. If it dies mid-node, the node fails with the exit status and the
//! last lines it wrote to stderr, and the next node starts a fresh worker.

use super::job::{Event, NodeRequest};
use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

/// The environment variable naming the worker binary (default: `lthlang-worker` beside `lthlang`).
pub const WORKER_ENV: &str = "LTHLANG_WORKER";

/// Lines of the worker's stderr kept for error messages.
const STDERR_KEPT: usize = 20;

/// The environment variable setting, in seconds, how long a worker may stay silent.
pub const SILENCE_ENV: &str = "LTHLANG_WORKER_TIMEOUT";
/// The default silence limit. Training, scoring and embedding loops report how far they are at
/// least every 30 s, but one step can take minutes (a ResNet-50 batch at 448 px on a small CPU)
/// and other stages report only between phases; a hung worker costs at most this long.
pub const DEFAULT_SILENCE_SECONDS: u64 = 30 * 60;

/// The silence limit: `$LTHLANG_WORKER_TIMEOUT` seconds (fractions allowed), else 30 minutes.
pub fn silence_limit() -> Result<std::time::Duration, String> {
    match std::env::var(SILENCE_ENV) {
        Err(_) => Ok(std::time::Duration::from_secs(DEFAULT_SILENCE_SECONDS)),
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| format!("{SILENCE_ENV}=`{text}` is not a positive number of seconds")),
    }
}

pub fn worker_path() -> PathBuf {
    if let Some(path) = std::env::var_os(WORKER_ENV) {
        return PathBuf::from(path);
    }
    let name = format!("lthlang-worker{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join(&name))).unwrap_or_else(|| PathBuf::from(name))
}

/// What came back from the worker while a node ran.
pub enum Reply {
    Event(Event),
    /// Stdout closed: the worker is gone. Carries a description of how it ended.
    Exited(String),
}

pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Option<Event>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    log: Option<PathBuf>,
}

impl Worker {
    /// Starts the worker. Its stderr (libtorch warnings, crash reports) is appended to `log`.
    pub fn start(path: &Path, log: Option<&Path>) -> Result<Worker, String> {
        Worker::start_with(path, log, &[])
    }

    /// Starts the worker with extra environment variables (a GPU to see).
    pub fn start_with(path: &Path, log: Option<&Path>, env: &[(String, String)]) -> Result<Worker, String> {
        let mut command = Command::new(path);
        command.envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // A process group of its own: a Ctrl-C at the terminal reaches only the front end, which
        // decides how the worker stops (see interrupt.rs).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|e| {
            format!("cannot start the worker `{}`: {e} (build it with `cargo build --release`, or set {WORKER_ENV})", path.display())
        })?;
        super::interrupt::watch_worker(child.id());
        let stdin = child.stdin.take().ok_or("the worker has no stdin")?;
        let stdout = child.stdout.take().ok_or("the worker has no stdout")?;
        let stderr = child.stderr.take().ok_or("the worker has no stderr")?;
        let (sender, events) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Anything that is not an event (a library printing on stdout) is ignored rather
                // than taken for the protocol.
                if let Ok(event) = serde_json::from_str::<Event>(&line) {
                    if sender.send(Some(event)).is_err() {
                        return;
                    }
                }
            }
            let _ = sender.send(None);
        });
        let kept = Arc::new(Mutex::new(VecDeque::new()));
        let kept_writer = Arc::clone(&kept);
        let log_path = log.map(Path::to_path_buf);
        thread::spawn(move || {
            let mut log = log_path.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(file) = log.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                if let Ok(mut kept) = kept_writer.lock() {
                    if kept.len() == STDERR_KEPT {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
        });
        Ok(Worker { child, stdin, events, stderr: kept, log: log.map(Path::to_path_buf) })
    }

    pub fn send(&mut self, request: &NodeRequest) -> Result<(), String> {
        let line = serde_json::to_string(request).map_err(|e| e.to_string())?;
        writeln!(self.stdin, "{line}").and_then(|()| self.stdin.flush()).map_err(|e| format!("cannot send the node to the worker: {e}"))
    }

    /// The next event, or how the worker ended. A worker silent for `limit` is killed.
    pub fn next_reply(&mut self, limit: std::time::Duration) -> Reply {
        match self.events.recv_timeout(limit) {
            Ok(Some(event)) => Reply::Event(event),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => Reply::Exited(self.ending()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let mut message = format!(
                    "the worker sent nothing for {} and was killed as hung (raise the limit with {SILENCE_ENV}=<seconds>)",
                    describe_duration(limit)
                );
                if let Some(log) = &self.log {
                    message.push_str(&format!("; its output is in {}", log.display()));
                }
                Reply::Exited(message)
            }
        }
    }

    /// How the worker ended, with the tail of its stderr.
    fn ending(&mut self) -> String {
        super::interrupt::unwatch_worker();
        let status = match self.child.wait() {
            Ok(status) => describe_status(status),
            Err(e) => format!("the worker could not be waited for: {e}"),
        };
        // Give the stderr thread a moment to drain what the dying process wrote.
        thread::sleep(std::time::Duration::from_millis(50));
        let tail: Vec<String> =
            self.stderr.lock().map(|k| k.iter().rev().filter(|l| !l.trim().is_empty()).take(3).cloned().collect()).unwrap_or_default();
        let mut message = status;
        if !tail.is_empty() {
            message.push_str(": ");
            message.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join(" | "));
        }
        if let Some(log) = &self.log {
            message.push_str(&format!(" (full output in {})", log.display()));
        }
        message
    }

    /// Closes stdin so the worker finishes its loop, and waits for it.
    pub fn finish(mut self) {
        drop(self.stdin);
        super::interrupt::unwatch_worker();
        let _ = self.child.wait();
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            let name = match signal {
                libc::SIGKILL => " (SIGKILL: killed, perhaps for lack of memory)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT: libtorch aborted)",
                _ => "",
            };
            return format!("the worker died of signal {signal}{name}");
        }
    }
    match status.code() {
        Some(code) => format!("the worker exited with status {code}"),
        None => "the worker exited".to_owned(),
    }
}

fn describe_duration(d: std::time::Duration) -> String {
    let seconds = d.as_secs_f64();
    if seconds >= 60.0 && seconds % 60.0 == 0.0 {
        format!("{} min", seconds / 60.0)
    } else {
        format!("{seconds} s")
    }
}
