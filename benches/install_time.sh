#!/usr/bin/env bash
# Times the front end's install as a user without Python or PyTorch does it: `cargo install
# --path . --locked` into a throwaway root and target folder, with a PATH that holds cargo and
# every program of /usr/bin and /bin except Python and pip, in an environment cleared by `env -i`.
# Run it on an otherwise idle machine; it prints the wall, user and system seconds.
#   benches/install_time.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/path"
for program in /usr/bin/* /bin/*; do
  name=$(basename "$program")
  case $name in python* | pip* | pydoc*) continue ;; esac
  [ -e "$scratch/path/$name" ] || ln -s "$program" "$scratch/path/$name"
done
cargo_home=${CARGO_HOME:-$HOME/.cargo}
clean_path="$cargo_home/bin:$scratch/path"
if env -i HOME="$HOME" PATH="$clean_path" sh -c 'command -v python3 || command -v python' >/dev/null; then
  echo "install_time: Python is still on the clean PATH" >&2
  exit 1
fi
cd "$here"
env -i HOME="$HOME" PATH="$clean_path" /usr/bin/time -f "install: %e s wall, %U s user, %S s system" \
  cargo install --quiet --path . --root "$scratch/root" --target-dir "$scratch/target" --locked
"$scratch/root/bin/lthlang" check experiments/quickstart.lth
