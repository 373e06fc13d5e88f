import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ZSLKIT_ROOT", str(ROOT))


def tone(freq=440.0, seconds=2.0, sr=22050, amp=0.3, noise=0.0, seed=0):
    t = np.arange(int(seconds * sr)) / sr
    y = amp * np.sin(2 * np.pi * freq * t)
    if noise:
        y = y + noise * np.random.default_rng(seed).standard_normal(len(t))
    return y.astype(np.float32)


@pytest.fixture
def wav(tmp_path):
    """Write a signal to a file and return its path."""
    def write(name, y, sr=22050, **kw):
        path = tmp_path / name
        sf.write(path, y, sr, **kw)
        return path
    return write
