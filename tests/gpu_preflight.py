"""Exit 0 when a CUDA GPU is usable from this python, else print one line saying why and exit 1.

Run first by ``make test-gpu`` and ``make gpu-check``, so that on a machine without a GPU
they stop at once instead of skipping everything and passing."""

import sys


def main():
    try:
        from rnnkern._backend import gpu_unavailable_reason
    except ImportError as exc:
        print(f"no usable GPU check possible: rnnkern cannot be imported ({exc}); run from the repository "
              "root with PYTHONPATH=src", file=sys.stderr)
        return 1
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(f"no usable GPU: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
