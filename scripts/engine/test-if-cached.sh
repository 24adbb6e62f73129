#!/usr/bin/env bash
# The real-engine suite (tests/engine, `npm run test:engine`) as a step of `npm run test:all`: it
# runs when the slow parts of the engine (the Pulumi CLI and the bridged tls/random providers) are
# already in the engine cache, and otherwise says so on one line and passes. A cold engine build
# takes longer than the rest of the CI run together (see the README), so it is not started here;
# `npm run test:engine` builds what is missing and then runs the suite.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
missing="$("$here/build.sh" --missing cli tls random)"
if [ -n "$missing" ]; then
    echo "[engine] SKIPPED the real-engine suite (npm run test:engine): the engine cache has no $missing yet." \
        "Build it once with 'bash scripts/engine/build.sh' (cold: about 35 min on 2 cores), or run 'npm run test:engine', which builds it first."
    exit 0
fi
echo "[engine] the engine is cached: running the real-engine suite (npm run test:engine)"
exec npm run test:engine
