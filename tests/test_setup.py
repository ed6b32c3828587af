"""The set-up (Makefile, scripts/env.sh, scripts/setup.sh, scripts/lib.sh): which environment,
which solo-learn source, and the one message when none works. Fast, offline, and nothing is
installed into the environment running the tests (only into throwaway venvs)."""

import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from tests.support.commands import REPO

SCRIPTS = ("env.sh", "setup.sh", "lib.sh")
WHEEL = "solo_learn-1.0.6-py3-none-any.whl"


def clean_env(**extra) -> dict:
    """The caller's environment without an active env or a wheelhouse, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHON", "SEED_SOLO_WHEELHOUSE",
                        "SEED_SOLO_GIT_URL")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def bash(*args, cwd=REPO, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *map(str, args)], cwd=cwd, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


def copy_checkout(root: Path) -> Path:
    """The set-up scripts alone in a folder of their own: ``root/checkout/scripts``."""
    scripts = root / "checkout" / "scripts"
    scripts.mkdir(parents=True)
    for name in SCRIPTS:
        shutil.copy(REPO / "scripts" / name, scripts / name)
    return root / "checkout"


def plan(checkout: Path, **env) -> dict:
    out = bash(checkout / "scripts" / "setup.sh", "--plan", cwd=checkout, **env)
    assert out.returncode == 0, out.stderr
    return dict(line.split(None, 1) if " " in line else (line, "")
                for line in out.stdout.replace("demo data", "data").splitlines())


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory) -> Path:
    """A venv without pip and without solo-learn."""
    path = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


# --- which environment ---------------------------------------------------------------------

def test_env_rule_virtualenv_then_conda_then_dot_venv():
    def python(**env):
        out = bash("scripts/env.sh", **env)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert python(VIRTUAL_ENV="/v", CONDA_PREFIX="/c") == "/v/bin/python"
    assert python(CONDA_PREFIX="/c") == "/c/bin/python"
    assert python() == f"{REPO}/.venv/bin/python"
    assert bash(REPO / "scripts/env.sh", "--prefix", cwd="/").stdout.strip() == f"{REPO}/.venv"


def test_the_set_up_says_which_environment_it_installs_into_and_why(tmp_path):
    checkout = copy_checkout(tmp_path)
    assert plan(checkout, VIRTUAL_ENV="/v")["environment"] == (
        "/v (to create) (the active virtualenv; deactivate it to use .venv in this checkout "
        "instead)")
    assert plan(checkout)["environment"].endswith(
        "(.venv in this checkout, as no virtualenv or conda environment is active)")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_makefile_uses_the_env_rule_and_passes_quick_and_args():
    def dry(*args, **env):
        out = subprocess.run(["make", "-n", "-C", str(REPO), *args], env=clean_env(**env),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    demo = dry("demo", "QUICK=1", VIRTUAL_ENV="/v")
    assert 'PYTHON="/v/bin/python" bash' in demo and "seed_demo.sh\" --quick" in demo
    assert "scripts/setup.sh" in demo  # demo sets up first
    assert "--quick" not in dry("demo")
    test = dry("test", "ARGS=-k queue")
    assert f'"{REPO}/.venv/bin/python" -m pytest -q -k queue' in test
    assert "scripts/setup.sh" in test


def test_lib_sh_defaults_to_the_checkouts_venv_and_PYTHON_wins(tmp_path):
    checkout = copy_checkout(tmp_path)
    show = ["-c", f'source "{checkout}/scripts/lib.sh"; echo "$PYTHON"']
    assert bash(*show).stdout.strip() == "python"  # no .venv yet: python on PATH
    venv_python = checkout / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    assert bash(*show).stdout.strip() == str(venv_python)
    assert bash(*show, PYTHON="/my/python").stdout.strip() == "/my/python"
    assert bash(*show, VIRTUAL_ENV="/v").stdout.strip() == "python"  # /v/bin/python is absent


# --- which solo-learn source ---------------------------------------------------------------

def test_plan_wheelhouse_beside_checkout_else_git(tmp_path, bare_venv):
    checkout = copy_checkout(tmp_path)
    assert plan(checkout, VIRTUAL_ENV=bare_venv)["solo-learn"].startswith("(c) git https://github")
    (tmp_path / "shared" / "wheels").mkdir(parents=True)
    assert plan(checkout, VIRTUAL_ENV=bare_venv)["solo-learn"] == \
        f"(b) wheelhouse {tmp_path}/shared/wheels"
    # SEED_SOLO_WHEELHOUSE beats the folder beside the checkout; relative to the checkout
    (tmp_path / "mine").mkdir()
    assert plan(checkout, VIRTUAL_ENV=bare_venv, SEED_SOLO_WHEELHOUSE="../mine")["solo-learn"] \
        == f"(b) wheelhouse {tmp_path}/mine"
    # the plan neither creates .venv nor writes a stamp
    plan(checkout)
    assert sorted(p.name for p in checkout.iterdir()) == ["scripts"]


def test_plan_for_this_checkout(bare_venv):
    shared = REPO.parent / "shared" / "wheels"
    expected = f"(b) wheelhouse {shared.resolve()}" if shared.is_dir() else "(c) git"
    assert plan(REPO, VIRTUAL_ENV=bare_venv)["solo-learn"].startswith(expected)
    try:
        here = metadata.version("solo-learn")
    except metadata.PackageNotFoundError:
        here = None
    if here == "1.0.6":  # the environment running the tests: nothing to install
        assert plan(REPO, VIRTUAL_ENV=sys.prefix)["solo-learn"] == "(a) already installed"


def test_no_source_works_one_message_naming_all_three(tmp_path_factory):
    venv = tmp_path_factory.mktemp("pip") / "venv"  # with pip, so (b) and (c) really run pip
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    empty = tmp_path_factory.mktemp("empty_wheelhouse")
    nowhere = f"file://{tmp_path_factory.mktemp('no_git')}/solo-learn"
    start = time.time()
    out = bash("scripts/setup.sh", "--solo-learn-only", VIRTUAL_ENV=venv,
               SEED_SOLO_WHEELHOUSE=empty, SEED_SOLO_GIT_URL=nowhere)
    assert time.time() - start < 60
    assert out.returncode != 0
    err = out.stderr
    assert err.count("error:") == 1 and "solo-learn 1.0.6" in err
    assert "(a) an installed solo-learn 1.0.6: found none" in err
    assert f"(b) a wheelhouse: no solo-learn 1.0.6 in {empty}" in err
    assert f"(c) git: {nowhere} is not reachable" in err
    assert f"set SEED_SOLO_WHEELHOUSE to a folder holding {WHEEL}" in err
    assert not list(venv.glob("lib/python*/site-packages/solo*"))
