"""Weight files in the upstreams' own formats, from random weights, for the loaders' tests."""

from __future__ import annotations

import io
import pickle
import struct


class Python2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle (protocol 2) wrote for GSDNet's VGGFace2 .pkl: array data as Python 2 `str`
    opcodes (only latin1 decoding reads them) and numpy's globals under their Python-2 era module `numpy.core`."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_str8(self, obj):
        opcode = pickle.SHORT_BINSTRING + bytes([len(obj)]) if len(obj) < 256 else pickle.BINSTRING + struct.pack("<i", len(obj))
        self.write(opcode + obj)
        self.memoize(obj)

    dispatch[bytes] = save_str8

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "") or ""
        if module.startswith("numpy._core"):
            module = module.replace("numpy._core", "numpy.core", 1)
            self.write(pickle.GLOBAL + f"{module}\n{name or obj.__name__}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def save_type(self, obj):  # numpy.dtype and numpy.ndarray are types: same module rule
        return self.save_global(obj)

    dispatch[type] = save_type


def python2_pickle(state: dict) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(state)
    return buffer.getvalue()
