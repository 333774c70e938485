#!/usr/bin/env bash
# Installs the references the TCAV and CAV tests compare against (SciPy's ttest_ind and
# false_discovery_control, scikit-learn's linear SVC) into the project's Python environment.
# Idempotent: a marker file written last says the install is whole. Run after scripts/env.sh.
set -euo pipefail
: "${VIRTUAL_ENV:?source scripts/env.sh first}"
SCIPY_VERSION=1.16.3
SKLEARN_VERSION=1.7.2
MARKER="$VIRTUAL_ENV/.lthlang-tcav-refs-scipy-$SCIPY_VERSION-sklearn-$SKLEARN_VERSION"
if [ ! -f "$MARKER" ]; then
  echo "lthlang: installing scipy==$SCIPY_VERSION and scikit-learn==$SKLEARN_VERSION for the TCAV and SVM reference tests" >&2
  "$VIRTUAL_ENV/bin/pip" install --disable-pip-version-check --quiet "scipy==$SCIPY_VERSION" "scikit-learn==$SKLEARN_VERSION"
  "$VIRTUAL_ENV/bin/python" -c "import scipy, sklearn; assert scipy.__version__ == '$SCIPY_VERSION' and sklearn.__version__ == '$SKLEARN_VERSION'"
  touch "$MARKER"
fi
