//! Checks made before anything is submitted, so a misconfigured cluster costs no queue time:
//! Slurm's commands are on PATH, every partition the settings name exists (asked of `sinfo`),
//! `sbatch_args` leave lthlang's own flags alone, and the cache is visible from the nodes. The
//! last is asked of the cluster itself: a probe job writes a token into the cache and the front
//! end looks for it, since only a job can tell what the nodes mount.

use super::commands;
use super::records;
use super::settings::{reserved, Settings};
use crate::cache::store::Store;
use std::time::{Duration, Instant};

/// How long the probe job may wait in the queue before the run goes ahead without its answer.
const PROBE_PATIENCE: Duration = Duration::from_secs(120);

pub fn check(store: &Store, settings: &Settings) -> Result<(), String> {
    for tool in ["sbatch", "squeue", "scontrol", "scancel", "sinfo"] {
        if commands::on_path(tool).is_none() {
            return Err(format!(
                "`{tool}` is not on PATH: the Slurm executor needs Slurm's client commands (run on a login node, or load Slurm's module)"
            ));
        }
    }
    let all_args = std::iter::once(&settings.defaults).chain(settings.overrides.values()).flat_map(|r| &r.sbatch_args);
    for arg in all_args {
        if let Some(flag) = reserved(arg) {
            return Err(format!("sbatch_args sets `{flag}` (in `{arg}`), which lthlang sets itself for every job"));
        }
    }
    let known = commands::partitions()?;
    let named = std::iter::once(&settings.defaults).chain(settings.overrides.values()).filter_map(|r| r.partition.as_ref());
    for partition in named {
        if !known.contains(partition) {
            let near = known
                .iter()
                .min_by_key(|k| strsim::levenshtein(k, partition))
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(format!("the partition `{partition}` is unknown to this cluster (sinfo lists: {}){near}", known.join(", ")));
        }
    }
    probe(store, settings)
}

/// Submits a job that writes a token into the cache and waits for it to end.
fn probe(store: &Store, settings: &Settings) -> Result<(), String> {
    let probes = records::dir(store, "probes");
    std::fs::create_dir_all(&probes).map_err(|e| format!("cannot create `{}`: {e}", probes.display()))?;
    let token = format!("{}-{}", std::process::id(), records::now());
    let target = super::absolute(&probes.join(&token));
    let script = probes.join(format!("{token}.sh"));
    let text = format!("#!/bin/sh\nhostname > '{}'\n", target.display());
    std::fs::write(&script, text).map_err(|e| format!("cannot write `{}`: {e}", script.display()))?;
    let mut args = vec!["--job-name=lth:probe".to_owned(), "--output=/dev/null".to_owned()];
    args.extend(settings.defaults.flags());
    let job = commands::sbatch(&args, &script).map_err(|e| format!("cannot submit the probe job: {e}"))?;
    let started = Instant::now();
    loop {
        let state = commands::squeue(std::slice::from_ref(&job))?.into_iter().next();
        match state {
            Some(s) if s.active() => {
                if started.elapsed() > PROBE_PATIENCE {
                    // A busy queue is no configuration error; the jobs will find out themselves.
                    let _ = commands::scancel(std::slice::from_ref(&job));
                    let _ = std::fs::remove_file(&script);
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            _ => break,
        }
    }
    let _ = std::fs::remove_file(&script);
    match std::fs::read_to_string(&target) {
        Ok(_) => {
            let _ = std::fs::remove_file(&target);
            Ok(())
        }
        Err(_) => Err(format!(
            "the cache `{}` is not visible from the cluster's nodes: probe job {job} could not write `{}` there. Put the cache on a \
             filesystem every node mounts (`--cache DIR` or LTHLANG_CACHE)",
            super::absolute(store.root()).display(),
            target.display()
        )),
    }
}
