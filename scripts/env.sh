# Sourced by every project script: where caches live and how the build finds DuckDB.
# Kept outside the clone so a fresh clone reuses the compiled crates and installed tools.
export ORCHESTR8_CACHE="${ORCHESTR8_CACHE:-$HOME/.cache/orchestr8}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ORCHESTR8_CACHE/target}"
export DUCKDB_VERSION="1.5.6-r.1"
export DUCKDB_LIB_DIR="$ORCHESTR8_CACHE/npm/node_modules/@duckdb/node-bindings-linux-x64"
export DUCKDB_INCLUDE_DIR="$DUCKDB_LIB_DIR"
export ORCHESTR8_VENV="$ORCHESTR8_CACHE/venv"
export ORCHESTR8_MODEL_DIR="${ORCHESTR8_MODEL_DIR:-$ORCHESTR8_CACHE/models/all-minilm-l6-v2}"
# The shipped library of this clone. A binary finds it at the path it was compiled in, but the
# build cache above is shared by every clone on the machine, so that may be another clone's.
ORCHESTR8_HOME="${ORCHESTR8_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export ORCHESTR8_HOME
