"""How much memory a loaded model holds: an estimate.

`reachable_bytes(model)` walks the Python object graph from the model (instance attributes,
containers, dataclass fields) and adds `sys.getsizeof` of every object (a numpy array's
includes the buffer it owns) and the storage of every torch tensor (each once). It is exact
for what it can see: a classifier head (sklearn arrays inside an MLflow pyfunc) or a torch
module. Inside an onnxruntime session it cannot see; a session counts as the size of the
model it was built from (its file, or its bytes), about what its weights take in memory.
Classes, modules, functions, loggers and locks are shared by every model and are not counted.
(The growth of resident memory during a load is no measure: the first load of a kind also
pays one-time imports, hundreds of MB, that unloading it never returns.)
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import types
from typing import Any

import numpy as np

MAX_OBJECTS = 200_000  # a model graph bigger than this is cut short (and under-counted)
_SHARED: tuple[type, ...] = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
    logging.Logger,
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Thread,
    threading.Event,
    threading.Condition,
)


def reachable_bytes(root: object) -> int:
    """Bytes of the objects and array buffers reachable from `root` (see module docstring)."""
    seen: set[int] = set()
    storages: set[int] = set()
    stack: list[object] = [root]
    total = 0
    while stack and len(seen) < MAX_OBJECTS:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SHARED):
            continue
        seen.add(id(obj))
        total += _own_bytes(obj, storages)
        stack.extend(_children(obj))
    return total


def _own_bytes(obj: object, storages: set[int]) -> int:
    if _is_session(obj):
        return _session_bytes(obj)
    storage = getattr(obj, "untyped_storage", None)
    if storage is not None and type(obj).__module__.startswith("torch"):
        return _tensor_bytes(storage(), storages)
    try:
        return sys.getsizeof(obj)
    except TypeError:  # some extension objects do not say
        return 0


def _tensor_bytes(storage: Any, storages: set[int]) -> int:
    pointer = int(storage.data_ptr())
    if pointer in storages:
        return 0
    storages.add(pointer)
    return int(storage.nbytes())


def _is_session(obj: object) -> bool:
    return type(obj).__module__.startswith("onnxruntime") and hasattr(obj, "_model_path")


def _session_bytes(session: Any) -> int:
    model = getattr(session, "_model_bytes", None)
    if isinstance(model, bytes | bytearray):
        return len(model)
    path = getattr(session, "_model_path", None)
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


def _children(obj: object) -> list[object]:
    if _is_session(obj):
        return []
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, list | tuple | set | frozenset):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return [obj.base] if obj.base is not None else []
    if type(obj).__module__.startswith("torch") and hasattr(obj, "untyped_storage"):
        return []
    children: list[object] = []
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        children.append(attributes)
    for name in getattr(type(obj), "__slots__", ()):
        if isinstance(name, str) and hasattr(obj, name):
            children.append(getattr(obj, name))
    return children
