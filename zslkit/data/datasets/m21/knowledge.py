"""m21's own knowledge of its tags, as side information: an attribute table and short descriptions.

Both come from the builder's catalogue (instruments, ensembles, forms, repertories) and never
from clip labels, so they are fair side information for unseen tags:

- ``knowledge.csv``: a tag x attribute 0/1 table (the class-attribute matrix of vision zero-shot
  benchmarks), read by the side-information kind ``table``. Instruments carry their family,
  excitation, register and the ensembles they play in; ensembles their parts' families and
  excitations and their size; forms their styles and regions; styles, origins, composers, eras,
  meters, modes and tempi their own kind of attribute.
- ``descriptions.csv``: ``tag,text``, one English sentence per tag from the same facts, read by the
  side-information kind ``sentence`` (``sideinfo.sentence.descriptions``).

The table comes in two forms (``data.m21.knowledge``):

- ``flat``: each tag's own facts only (:func:`attributes`). Four pairs of instruments have the same row
  (marimba and vibraphone, for one), a broad tag is one column (``struck`` is ``excitation:struck``), and a
  narrow tag's identity column (``composer:bach``) is in no other row, so it is never trained when that tag
  is unseen.
- ``relations`` (:func:`relations`): every tag also has its own column (an instrument ``instrument:<name>``),
  and a tag's row marks every tag it is a fact of: ``strings`` marks ``instrument:violin`` and
  ``ensemble:string quartet`` because violin's and string quartet's rows hold ``family:strings``;
  an era, style or origin marks the forms, composers and origins that have it; a size tag (``duet``) marks
  the ensembles of its size. The relations are the catalogue's, read in both directions; nothing comes from clip labels.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from ....errors import ParamError
from . import catalogue


def _repertory_facts() -> dict[str, dict[str, set]]:
    """What the corpus says about forms, origins and composers: their eras, regions and styles."""
    facts: dict[str, dict[str, set]] = {}

    def add(tag, key, value):
        if tag and value:
            facts.setdefault(tag, {}).setdefault(key, set()).add(value)

    for rep in catalogue.repertories().values():
        meta = rep.get("meta", {})
        for tag in (meta.get("form"), meta.get("composer"), meta.get("origin")):
            for style in rep.get("styles", []):
                add(tag, "style", style)
            add(tag, "era", meta.get("era"))
            add(tag, "region", meta.get("origin"))
        for form in (rep.get("prefix_forms") or {}).values():
            add(form, "region", meta.get("origin"))
    for form, styles in catalogue.form_styles().items():
        for style in styles:
            add(form, "style", style)
    for origin, styles in catalogue.origin_styles().items():
        for style in styles:
            add(origin, "style", style)
    return facts


def attributes(tag: str, group: str) -> list[str]:
    """The catalogue's attributes of one tag (``kind:value`` strings)."""
    insts = {i.name: i for i in catalogue.instruments()}
    if group == "instrument" and tag in insts:
        i = insts[tag]
        out = [f"register:{i.register}"]
        out += [f"family:{i.family}"] if i.family else ["family:voice"]
        out += [f"excitation:{i.excitation}"] if i.excitation else []
        out += [f"ensemble:{name}" for name in catalogue.templates() if tag in catalogue.template_instruments(name)]
        return out
    if group == "family":
        return [f"family:{tag}"]
    if group == "excitation":
        return [f"excitation:{tag}"]
    if group == "ensemble":
        sizes = {v: k for k, v in catalogue.ensembles().items()}
        if tag in sizes:
            return [f"size:{sizes[tag]}"]
        for name, t in catalogue.templates().items():
            if t["tag"] == tag:
                parts = t.get("play") or t["pool"]
                members = [insts[p] for p in dict.fromkeys(parts)]
                out = [f"ensemble:{name}", f"size:{len(parts) if 'play' in t else t['size'][1]}"]
                out += sorted({f"family:{m.family or 'voice'}" for m in members})
                out += sorted({f"excitation:{m.excitation}" for m in members if m.excitation})
                return out
        return []
    facts = _repertory_facts().get(tag, {})
    own = {"form": "form", "style": "style", "origin": "region", "composer": "composer", "era": "era",
           "meter": "meter", "mode": "mode", "tempo": "tempo"}.get(group)
    out = [f"{own}:{tag}"] if own else []
    for key in ("style", "era", "region"):
        out += [f"{key}:{v}" for v in sorted(facts.get(key, ())) if f"{key}:{v}" not in out]
    if group == "form" and "style:dance" in out:
        out.append("meter:" + ("triple" if tag in ("jig", "slip jig", "waltz") else "duple"))
    return out


