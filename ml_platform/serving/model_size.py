"""How much memory a loaded model holds: an estimate, by two measures.

`reachable_bytes(model)` walks the Python object graph from the model (instance attributes,
containers, dataclass fields) and adds `sys.getsizeof` of every object (a numpy array's
includes the buffer it owns) and the storage of every torch tensor (each once). It is exact
for what it can see: a classifier head (sklearn arrays inside an MLflow pyfunc) or a torch
module. It cannot see inside native objects (an onnxruntime session), so loads of embedders
are also measured as the growth of the process's resident memory while loading (`rss_bytes`
before and after); `LazyModels` keeps the larger of the two. Classes, modules, functions,
loggers and locks are shared by every model and are not counted.
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
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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


def _children(obj: object) -> list[object]:
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


def rss_bytes() -> int:
    """The process's resident memory now (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0
