#!/usr/bin/env bash
# The main job on the embedded default: build the quick starter hub once, then solve a mixed task.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_USAGE_STATS_ENABLED=0
.venv/bin/mll starter --quick
.venv/bin/mll demo