def own_column(tag: str, group: str, facts: list[str]) -> str | None:
    """The column that names ``tag`` itself: ``instrument:<tag>`` for an instrument, else the first of its
    :func:`attributes` (``family:strings``, ``size:2`` for ``duet``, ``form:jig``); None when it has none."""
    if group == "instrument":
        return f"instrument:{tag}"
    return facts[0] if facts else None


def relations(tags: Mapping[str, str]) -> dict[str, list[str]]:
    """Each tag's :func:`attributes`, its own column (:func:`own_column`) and the own columns of the tags
    it is a fact of (the tags whose attributes hold its own column); a size tag also marks every ensemble
    template of its size. ``{tag: [column, ...]}`` for the given ``{tag: group}``."""
    flat = {t: attributes(t, g) for t, g in tags.items()}
    own = {t: own_column(t, g, flat[t]) for t, g in tags.items()}
    sizes = {v: k for k, v in catalogue.ensembles().items()}
    out = {}
    for t, g in tags.items():
        cols = list(flat[t])
        if own[t] and own[t] not in cols:
            cols.insert(0, own[t])
        cols += [own[u] for u in tags if u != t and own[u] and own[t] in flat[u] and own[u] not in cols]
        if g == "ensemble" and t in sizes:
            for name, tpl in catalogue.templates().items():
                n = len(tpl["play"]) if "play" in tpl else tpl["size"][1]
                if n == sizes[t] and f"ensemble:{name}" not in cols:
                    cols.append(f"ensemble:{name}")
        out[t] = cols
    return out


def knowledge_table(tags: Mapping[str, str], form: str = "flat") -> pd.DataFrame:
    """``tag`` -> 0/1 attributes for the given ``{tag: group}``; columns sorted, index ``tag``.

    ``form``: ``flat`` (each tag's :func:`attributes`) or ``relations`` (:func:`relations`).
    """
    if form not in ("flat", "relations"):
        raise ParamError(f"data.m21.knowledge: {form!r} is not a form of the table; flat or relations")
    attrs = relations(tags) if form == "relations" else {t: attributes(t, g) for t, g in tags.items()}
    columns = sorted({a for v in attrs.values() for a in v})
    table = pd.DataFrame(0, index=pd.Index(list(tags), name="tag"), columns=columns, dtype=int)
    for t, v in attrs.items():
        table.loc[t, v] = 1
    return table


def description(tag: str, group: str) -> str:
    """One English sentence about a tag from the same facts as :func:`attributes`."""
    a = attributes(tag, group)
    kind = {k: [x.split(":", 1)[1] for x in a if x.startswith(k + ":")] for k in
            ("family", "excitation", "register", "ensemble", "size", "style", "era", "region")}
    if group == "instrument":
        played = ", ".join(kind["ensemble"]) or "solo"
        voice = kind["family"] == ["voice"]
        what = "a group of singers" if voice else (
            f"a {kind['register'][0]}-pitched {' '.join(kind['excitation'])} "
            f"{kind['family'][0].removesuffix('s')} instrument")
        return f"{tag}: {what}, heard in {played}"
    if group in ("family", "excitation"):
        members = [i.name for i in catalogue.instruments()
                   if (i.family if group == "family" else i.excitation) == tag]
        return f"{tag}: instruments such as {', '.join(members[:5])}"
    if group == "ensemble":
        if kind["ensemble"]:
            t = catalogue.templates()[kind["ensemble"][0]]
            return f"{tag}: an ensemble of {', '.join(dict.fromkeys(t.get('play') or t['pool']))}"
        return f"{tag}: music played by {kind['size'][0] if kind['size'] else 'several'} instrument parts"
    parts = [f"{group} {tag}"]
    key = {"style": "style", "era": "era", "origin": "region"}.get(group)
    if key:  # the narrower tags this one holds for
        members = sorted(t for t, f in _repertory_facts().items() if tag in f.get(key, ()) and t != tag)
        parts.append(f"such as {', '.join(members)}" if members else "")
    if kind["style"]:
        parts.append(f"{' and '.join(v for v in kind['style'] if v != tag)} music".strip())
    if kind["region"]:
        parts.append(f"from {', '.join(v for v in kind['region'] if v != tag) or tag}")
    if kind["era"]:
        parts.append(f"of the {' or '.join(v for v in kind['era'] if v != tag) or tag} era")
    return f"{tag}: " + ", ".join(p for p in parts if p and p != "music")


def descriptions(tags: Mapping[str, str]) -> pd.DataFrame:
    """``tag,text`` for the given ``{tag: group}``."""
    return pd.DataFrame({"tag": list(tags), "text": [description(t, g) for t, g in tags.items()]})
