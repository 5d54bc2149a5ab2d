#!/usr/bin/env bash
# Lint and build the SAM template the way CI does: `sam validate --lint`, then `sam build`.
#
#   bash infra/sam-check.sh
#
# * aws-sam-cli lives in its own virtual environment, .venv-tools/ (it pins its own boto3, which
#   must not fight the app's .venv). The environment is (re)created only when it is missing or
#   when the pinned version below (or the Python it was made with) changed, so re-runs are fast.
# * No Docker: `sam build` resolves the layer's wheels for the Lambda platform with pip
#   (`--platform manylinux... --only-binary`), which needs only PyPI. `--cached` skips what did
#   not change since the last build (cache under .aws-sam/cache).
# * No AWS account needed: a region is set if none is, credentials are never read.
# * Quiet: each step prints one line; the full output is printed only when a step fails.
set -euo pipefail

SAM_CLI_VERSION="1.170.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="$ROOT/.venv-tools"
STAMP="$TOOLS/.sam-check-stamp"
PYTHON="${SAM_CHECK_PYTHON:-$(command -v python3.11 || command -v python3)}"
LOG="$(mktemp -t sam-check.XXXXXX)"
trap 'rm -f "$LOG"' EXIT

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() {  # step "what" command...: run quietly, print the log on failure
    local what="$1"; shift
    local t0=$SECONDS
    if "$@" >"$LOG" 2>&1; then
        echo "sam-check: $what ok ($((SECONDS - t0)) s)"
    else
        local rc=$?
        echo "sam-check: $what FAILED (exit $rc):" >&2
        cat "$LOG" >&2
        exit "$rc"
    fi
}

want="aws-sam-cli==$SAM_CLI_VERSION python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
if [[ ! -x "$TOOLS/bin/sam" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    install_tools() {
        rm -rf "$TOOLS"
        "$PYTHON" -m venv "$TOOLS"
        # the project's uv (make install) takes seconds instead of ~40 s; pip when there is none or it fails
        if ! { [[ -x "$ROOT/.venv/bin/uv" ]] &&
               "$ROOT/.venv/bin/uv" pip install --quiet --python "$TOOLS/bin/python" "aws-sam-cli==$SAM_CLI_VERSION"; }; then
            "$TOOLS/bin/python" -m pip install --quiet --upgrade pip
            "$TOOLS/bin/python" -m pip install --quiet --no-compile "aws-sam-cli==$SAM_CLI_VERSION"
        fi
        "$TOOLS/bin/sam" --version
        echo "$want" >"$STAMP"  # written last: an interrupted install is redone next time
    }
    step "install $want into .venv-tools" install_tools
fi

SAM="$TOOLS/bin/sam"
step "sam validate --lint" "$SAM" validate --lint --template template.yaml

# cfn-lint misses circular dependencies that only appear after the SAM transform (a function that
# names the upload bucket while the bucket's notification names the function): transform the
# template with SAM's own translator and look for a cycle among the resulting resources.
no_cycle() {
    "$TOOLS/bin/python" - <<'PY'
import graphlib, re, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

text = re.sub(r"(CodeUri|ContentUri): \S+", r"\1: s3://bucket/key.zip", open("template.yaml").read())
resources = transform(yaml_parse(text), {}, NoManagedPolicies())["Resources"]

def refs(x):
    out = set()
    if isinstance(x, list):
        for y in x:
            out |= refs(y)
    elif isinstance(x, dict):
        for k, v in x.items():
            if k == "Ref" and v in resources:
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                s = v if isinstance(v, str) else v[0]
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", s)} & set(resources)
                if not isinstance(v, str):
                    out |= refs(v[1])
            else:
                out |= refs(v)
    return out

graph = {}
for name, res in resources.items():
    depends = res.get("DependsOn", [])
    graph[name] = (refs(res.get("Properties", {})) | set([depends] if isinstance(depends, str) else depends)) - {name}
try:
    list(graphlib.TopologicalSorter(graph).static_order())
except graphlib.CycleError as exc:
    sys.exit("circular dependency: " + " -> ".join(exc.args[1]))
print(f"{len(resources)} resources after the SAM transform, no cycle")
PY
}
step "no circular dependency after the SAM transform" no_cycle
step "sam build" "$SAM" build --template template.yaml --build-dir .aws-sam/build \
    --cached --cache-dir .aws-sam/cache --parallel

# Only what runs in AWS ships: the built layer and functions hold no local product (CLI, local server, page,
# demo data, migrations runner). tests/unit/test_layer_boundaries.py checks the sources; this checks the build.
shipped_only() {
    local found
    found="$(find .aws-sam/build -path '*/leadimport_local*' -o -path '*/leadimport/local*' \
             -o \( -path '*/python/leadimport/*' \( -name '*.html' -o -name '*.js' -o -name '*.css' -o -name 'demo*' \) \) \
             -o \( -path '*Function/*' -name '*.html' \) | head -20)"
    if [[ -n "$found" ]]; then
        echo "local files in the build:"; echo "$found"; return 1
    fi
    test -f .aws-sam/build/CoreLayer/python/leadimport/roots/worker.py
    echo "the layer holds $(find .aws-sam/build/CoreLayer/python/leadimport -name '*.py' | wc -l) modules, none local"
}
step "the build ships no local files" shipped_only
