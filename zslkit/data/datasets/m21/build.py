"""Building an m21 dataset: choose pieces, parse them (cached), plan and render clips, write the
dataset folder with its partial annotation and complete truth."""
from __future__ import annotations

import hashlib
import json
import os
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ....errors import DataError
from ....io import write_csv, write_json
from .. import Dataset, annotations_from_lists, write_dataset
from . import catalogue, performance, production
from .banks import Banks, choose_bank, resolve
from .corpus import build_symbolic, candidates
from .knowledge import descriptions, knowledge_table
from .plans import ClipPlan, observed_tags, plan_clips
from .render import _render_job


def select_pieces(caps: Mapping[str, int], seed: int) -> dict[str, list[tuple[str, dict]]]:
    """Seeded choice of ``caps[r]`` candidate pieces per repertory (plus spares for failures)."""
    out = {}
    for rep, cap in caps.items():
        items = candidates(rep)
        rng = np.random.default_rng([seed, sum(map(ord, rep))])
        order = rng.permutation(len(items))
        out[rep] = [items[i] for i in order[: int(cap * 1.15) + 2]] if cap else []
    return out


def default_caps(n_clips: int) -> dict[str, int]:
    """Pieces per repertory: one clip per piece where the corpus allows."""
    return {r: max(4, int(round(n_clips * s))) for r, s in catalogue.shares().items()}


def render_digest(plan: ClipPlan, params: Mapping[str, Any], sfs: list[str]) -> str:
    """What a clip's audio depends on, hashed: a cached clip is reused only if this matches."""
    fields = [plan.piece_id, plan.instruments, round(plan.bpm, 6), plan.transpose, round(plan.start, 6),
              plan.velocity, round(plan.peak, 6), Path(sfs[plan.soundfont]).name, plan.seed,
              params["clip_seconds"], params["sample_rate"]]
    if plan.performance is not None or plan.production is not None:  # dry clips keep the digest they had
        fields += [plan.performance, plan.production]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


def stale_clips(out_dir: Path, plans: list[ClipPlan], params: Mapping[str, Any], sfs: list[str]) -> set[str]:
    """Clips whose cached audio was rendered from another plan (other params, other catalogue)."""
    old = out_dir / "tracks.csv"
    if not old.is_file():
        return set()
    table = pd.read_csv(old, dtype=str, keep_default_na=False)
    if "render_digest" not in table.columns:  # built before digests were kept: trust nothing
        return {p.clip_id for p in plans}
    before = dict(zip(table.track_id, table.render_digest))  # clips left out of tracks.csv count as unknown
    return {p.clip_id for p in plans if before.get(p.clip_id) != render_digest(p, params, sfs)}


def build(out_dir: str | os.PathLike, sym_dir: str | os.PathLike, params: Mapping[str, Any],
          seed: int = 0, workers: int = 0, progress: bool = True) -> tuple[Dataset, dict]:
    """Build (or resume) an m21 dataset from the resolved ``data.m21`` parameters.

    Returns the dataset and a build report (pieces parsed, skipped with reasons, clips, tags).
    """
    out_dir, sym_dir = Path(out_dir), Path(sym_dir)
    caps = {**default_caps(params["n_clips"]), **params["pieces"]}
    for rep in caps:
        catalogue.repertory(rep)  # raises naming an unknown repertory
    selection = select_pieces(caps, seed)
    manifest = build_symbolic(selection, sym_dir, workers, progress)
    pieces, failed = [], []
    for rep, items in selection.items():
        ok = [manifest[s] for s, _ in items if manifest.get(s, {}).get("ok")]
        failed += [manifest[s] for s, _ in items if s in manifest and not manifest[s]["ok"]]
        pieces += ok[: caps[rep]]
    if not pieces:
        raise DataError("m21: no score could be parsed")
    if params["production"] != "none":
        production.check(params["production_ranges"])
    banks = resolve(params["soundfonts"], params["heldout_bank"])
    sfs = banks.paths
    if progress and (banks.missing or banks.heldout is None):
        print(f"m21: {banks.note}")
    plans = plan_clips(pieces, params["n_clips"], params["clip_seconds"],
                       params["instruments_per_clip"], len(sfs), seed, sym_dir, params["instrumentation"],
                       params["free_share"])
    for plan in plans:
        draw_render(plan, params, banks)
    by_id = {p["piece_id"]: p for p in pieces}
    stale = stale_clips(out_dir, plans, params, sfs)
    jobs = []
    for plan in plans:
        out_path = out_dir / "audio" / f"{plan.clip_id}.flac"
        if plan.clip_id in stale:  # rendered before from another plan: its audio and mel are replaced
            out_path.unlink(missing_ok=True)
            (out_dir / "mels" / f"{plan.clip_id}.npy").unlink(missing_ok=True)
        if not out_path.is_file():
            jobs.append((plan, str(sym_dir / "midi" / f"{plan.piece_id}.mid"),
                         float(by_id[plan.piece_id]["quarters"]), sfs[plan.soundfont],
                         params["clip_seconds"], params["sample_rate"], out_path))
    if jobs:
        with get_context("fork").Pool(workers or os.cpu_count() or 1) as pool:
            for _ in tqdm(pool.imap_unordered(_render_job, jobs, chunksize=8), total=len(jobs),
                          desc="render", unit="clip", disable=not progress):
                pass
    ds, report = _write(out_dir, plans, by_id, params, banks, seed)
    report.update({"pieces_selected": len(pieces), "pieces_failed": len(failed),
                   "failures": [{"source": f["source"], "error": f["error"]} for f in failed],
                   "clips_rendered_now": len(jobs), "clips_replaced": len(stale)})
    write_json(out_dir / "build_report.json", report)
    return ds, report


