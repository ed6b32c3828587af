#!/usr/bin/env bash
# Set up seed-solo in one go (what `make setup` runs; `make demo` and `make test` run it first):
#   1. the environment: the active virtualenv or conda env, else .venv here (scripts/env.sh);
#   2. setuptools<81, then this checkout editable with its test, demo, DALI, export and
#      detection (pycocotools) extras (torch and the other pins come from setup.cfg; the dali
#      extra, nvidia-dali-cuda120, is a 425 MB download, about 1 GB installed, and runs its CPU
#      operators without a GPU: docs/dali.md);
#   3. solo-learn 1.0.6 (not on PyPI), always with --no-deps so seed-solo's pins stay in charge,
#      from the first of: (a) already installed, (b) a wheelhouse folder, (c) its git commit;
#   4. the demo's Fashion-MNIST (Debian's dataset-fashion-mnist), only where that is possible;
#      the set-up never fails for the data;
#   5. Debian's slurm-wlm and munge for tests/harness/test_slurm.py (a one-node Slurm it starts itself),
#      as root with apt-get only (about 15 s the first time); the set-up never fails for them.
# A second run with nothing missing takes a second: a stamp (.setup-stamp) records the python
# and a hash of the dependency files, and a quick probe checks the installed versions.
#
#   bash scripts/setup.sh                    # everything (what `make setup` runs)
#   bash scripts/setup.sh --plan             # print what it would do; installs nothing
#   bash scripts/setup.sh --solo-learn-only  # only step 3, into the environment of step 1
#
# Environment variables:
#   SEED_SOLO_WHEELHOUSE  folder holding solo_learn-1.0.6-py3-none-any.whl, for (b)
#   FASHION_MNIST_DIR     folder holding the four Fashion-MNIST *-ubyte.gz files
#   SEED_SOLO_GIT_URL     the git repository for (c) (default: solo-learn on GitHub)
set -euo pipefail

SEED_SOLO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$SEED_SOLO_ROOT/scripts/env.sh"

SOLO_VERSION=1.0.6
SOLO_COMMIT=9187ea39c2c3f43c455ab06664d2b019a9802954
SOLO_GIT_URL="${SEED_SOLO_GIT_URL:-https://github.com/vturrisi/solo-learn}"
FASHION_MNIST_DEBIAN=/usr/share/datasets/fashion-mnist
STAMP="$SEED_SOLO_ROOT/.setup-stamp"
PY="$(seed_solo_env_python "$SEED_SOLO_ROOT")"

pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }

# --- 1. the environment --------------------------------------------------------------------

ensure_env() {
    [ -x "$PY" ] && return 0
    if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
        echo "error: the active environment $(seed_solo_env_prefix) has no bin/python." >&2
        exit 1
    fi
    echo "set-up: creating $SEED_SOLO_ROOT/.venv (python3 -m venv .venv)"
    if ! python3 -m venv "$SEED_SOLO_ROOT/.venv"; then
        echo "error: \`python3 -m venv .venv\` failed. Install Python's venv module (Debian:" \
            "apt-get install python3-venv), or activate a virtualenv or conda env and rerun." >&2
        exit 1
    fi
}

# --- 2. the stamp: skip the installs when nothing changed ----------------------------------

stamp_key() { # the python, this checkout, and a hash of what decides the installs
    local hash
    hash="$(cd "$SEED_SOLO_ROOT" && cat setup.cfg pyproject.toml setup.py scripts/setup.sh \
        2>/dev/null | sha256sum | cut -c1-16)"
    echo "python=$PY root=$SEED_SOLO_ROOT deps=$hash"
}

