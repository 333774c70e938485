#!/usr/bin/env bash
# Installs the reference libraries the cross-check tests compare against (scikit-learn and SciPy:
# the PCBM solver, the CAV SVM, and the TCAV t-test and its correction)
# into the project's Python environment made by setup-torch.sh. Idempotent: a marker file, written
# last and named after the pinned versions, says the install is whole; changing a pin reinstalls.
# Prints nothing on stdout, so scripts/env.sh can run it beside setup-torch.sh.
set -euo pipefail
ENV_DIR=${1:?usage: setup-python-refs.sh <python env folder>}
SKLEARN_VERSION=1.7.2
SCIPY_VERSION=1.16.3
MARKER="$ENV_DIR/.lthlang-python-refs-sklearn-$SKLEARN_VERSION-scipy-$SCIPY_VERSION"
if [ ! -f "$MARKER" ]; then
  echo "lthlang: installing scikit-learn==$SKLEARN_VERSION and scipy==$SCIPY_VERSION into $ENV_DIR (once per machine)" >&2
  "$ENV_DIR/bin/pip" install --disable-pip-version-check --quiet "scikit-learn==$SKLEARN_VERSION" "scipy==$SCIPY_VERSION" >&2
  "$ENV_DIR/bin/python" -c "import sklearn, scipy; assert sklearn.__version__ == '$SKLEARN_VERSION' and scipy.__version__ == '$SCIPY_VERSION'"
  rm -f "$ENV_DIR"/.lthlang-python-refs-*
  touch "$MARKER"
fi
# torchvision, for the tests that load its models' state dicts saved with torch.save
# (tests/torch_weights.rs). Pinned to the release built against the pinned torch, so pip leaves
# torch alone; its own marker, so adding it does not reinstall the others.
TORCHVISION_VERSION=0.26.0
TV_MARKER="$ENV_DIR/.lthlang-torchvision-$TORCHVISION_VERSION"
if [ ! -f "$TV_MARKER" ]; then
  echo "lthlang: installing torchvision==$TORCHVISION_VERSION into $ENV_DIR (once per machine)" >&2
  "$ENV_DIR/bin/pip" install --disable-pip-version-check --quiet "torchvision==$TORCHVISION_VERSION" >&2
  "$ENV_DIR/bin/python" -c "import torchvision; assert torchvision.__version__.startswith('$TORCHVISION_VERSION')"
  touch "$TV_MARKER"
fi
