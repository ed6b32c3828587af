"""The fenced shell blocks of the docs, as a user would paste them, and the substitutions that
run them on this machine's CPU with tiny data (:mod:`tests.test_docs`).

A block runs unless the line just above its fence (blank lines aside) is
``<!-- not run: why -->``. Each runnable block is joined into logical lines (``\\``
continuations), every rule of :data:`SUBSTITUTIONS` is applied in order, and the blocks of one
file run in one bash script, in order, in a fresh folder: a variable or a run one block makes is
there for the next, as for a user who pastes them one after the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from tests.support.commands import REPO

#: the pages whose shell blocks run
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: fence info strings that mark a shell block
SHELL = ("bash", "sh", "shell", "console")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<why>.+?)\s*-->$")
FENCE = re.compile(r"^```(?P<info>\S*)")


def append(command: str, text: str) -> Tuple[str, str]:
    """A rule that appends ``text`` to every logical line running ``command`` (a regex), before
    a trailing ``# comment``."""
    return (rf"^(?P<cmd>.*(?:{command}).*?)(?P<comment>\s+#\s.*)?$",
            rf"\g<cmd>{text}\g<comment>")


#: (regex, replacement), applied in this order to each logical line of a runnable block. The
#: ``$DOCS_*`` variables are set by tests/test_docs.py. Add one line per new substitution.
SUBSTITUTIONS: List[Tuple[str, str]] = [
    # this checkout's entry point (the installed console script may import another checkout)
    (r"(^|[\s(])seed-solo (?=\w)", r"\1python -m seed_solo.cli "),
    # data: ImageNet, your own folders -> the tiny folders the test writes
    (r"/data/imagenet", "$DOCS_DATA"),
    (r"\bDATA_DIR=(?!\$DOCS_DATA\b)\S+", "DATA_DIR=$DOCS_DATA"),
    (r"\bpath/to/labelled\b", "$DOCS_DATA"),
    (r"\bpath/to/images\b", "$DOCS_IMAGES"),
    (r"/data/caches?\b", "$PWD/caches"),
    # teachers: GB-sized, checksummed zoo files -> a narrow MoCo v1 file (d = 16);
    # dinov2-vits14 stays: SEED_SOLO_DOWNLOADS holds a one-block ViT-S/14 in Meta's layout
    (r"\b(TEACHER=|method_kwargs\.teacher=)(?!dinov2-vits14\b|\$)\S+", r"\1$DOCS_TEACHER"),
    # one epoch, small crops and batches, the CPU
    (r"--epochs \d+", "--epochs 1"),
    (r"(^|\s)max_epochs=\d+", r"\1max_epochs=1"),
    append(r"seed_solo\.cli distill\b", " $DOCS_JOURNEY"),
    append(r"seed_solo\.cli linear\b", " $DOCS_JOURNEY_LINEAR"),
    append(r"scripts/(?:distill|cache)/\S+\.sh|-m seed_solo\.(?:distill|cache)\b", " $DOCS_HYDRA"),
    append(r"scripts/linear/\S+\.sh\b|-m seed_solo\.linear\b", " $DOCS_LINEAR"),
    append(r"scripts/knn/\S+\.sh\b", " $DOCS_KNN"),
    # DALI only where a block asks for it (docs/dali.md); elsewhere torchvision's folder reader
    append(r"^(?!.*dali\.device=).*(?:scripts/(?:distill|linear|cache)/|-m seed_solo\.(?:distill"
           r"|linear|cache)\b)", " $DOCS_FOLDERS"),
]


@dataclass(frozen=True)
class Block:
    """A fenced shell block: its page, the line of its fence, its text, why it is not run."""

    page: Path
    line: int
    text: str
    not_run: Optional[str]

    @property
    def where(self) -> str:
        page = self.page.relative_to(REPO) if self.page.is_relative_to(REPO) else self.page
        return f"{page}:{self.line}"


def blocks(page: Path) -> List[Block]:
    """Every fenced shell block of ``page``, in order."""
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if fence.group("info") in SHELL:
            above = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()),
                         "")
            marked = NOT_RUN.match(above)
            found.append(Block(page, i + 1, "\n".join(lines[i + 1:end]),
                               marked.group("why") if marked else None))
        i = end + 1
    return found


def logical_lines(text: str) -> List[str]:
    """``text`` with ``\\`` continuations joined."""
    return re.sub(r"\s*\\\n\s*", " ", text).splitlines()


def substituted(text: str, rules: Sequence[Tuple[str, str]] = SUBSTITUTIONS) -> str:
    """``text`` with every rule applied, line by line."""
    out = []
    for line in logical_lines(text):
        for pattern, replacement in rules:
            line = re.sub(pattern, replacement, line)
        out.append(line)
    return "\n".join(out)


def script(runnable: Sequence[Block]) -> str:
    """One bash script running ``runnable`` in order; each block's start is echoed to stderr,
    so a failure names its block."""
    parts = ["set -euo pipefail"]
    for block in runnable:
        parts.append(f"echo '### block {block.where}' >&2")
        parts.append(substituted(block.text))
    return "\n".join(parts) + "\n"


def failed_block(stderr: str) -> str:
    """The block that was running when the script stopped."""
    starts = re.findall(r"^### block (\S+)$", stderr, flags=re.M)
    return starts[-1] if starts else "(before the first block)"
