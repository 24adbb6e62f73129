#!/usr/bin/env bash
# Runs shellcheck on every *.sh file in the repository that git tracks or would track (new files
# count, ignored ones do not): scripts/**, the VM host scripts' parts in components/vm/scripts/, the
# Kubernetes Jobs' scripts in components/kubernetes/scripts/ and examples/app/start.sh.
# Each file names its shell by its shebang or a `# shellcheck shell=` line; a file shellcheck cannot
# check (no shell named, or not sh/bash) fails here rather than being skipped. Sources are followed
# (-x) from the repository root, as the `# shellcheck source=` lines expect. The VM script parts
# also get their fully rendered form checked by tests/vm/scripts.test.ts.
# The tool itself comes from scripts/ensure-tools.sh (npm test runs it first).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v shellcheck >/dev/null 2>&1; then
    echo "shellcheck.sh: shellcheck is not installed; run bash scripts/ensure-tools.sh (or apt-get install shellcheck)" >&2
    exit 1
fi

files=()
while IFS= read -r -d '' f; do
    # A tracked file deleted in the working tree is not there to check.
    if [ -e "$f" ]; then files+=("$f"); fi
done < <(git ls-files -z --cached --others --exclude-standard -- '*.sh' | sort -zu)

if [ ${#files[@]} -eq 0 ]; then
    echo "shellcheck.sh: found no *.sh files; run it inside the git work tree" >&2
    exit 1
fi

shellcheck -x --severity=style "${files[@]}"
echo "shellcheck: ${#files[@]} files pass ($(shellcheck --version | sed -n 's/^version: //p'))"
