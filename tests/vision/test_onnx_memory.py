"""Every onnxruntime session the platform opens shares one CPU arena (`onnx_memory`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ml_platform.vision.embedders.onnx_memory import session_options

# Opens `sessions` sessions of the model, runs each on a batch of 8, prints the RSS growth
# (KB) past the first session: what each further session holds.
GROWTH = """
import sys, numpy as np, onnxruntime as ort
from ml_platform.vision.embedders.onnx_memory import session_options
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
def opened():
    options = session_options() if sys.argv[2] == 'shared' else ort.SessionOptions()
    session = ort.InferenceSession(sys.argv[1], options, providers=['CPUExecutionProvider'])
    tensor = session.get_inputs()[0]
    shape = [8, *(d if isinstance(d, int) else 224 for d in tensor.shape[1:])]
    session.run(None, {tensor.name: np.zeros(shape, np.float32)})
    return session
sessions = [opened()]
start = rss()
sessions += [opened() for _ in range(3)]
print(rss() - start)
"""


def run(session: ort.InferenceSession, pixels: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: pixels})[0])


def test_shared_sessions_give_what_a_session_of_its_own_gives(efficientnet_onnx: Path) -> None:
    pixels = np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)
    own = ort.InferenceSession(str(efficientnet_onnx), providers=["CPUExecutionProvider"])
    options = session_options()
    assert options.get_session_config_entry("session.use_env_allocators") == "1"
    cpu = ["CPUExecutionProvider"]
    shared = [ort.InferenceSession(str(efficientnet_onnx), session_options(), providers=cpu)
              for _ in range(2)]  # fmt: skip
    expected = run(own, pixels)
    for session in shared:
        np.testing.assert_allclose(run(session, pixels), expected, rtol=1e-4, atol=1e-5)


def growth_kb(model: Path, how: str) -> int:
    out = subprocess.run([sys.executable, "-c", GROWTH, str(model), how], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return int(out.split()[-1])


def test_further_sessions_hold_less_with_one_arena(efficientnet_onnx: Path) -> None:
    """Each session with an arena of its own keeps its batch's peak; shared, one peak."""
    shared, own = growth_kb(efficientnet_onnx, "shared"), growth_kb(efficientnet_onnx, "own")
    assert shared < 0.7 * own, (shared, own)
