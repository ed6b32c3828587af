"""The commands' help is whole and starts without third-party warnings; ours still show."""

from __future__ import annotations

import sys
import warnings

import pytest

from tests.support.commands import run


@pytest.mark.slow
def test_knn_help_starts_without_third_party_warnings():
    # PYTHONWARNINGS=default: every warning would show (the tests' environment ignores them);
    # the knn command imports solo-learn, timm and torchmetrics, as distill and linear do
    proc = run([sys.executable, "-m", "seed_solo.knn", "--help"],
               env={"PYTHONWARNINGS": "default"})
    assert proc.stdout.startswith("usage: python -m seed_solo.knn")
    assert "Warning" not in proc.stderr, proc.stderr[:2000]


def test_every_knn_option_has_help():
    from seed_solo.knn import build_parser

    parser = build_parser()
    bare = [a.option_strings for a in parser._actions if not a.help]
    assert bare == []
    assert parser.description.endswith("--output_json writes them all.")


def test_seed_solo_help_is_whole(capsys):
    from seed_solo.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "COMMAND --help` says more about each command." in " ".join(out.split())
    for command in ("zoo", "export", "distill", "knn", "linear", "runs", "transfer"):
        assert f"    {command} " in out


def test_seed_solo_transfer_help_names_itself(capsys):
    from seed_solo.cli import main

    assert main(["transfer", "--help"]) == 0  # the cli turns argparse's exit into its code
    assert capsys.readouterr().out.startswith("usage: seed-solo transfer ")


def test_third_party_import_warnings_are_quiet_and_ours_are_not():
    from seed_solo.harness.quiet_imports import quiet_third_party_warnings

    def warn(message, category, module):
        warnings.warn_explicit(message, category, module.replace(".", "/") + ".py", 1,
                               module=module, registry={})

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_third_party_warnings()
        warn("Overwriting convnext_tiny in registry", UserWarning, "solo.backbones.convnext")
        warn("pkg_resources is deprecated as an API", UserWarning, "torchmetrics.utilities")
        warn("Importing from timm.models.helpers is deprecated", FutureWarning,
             "timm.models.helpers")
        warn("Found 57 module(s) in eval mode at the start of training.", UserWarning,
             "lightning.pytorch.loops.fit_loop")
        warn("our own warning", UserWarning, "seed_solo.harness.methods.seed")
        warn("another timm warning", UserWarning, "timm.models._builder")
    assert [str(w.message) for w in seen] == ["our own warning", "another timm warning"]


def test_solo_learns_resume_warning_is_dropped_and_other_log_lines_are_not(caplog):
    import logging

    from seed_solo.harness.quiet_imports import quiet_third_party_warnings

    quiet_third_party_warnings()
    with caplog.at_level(logging.WARNING):
        logging.warning("Using scheduler_interval=step might generate issues when resuming a "
                        "checkpoint.")
        logging.warning("another line")
    assert [r.getMessage() for r in caplog.records] == ["another line"]
