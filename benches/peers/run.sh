#!/usr/bin/env bash
# Peer comparison of the login hot path: PyJWT and Node `jose` verifying the same RS256
# Entra-shaped token with the same (pre-parsed) key as the Rust bench, each reported as a ratio
# to the raw aws-lc-rs RS256 verification measured in the same run.
#
#   bash benches/peers/run.sh [--quick]
#
# Installs PyJWT into benches/peers/.venv and jose into benches/peers/node_modules (both
# gitignored, from the pinned versions in requirements.txt / package.json), then runs the
# `peers` bench binary, which writes the token and key to benches/peers/.work, measures the
# Rust side, runs both peers and prints the table. A peer whose install fails is skipped.
# Then runs benches/peers/jwt-authorizer (our bearer request vs. the `jwt-authorizer` crate
# verifying the IdP JWT on every request, in-process and over loopback HTTP).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

python=""
if command -v python3 >/dev/null 2>&1; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv >/dev/null
  fi
  if .venv/bin/python -c 'import jwt' 2>/dev/null \
    || .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt; then
    python="$here/.venv/bin/python"
  fi
fi

node=""
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if [ -d node_modules/jose ] || npm install --silent --no-audit --no-fund >/dev/null 2>&1; then
    node="$(command -v node)"
  fi
fi

profile=(--release)
for a in "$@"; do
  # --quick only checks that everything runs; the dev profile is enough (and cheap in CI).
  if [ "$a" = "--quick" ]; then profile=(); fi
done
cd "$root"
cargo run "${profile[@]}" -q -p jwt-exchange-bench --bin peers -- \
  --out "$here/.work" --peers-dir "$here" --python "$python" --node "$node" "$@"

# jwt-authorizer verifying the IdP JWT per request (axum 0.7) vs. our bearer request: its own
# Cargo project outside the workspace (see jwt-authorizer/README.md). Skipped if it does not build.
manifest="$here/jwt-authorizer/Cargo.toml"
if cargo build "${profile[@]}" -q --manifest-path "$manifest"; then
  cargo run "${profile[@]}" -q --manifest-path "$manifest" -- "$@"
else
  echo "jwt-authorizer peer: build failed, skipped" >&2
fi
