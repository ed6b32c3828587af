"""seed-solo: SEED self-supervised distillation as a solo-learn plugin.

Importing the package registers the ``seed`` method and the extra student backbones with
solo-learn when solo-learn is installed; the core (losses, queue, teachers) works without it.
"""

__version__ = "0.1.0"


def _register() -> bool:
    import importlib.util

    if importlib.util.find_spec("solo") is None:
        return False
    from seed_solo.methods import register

    register()
    return True


SOLO_AVAILABLE = _register()
