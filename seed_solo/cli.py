"""``seed-solo``: the command line.

``seed-solo zoo list|info NAME|download NAME...|verify`` (the teachers), ``seed-solo export
RUN_DIR_OR_CKPT [--to auto|timm|torchvision|onnx|detectron2] [OUT]``, ``seed-solo runs
[FOLDER]`` and ``seed-solo transfer RUN_DIR ... --datasets NAME=PATH,...``
(:mod:`seed_solo.transfer`).
"""

from __future__ import annotations

# first: third-party import warnings off before solo-learn, timm and torchmetrics load
from seed_solo.harness import quiet_imports  # noqa: F401

# isort: split

import argparse
import sys
import time
from typing import Any, Dict, List, Sequence

from seed_solo.core.errors import MissingFileError, exit_on_expected
from seed_solo.teachers import download, zoo

DESCRIPTION = ("seed-solo: distil a frozen self-supervised teacher into a small student (SEED), "
               "evaluate it, export it, and manage teachers and runs. `seed-solo COMMAND --help` "
               "says more about each command.")


def _table(rows: List[List[str]], header: List[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in [header, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def cmd_list(args: argparse.Namespace) -> int:
    reg = zoo.registry(args.zoo_file)
    rows = []
    for e in reg.values():
        there = download.downloaded_path(e, args.download_dir).is_file()
        rows.append([e.name, e.arch, e.method, _fmt(e.epochs), str(e.embed_dim), _fmt(e.top1),
                     e.format, "yes" if there else "no"])
    print(_table(rows, ["name", "arch", "method", "epochs", "dim", "top1", "format", "downloaded"]))
    print(f"\ndownload folder: {download.download_dir(args.download_dir)}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    e = zoo.registry(args.zoo_file).get_entry(args.name)
    path = download.downloaded_path(e, args.download_dir)
    for key in ("name", "method", "arch", "epochs", "format", "embed_dim", "input_norm", "top1",
                "licence", "checksum", "gated", "file", "url", "mirrors", "source", "note"):
        value = getattr(e, key)
        if key == "mirrors":
            value = ", ".join(value) if value else None
        print(f"{key + ':':12s}{_fmt(value)}")
    print(f"{'downloaded:':12s}{path if path.is_file() else 'no (would be ' + str(path) + ')'}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    reg = zoo.registry(args.zoo_file)
    entries = [reg.get_entry(n) for n in args.names]  # every name checked before any download
    for e in entries:
        print(f"{e.name}: {download.fetch(e, args.download_dir)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Re-hash downloaded teachers: against the published checksum, else the sha256 recorded when
    the file arrived; a file nobody could vouch for is said to be unverified."""
    reg = zoo.registry(args.zoo_file)
    entries = [reg.get_entry(n) for n in args.names] if args.names else list(reg.values())
    bad = checked = 0
    for e in entries:
        path = download.downloaded_path(e, args.download_dir)
        if not path.is_file():
            if args.names:
                print(f"{e.name}: not downloaded ({path})")
                bad += 1
            continue
        checked += 1
        record = download.recorded(path)
        if e.checksum is not None:
            expected, mismatch = e.checksum, download.verify(path, e.checksum)
        elif record is not None:
            expected = f"sha256:{record['sha256'][:16]}..., recorded from {record['source']}"
            mismatch = download.verify(path, f"sha256:{record['sha256']}")
        else:
            print(f"{e.name}: UNVERIFIED: no published checksum and no record of its arrival; "
                  f"sha256 {download.file_digest(path, 'sha256')}")
            continue
        if mismatch is None:
            print(f"{e.name}: OK ({expected})")
        else:
            bad += 1
            print(f"{e.name}: MISMATCH: expected {expected}, got {mismatch}; delete {path} "
                  f"and run `seed-solo zoo download {e.name}`")
    if checked == 0 and not args.names:
        print(f"nothing downloaded in {download.download_dir(args.download_dir)}")
    return 1 if bad else 0


def cmd_export(args: argparse.Namespace) -> int:
    from seed_solo.export import export  # torch, timm and onnx: only for export

    print("\n".join(export(args.source, args.to, args.out).report()))
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    from seed_solo.transfer import main as transfer  # torch and the data sets: only for transfer

    transfer(args.rest, prog="seed-solo transfer")  # its own parser: options and --help too
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """The run folders under a folder, oldest first; ``--latest``: the newest one's path."""
    from seed_solo.runs.listing import find_runs, latest_run

    if args.latest:
        folder = latest_run(args.folder, args.method)
        if folder is None:
            raise MissingFileError(
                f"no run folder with a checkpoint under {args.folder}"
                + (f" of method {args.method}" if args.method else "")
                + "; pass the folder runs were written to (checkpoint.dir, or seed-solo distill "
                "--out).")
        print(folder)
        return 0
    found = find_runs(args.folder, args.method)
    if not found:
        print(f"no run folders (folders with args.json) under {args.folder}")
        return 0
    rows = [[time.strftime("%Y-%m-%d %H:%M", time.localtime(r.time)), str(r.folder), r.method,
             r.student, _fmt(r.teacher), f"{r.epochs_done}/{_fmt(r.max_epochs)}", r.status,
             r.identity] for r in found]
    print(_table(rows, ["last write", "run folder", "method", "student", "teacher", "epochs",
                        "status", "identity"]))
    print("\noldest first. A stopped run resumes when its command is rerun; runs with the same "
          "identity have the same settings. The newest: seed-solo runs FOLDER --latest")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from seed_solo.journey import distill  # solo-learn, Lightning: only for these commands

    distill(args.data, args.teacher, args.student, args.out, epochs=args.epochs,
            objective=args.objective, export=args.export, crop=args.crop,
            batch_size=args.batch_size, fresh=args.fresh, overrides=args.overrides)
    return 0


def cmd_knn(args: argparse.Namespace) -> int:
    from seed_solo.journey import knn

    knn(args.run, args.data, k=args.k, temperature=args.temperature)
    return 0


def cmd_linear(args: argparse.Namespace) -> int:
    from seed_solo.journey import linear

    linear(args.run, args.data, epochs=args.epochs, batch_size=args.batch_size,
           overrides=args.overrides)
    return 0


OVERRIDES_HELP = ("hydra overrides of the config, applied last, as for the scripts: KEY=VALUE, "
                  "+KEY=VALUE for a key the config lacks")


def add_journey(sub: Any) -> Dict[str, argparse.ArgumentParser]:
    """``seed-solo distill | knn | linear | runs``: the journey from a folder of images to an
    evaluated student (:mod:`seed_solo.journey`), and the runs it made."""
    p = sub.add_parser("distill", help="distil a teacher into a student on a folder of images, "
                       "in one command (settings picked for this machine)",
                       description="Distil TEACHER into STUDENT on the images of DATA (flat, one "
                       "sub-folder per class, or train/ and val/); the run goes to "
                       "OUT/seed/<run>/. Prints the settings it chose, one line per epoch with "
                       "the time left, and at the end where the results are and what to run "
                       "next. docs/journey.md")
    p.add_argument("data", metavar="DATA", help="the folder of images")
    p.add_argument("--teacher", required=True,
                   help="zoo name (seed-solo zoo list), checkpoint file, url, or timm:NAME")
    p.add_argument("--student", default="resnet18",
                   help="resnet18 (default), resnet34, mobilenetv3_large, efficientnet_b0, "
                   "or timm:NAME / torchvision:NAME")
    p.add_argument("--out", default="runs/seed",
                   help="the folder of the runs (default runs/seed): OUT/seed/<run>/")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the config's 200)")
    p.add_argument("--objective", default="seed", help="the distillation objective (seed)")
    p.add_argument("--export", default=None, choices=["auto", "onnx", "timm", "torchvision"],
                   help="export the student when done (auto: the format that fits it)")
    p.add_argument("--crop", type=int, default=None,
                   help="training crop in px (default 224; a ViT teacher needs a multiple of "
                   "its patch)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per device and step (default 32, fewer for few images)")
    p.add_argument("--fresh", action="store_true",
                   help="a new run even when OUT holds one of the same settings (default: "
                   "resume it)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    p.set_defaults(func=cmd_distill)
    journey = {"distill": p}

    for name, what in (("knn", "weighted kNN top-1 (k=20, cosine, T=0.07)"),
                       ("linear", "linear evaluation (solo-learn's protocol)")):
        p = sub.add_parser(name, help=f"{what} of a run's student on labelled images",
                           description=f"{what} of the student of RUN_DIR on DATA/train and "
                           f"DATA/val (one sub-folder per class); prints where the results "
                           "are. The teacher is never needed.")
        p.add_argument("run", metavar="RUN_DIR", help="the run folder (or a .ckpt in it)")
        p.add_argument("data", metavar="DATA", help="a folder with train/ and val/")
        if name == "knn":
            p.add_argument("--k", type=int, default=20, help="neighbours (default 20)")
            p.add_argument("--temperature", type=float, default=0.07,
                           help="temperature of the vote weights (default 0.07)")
            p.set_defaults(func=cmd_knn)
        else:
            p.add_argument("--epochs", type=int, default=None,
                           help="epochs (default: the config's 100)")
            p.add_argument("--batch-size", type=int, default=None,
                           help="images per step (default 256, fewer for few images)")
            p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
            p.set_defaults(func=cmd_linear)
        journey[name] = p

    p = sub.add_parser("runs", help="the run folders under a folder, oldest first",
                       description="Every run folder (with args.json) under FOLDER, oldest "
                       "first: last write, method, student, teacher, epochs done of all, "
                       "status and identity (the same identity: the same settings).")
    p.add_argument("folder", metavar="FOLDER", nargs="?", default="trained_models",
                   help="where runs were written: checkpoint.dir, or seed-solo distill --out "
                   "(default trained_models)")
    p.add_argument("--method", default=None, help="only runs of this method (seed, linear...)")
    p.add_argument("--latest", action="store_true",
                   help="print only the folder of the newest run with a checkpoint")
    p.set_defaults(func=cmd_runs)
    return journey


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seed-solo", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    zp = sub.add_parser("zoo", help="named teachers: list, info, download, verify")
    zp.add_argument("--zoo-file", default=None,
                    help=f"a YAML/JSON file of your own entries (default: ${zoo.ENV_ZOO})")
    zp.add_argument("--download-dir", "--cache-dir", dest="download_dir", default=None,
                    help=f"the download folder (default: ${download.ENV_DOWNLOADS} or "
                    "~/.cache/seed_solo; --cache-dir is its former name)")
    zsub = zp.add_subparsers(dest="zoo_command", required=True)
    zsub.add_parser("list", help="a table of the known teachers").set_defaults(func=cmd_list)
    p = zsub.add_parser("info", help="every field of one teacher")
    p.add_argument("name")
    p.set_defaults(func=cmd_info)
    p = zsub.add_parser("download", help="download (and verify) teachers into the download folder")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=cmd_download)
    p = zsub.add_parser("verify", help="re-hash downloaded teachers against their checksums")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("export", help="write a run's student backbone for timm, torchvision, "
                       "ONNX or detectron2 (no teacher needed)")
    p.add_argument("source", metavar="RUN_DIR_OR_CKPT",
                   help="a run folder (its last checkpoint is taken) or a .ckpt inside one")
    p.add_argument("--to", default="auto", choices=["auto", "timm", "torchvision", "onnx",
                                                      "detectron2"],
                   help="auto (default): timm for a timm student, torchvision for a "
                   "torchvision one, else onnx")
    p.add_argument("out", metavar="OUT", nargs="?", default=None,
                   help="the file to write (default: student.pth, .onnx or .pkl "
                   "(detectron2) in the run folder)")
    p.set_defaults(func=cmd_export)
    parser.intermixed = {"export": p, **add_journey(sub)}  # type: ignore[attr-defined]
    p = sub.add_parser("transfer", add_help=False, help="transfer classification with frozen "
                       "features on several data sets (seed-solo transfer --help)")
    p.add_argument("rest", nargs=argparse.REMAINDER, metavar="RUN_DIR ... --datasets NAME=PATH")
    p.set_defaults(func=cmd_transfer)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; the exit code (an expected failure: one ``error:`` line
    and 2)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # commands with an optional positional after options: argparse's intermixed parsing
    sub = parser.intermixed.get(argv[0]) if argv else None  # type: ignore[attr-defined]
    if argv[:1] == ["transfer"]:  # every later argument, options included, is transfer's
        args = argparse.Namespace(func=cmd_transfer, rest=argv[1:])
    else:
        args = sub.parse_intermixed_args(argv[1:]) if sub else parser.parse_args(argv)
    try:
        return exit_on_expected(args.func, args)
    except SystemExit as stop:
        return int(stop.code or 0)


if __name__ == "__main__":
    sys.exit(main())
