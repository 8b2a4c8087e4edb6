"""ONNX Runtime as a peer (never a dependency): rnnkern's own ``to_onnx`` export of the very layer
being timed, run by an ``onnxruntime.InferenceSession`` on its CPU provider (MLAS) with the thread
count the other contenders have, one intra-op pool and sequential execution. Its output is checked
against rnnkern's before it is timed: a wrong export, or a runtime that reads it differently, is an
error (ContenderMismatchError), never a row of the table."""

from .common import Contender, check_agreement, to_host
from .machine import bench_threads

NAME = "onnxruntime"
TITLE = "ONNX Runtime"


def import_onnxruntime():
    """The onnxruntime module, or None when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def session_options(onnxruntime, threads):
    """The same thread count as the others (intra-op), no second pool, nodes run one after another;
    only errors logged, so that ONNX Runtime's warnings do not interleave with the report."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def make(cfg, layer, x_host):
    """The Contender, or a string saying why it cannot run here. Raises ContenderMismatchError when
    ONNX Runtime's output of the export differs from the layer's own."""
    onnxruntime = import_onnxruntime()
    if onnxruntime is None:
        return "ONNX Runtime is not installed (pip install onnxruntime)"
    if cfg.device != "cpu":
        return "timed on the CPU only (ONNX Runtime's CPU provider)"
    if cfg.dtype != "float32":
        return f"ONNX Runtime runs RNN, GRU and LSTM nodes in float32 only (this run is {cfg.dtype})"
    try:
        model = layer.to_onnx()
    except ImportError as exc:  # the onnx package, which to_onnx builds the graph with
        return f"rnnkern's to_onnx needs the onnx package ({exc})"
    session = onnxruntime.InferenceSession(model.SerializeToString(), session_options(onnxruntime, bench_threads()),
                                           providers=["CPUExecutionProvider"])
    feeds = {"input": x_host}

    def fn():
        return session.run(["output"], feeds)[0]

    check_agreement(f"{NAME}: ONNX Runtime's output of rnnkern's to_onnx export", fn(), to_host(layer(x_host)[0]),
                    cfg.dtype)
    return Contender(NAME, fn, "host")
