#!/usr/bin/env bash
# Installs PyTorch's libtorch (from the Python package registry) into a per-user folder keyed by
# version, shared by every clone. Idempotent: a marker file written last says the install is whole,
# so a half-finished install (killed, out of disk) is redone rather than trusted.
set -euo pipefail
TORCH_VERSION=2.11.0
ENV_DIR=${LTHLANG_TORCH_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/lthlang/torch-$TORCH_VERSION}
MARKER="$ENV_DIR/.lthlang-complete"
if [ ! -f "$MARKER" ]; then
  echo "lthlang: installing torch==$TORCH_VERSION into $ENV_DIR (once per machine, ~5 GB; pip is quiet for about 2 minutes)" >&2
  rm -rf "$ENV_DIR"
  mkdir -p "$(dirname "$ENV_DIR")"
  python3 -m venv "$ENV_DIR"
  "$ENV_DIR/bin/pip" install --disable-pip-version-check --quiet "torch==$TORCH_VERSION"
  # Checks the install without importing torch: the import warns when NumPy is absent, and the
  # project needs libtorch's shared libraries, not torch's Python side.
  "$ENV_DIR/bin/python" - "$TORCH_VERSION" <<'PY'
import importlib.metadata, importlib.util, pathlib, sys
version = importlib.metadata.version("torch")
assert version.startswith(sys.argv[1]), f"torch {version} installed, {sys.argv[1]} wanted"
lib = pathlib.Path(importlib.util.find_spec("torch").origin).parent / "lib"
assert any(lib.glob("libtorch_cpu.*")), f"no libtorch_cpu in {lib}"
PY
  touch "$MARKER"
fi
echo "$ENV_DIR"
