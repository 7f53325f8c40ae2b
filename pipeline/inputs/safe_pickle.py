"""Load untrusted pickle files (the paper authors' part-box files) without running their code.

A pickle is a program: any global it names is imported and may be called while loading, so a
crafted file can run ``os.system``. :func:`load` admits only what plain data needs: the
containers and scalars that pickle encodes with its own opcodes (dict, list, tuple, str, int,
float, bool, None), ``set``/``frozenset``/``bytes``/``bytearray``/``complex``, the codec call
protocol 2 uses for bytes, and the exact numpy functions that rebuild arrays, dtypes and numpy
scalars. Every other global is refused with :class:`UnsafePickleError` before it is imported.
``bytes``/``bytearray`` may not be called with a size (``bytearray(2**40)`` is a 46-byte file
asking for 1 TiB; no pickler writes that), ``_codecs.encode`` only with the latin-1 codec
protocol 2 uses, and running out of memory is a one-line error like any other unreadable file.
Python 2 pickles (the TIN/HAKE files were written by Python 2) are read with ``latin1``, as
numpy recommends, so their byte strings and arrays decode unchanged.
"""

from __future__ import annotations

import codecs
import importlib
import io
import pickle
from pathlib import Path

import numpy as np

from model.common.errors import UserError


class UnsafePickleError(UserError):
    """A pickle names a global outside the allow-list (possibly a malicious file)."""


def _numpy_core(submodule: str) -> object:
    # numpy 2 moved numpy.core to numpy._core (the old name warns); files name either.
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # numpy < 2
        return importlib.import_module(f"numpy.core.{submodule}")


def _no_size(kind: type) -> object:
    """``kind`` (bytes or bytearray) refusing an integer size argument: picklers only ever pass
    the contents (a string and its codec), so a size can only be an allocation bomb."""

    def build(*args: object) -> object:
        if args and isinstance(args[0], int):
            raise UnsafePickleError(f"{kind.__name__}({args[0]}) asks to allocate memory by size, "
                                    "which no pickler writes")
        return kind(*args)

    return build


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for bytes (latin-1 only: no other codec runs)."""
    if str(encoding).lower().replace("_", "-") not in {"latin1", "latin-1", "iso-8859-1"}:
        raise UnsafePickleError(f"codec {encoding!r} refused: protocol-2 pickles encode bytes as latin-1")
    return codecs.encode(text, "latin1")


def _allowed() -> dict[tuple[str, str], object]:
    multiarray, numeric = _numpy_core("multiarray"), _numpy_core("numeric")
    table: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    for builtin in ("builtins", "__builtin__"):  # __builtin__: Python 2 pickles
        for name, obj in (("set", set), ("frozenset", frozenset), ("bytes", _no_size(bytes)),
                          ("bytearray", _no_size(bytearray)), ("complex", complex)):
            table[(builtin, name)] = obj
    return table


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` resolves only allow-listed globals."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source
        self._table = _allowed()

    def find_class(self, module: str, name: str) -> object:
        obj = self._table.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"{self._source}: refused to load global '{module}.{name}': only plain "
                "containers, scalars and numpy arrays are allowed in a part-box pickle "
                "(the file is malformed or malicious; nothing in it was executed)"
            )
        return obj

    def persistent_load(self, pid: object) -> object:
        raise UnsafePickleError(f"{self._source}: persistent ids are not allowed in a data pickle")


def loads(data: bytes, source: str = "<bytes>") -> object:
    """Unpickle ``data`` with the restricted allow-list; ``source`` names it in errors."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError as exc:
        message = str(exc)
        if not message.startswith(source):  # raised inside an allowed callable
            message = f"{source}: refused: {message} (the file is malformed or malicious; nothing in it was executed)"
        raise UnsafePickleError(message) from None
    except MemoryError:
        raise UserError(f"{source}: not a readable pickle (it asks for more memory than there is)") from None
    except RecursionError:
        raise UserError(f"{source}: not a readable pickle (nested too deeply)") from None
    except Exception as exc:  # noqa: BLE001 - allowed numpy/builtin calls raise many kinds on bad data
        raise UserError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def load(path: str | Path) -> object:
    """Unpickle the file at ``path`` with the restricted allow-list."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise UserError(f"{path}: a directory or not a regular file, expected a pickle")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    return loads(data, str(path))
