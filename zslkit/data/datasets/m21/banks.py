"""The timbre banks of m21: General MIDI soundfonts of recorded samples, found by name, one held out.

``data.m21.soundfonts`` names them: ``bundled`` (TimGM6mb, in the pretty-midi wheel), the Debian banks
``fluidr3`` (fluid-soundfont-gm), ``musescore`` (musescore-general-soundfont-small), ``fluidr3mono``
(fluidr3mono-gm-soundfont), ``csound`` (csound-soundfont: csound's own GM bank), ``debian`` (the four),
or a ``.sf2``/``.sf3`` path. A named Debian bank that is not installed is left out and said
(:attr:`Banks.note`); a path that does not exist is an error.

One bank is held out (``data.m21.heldout_bank``): each clip is rendered with it with probability
``heldout_share`` and then marked ``heldout`` in ``tracks.csv`` (stage 02 keeps those clips out of
training), else with one of the other banks, uniformly. Per clip, from the clip's own seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ....errors import ParamError

#: Debian's General MIDI banks: name -> (path, package)
DEBIAN = {"fluidr3": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
          "musescore": ("/usr/share/sounds/sf3/MuseScore_General.sf3", "musescore-general-soundfont-small"),
          "fluidr3mono": ("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3", "fluidr3mono-gm-soundfont"),
          "csound": ("/usr/share/sounds/sf2/sf_GMbank.sf2", "csound-soundfont")}
#: every bank m21 knows by name, in the order of ``data.m21.soundfonts``' default
NAMES = ("bundled", *DEBIAN)


def bundled_path() -> Path:
    import pretty_midi  # the [m21] extra; it ships the bundled bank
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def find_banks(names: Iterable[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """``([(entry, resolved path)], [missing named banks, with the package that holds each])``.

    Entries resolving to one file (Debian's alternatives) are kept once. A path that does not exist
    raises :class:`ParamError`; a named Debian bank that is not installed is only listed as missing."""
    found, missing = [], []
    for name in names:
        if name == "bundled":
            found.append((name, bundled_path()))
        elif name in DEBIAN or name == "debian":
            for entry in (DEBIAN if name == "debian" else [name]):
                path, package = DEBIAN[entry]
                if Path(path).is_file():
                    found.append((entry, Path(path)))
                else:
                    missing.append(f"{entry} ({package})")
        else:
            path = Path(name).expanduser()
            if not path.is_file():
                raise ParamError(f"data.m21.soundfonts: soundfont not found: {path}")
            found.append((name, path))
    out: dict[Path, str] = {}
    for entry, path in found:
        out.setdefault(path.resolve(), entry)
    return [(e, p) for p, e in out.items()], list(dict.fromkeys(missing))


def soundfont_paths(names: Iterable[str]) -> list[Path]:
    """Resolve ``data.m21.soundfonts`` entries to files; raise naming a missing one (strict: every
    entry must be there; the builder uses :func:`resolve`, which builds with what is installed)."""
    names = list(names)
    found, missing = find_banks(names)
    if missing:
        if "debian" in names and not any(e in DEBIAN for e, _ in found):
            raise ParamError("data.m21.soundfonts: 'debian' given but none of "
                             f"{', '.join(package for _, package in DEBIAN.values())} is installed")
        raise ParamError(f"data.m21.soundfonts: not installed: {', '.join(missing)}")
    return [p for _, p in found]


@dataclass
class Banks:
    """The banks a build renders with."""

    paths: list[str]                 # resolved files
    entries: list[str]               # the data.m21.soundfonts entry each came from
    missing: list[str] = field(default_factory=list)  # named banks not installed (with their package)
    heldout: int | None = None       # index into paths of the held-out bank
    note: str = ""                   # in plain words: what is used, missing, held out

    @property
    def files(self) -> list[str]:
        return [Path(p).name for p in self.paths]

    @property
    def heldout_file(self) -> str | None:
        return None if self.heldout is None else self.files[self.heldout]


def _matches(entry: str, path: Path, wanted: str) -> bool:
    if wanted in (entry, path.name):
        return True
    given = Path(wanted).expanduser()
    return given.is_file() and given.resolve() == path


def resolve(names: Iterable[str], heldout: str | None) -> Banks:
    """The installed banks among ``names`` and the held-out one (module doc), with a note saying plainly
    which were missing and what is held out (another installed bank when ``heldout`` is missing;
    none when only one bank is there)."""
    found, missing = find_banks(names)
    if not found:
        raise ParamError("data.m21.soundfonts: no bank to render with (add 'bundled')")
    entries, paths = [e for e, _ in found], [p for _, p in found]
    banks = Banks([str(p) for p in paths], entries, missing)
    words = [f"timbre banks used: {', '.join(banks.files)}"]
    if missing:
        words.append(f"not installed, left out: {', '.join(missing)} (Debian: apt-get install "
                     f"{' '.join(m.split(' (')[1].rstrip(')') for m in missing)}; make demo does it where it can)")
    if heldout is not None:
        hit = [i for i, (e, p) in enumerate(found) if _matches(e, p, heldout)]
        if len(paths) < 2:
            words.append(f"only one bank: nothing held out (asked for {heldout})")
        elif hit:
            banks.heldout = hit[0]
            words.append(f"held out: {banks.files[hit[0]]}")
        else:
            banks.heldout = len(paths) - 1
            words.append(f"held out: {banks.files[-1]}, since the bank asked for ({heldout}) is not installed")
    else:
        words.append("nothing held out (data.m21.heldout_bank: null)")
    banks.note = "; ".join(words)
    return banks


def choose_bank(seed: int, n_banks: int, heldout: int | None, share: float) -> tuple[int, bool]:
    """A clip's bank from its own seed: the held-out one with probability ``share``, else one of the
    others uniformly (with no held-out bank, one of all). One bank: that one, with no draw."""
    if n_banks < 2:
        return 0, False
    rng = np.random.default_rng([seed, 23])
    u, v = rng.random(2)
    if heldout is not None and u < share:
        return heldout, True
    others = [i for i in range(n_banks) if i != heldout]
    return others[min(int(v * len(others)), len(others) - 1)], False
