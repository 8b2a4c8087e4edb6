"""`rnnkern bench` on a tiny explicit configuration: it runs for every cell, --json writes the
records, every contender computes the layer's output, and bad arguments fail with a clear message."""

import json
import re
import sys

import numpy as np
import pytest

from rnnkern import cli
from rnnkern._bench import CELLS, CONTENDERS, BenchConfig, build_contenders, forward_flops
from rnnkern._bench.common import to_host

TINY = ["--seq-len", "3", "--batch", "2", "--input-size", "4", "--hidden-size", "5", "--repeat", "1", "--pause", "0"]
FIELDS = {"cell", "device", "dtype", "seq_len", "batch", "input_size", "hidden_size", "num_layers", "variant",
          "median_ms", "min_ms", "max_ms", "gflops", "ratio_to_torch", "fraction_of_bound", "machine"}
OPTIONAL = ("torch", "torch-cell", "onnxruntime")  # the peers, never dependencies
CPU_CONTENDERS = [c for c in CONTENDERS if c not in OPTIONAL]
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-11, atol=1e-12)}


def bench(*args):
    return cli.main(["bench", "--device", "cpu", *TINY, *args])


@pytest.mark.parametrize("cell", CELLS + ("all",))
def test_runs_for_every_cell(cell, capsys):
    assert bench("--cell", cell, "--variants", ",".join(CPU_CONTENDERS)) == 0
    out, err = capsys.readouterr()
    for name in CELLS if cell == "all" else (cell,):
        assert f"{name} on cpu, float32, T=3 B=2 I=4 H=5 layers=1" in out
    for contender in CPU_CONTENDERS:
        assert f"\n  {contender} " in out
    assert "GEMMs only" in out and "CPU:" in out and "NumPy" in out
    assert "round 1/1" in err  # progress goes to stderr


