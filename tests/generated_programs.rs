//! Programs drawn by the generator (src/generate.rs) from the stage registry, run end to end as a
//! user would: `lthlang check`, then `lthlang run` when check accepts. Each must complete, or be
//! refused by `check` with a diagnostic code; a program `check` accepts and the worker then fails
//! on, a panic, or a refusal without a code fails this test, which prints the program's seed and
//! text. `benches/generated_soak.rs` runs hundreds more.
//!
//! Seeds 0 to 23 (`LTHLANG_GENERATED_COUNT` runs more or fewer). Reproduce one program with
//! `cargo bench --bench generated_soak -- --show SEED`.

use lthlang::generate::{self, Outcome};
use std::path::Path;

#[test]
fn generated_programs_complete_or_are_refused_by_check() {
    let count: u64 = std::env::var("LTHLANG_GENERATED_COUNT").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let lthlang = Path::new(env!("CARGO_BIN_EXE_lthlang"));
    let (mut completed, mut refused, mut failures) = (0, 0, Vec::new());
    for seed in 0..count {
        let dir = tempfile::tempdir().unwrap();
        let trial = generate::trial(lthlang, dir.path(), seed);
        match trial.outcome {
            Outcome::Completed => completed += 1,
            Outcome::Refused(_) => refused += 1,
            Outcome::Failed(why) => failures.push(format!("seed {seed}:\n{}\n--- output ---\n{why}", trial.text)),
        }
    }
    assert!(failures.is_empty(), "{} of {count} generated programs failed:\n\n{}", failures.len(), failures.join("\n\n"));
    // Most programs must get past `check`, or the test would exercise nothing but refusals.
    assert!(completed * 2 >= count, "only {completed} of {count} programs completed ({refused} refused by check)");
}