# exits 0 when the environment holds solo-learn 1.0.6, torch, and seed_solo from this checkout
probe() {
    [ -x "$PY" ] || return 1
    (cd / && "$PY" - "$SEED_SOLO_ROOT" "$SOLO_VERSION" <<'PY'
import importlib.metadata as md
import importlib.util
import os
import sys

root, solo = sys.argv[1:]
assert md.version("solo-learn") == solo
md.version("torch")
md.version("nvidia-dali-cuda120")
md.version("onnxruntime")  # the export extra
md.version("pycocotools")  # the detection extra
spec = importlib.util.find_spec("seed_solo")
assert spec and os.path.realpath(spec.origin).startswith(os.path.realpath(root) + os.sep)
PY
    ) >/dev/null 2>&1
}

up_to_date() { [ -f "$STAMP" ] && [ "$(head -n1 "$STAMP")" = "$(stamp_key)" ] && probe; }

# --- 3. solo-learn 1.0.6 -------------------------------------------------------------------

solo_installed_version() { # prints the installed version, or nothing
    [ -x "$PY" ] || return 0
    (cd / && "$PY" -c 'import importlib.metadata as md
try:
    print(md.version("solo-learn"))
except md.PackageNotFoundError:
    pass' 2>/dev/null) || true
}

wheelhouse() { # prints the wheelhouse folder for (b), or nothing
    if [ -n "${SEED_SOLO_WHEELHOUSE:-}" ]; then
        (cd "$SEED_SOLO_ROOT" && realpath -m "$SEED_SOLO_WHEELHOUSE")
    elif [ -d "$SEED_SOLO_ROOT/../shared/wheels" ]; then
        # the team's wheelhouse: CI and this project's machines have shared/ beside the checkout
        (cd "$SEED_SOLO_ROOT/../shared/wheels" && pwd)
    fi
}

solo_plan() { # the first way that applies, without installing or going online
    local dir
    dir="$(wheelhouse)"
    if [ "$(solo_installed_version)" = "$SOLO_VERSION" ]; then
        echo "(a) already installed"
    elif [ -n "$dir" ] && [ -d "$dir" ]; then
        echo "(b) wheelhouse $dir"
    else
        echo "(c) git $SOLO_GIT_URL@$SOLO_COMMIT"
    fi
}

last_error() { { grep -E '^(ERROR|error|fatal)' "$1" || tail -n1 "$1"; } | tail -n1 | cut -c1-200; }

install_solo() { # sets SOLO_SOURCE, or prints one message naming the three ways and exits 1
    local found dir log why_a why_b why_c
    found="$(solo_installed_version)"
    if [ "$found" = "$SOLO_VERSION" ]; then
        SOLO_SOURCE="(a) already installed"
        echo "solo-learn: $SOLO_SOURCE"
        return 0
    fi
    why_a="found ${found:-none}"
    log="$(mktemp)"
    # --no-deps: solo-learn's own metadata pins lightning==2.1.2 and asks for wandb; seed-solo's
    # pins (lightning, torchmetrics<0.12) stay in charge
    dir="$(wheelhouse)"
    if [ -z "$dir" ]; then
        why_b="SEED_SOLO_WHEELHOUSE is unset and there is no ../shared/wheels beside the checkout"
    elif [ ! -d "$dir" ]; then
        why_b="$dir is not a folder"
    # --no-index: never PyPI, whose solo-learn 1.0.2 (2021) pins torch 1.9
    elif pip_install --no-deps --no-index --find-links "$dir" "solo-learn==$SOLO_VERSION" \
            >"$log" 2>&1; then
        SOLO_SOURCE="(b) wheelhouse $dir"
    else
        why_b="no solo-learn $SOLO_VERSION in $dir: $(last_error "$log")"
    fi
    if [ -z "${SOLO_SOURCE:-}" ]; then
        # an offline machine fails here in seconds, not at pip's clone after minutes
        if ! GIT_TERMINAL_PROMPT=0 timeout 30 git ls-remote "$SOLO_GIT_URL" HEAD >"$log" 2>&1; then
            why_c="$SOLO_GIT_URL is not reachable: $(last_error "$log")"
        elif GIT_TERMINAL_PROMPT=0 GIT_HTTP_LOW_SPEED_LIMIT=1000 GIT_HTTP_LOW_SPEED_TIME=30 \
                timeout 600 "$PY" -m pip install --quiet --disable-pip-version-check --no-deps \
                --no-build-isolation "solo-learn @ git+$SOLO_GIT_URL@$SOLO_COMMIT" >"$log" 2>&1
        then
            SOLO_SOURCE="(c) git $SOLO_GIT_URL@$SOLO_COMMIT"
        else
            why_c="pip could not install it from $SOLO_GIT_URL@$SOLO_COMMIT: $(last_error "$log")"
        fi
    fi
    rm -f "$log"
    if [ -n "${SOLO_SOURCE:-}" ] && [ "$(solo_installed_version)" = "$SOLO_VERSION" ]; then
        echo "solo-learn: $SOLO_SOURCE"
        return 0
    fi
    cat >&2 <<EOF
error: solo-learn $SOLO_VERSION (not on PyPI) could not be installed into $(seed_solo_env_prefix "$SEED_SOLO_ROOT"). Tried:
  (a) an installed solo-learn $SOLO_VERSION: ${why_a}
  (b) a wheelhouse: ${why_b:-installed, but the version is not $SOLO_VERSION}
  (c) git: ${why_c:-installed, but the version is not $SOLO_VERSION}
Supply one and rerun: set SEED_SOLO_WHEELHOUSE to a folder holding solo_learn-$SOLO_VERSION-py3-none-any.whl,
or give this machine access to github.com, or install it into that environment yourself with
pip install --no-deps (README, Install).
EOF
    exit 1
}

# pip ends an install with a report of installed packages whose requirements are not met; with
# solo-learn installed --no-deps on purpose, its own pins (lightning==2.1.2, wandb) are expected
# there: those lines give way to one note, any other line of the report stays
install_editable() {
    "$PY" -m pip install --quiet --disable-pip-version-check \
        -e "${SEED_SOLO_ROOT}[dev,demo,dali,export,detection]" 2>&1 \
        | awk '
            /^ERROR: pip.s dependency resolver does not currently take into account/ {
                header = $0; next }
            /^solo-learn [0-9.]+ requires / { solo = 1; next }
            header != "" && /requires|incompatible/ { print header; header = "" }
            { print }
            END { if (solo) print "note: solo-learn is installed with --no-deps on purpose:" \
                  " seed-solo'"'"'s pins (lightning, torchmetrics<0.12) apply, not its own." }'
}

# --- 4. the demo's data (never fails the set-up) -------------------------------------------

data_location() {
    if [ -n "${FASHION_MNIST_DIR:-}" ]; then
        echo "$FASHION_MNIST_DIR (FASHION_MNIST_DIR)"
    elif [ -d "$FASHION_MNIST_DEBIAN" ]; then
        echo "$FASHION_MNIST_DEBIAN"
    else
        echo "not installed (the demo will not run; its test skips)"
    fi
}

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }

data_plan() {
    if [ -n "${FASHION_MNIST_DIR:-}" ] || [ -d "$FASHION_MNIST_DEBIAN" ]; then
        echo "present: $(data_location)"
    elif can_apt; then
        echo "apt-get install dataset-fashion-mnist"
    else
        echo "none (no root apt-get here)"
    fi
}

install_data() {
    if [ -n "${FASHION_MNIST_DIR:-}" ] || [ -d "$FASHION_MNIST_DEBIAN" ]; then
        return 0
    fi
    if can_apt; then
        echo "Fashion-MNIST: apt-get install dataset-fashion-mnist"
        if (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq \
                && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1; then
            return 0
        fi
        echo "Fashion-MNIST: apt-get could not install dataset-fashion-mnist."
    fi
    echo "Fashion-MNIST: not installed; the demo reads \$FASHION_MNIST_DIR, else" \
        "$FASHION_MNIST_DEBIAN (Debian: apt-get install dataset-fashion-mnist), else downloads" \
        "it with torchvision (needs internet)."
}

# --- 5. Slurm for tests/harness/test_slurm.py (never fails the set-up) ------------------------------

SLURM_TOOLS=(munged slurmctld slurmd sbatch srun scontrol scancel sinfo)

slurm_missing() { # prints the first missing Slurm or munge command; fails when none is missing
    local tool
    for tool in "${SLURM_TOOLS[@]}"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$tool"
            return 0
        fi
    done
    return 1
}

slurm_location() {
    if ! slurm_missing >/dev/null; then
        echo "$(slurmd -V 2>/dev/null || echo present), munge"  # sbatch -V needs a slurm.conf
    else
        echo "not installed ($(slurm_missing) missing; tests/harness/test_slurm.py needs it)"
    fi
}

slurm_plan() {
    if ! slurm_missing >/dev/null; then
        echo "present: $(slurm_location)"
    elif can_apt; then
        echo "apt-get install slurm-wlm munge"
    else
        echo "none (no root apt-get here: tests/harness/test_slurm.py skips)"
    fi
}

install_slurm() {
    slurm_missing >/dev/null || return 0
    if ! can_apt; then
        echo "Slurm: not installed: installing slurm-wlm and munge needs root and apt-get;" \
            "tests/harness/test_slurm.py skips."
        return 0
    fi
    echo "Slurm: apt-get install slurm-wlm munge (for tests/harness/test_slurm.py)"
    # the package lists are refreshed only when the install fails without it
    local get=(env DEBIAN_FRONTEND=noninteractive apt-get -y -qq)
    if { "${get[@]}" install slurm-wlm munge \
            || { "${get[@]}" update && "${get[@]}" install slurm-wlm munge; }; } >/dev/null 2>&1
    then
        return 0
    fi
    echo "Slurm: apt-get could not install slurm-wlm and munge; tests/harness/test_slurm.py will fail" \
        "until they are installed."
}

# --- the summary and the modes -------------------------------------------------------------

summary() { # SOLO_SOURCE
    local torch_version
    torch_version="$(cd / && "$PY" -c 'import importlib.metadata as md; print(md.version("torch"))')"
    echo "seed-solo set-up:"
    echo "  environment  $(seed_solo_env_prefix "$SEED_SOLO_ROOT") ($(seed_solo_env_why))"
    echo "  torch        $torch_version"
    echo "  solo-learn   $SOLO_VERSION, $1"
    echo "  demo data    $(data_location)"
    echo "  slurm        $(slurm_location)"
}

main() {
    case "${1:-}" in
        --plan)
            echo "environment  $(seed_solo_env_prefix "$SEED_SOLO_ROOT")$([ -x "$PY" ] || echo " (to create)") ($(seed_solo_env_why))"
            echo "installs     $(if up_to_date; then echo "none (up to date)"; else echo "setuptools<81, -e .[dev,demo,dali,export,detection]"; fi)"
            echo "solo-learn   $(solo_plan)"
            echo "demo data    $(data_plan)"
            echo "slurm        $(slurm_plan)"
            return 0 ;;
        --solo-learn-only)
            ensure_env
            install_solo
            return 0 ;;
        "") ;;
        *) echo "usage: bash scripts/setup.sh [--plan | --solo-learn-only]" >&2; exit 2 ;;
    esac

    if up_to_date; then
        install_slurm
        summary "$(sed -n 's/^solo-learn=//p' "$STAMP") (at the last set-up)"
        return 0
    fi
    ensure_env
    echo "set-up: installing this checkout (editable) and its dependencies into" \
        "$(seed_solo_env_prefix "$SEED_SOLO_ROOT") ($(seed_solo_env_why)); a minute or two the" \
        "first time"
    pip_install "setuptools<81"  # solo-learn's setup.py imports pkg_resources
    # solo-learn before the long install, so that a machine without any of its three sources
    # learns it in seconds; with --no-deps it needs nothing else installed
    install_solo
    install_editable
    install_data
    install_slurm
    printf '%s\nsolo-learn=%s\n' "$(stamp_key)" "$SOLO_SOURCE" >"$STAMP"
    summary "$SOLO_SOURCE"
}

main "$@"
