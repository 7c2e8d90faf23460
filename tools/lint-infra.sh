#!/usr/bin/env bash
# Lint the deployment files, offline and without AWS credentials:
#   template.yaml and the nested stacks/*.yaml
#                  cfn-lint (informational checks included)
#                  sam validate --lint
#   Dockerfile     hadolint (every severity fails, down to "style")
# Runs all three even if one fails; exits non-zero if any reported a finding.
#
# Tools come from the .tools/ virtualenv (override with TOOLS_VENV):
#   python3 -m venv .tools
#   .tools/bin/pip install -r tools/requirements.txt -c tools/constraints.txt
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS_BIN="${TOOLS_VENV:-.tools}/bin"
for tool in cfn-lint sam hadolint; do
    if [[ ! -x "${TOOLS_BIN}/${tool}" ]]; then
        echo "lint-infra: ${TOOLS_BIN}/${tool} not found; install the tools with:" >&2
        echo "  python3 -m venv .tools && .tools/bin/pip install -r tools/requirements.txt -c tools/constraints.txt" >&2
        exit 2
    fi
done

# `sam validate --lint` itself needs neither a region nor credentials; the
# region is set anyway so nothing falls back to looking one up, and SDK
# lookups of the instance-metadata endpoint and SAM's telemetry are off.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION}}"
export AWS_EC2_METADATA_DISABLED=true
export SAM_CLI_TELEMETRY=0

status=0
run() {
    echo "+ $*"
    if ! "$@"; then
        status=1
    fi
}

for template in template.yaml stacks/*.yaml; do
    run "${TOOLS_BIN}/cfn-lint" --include-checks I -- "${template}"
    run "${TOOLS_BIN}/sam" validate --lint --template "${template}"
done
run "${TOOLS_BIN}/hadolint" --failure-threshold style Dockerfile

if [[ ${status} -eq 0 ]]; then
    echo "lint-infra: the templates and the Dockerfile are clean"
else
    echo "lint-infra: findings above" >&2
fi
exit "${status}"
