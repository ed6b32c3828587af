#!/usr/bin/env bash
# The one rule for which Python environment seed-solo uses (the Makefile, scripts/setup.sh and
# scripts/lib.sh all ask this file):
#   1. the active virtualenv ($VIRTUAL_ENV), else
#   2. the active conda environment ($CONDA_PREFIX), else
#   3. .venv in this checkout (scripts/setup.sh creates it with `python3 -m venv .venv`).
# Sourced, it defines seed_solo_env_prefix and seed_solo_env_python; run, it prints the python
# path (`bash scripts/env.sh`, or `bash scripts/env.sh --prefix` for the environment's folder).
# The path is printed whether or not it exists yet.

seed_solo_env_prefix() { # [ROOT] -> the environment's folder
    local root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
    if [ -n "${VIRTUAL_ENV:-}" ]; then
        echo "$VIRTUAL_ENV"
    elif [ -n "${CONDA_PREFIX:-}" ]; then
        echo "$CONDA_PREFIX"
    else
        echo "$root/.venv"
    fi
}

seed_solo_env_why() { # -> which rule picked the environment, and how to pick another
    if [ -n "${VIRTUAL_ENV:-}" ]; then
        echo "the active virtualenv; deactivate it to use .venv in this checkout instead"
    elif [ -n "${CONDA_PREFIX:-}" ]; then
        echo "the active conda environment; conda deactivate to use .venv in this checkout instead"
    else
        echo ".venv in this checkout, as no virtualenv or conda environment is active"
    fi
}

seed_solo_env_python() { # [ROOT] -> the environment's python
    echo "$(seed_solo_env_prefix "$@")/bin/python"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
        --prefix) seed_solo_env_prefix ;;
        "") seed_solo_env_python ;;
        *) echo "usage: bash scripts/env.sh [--prefix]" >&2; exit 2 ;;
    esac
fi
