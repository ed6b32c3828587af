"""seed-solo: SEED self-supervised distillation as a solo-learn plugin.

Importing the package registers the ``seed`` method and the extra student backbones with
solo-learn when solo-learn is installed: at once if ``solo.methods`` is already imported,
otherwise the moment it is (importing solo-learn takes seconds, which the core, the zoo
command line and the benchmarks need not pay). The core (losses, queue, teachers) works
without solo-learn.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

SOLO_AVAILABLE = importlib.util.find_spec("solo") is not None


def _register() -> None:
    from seed_solo.methods import register

    register()


class _RegisterWhenSoloLoads(importlib.abc.MetaPathFinder):
    """Runs the registration right after ``solo.methods`` executes, wherever it is imported."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001
        if fullname != "solo.methods":
            return None
        sys.meta_path.remove(self)  # one shot; the normal finders locate the module
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):  # noqa: ANN001
            exec_module(module)
            _register()

        spec.loader.exec_module = exec_and_register  # type: ignore[method-assign]
        return spec


if SOLO_AVAILABLE:
    if "solo.methods" in sys.modules:
        _register()
    elif not any(isinstance(f, _RegisterWhenSoloLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenSoloLoads())
