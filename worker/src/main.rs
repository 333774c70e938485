//! `lthlang-worker`: the only process that loads libtorch. It reads node requests from stdin,
//! one JSON object per line, computes each in order, and streams events to stdout. A node that
//! fails (an error or a panic inside libtorch) is reported and the worker goes on to the next.

use lthlang::exec::job::{Event, NodeRequest};
use lthlang_worker::{allocator, Context};
use std::io::{BufRead, Write};
use std::panic::AssertUnwindSafe;

fn emit(event: &Event) {
    let mut out = std::io::stdout().lock();
    if let Ok(line) = serde_json::to_string(event) {
        // A closed stdout means the front end is gone; there is nobody left to tell.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// The device a request names, or why it cannot be had. A device this machine lacks is an error,
/// never a quiet fall back to the CPU: a run the user asked to be on a GPU must not take days on
/// the CPU instead.
fn device(requested: &str) -> Result<tch::Device, String> {
    // libtorch's CUDA backend registers itself only once its library is loaded. A machine whose
    // CUDA libraries cannot load runs `auto` on the CPU (the reason goes to worker.log); an
    // explicit `cuda` fails with it.
    if requested != "cpu" {
        match lthlang_worker::precision::cuda::load() {
            Ok(()) => {}
            Err(e) if requested == "auto" => eprintln!("lthlang-worker: {e}; `device = auto` runs on the CPU"),
            Err(e) => return Err(format!("device `{requested}` is not available: {e}")),
        }
    }
    match requested {
        "cpu" => Ok(tch::Device::Cpu),
        "auto" => Ok(tch::Device::cuda_if_available()),
        other => {
            let index = other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse::<usize>().ok())
                .ok_or_else(|| format!("unknown device `{other}`: expected `auto`, `cpu` or `cuda:<index>`"))?;
            let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
            if index >= count {
                let seen = match count {
                    0 => "libtorch sees no CUDA device on this machine".to_owned(),
                    n => format!("libtorch sees {n} CUDA device{} (cuda:0 to cuda:{})", if n == 1 { "" } else { "s" }, n - 1),
                };
                return Err(format!(
                    "device `{other}` is not available: {seen}; set `device = cpu` or `device = auto` in the `experiment` block"
                ));
            }
            Ok(tch::Device::Cuda(index))
        }
    }
}

fn describe(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_owned(),
    }
}

/// Dies with the front end: a killed `lthlang run` must not leave a worker training on.
#[cfg(target_os = "linux")]
fn follow_parent() {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // The parent may have died before the call: then we were re-parented already.
    if std::os::unix::process::parent_id() == 1 {
        std::process::exit(1);
    }
}

#[cfg(not(target_os = "linux"))]
fn follow_parent() {}

fn main() {
    allocator::keep_freed_memory();
    follow_parent();
    if let Err(e) = lthlang_worker::stop::install() {
        eprintln!("cannot handle SIGTERM, so a stop request will end the worker at once: {e}");
    }
    // libtorch's own panics are caught per node; keep the default hook from printing them on
    // stdout's neighbour so the event stream stays the only protocol channel.
    std::panic::set_hook(Box::new(|_| {}));
    let threads = std::thread::available_parallelism().map_or(1, |n| i32::try_from(n.get()).unwrap_or(1));
    tch::set_num_threads(threads);
    let mut announced = false;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let request: NodeRequest = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                emit(&Event::Failed { node: String::new(), message: format!("malformed request: {e}") });
                continue;
            }
        };
        let device = match device(&request.device) {
            Ok(device) => device,
            Err(message) => {
                // Not this node's fault but the worker's: the empty node id tells the front end
                // that nothing else can run either.
                eprintln!("lthlang-worker: {message}");
                emit(&Event::Failed { node: String::new(), message });
                continue;
            }
        };
        if !announced {
            emit(&Event::Ready { device: describe(device), threads });
            announced = true;
        }
        emit(&Event::Started { node: request.id.clone() });
        let emit_ref = |e: Event| emit(&e);
        let ctx = Context { request: &request, device, emit: &emit_ref };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| lthlang_worker::run(&ctx)));
        let event = match outcome {
            Ok(Ok(metrics)) => match write_metrics(&request, &metrics) {
                Ok(()) => Event::Finished { node: request.id.clone(), metrics },
                Err(message) => Event::Failed { node: request.id.clone(), message },
            },
            Ok(Err(e)) => {
                log_full(&request.id, &e.0);
                Event::Failed { node: request.id.clone(), message: first_line(&e.0) }
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "the stage panicked".to_owned());
                log_full(&request.id, &message);
                Event::Failed { node: request.id.clone(), message: first_line(&message) }
            }
        };
        emit(&event);
        if lthlang_worker::stop::requested() {
            break;
        }
    }
}

/// libtorch errors carry a C++ backtrace after the first line; the user needs the first line,
/// which libtorch sometimes leaves empty or fills with the frame that raised it. The full text
/// goes to stderr, which the front end keeps in `worker.log`.
fn first_line(message: &str) -> String {
    let line = message.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("Exception raised from")).unwrap_or("");
    let mut line = line.to_owned();
    if message.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        line.push_str(" (the full message is in worker.log)");
    }
    line
}

fn log_full(node: &str, message: &str) {
    if message.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        eprintln!("lthlang-worker: node `{node}` failed:\n{message}");
    }
}

fn write_metrics(request: &NodeRequest, metrics: &serde_json::Value) -> Result<(), String> {
    let path = request.output.join("metrics.json");
    let text = serde_json::to_string_pretty(metrics).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}