def draw_render(plan: ClipPlan, params: Mapping[str, Any], banks: Banks) -> None:
    """The clip's bank (held out or not), performance and production, drawn from its own seed, in place."""
    if len(banks.paths) > 1:
        plan.soundfont, plan.heldout = choose_bank(plan.seed, len(banks.paths), banks.heldout,
                                                   params["heldout_share"])
    if params["performance"] != "none":
        plan.performance = performance.draw(plan.seed, plan.instruments, params["performance_ranges"])
    if params["production"] != "none":
        plan.production = production.draw(plan.seed, params["production_ranges"])


def render_record(plan: ClipPlan) -> dict[str, Any]:
    """The clip's drawn performance and production as ``tracks.csv`` columns (``perf_*``, ``prod_*``; a
    value per part joined by ``;``, an unused value empty)."""
    row: dict[str, Any] = {}
    for prefix, values in (("perf_", plan.performance), ("prod_", plan.production)):
        for key, value in (values or {}).items():
            row[prefix + key] = (";".join(str(v) for v in value) if isinstance(value, list)
                                 else "" if value is None else value)
    return row


def _write(out_dir: Path, plans: list[ClipPlan], pieces: Mapping[str, dict], params, banks: Banks, seed):
    sfs = banks.paths
    observed = [observed_tags(p, params["coverage"]) for p in plans]
    group_of = {t: g for obs in observed for g, t in obs}
    counts = pd.Series([t for obs in observed for _, t in obs]).value_counts()
    kept_tags = sorted((t for t in counts.index if counts[t] >= params["min_tag_count"]),
                       key=lambda t: (group_of[t], t))
    dropped = {t: int(counts[t]) for t in counts.index if counts[t] < params["min_tag_count"]}
    kept = set(kept_tags)
    tag_lists = [[t for _, t in obs if t in kept] for obs in observed]
    keep = [i for i, tl in enumerate(tag_lists) if tl]
    rows = []
    for i in keep:
        plan, piece = plans[i], pieces[plans[i].piece_id]
        rows.append({"track_id": plan.clip_id, "path": f"audio/{plan.clip_id}.flac",
                     "piece_id": plan.piece_id, "repertory": piece["repertory"],
                     "title": piece["title"], "source": piece["source"],
                     "instruments": ";".join(plan.instruments), "ensemble": plan.ensemble or "",
                     "bpm": round(plan.bpm, 1),
                     "onset_rate": round(plan.onset_rate, 2), "transpose": plan.transpose,
                     "soundfont": Path(sfs[plan.soundfont]).name, "heldout": int(plan.heldout),
                     "render_seed": plan.seed, "render_digest": render_digest(plan, params, sfs),
                     "tags_full": ";".join(t for g in plan.tags_full.values() for t in g), **render_record(plan)})
    tags = pd.DataFrame({"tag": kept_tags, "group": [group_of[t] for t in kept_tags]})
    meta = {"name": out_dir.name, "source": "m21", "seed": seed, "params": dict(params),
            "soundfonts": banks.files, "heldout_bank": banks.heldout_file, "banks_missing": banks.missing,
            "render": banks.note + f"; performance: {params['performance']}; production: {params['production']}",
            "licence": "music21 corpus encodings; Essen and Palestrina: non-commercial use only"}
    ds = write_dataset(out_dir, pd.DataFrame(rows), tags,
                       annotations_from_lists([tag_lists[i] for i in keep], kept_tags), meta)
    groups = dict(zip(tags.tag, tags.group))  # the builder's knowledge: side information for kinds table, sentence
    write_csv(out_dir / "knowledge.csv", knowledge_table(groups, params["knowledge"]).reset_index())
    write_csv(out_dir / "descriptions.csv", descriptions(groups))
    ensembles = pd.Series([p.ensemble or "(free draw)" for p in plans]).value_counts()
    report = {"clips_planned": len(plans), "clips_without_tags": len(plans) - len(keep),
              "tags_kept": len(kept_tags), "tags_dropped_rare": dropped,
              "ensembles": {k: int(v) for k, v in ensembles.items()},
              "banks": banks.note, "banks_missing": banks.missing,
              "clips_per_bank": {k: int(v) for k, v in
                                 pd.Series([Path(sfs[p.soundfont]).name for p in plans]).value_counts().items()},
              "clips_heldout_bank": int(sum(p.heldout for p in plans)),
              "performance": params["performance"], "production": params["production"]}
    return ds, report
