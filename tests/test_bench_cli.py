"""`rnnkern bench` on a tiny explicit configuration: it runs for every cell, --json writes the
records, every variant computes the layer's output, and bad arguments fail with a clear message."""

import json

import numpy as np
import pytest

from rnnkern import cli
from rnnkern._bench import CELLS, VARIANTS, BenchConfig, build_variants, forward_flops
from rnnkern._bench.variants import to_host

TINY = ["--seq-len", "3", "--batch", "2", "--input-size", "4", "--hidden-size", "5", "--repeat", "1", "--pause", "0"]
FIELDS = {"cell", "device", "dtype", "seq_len", "batch", "input_size", "hidden_size", "num_layers", "variant",
          "median_ms", "min_ms", "max_ms", "gflops", "ratio_to_torch", "fraction_of_bound", "machine"}
CPU_VARIANTS = [v for v in VARIANTS if not v.startswith("torch")]  # PyTorch is optional
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-11, atol=1e-12)}


def bench(*args):
    return cli.main(["bench", "--device", "cpu", *TINY, *args])


@pytest.mark.parametrize("cell", CELLS + ("all",))
def test_runs_for_every_cell(cell, capsys):
    assert bench("--cell", cell, "--variants", ",".join(CPU_VARIANTS)) == 0
    out, err = capsys.readouterr()
    for name in CELLS if cell == "all" else (cell,):
        assert f"{name} on cpu, float32, T=3 B=2 I=4 H=5 layers=1" in out
    for variant in CPU_VARIANTS:
        assert f"\n  {variant} " in out
    assert "GEMMs only" in out and "CPU:" in out and "NumPy" in out
    assert "round 1/1" in err  # progress goes to stderr


def test_json_records(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert bench("--cell", "all", "--variants", ",".join(CPU_VARIANTS), "--json", str(path)) == 0
    records = json.loads(path.read_text())
    assert isinstance(records, list) and len(records) == len(CELLS) * len(CPU_VARIANTS)
    for record in records:
        assert FIELDS <= record.keys()
        assert (record["seq_len"], record["batch"], record["input_size"], record["hidden_size"]) == (3, 2, 4, 5)
        assert record["device"] == "cpu" and record["dtype"] == "float32" and record["num_layers"] == 1
        assert record["min_ms"] <= record["median_ms"] <= record["max_ms"]
        assert record["gflops"] > 0 and record["fraction_of_bound"] > 0
        assert record["ratio_to_torch"] is None  # torch not selected
        assert record["machine"]["numpy"] == np.__version__
    by_key = {(r["cell"], r["variant"]): r for r in records}
    assert by_key[("lstm", "blas-bound")]["fraction_of_bound"] == 1.0
    assert by_key[("gru", "rnnkern")]["flops"] == 2 * 3 * 2 * 3 * 5 * (4 + 5)


def test_config_and_overrides(capsys):
    assert cli.main(["bench", "--device", "cpu", "--config", "small", "--seq-len", "2", "--batch", "3",
                     "--cell", "rnn", "--variants", "rnnkern", "--repeat", "1", "--warmup", "0", "--pause", "0"]) == 0
    assert "T=2 B=3 I=256 H=256 layers=1" in capsys.readouterr().out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_variants_compute_the_layer_output(cell, num_layers, dtype):
    cfg = BenchConfig(cell, seq_len=3, batch=2, input_size=4, hidden_size=5, num_layers=num_layers, dtype=dtype)
    variants, skipped = build_variants(cfg, VARIANTS)
    outputs = {v.name: v.fn() for v in variants}
    assert outputs.pop("blas-bound") is None
    expected = to_host(outputs.pop("rnnkern"))
    assert expected.shape == (3, 2, 5) and expected.dtype == dtype
    assert {"rnnkern-cell", "unfused", "article"} <= outputs.keys()
    for name, y in outputs.items():
        y = to_host(y)
        assert y.dtype == dtype, name
        np.testing.assert_allclose(y, expected, **TOL[dtype], err_msg=name)
    assert set(skipped) <= {"torch", "torch-cell"}


def test_flops():
    cfg = BenchConfig("lstm", seq_len=100, batch=64, input_size=512, hidden_size=512, num_layers=2)
    assert forward_flops(cfg) == 2 * 100 * 64 * 4 * 512 * (512 + 512) * 2


def test_torch_variants_match(capsys):
    pytest.importorskip("torch")
    cfg = BenchConfig("gru", seq_len=3, batch=2, input_size=4, hidden_size=5, num_layers=2)
    variants, skipped = build_variants(cfg, ("rnnkern", "torch", "torch-cell"))
    assert not skipped
    outputs = {v.name: to_host(v.fn()) for v in variants}
    for name in ("torch", "torch-cell"):
        np.testing.assert_allclose(outputs[name], outputs["rnnkern"], rtol=1e-5, atol=1e-5, err_msg=name)
    assert bench("--cell", "lstm", "--variants", "rnnkern,torch") == 0
    assert "1.00x" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--cell", "transformer"], "invalid choice: 'transformer'"),
    (["--variants", "rnnkern,fastest"], "unknown variant(s) 'fastest'"),
    (["--variants", ","], "unknown variant(s)"),
    (["--repeat", "0"], "--repeat: expected a positive integer, got 0"),
    (["--seq-len", "x"], "--seq-len: expected a positive integer, got 'x'"),
    (["--hidden-size", "-3"], "expected a positive integer, got -3"),
    (["--config", "huge"], "invalid choice: 'huge'"),
    (["--dtype", "int8"], "invalid choice: 'int8'"),
])
def test_bad_arguments(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench(*args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_variants_are_timed_in_alternation():
    from rnnkern._bench.timing import measure
    from rnnkern._bench.variants import Variant

    calls = []
    variants = [Variant(name, lambda name=name: calls.append(name), "host") for name in "abc"]
    times = measure(variants, repeat=3, warmup=1)
    assert calls == list("abc" "bca" "cab" "abc")  # round-robin, order rotated each round
    assert {name: len(ms) for name, ms in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_unusable_choices_are_reported(tmp_path, capsys):
    assert bench("--pause", "-1") == 2
    assert "--pause must lie in 0..60 seconds" in capsys.readouterr().err
    assert bench("--dtype", "float16") == 2
    assert "--dtype float16 is not supported on the cpu" in capsys.readouterr().err
    assert bench("--json", str(tmp_path / "missing" / "out.json")) == 2
    assert "does not exist" in capsys.readouterr().err


def test_gpu_unavailable_is_reported(capsys):
    from rnnkern._backend import gpu_unavailable_reason

    if gpu_unavailable_reason() is None:
        pytest.skip("a GPU is usable here")
    assert cli.main(["bench", "--device", "gpu", *TINY]) == 2
    assert "rnnkern bench: error: device='gpu'" in capsys.readouterr().err


def test_gpu_torch_baseline_runs_without_tf32():
    torch = pytest.importorskip("torch")
    from rnnkern._bench import machine, torch_variants

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # cuDNN's default
        info = machine.machine_info("gpu")
        assert "TF32 ON in cudnn and cublas" in "\n".join(machine.format_header(info, "gpu"))
        assert torch_variants.setup("gpu")
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        info = machine.machine_info("gpu")
        assert info["torch"]["tf32"] == {"cudnn": False, "cublas": False}
        assert "TF32 off (full float32 in cuDNN and cuBLAS)" in "\n".join(machine.format_header(info, "gpu"))
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
