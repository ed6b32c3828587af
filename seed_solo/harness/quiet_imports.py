"""Third-party warnings a seed-solo user cannot act on, silenced before those packages load.

Importing solo-learn 1.0.6 prints about twenty warnings (timm's moved modules, timm's model
registry overwritten by solo-learn's own ConvNeXt and PoolFormer, torch's ``custom_fwd``), and
torchmetrics < 0.12 one more (``pkg_resources``); Lightning adds a few at the start of a run
that do not concern it (the frozen teacher "in eval mode", which is on purpose; ``srun``
present but unused), and solo-learn logs that resuming with a per-step schedule "might generate
issues", which seed-solo's resume handles. They came before every command's ``--help`` and at
every start.

Importing this module installs ``ignore`` filters for exactly these: by the package whose code
raised them (solo-learn, torchmetrics) or by their text. Warnings raised by seed-solo's own code,
and any other warning, still show. The commands, ``seed-solo`` and :mod:`seed_solo.journey`
import it before anything else; installing the filters is this module's one effect.
"""

from __future__ import annotations

import logging
import re
import warnings

#: (category, regex of the module the warning is raised from): solo-learn's and torchmetrics'
#: import-time warnings
BY_MODULE = (
    (UserWarning, r"(solo|torchmetrics)(\.|$)"),
    (FutureWarning, r"solo(\.|$)"),
    (DeprecationWarning, r"(solo|torchmetrics)(\.|$)"),
)
#: (category, regex of the message): what Lightning, torch and timm say at the start of a run
BY_MESSAGE = (
    (FutureWarning, r"Importing from timm\.\S+ is deprecated"),
    (UserWarning, r"The `srun` command is available on your system but is not used"),
    (UserWarning, r"Found \d+ module\(s\) in eval mode at the start of training"),
    (Warning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (UserWarning, r"'pin_memory' argument is set as true but no accelerator is found"),
    # a run without labelled validation images says itself what it skips, and why
    (UserWarning, r"You defined a `validation_step` but have no `val_dataloader`"),
)
#: solo-learn's log lines (on the root logger) that do not hold for seed-solo: a resumed run
#: re-derives its lr schedule (:mod:`seed_solo.harness.schedule`)
LOG_LINES = (r"Using scheduler_interval=step might generate issues when resuming",)


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(re.match(p, record.getMessage()) for p in LOG_LINES)


def quiet_third_party_warnings() -> None:
    """Install the filters of :data:`BY_MODULE`, :data:`BY_MESSAGE` and :data:`LOG_LINES`
    (again: no effect)."""
    for category, module in BY_MODULE:
        warnings.filterwarnings("ignore", category=category, module=module)
    for category, message in BY_MESSAGE:
        warnings.filterwarnings("ignore", message=message, category=category)
    root = logging.getLogger()
    if not any(isinstance(f, _DropLines) for f in root.filters):
        root.addFilter(_DropLines())


quiet_third_party_warnings()
