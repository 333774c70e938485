# Sourced by the project's scripts: makes sure libtorch is installed (once per machine) and points
# the tch build at it. Binaries get an rpath to it at build time, so running them needs nothing.
# shellcheck shell=bash
LTHLANG_TORCH_ENV=$("$(dirname "${BASH_SOURCE[0]}")/setup-torch.sh")
export LTHLANG_TORCH_ENV
# scikit-learn and SciPy, the references the solver cross-checks run against (tests fail without them).
"$(dirname "${BASH_SOURCE[0]}")/setup-python-refs.sh" "$LTHLANG_TORCH_ENV"
export VIRTUAL_ENV="$LTHLANG_TORCH_ENV"
export PATH="$LTHLANG_TORCH_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
command -v cargo >/dev/null || { echo "lthlang: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
