"""Do two source trees compile the default CUDA kernels to the same code? No GPU needed: NVRTC only.

    python benchmarks/kernel_ptx.py OLD_SRC NEW_SRC [--major 12|13]

For every default kernel (``_kernels.KERNELS``) in every dtype, each tree's translation unit is
compiled to PTX (compute_90, nvrtcGetPTX) and to an sm_90 cubin (nvrtcGetCUBIN, whose .text sections
hold the SASS); the script prints the kernels whose PTX opcode counts or SASS size differ, and totals.
Each tree runs in its own process (``SRC`` first on sys.path), e.g. a ``git worktree add`` of main.
"""

import argparse
import collections
import json
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import ctypes, json, struct, sys
sys.path.insert(0, sys.argv[1])
major = int(sys.argv[2]) if sys.argv[2] != "None" else None
try:
    from rnnkern._backend.cupy import kernels as _kernels, nvrtc as _nvrtc
except ImportError:  # a tree from before the package folders (issue 16)
    from rnnkern import _kernels, _nvrtc
lib = _nvrtc.load(major)
for f in ("PTX", "CUBIN"):
    getattr(lib, f"nvrtcGet{f}Size").argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
    getattr(lib, f"nvrtcGet{f}").argtypes = [ctypes.c_void_p, ctypes.c_char_p]

def build(src, arch, what):
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), b"k.cu", 0, None, None) == 0
    opts = (ctypes.c_char_p * 1)(f"--gpu-architecture={arch}".encode())
    assert lib.nvrtcCompileProgram(prog, 1, opts) == 0, _nvrtc._log(lib, prog)
    n = ctypes.c_size_t()
    getattr(lib, f"nvrtcGet{what}Size")(prog, ctypes.byref(n))
    buf = ctypes.create_string_buffer(n.value)
    getattr(lib, f"nvrtcGet{what}")(prog, buf)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return buf.raw

def text_bytes(elf):  # the sizes of an ELF64's .text* sections: the kernels' SASS
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    size, count, names = struct.unpack_from("<HHH", elf, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * size) for i in range(count)]
    base = secs[names][4]
    name = lambda off: elf[base + off:elf.index(b"\0", base + off)]
    return sum(s[5] for s in secs if name(s[0]).startswith(b".text"))

out = {}
for n in _kernels.KERNELS:
    for d in _kernels.DTYPES:
        src = _kernels.translation_unit(n, d, "cuda")
        out[f"{n}/{d}"] = {"ptx": build(src, "compute_90", "PTX").rstrip(b"\0").decode(),
                           "sass_bytes": text_bytes(build(src, "sm_90", "CUBIN"))}
print(json.dumps(out))
'''


def compiled(src, major):
    tests = Path(__file__).resolve().parents[1] / "tests"
    done = subprocess.run([sys.executable, "-c", CHILD, str(src), str(major), str(tests)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def instructions(ptx):
    return [line.split()[0] for line in map(str.strip, ptx.splitlines())
            if line and not line.startswith(("//", ".", "{", "}", "$")) and not line.endswith(":")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--major", type=int, default=None)
    args = parser.parse_args(argv)
    old, new = compiled(args.old, args.major), compiled(args.new, args.major)
    if sorted(old) != sorted(new):
        print(f"the trees' default kernels differ: {sorted(set(old) ^ set(new))}")
        return 1
    identical = same_ops = 0
    for key in sorted(old):
        a, b = collections.Counter(instructions(old[key]["ptx"])), collections.Counter(instructions(new[key]["ptx"]))
        identical += old[key]["ptx"] == new[key]["ptx"]
        same_ops += a == b
        if a != b or old[key]["sass_bytes"] != new[key]["sass_bytes"]:
            print(f"{key}: PTX instructions {sum(a.values())} -> {sum(b.values())}, "
                  f"sm_90 SASS bytes {old[key]['sass_bytes']} -> {new[key]['sass_bytes']}")
    total = (lambda d: sum(len(instructions(v["ptx"])) for v in d.values()))
    sass = (lambda d: sum(v["sass_bytes"] for v in d.values()))
    print(f"{len(old)} default kernels x dtypes: PTX byte-identical {identical}, same PTX opcode counts {same_ops}; "
          f"PTX instructions {total(old)} -> {total(new)}; sm_90 SASS bytes {sass(old)} -> {sass(new)}")
    return 0 if same_ops == len(old) and sass(old) == sass(new) else 1


if __name__ == "__main__":
    sys.exit(main())
