#!/usr/bin/env bash
# Tests the TextMate grammar: the assertions in test/syntax.lth, and a snapshot of the scopes of
# every token of every shipped file (experiments/ and stdlib/), kept in test/shipped/. After a
# deliberate change to the grammar or the shipped files, `test/grammar.sh -u` rewrites the
# snapshots; review their diff before committing it. Installs the npm tool once (node_modules/).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/vscode-tmgrammar-test ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/vscode-tmgrammar-test -g syntaxes/lth.tmLanguage.json 'test/*.lth'
# The snapshot tool keeps each snapshot beside its file: test copies of the shipped files.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp ../../experiments/*.lth ../../stdlib/*.lth "$work"/
cp test/shipped/*.snap "$work"/ 2>/dev/null || true
if [ "${1:-}" = "-u" ]; then
  node_modules/.bin/vscode-tmgrammar-snap -g syntaxes/lth.tmLanguage.json -s source.lth -u "$work/*.lth"
  rm -f test/shipped/*.snap
  cp "$work"/*.snap test/shipped/
else
  # A shipped file without a snapshot is a failure, not a new snapshot.
  for file in "$work"/*.lth; do
    [ -f "$file.snap" ] || { echo "no grammar snapshot for $(basename "$file"); run editors/vscode/test/grammar.sh -u" >&2; exit 1; }
  done
  node_modules/.bin/vscode-tmgrammar-snap -g syntaxes/lth.tmLanguage.json -s source.lth "$work/*.lth"
fi
node test/every-token-scoped.js test/shipped/*.snap
