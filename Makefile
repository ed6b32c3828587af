# seed-solo: a new user needs two commands, `make demo` and `make test`; both set up first.
#   make demo              the CPU demo (Fashion-MNIST; about 16 min on 2 cores)
#   make demo QUICK=1      the whole demo pipeline on a few hundred images (about a minute)
#   make test              the test suite (pytest -q)
#   make test ARGS="-k queue"   extra arguments go to pytest (or to the demo, for make demo)
#   make setup             only the set-up (scripts/setup.sh; seconds when nothing is missing)
#   make leaderboard       every objective vs. SSL alone, 3 seeds (docs/objectives.md; QUICK=1)
# The environment: the active virtualenv or conda env (this checkout is then installed into it,
# editable; the set-up says so), else .venv in this checkout, which the set-up creates (the
# rule is in scripts/env.sh). See scripts/setup.sh for SEED_SOLO_WHEELHOUSE
# (where solo-learn 1.0.6's wheel is) and FASHION_MNIST_DIR (the demo's data).

SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
# the chosen environment's python (it exists once `make setup` has run)
PY := $(shell bash "$(ROOT)/scripts/env.sh")
ARGS ?=
QUICK ?=
QUICK_FLAG := $(if $(filter 1 yes true,$(QUICK)),--quick)

.PHONY: help setup demo test leaderboard

help:
	@sed -n '2,7s/^# \{0,1\}//p' "$(ROOT)/Makefile"
	@echo "environment: $(PY)"

setup:
	@bash "$(ROOT)/scripts/setup.sh"

demo: setup
	PYTHON="$(PY)" bash "$(ROOT)/scripts/distill/demo/seed_demo.sh" $(QUICK_FLAG) $(ARGS)

leaderboard: setup
	cd "$(ROOT)" && OMP_WAIT_POLICY=PASSIVE PYTHONWARNINGS=ignore "$(PY)" -m seed_solo.demo.leaderboard $(QUICK_FLAG) $(ARGS)

test: setup
	cd "$(ROOT)" && "$(PY)" -m pytest -q $(ARGS)
