"""Reading pickles without running their code: SMPL `.pkl` body models and the official HeatFormer databases
(joblib dumps) are pickles by nature, and a pickle may name any callable to be run on load.

Both readers resolve a name only if it is on `ALLOWED` (the numpy, scipy-sparse and joblib classes these files
are made of) or in chumpy (the array library of SMPL's original files, code the user installed to read them);
torch tensors are rebuilt through `REPLACED`, which reads their storage with torch's own safe loader; anything
else is refused with an `InputError` naming the file and the callable, before it is imported.
"""
from __future__ import annotations

import contextlib
import io
import pickle
import threading
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import InputError

ALLOWED = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("scipy.sparse.csc", "csc_matrix"), ("scipy.sparse._csc", "csc_matrix"),
    ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("copyreg", "_reconstructor"), ("builtins", "object"),  # how Python 2 pickles rebuild (allowed) objects
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol 2 stores Python 3 bytes (numpy arrays' data among them)
})
TRUSTED_PACKAGES = ("chumpy.",)


def _storage_from_bytes(data: bytes):
    """A torch tensor's storage pickled inside: torch would read it with torch.load(weights_only=False); it is
    read here with weights_only=True, which runs nothing."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def _rebuild_tensor(*args):
    from torch._utils import _rebuild_tensor_v2

    return _rebuild_tensor_v2(*args)


# Torch tensors pickled by plain pickle (the official BEHAVE database holds some): resolved to these instead.
REPLACED = {("torch.storage", "_load_from_bytes"): _storage_from_bytes,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a callable that is not allowed."""

    def __init__(self, module: str, name: str):
        super().__init__(f"it would run {module}.{name}, which is not one of the numpy/scipy/chumpy classes "
                         "such files hold: refused without running it (is the file what it claims to be?)")


def check_global(module: str, name: str):
    """What an allowed name resolves to in place of the pickle's (None: resolve it as usual); raises
    `RefusedGlobal` for any other."""
    if (module, name) in REPLACED:
        return REPLACED[module, name]
    if (module, name) not in ALLOWED and not module.startswith(TRUSTED_PACKAGES):
        raise RefusedGlobal(module, name)
    return None


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        return check_global(module, name) or super().find_class(module, name)


def load_pickle(handle: BinaryIO, encoding: str = "latin1") -> Any:
    """`pickle.load` that runs nothing but the allowed classes (raises `RefusedGlobal` otherwise)."""
    return RestrictedUnpickler(handle, encoding=encoding).load()


_JOBLIB_LOCK = threading.Lock()  # the unpickler class is swapped in joblib's module while one file loads


def load_joblib(path: Path) -> Any:
    """A joblib dump (its arrays stored beside the pickle), read with the same restriction, or an `InputError`
    naming the file."""
    from joblib import numpy_pickle  # only the official databases need it

    class RestrictedNumpyUnpickler(numpy_pickle.NumpyUnpickler):
        def find_class(self, module: str, name: str):
            return check_global(module, name) or super().find_class(module, name)

    def old_format(*_args, **_kwargs):
        raise pickle.UnpicklingError("a joblib format older than joblib 0.10, which cannot be read safely")

    if not path.is_file():
        raise InputError(path, "file not found")
    with _JOBLIB_LOCK, _swapped(numpy_pickle, NumpyUnpickler=RestrictedNumpyUnpickler,
                                load_compatibility=old_format):
        try:
            return numpy_pickle.load(path)
        except RefusedGlobal as exc:
            raise InputError(path, f"unsafe pickle: {exc}") from exc
        except Exception as exc:  # joblib re-raises whatever unpickling hit: EOFError, UnpicklingError, ...
            raise InputError(path, f"cannot read joblib database ({type(exc).__name__}: {exc})") from exc


@contextlib.contextmanager
def _swapped(module, **replacements):
    saved = {name: getattr(module, name) for name in replacements}
    for name, value in replacements.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
