"""The ``zslkit`` command: ``zslkit run PARAMS.yaml``, ``zslkit sweep SWEEP.yaml``, ``zslkit params PARAMS.yaml``,
``zslkit train PARAMS.yaml --nproc N``, ``zslkit transfer RUN PARAMS.yaml``, ``zslkit tag RUN FILE_OR_FOLDER``."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import config
from .errors import ZslkitError

# Each subcommand imports the module it works with when it runs (importlib.import_module, the one exception to
# imports at module top, allowed for this module by tests/test_architecture.py): `zslkit --help` and
# `zslkit params` need only the config, and the runner, training and transfer modules bring torch, pandas and
# papermill, seconds of start-up before any command ran.


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (its subcommands and flags; tests check the commands the docs write against it)."""
    parser = argparse.ArgumentParser(prog="zslkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute the numbered notebooks into reports/<run.name>/")
    p_run.add_argument("params", help="YAML parameter file")
    p_run.add_argument("--from", dest="start", metavar="NN|auto", help="rerun from notebook NN, keeping the "
                       "earlier stages' outputs (refused if a parameter they read changed); 'auto': from the first "
                       "stage whose parameters changed")
    p_run.add_argument("--only", metavar="NN,...", help="run only these notebooks")
    p_run.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    p_swp = sub.add_parser("sweep", help="run (or resume) a grid of runs, then compare them (notebook 06)")
    p_swp.add_argument("sweep", help="YAML sweep file (see zslkit/run/sweep.py)")
    p_swp.add_argument("--dry-run", action="store_true", help="list the runs and their missing stages only")
    p_par = sub.add_parser("params", help="print the resolved, validated parameters")
    p_par.add_argument("params", nargs="?", help="YAML parameter file (omit with --describe)")
    p_par.add_argument("--describe", action="store_true", help="list every parameter and default, and the "
                       "registered importers, side-information kinds, encoders and heads")
    p_trn = sub.add_parser("train", help="stage 03 alone (after stages 01-02), in N processes with --nproc "
                           "(torchrun: one per GPU; gloo processes on CPU); then `zslkit run PARAMS --from 03` "
                           "reports on what it trained")
    p_trn.add_argument("params", help="YAML parameter file")
    p_trn.add_argument("--nproc", type=int, help="training processes on this node (default: train.nproc)")
    p_trf = sub.add_parser("transfer", help="apply a trained run to another dataset (notebooks 01 and 07 into "
                           "reports/<run.name of PARAMS>/)")
    p_trf.add_argument("source", help="the trained run's folder (reports/<run>)")
    p_trf.add_argument("params", help="YAML parameter file of the target dataset")
    p_trf.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    p_tag = sub.add_parser("tag", help="tag audio files with a trained run")
    p_tag.add_argument("source", help="the trained run's folder (reports/<run>)")
    p_tag.add_argument("path", help="an audio file or a folder of them")
    p_tag.add_argument("--tags", help="comma-separated tags to score instead of the run's own (free-text side "
                       "information only)")
    p_tag.add_argument("--query", help="rank the files by one free-text query")
    p_tag.add_argument("--top", type=int, default=10, help="tags per file (default 10)")
    p_tag.add_argument("--model", default="joint", help="the run's joint model (default joint)")
    p_tag.add_argument("--format", choices=("table", "csv"), default="table", help="output format")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "params":
            if args.describe:
                if args.params:  # the file's run.plugins add their entries to the description
                    config.load(args.params)
                print(config.describe())
            elif args.params:
                print(config.dump(config.load(args.params)), end="")
            else:
                parser.error("params: give a YAML file or --describe")
        elif args.command == "sweep":
            folder = importlib.import_module("zslkit.run.sweep").run_sweep(args.sweep, dry_run=args.dry_run)
            if not args.dry_run:
                print(f"[zslkit] sweep report in {folder} (open {folder / 'index.html'})")
        elif args.command == "train":
            result = importlib.import_module("zslkit.model.train").train_from_file(args.params, nproc=args.nproc)
            for name, r in result.items():
                st = r["trainer"].state
                print(f"[zslkit] {name}: {len(r['curves'])} epochs, best epoch {st['best_epoch']} "
                      f"(valid loss {st['best']:.4f}), {r['trainer'].out / 'best.pt'}")
        elif args.command == "transfer":
            transfer = importlib.import_module("zslkit.transfer")
            runner = importlib.import_module("zslkit.run.runner")
            src = transfer.source_params(args.source)
            overrides = {"transfer": {"source": str(Path(args.source).resolve())},
                         "audio": {k: src["audio"][k] for k in transfer.MEL_KEYS}}
            folder = runner.run(args.params, force=args.force, overrides=overrides, pipeline="transfer")
            print(f"[zslkit] transfer written to {folder} (open {folder / 'index.html'})")
        elif args.command == "tag":
            tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None
            tagging = importlib.import_module("zslkit.tagging")
            scores, skipped = tagging.tag_files(args.source, args.path, tags, args.query, args.top, args.model)
            print(scores.to_csv(index=False) if args.format == "csv" else scores.to_string(index=False), end="\n")
            for row in skipped.itertuples():
                print(f"zslkit: skipped {row.file}: {row.reason}", file=sys.stderr)
        else:
            only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
            runner = importlib.import_module("zslkit.run.runner")
            folder = runner.run(args.params, start=args.start, only=only, force=args.force)
            print(f"[zslkit] run written to {folder} (open {folder / 'index.html'})")
    except ZslkitError as exc:
        print(f"zslkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