def test_json_records(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert bench("--cell", "all", "--variants", ",".join(CPU_CONTENDERS), "--json", str(path)) == 0
    records = json.loads(path.read_text())
    assert isinstance(records, list) and len(records) == len(CELLS) * len(CPU_CONTENDERS)
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
def test_contenders_compute_the_layer_output(cell, num_layers, dtype):
    cfg = BenchConfig(cell, seq_len=3, batch=2, input_size=4, hidden_size=5, num_layers=num_layers, dtype=dtype)
    contenders, skipped = build_contenders(cfg, CONTENDERS)
    outputs = {c.name: c.fn() for c in contenders}
    assert outputs.pop("blas-bound") is None
    expected = to_host(outputs.pop("rnnkern"))
    assert expected.shape == (3, 2, 5) and expected.dtype == dtype
    assert {"rnnkern-cell", "unfused", "article"} <= outputs.keys()
    for name, y in outputs.items():
        y = to_host(y)
        assert y.dtype == dtype, name
        np.testing.assert_allclose(y, expected, **TOL[dtype], err_msg=name)
    assert set(skipped) <= set(OPTIONAL)
    if dtype == "float64":
        assert "float32 only" in skipped.get("onnxruntime", "float32 only")


def test_flops():
    cfg = BenchConfig("lstm", seq_len=100, batch=64, input_size=512, hidden_size=512, num_layers=2)
    assert forward_flops(cfg) == 2 * 100 * 64 * 4 * 512 * (512 + 512) * 2


def test_torch_contenders_match(capsys):
    pytest.importorskip("torch")
    cfg = BenchConfig("gru", seq_len=3, batch=2, input_size=4, hidden_size=5, num_layers=2)
    contenders, skipped = build_contenders(cfg, ("rnnkern", "torch", "torch-cell"))
    assert not skipped
    outputs = {c.name: to_host(c.fn()) for c in contenders}
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


def test_contenders_are_timed_in_alternation():
    from rnnkern._bench.timing import measure
    from rnnkern._bench import Contender

    calls = []
    contenders = [Contender(name, lambda name=name: calls.append(name), "host") for name in "abc"]
    times = measure(contenders, repeat=3, warmup=1)
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
    from rnnkern._bench import machine, torch_contenders

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # cuDNN's default
        info = machine.machine_info("gpu")
        assert "TF32 ON in cudnn and cublas" in "\n".join(machine.format_header(info, "gpu"))
        assert torch_contenders.setup("gpu")
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        info = machine.machine_info("gpu")
        assert info["torch"]["tf32"] == {"cudnn": False, "cublas": False}
        assert "TF32 off (full float32 in cuDNN and cuBLAS)" in "\n".join(machine.format_header(info, "gpu"))
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


# --- the report: statistics, the GEMM share column, verdicts, defaults --------------------------
def _record(variant, ratio=None, share=None, median=1.0):
    return {"variant": variant, "ratio_to_torch": ratio, "fraction_of_bound": share, "median_ms": median,
            "min_ms": median, "max_ms": median, "gflops": 1.0}


def test_ratios_are_medians_of_paired_rounds():
    from rnnkern._bench import report

    cfg = BenchConfig("lstm", seq_len=3, batch=2, input_size=4, hidden_size=5)
    # round 3 was disturbed for rnnkern only: the paired median ignores it, a ratio of medians would not
    times = {"rnnkern": [11.0, 22.0, 90.0], "torch": [10.0, 20.0, 10.0], "blas-bound": [5.5, 11.0, 5.0]}
    by_name = {r["variant"]: r for r in report.summarize(cfg, times)}
    assert by_name["rnnkern"]["ratio_to_torch"] == pytest.approx(1.1)
    assert by_name["rnnkern"]["fraction_of_bound"] == pytest.approx(0.5)
    assert by_name["rnnkern"]["ratio_statistic"] == "median of per-round ratios"


def test_gemm_share_never_above_100_percent_and_na_for_torch():
    from rnnkern._bench import report

    cfg = BenchConfig("rnn", seq_len=3, batch=2, input_size=4, hidden_size=5)
    lines = report.format_table(cfg, [_record("rnnkern", share=1.2), _record("unfused", share=0.5),
                                      _record("torch", share=2.2)])
    rows = {line.split()[0]: line for line in lines[3:] if line.startswith("  ") and not line.startswith("  *")}
    assert rows["rnnkern"].endswith("100%*") and rows["unfused"].endswith("50%") and rows["torch"].endswith("n/a")
    assert any("within this machine's noise" in line for line in lines)
    assert not any("220%" in line for line in lines)


@pytest.mark.parametrize("ratio, words", [(1.31, "is 1.31x slower than"), (0.8, "is 1.25x faster than"),
                                          (1.02, "is as fast as (within 3% of)")])
def test_verdict_cannot_be_read_backwards(ratio, words):
    from rnnkern._bench import report

    cfg = BenchConfig("lstm", seq_len=3, batch=2, input_size=4, hidden_size=5)
    line = report.verdict(cfg, [_record("rnnkern", ratio=ratio, share=0.61)], "oneDNN", "NumPy's OpenBLAS")
    assert line == f"LSTM: rnnkern {words} torch.nn.LSTM (oneDNN); its GEMMs alone (NumPy's OpenBLAS) take 0.61 of its time"
    assert "1.20" not in report.verdict(cfg, [_record("rnnkern", share=1.2)])  # capped at 1.00
    assert "torch.nn not measured" in report.verdict(cfg, [_record("rnnkern")])


def test_default_run_prints_legend_and_one_verdict_per_cell(tmp_path, capsys):
    path = tmp_path / "out.json"
    assert cli.main(["bench", "--device", "cpu", *TINY, "--json", str(path)]) == 0
    out = capsys.readouterr().out
    verdicts = out[out.index("Verdict (cpu, float32, median of per-round ratios):"):].splitlines()[1:]
    assert [line.split(":")[0].strip() for line in verdicts] == ["LSTM", "GRU", "RNN"]
    assert "Variants: rnnkern = the layer" in out and "GEMM share = blas-bound" in out
    records = json.loads(path.read_text())
    assert {r["variant"] for r in records} <= {"rnnkern", "unfused", "torch", "onnxruntime", "blas-bound"}  # the defaults
    assert "Threads: " in out


def test_full_sweep_runs_every_config_and_contender(capsys):
    sizes = ["--seq-len", "2", "--batch", "2", "--input-size", "3", "--hidden-size", "4"]
    assert cli.main(["bench", "--device", "cpu", "--full", "--cell", "rnn", *sizes, "--repeat", "1",
                     "--warmup", "0", "--pause", "0", "--variants", ",".join(CPU_CONTENDERS)]) == 0
    out = capsys.readouterr().out
    assert out.count("rnn on cpu, float32, T=2 B=2 I=3 H=4 layers=1: ") == 3  # default, small, large, sizes overridden
    assert out.count("rnn on cpu, float32, T=2 B=2 I=3 H=4 layers=1, training: ") == 3  # torch not selected
    assert "RNN: rnnkern takes" in out and "[large]" in out
    assert "RNN training: rnnkern takes" in out and "(torch autograd not measured) [small]" in out


def test_omp_num_threads_is_respected(monkeypatch):
    torch = pytest.importorskip("torch")
    from rnnkern._bench import machine, torch_contenders

    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch_contenders.setup("cpu")
        assert torch.get_num_threads() == 1
        assert "OMP_NUM_THREADS=1 (yours)" in machine.threads_line(machine.machine_info("cpu"))
        monkeypatch.delenv("OMP_NUM_THREADS")
        torch_contenders.setup("cpu")
        assert torch.get_num_threads() == machine.usable_cpus()
        assert "PyTorch" in machine.threads_line(machine.machine_info("cpu"))
    finally:
        torch.set_num_threads(saved)


def test_the_cli_keeps_its_word_variants(capsys):
    """Inside the package they are contenders; what users type and read still says variants."""
    import argparse

    from rnnkern._cli.bench import add_arguments

    parser = argparse.ArgumentParser(prog="rnnkern bench")
    add_arguments(parser)
    help_text = " ".join(parser.format_help().split())
    assert ("--variants LIST comma-separated subset of: rnnkern, rnnkern-cell, unfused, article, torch, torch-cell, "
            "onnxruntime, blas-bound (default: rnnkern,unfused,torch,onnxruntime,blas-bound; with --full: all)") in help_text
    assert "timed rounds per variant" in help_text and "every variant at every configuration" in help_text
    assert parser.parse_args(["--variants", "torch,rnnkern,torch"]).variants == ["rnnkern", "torch"]
    assert bench("--cell", "rnn", "--variants", "rnnkern,unfused") == 0
    captured = capsys.readouterr()
    assert "variants in alternation" in captured.out and "\n  variant " in captured.out
    assert "Variants: rnnkern = the layer" in captured.out
    assert "building 2 variant(s)" in captured.err


# --- ONNX Runtime: rnnkern's own export, checked, named in the verdict; skipped when absent -------
VERDICT_RATIO = r"(\d+\.\d\dx (faster|slower) than|as fast as \(within 3% of\))"


def _verdicts(out):
    return out[out.index("Verdict (cpu"):].splitlines()[1:]


def test_onnxruntime_runs_the_layers_export(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = tmp_path / "bench.json"
    assert bench("--cell", "gru", "--variants", "rnnkern,onnxruntime,blas-bound", "--json", str(path)) == 0
    out = capsys.readouterr().out
    assert "ONNX RT: " in out and "intra-op threads, inter-op 1, sequential" in out
    assert "\n  onnxruntime " in out and "skipped" not in out
    [line] = _verdicts(out)
    assert re.fullmatch(rf"  GRU: rnnkern is {VERDICT_RATIO} ONNX Runtime; its GEMMs alone \(NumPy's \w+\) take "
                        r"\d\.\d\d of its time", line), line
    by_name = {r["variant"]: r for r in json.loads(path.read_text())}
    assert by_name["onnxruntime"]["ratio_to_onnxruntime"] == 1.0
    assert by_name["rnnkern"]["ratio_to_onnxruntime"] > 0 and by_name["rnnkern"]["mode"] == "forward"
    assert by_name["rnnkern"]["machine"]["onnxruntime"]["inter_op_threads"] == 1


def test_verdict_names_torch_and_onnxruntime(capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    assert bench("--cell", "lstm", "--variants", "rnnkern,torch,onnxruntime") == 0
    [line] = _verdicts(capsys.readouterr().out)
    assert re.fullmatch(rf"  LSTM: rnnkern is {VERDICT_RATIO} torch\.nn\.LSTM \([^)]+\) and {VERDICT_RATIO} "
                        "ONNX Runtime", line), line


def test_onnxruntime_output_matches_the_layer():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    for cell, num_layers in (("lstm", 2), ("gru", 1), ("rnn", 1)):
        cfg = BenchConfig(cell, seq_len=4, batch=1, input_size=3, hidden_size=2, num_layers=num_layers)
        contenders, skipped = build_contenders(cfg, ("rnnkern", "onnxruntime"))
        assert not skipped
        ours, theirs = (to_host(c.fn()) for c in contenders)
        np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("verdict_args, words", [
    ((0.8, 0.91), "rnnkern is 1.25x faster than torch.nn.LSTM (oneDNN) and 1.10x faster than ONNX Runtime; "),
    ((None, 1.31), "rnnkern is 1.31x slower than ONNX Runtime; "),
    ((1.01, 1.3), "rnnkern is as fast as (within 3% of) torch.nn.LSTM (oneDNN) and 1.30x slower than ONNX Runtime; "),
])
def test_verdict_wording_with_onnxruntime(verdict_args, words):
    from rnnkern._bench import report

    cfg = BenchConfig("lstm", seq_len=3, batch=2, input_size=4, hidden_size=5)
    record = dict(_record("rnnkern", ratio=verdict_args[0], share=0.61), ratio_to_onnxruntime=verdict_args[1])
    line = report.verdict(cfg, [record], "oneDNN", "NumPy's OpenBLAS")
    assert line == f"LSTM: {words}its GEMMs alone (NumPy's OpenBLAS) take 0.61 of its time"


def test_onnxruntime_absent_is_skipped_with_a_message(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    path = tmp_path / "bench.json"
    assert bench("--cell", "rnn", "--json", str(path)) == 0  # the default variants include it
    captured = capsys.readouterr()
    assert "ONNX RT: not installed (the onnxruntime variant is left out" in captured.out
    assert "  onnxruntime  skipped: ONNX Runtime is not installed (pip install onnxruntime)" in captured.out
    assert "rnn: onnxruntime left out: ONNX Runtime is not installed" in captured.err
    [line] = _verdicts(captured.out)
    assert "ONNX Runtime" not in line and line.startswith("  RNN: rnnkern ")
    records = json.loads(path.read_text())
    assert "onnxruntime" not in {r["variant"] for r in records}
    assert all(r["ratio_to_onnxruntime"] is None for r in records)


def test_onnxruntime_float64_is_skipped_with_the_reason(capsys):
    pytest.importorskip("onnxruntime")
    assert bench("--cell", "rnn", "--dtype", "float64", "--variants", "rnnkern,onnxruntime") == 0
    assert "onnxruntime  skipped: ONNX Runtime runs RNN, GRU and LSTM nodes in float32 only (this run is float64)" \
        in capsys.readouterr().out


def test_a_corrupted_export_is_an_error_not_a_row(monkeypatch, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from rnnkern._bench.common import ContenderMismatchError
    from rnnkern._interop import onnx_export

    honest = onnx_export.node_weights

    def corrupted(*args):  # R, the recurrent weights, off by 0.05: a plausible export bug
        W, R, B, P = honest(*args)
        return W, R + np.asarray(0.05, R.dtype), B, P

    monkeypatch.setattr(onnx_export, "node_weights", corrupted)
    cfg = BenchConfig("lstm", seq_len=3, batch=2, input_size=4, hidden_size=5)
    with pytest.raises(ContenderMismatchError, match="onnxruntime: ONNX Runtime's output of rnnkern's to_onnx "
                                                     "export differs from rnnkern's: largest difference"):
        build_contenders(cfg, ("rnnkern", "onnxruntime"))
    path = tmp_path / "bench.json"
    assert bench("--cell", "lstm", "--variants", "rnnkern,onnxruntime", "--json", str(path)) == 1
    captured = capsys.readouterr()
    assert "rnnkern bench: error: onnxruntime: ONNX Runtime's output" in captured.err
    assert "it is not timed" in captured.err
    assert "\n  onnxruntime " not in captured.out and "Verdict" not in captured.out
    assert not path.exists()


# --- training (--full): rnnkern's forward_train + backward against torch autograd ----------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell, num_layers", [("lstm", 1), ("gru", 2), ("rnn", 1)])
def test_training_gradients_agree_with_torch_autograd(cell, num_layers, dtype):
    pytest.importorskip("torch")
    from rnnkern._bench.training import build_training

    cfg = BenchConfig(cell, seq_len=3, batch=1, input_size=2, hidden_size=4, num_layers=num_layers, dtype=dtype)
    contenders, skipped = build_training(cfg)  # raises on any gradient that differs
    assert not skipped and [c.name for c in contenders] == ["rnnkern", "torch"]
    y, dx, dparams = contenders[0].fn()
    assert to_host(dx).shape == (3, 1, 2) and len(dparams) == 4 * num_layers
    assert contenders[1].fn().shape == (3, 1, 4)


def test_training_check_fails_loudly_on_different_weights(monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    from rnnkern._bench import torch_contenders
    from rnnkern._bench.common import ContenderMismatchError

    honest = torch_contenders._layer

    def perturbed(*args):
        module = honest(*args)
        with torch.no_grad():
            module.bias_hh_l0[0] += 0.5
        return module

    monkeypatch.setattr(torch_contenders, "_layer", perturbed)
    assert cli.main(["bench", "--device", "cpu", *TINY, "--full", "--config", "small", "--cell", "rnn",
                     "--variants", "rnnkern,torch"]) == 1
    err = capsys.readouterr().err
    assert "rnnkern bench: error: torch autograd's output differs from rnnkern's" in err
    from rnnkern._bench.training import build_training

    with pytest.raises(ContenderMismatchError, match="torch autograd's output differs"):
        build_training(BenchConfig("rnn", seq_len=2, batch=1, input_size=2, hidden_size=3))


def test_full_adds_training_rows_and_verdicts(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--device", "cpu", *TINY, "--full", "--config", "small",
                     "--variants", "rnnkern,torch", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("training: forward_train + backward against torch autograd's forward + backward") == 3
    verdicts = _verdicts(out)
    assert [line.split(":")[0].strip() for line in verdicts] == \
        ["LSTM", "LSTM training", "GRU", "GRU training", "RNN", "RNN training"]
    for line in verdicts[1::2]:
        assert re.fullmatch(rf"  \w+ training: rnnkern is {VERDICT_RATIO} torch autograd \(forward \+ backward\)",
                            line), line
    records = json.loads(path.read_text())
    # the LayerNormLSTM table (--full on the CPU) has training rows of its own, with its own variants
    training = [r for r in records if r["mode"] == "training" and r["cell"] != "layernorm-lstm"]
    assert sorted((r["cell"], r["variant"]) for r in training) == \
        sorted((c, v) for c in CELLS for v in ("rnnkern", "torch"))
    for r in training:
        assert r["ratio_to_torch"] > 0 and r["fraction_of_bound"] is None
        assert r["flops"] == 3 * forward_flops(BenchConfig(r["cell"], 3, 2, 4, 5))


def test_training_without_torch_is_reported(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert cli.main(["bench", "--device", "cpu", *TINY, "--full", "--config", "small", "--cell", "lstm",
                     "--variants", "rnnkern,torch"]) == 0
    out = capsys.readouterr().out
    assert "  torch        skipped: PyTorch is not installed" in out
    assert "LSTM training: rnnkern takes" in out and "(torch autograd not measured)" in out


def test_check_agreement_rejects_nan_and_shapes():
    from rnnkern._bench.common import ContenderMismatchError, check_agreement

    check_agreement("x", np.ones(3) + 5e-5, np.ones(3), "float32")
    with pytest.raises(ContenderMismatchError, match=r"largest difference inf at index \(1,\)"):
        check_agreement("x", np.array([1.0, np.nan, 1.0]), np.ones(3), "float32")
    with pytest.raises(ContenderMismatchError, match=r"shape \(2,\), rnnkern's is \(3,\)"):
        check_agreement("x", np.ones(2), np.ones(3), "float32")
