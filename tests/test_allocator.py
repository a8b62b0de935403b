"""attribmap.allocator: glibc keeps freed large blocks for reuse once keep_freed_memory() ran.

Each check runs in a fresh interpreter: the setting is process-wide and cannot be undone.
"""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Page faults of filling a freshly allocated 64 MiB tensor, after four of that size were freed.
_FAULTS = textwrap.dedent("""
    import resource, sys, torch
    from attribmap.allocator import keep_freed_memory
    applied = keep_freed_memory() if sys.argv[1] == "keep" else False
    def fill():
        t = torch.empty(16 * 2 ** 20, dtype=torch.float32)
        t.fill_(1.0)
        return float(t[-1])
    for _ in range(4):  # the first few blocks may land beside each other (alignment slack, small objects between)
        fill()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        fill()
    print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 3)
""")


def _run(code: str, *args: str, env=None) -> str:
    environment = dict(os.environ, **(env or {}))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environment,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="mallopt settings exist only in glibc")
def test_reallocating_a_large_tensor_reuses_pages_once_kept():
    pages = 64 * 2 ** 20 // 4096  # 16384 pages of 4 KiB per 64 MiB tensor
    applied, kept = _run(_FAULTS, "keep", env={"ATTRIBMAP_KEEP_FREED_MEMORY": "1"}).split()
    assert applied == "True"
    default_applied, default = _run(_FAULTS, "default").split()
    assert default_applied == "False"
    # glibc's defaults mmap a 64 MiB block afresh each time: every page faults again
    assert int(default) > pages // 2
    # kept: the freed block is reused, its pages already mapped
    assert int(kept) < pages // 10


@pytest.mark.skipif(not GLIBC, reason="mallopt settings exist only in glibc")
def test_keep_freed_memory_is_idempotent_and_the_variable_turns_it_off():
    code = "from attribmap.allocator import keep_freed_memory as k; print(k(), k())"
    assert _run(code, env={"ATTRIBMAP_KEEP_FREED_MEMORY": ""}) == "True True"
    for off in ("0", "false", "OFF", "no"):
        assert _run(code, env={"ATTRIBMAP_KEEP_FREED_MEMORY": off}) == "False False"


def test_without_glibc_nothing_is_changed(monkeypatch):
    import attribmap.allocator as allocator

    monkeypatch.setattr(allocator, "_APPLIED", False)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda *a, **k: ("", ""))
    monkeypatch.delenv(allocator.ENV_VARIABLE, raising=False)
    assert allocator.keep_freed_memory() is False
    assert allocator._APPLIED is False


@pytest.mark.skipif(not GLIBC, reason="mallopt settings exist only in glibc")
def test_the_command_line_entry_keeps_freed_memory_and_main_does_not():
    code = textwrap.dedent("""
        import sys
        from attribmap import allocator, cli
        assert cli.main(["methods"]) == 0
        print("main", allocator._APPLIED, file=sys.stderr)
        sys.argv = ["attribmap", "methods"]
        try:
            cli.entry()
        except SystemExit as stop:
            print("entry", allocator._APPLIED, stop.code, file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "ATTRIBMAP_KEEP_FREED_MEMORY"})
    assert done.returncode == 0, done.stderr
    assert "main False" in done.stderr
    assert "entry True 0" in done.stderr
