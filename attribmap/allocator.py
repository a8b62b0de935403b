"""Keep freed memory in the process for reuse instead of handing it back to the system (glibc).

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc serves a request above
its *mmap threshold* (dynamic, at most 32 MiB on 64-bit Linux) with a fresh ``mmap`` and
returns it with ``munmap`` when freed, so the next tensor of that size starts from new pages:
the kernel faults in and zeroes every 4 KiB page again. Methods that run thousands of forward
passes on large inputs allocate the same large activations over and over, and that work
shows as system CPU time. Measured with ``benchmarks/speed_allocator.py`` on this
project's 2-core machine (AMD EPYC, one thread, EfficientNet-Lite0 at 448 px, batches of 8
inputs as Score-CAM runs them): 148 ms per input, 66 of them system time and 36,860 page
faults, with glibc's defaults; 77 ms, 2.4 of them system time, once the heap keeps what it
frees (docs/performance.rst). The 21-minute Score-CAM grid-pointing run of the docs spent 565
of its 1254 CPU seconds in the kernel.

:func:`keep_freed_memory` raises the mmap threshold and the trim threshold to their
largest values and pads each heap extension, so large blocks come from the heap and stay
there after ``free``. The cost: the process's resident memory stays at its peak instead of
shrinking after it (freed blocks are reused, not returned), and fragmentation can raise
that peak a little. The ``attribmap`` command line calls it at start-up (it owns its
process); a Python program that runs many perturbation passes can call it once itself.
Set ``ATTRIBMAP_KEEP_FREED_MEMORY=0`` to leave the allocator as it is.

Only glibc has these settings; elsewhere (macOS, Windows, musl) the call does nothing and
returns False.
"""
from __future__ import annotations

import ctypes
import os
import platform
import threading

__all__ = ["keep_freed_memory", "ENV_VARIABLE"]

#: Environment variable that turns :func:`keep_freed_memory` off when set to 0 / false / no / off.
ENV_VARIABLE = "ATTRIBMAP_KEEP_FREED_MEMORY"

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_INT_MAX = 2 ** 31 - 1
_TOP_PAD = 64 * 2 ** 20

_LOCK = threading.Lock()
_APPLIED = False


def _disabled() -> bool:
    return os.environ.get(ENV_VARIABLE, "").strip().lower() in ("0", "false", "no", "off")


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks of any size for reuse (process-wide, once).

    Returns
    -------
    bool
        True when the settings are in force (applied now or by an earlier call); False on a
        C library without them, when ``mallopt`` refuses a setting, or when
        ``ATTRIBMAP_KEEP_FREED_MEMORY`` is 0 / false / no / off.

    Examples
    --------
    >>> from attribmap.allocator import keep_freed_memory
    >>> keep_freed_memory() in (True, False)
    True
    """
    global _APPLIED
    if _disabled():
        return False
    with _LOCK:
        if _APPLIED:
            return True
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            return False
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        settings = ((_M_MMAP_THRESHOLD, _INT_MAX), (_M_TRIM_THRESHOLD, _INT_MAX), (_M_TOP_PAD, _TOP_PAD))
        _APPLIED = all(mallopt(parameter, value) == 1 for parameter, value in settings)
        return _APPLIED
