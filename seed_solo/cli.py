"""``seed-solo``: the command line. ``seed-solo zoo list|info NAME|download NAME...|verify`` and
``seed-solo export RUN_DIR_OR_CKPT --to timm|torchvision|onnx|detectron2 OUT``."""

from __future__ import annotations

import argparse
import sys
from typing import List, Sequence

from seed_solo.core.errors import exit_on_expected
from seed_solo.teachers import download, zoo


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
    from seed_solo.export import TOLERANCE, export  # torch, timm and onnx: only for export

    done = export(args.source, args.to, args.out)
    print(f"wrote {done.path} ({done.target} {done.name}); max |diff| against the student "
          f"{done.max_diff:.1e} (<= {TOLERANCE})")
    print(f"load it: {done.how.replace('PATH', repr(str(done.path)))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seed-solo", description=__doc__.splitlines()[0])
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
    p.add_argument("--to", required=True, choices=["timm", "torchvision", "onnx", "detectron2"])
    p.add_argument("out", metavar="OUT", help="the file to write (.pth, .onnx, or .pkl)")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; the exit code (an expected failure: one ``error:`` line
    and 2)."""
    args = build_parser().parse_args(argv)
    try:
        return exit_on_expected(args.func, args)
    except SystemExit as stop:
        return int(stop.code or 0)


if __name__ == "__main__":
    sys.exit(main())
