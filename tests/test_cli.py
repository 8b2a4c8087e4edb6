"""Issue 11, bug 6: the command line and the example, as a newcomer runs them."""

import importlib.util
import math
import pathlib
import subprocess
import sys

import pytest

import rnnkern
from rnnkern.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _example():
    spec = importlib.util.spec_from_file_location("train_adding", ROOT / "examples" / "train_adding.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_gradflow_does_not_underflow_over_thousands_of_steps(capsys):
    assert main(["gradflow", "--steps", "3000", "--hidden-size", "6", "--input-size", "3", "--batch", "1",
                 "--every", "1000"]) == 0
    out = capsys.readouterr().out
    assert "inf" not in out and "nan" not in out
    decay = {line.split(":")[0]: float(line.rsplit("10^", 1)[1]) for line in out.splitlines() if "changes by" in line}
    assert decay["RNN"] < -400 and math.isfinite(decay["RNN"])  # far below float64's 1e-308
    rows = [line.split() for line in out.splitlines() if line[:6].strip().isdigit()]
    assert rows[-1][0] == "1" and all("e-" in value or value.startswith("1.000e+00") for value in rows[-1][1:])


def test_gradflow_log_norms_agree_with_the_plain_norms_where_those_do_not_underflow():
    from rnnkern._cli.gradflow import log10_gradient_norms

    plain = log10_gradient_norms("GRU", 30, 4, 5, 2)
    assert plain[-1] == pytest.approx(0.0, abs=1e-12)  # a unit vector at t = T
    assert all(a > b for a, b in zip(plain[1:], plain[:-1]))  # shrinking back through time


def test_gradflow_plot_into_a_missing_directory_fails_before_computing(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import rnnkern._cli.gradflow as gradflow

    def never(*args, **kwargs):
        raise AssertionError("computed before checking the plot's path")

    monkeypatch.setattr(gradflow, "log10_gradient_norms", never)
    target = tmp_path / "missing" / "dir" / "g.png"
    with pytest.raises(SystemExit, match=r"--plot .*g.png: the directory .*missing/dir does not exist"):
        main(["gradflow", "--plot", str(target)])


@pytest.mark.parametrize("args, message", [(["--steps", "0"], "--steps must be at least 1, got 0"),
                                           (["--seq-len", "1"], "--seq-len must be at least 2, got 1"),
                                           (["--batch", "0"], "--batch must be at least 1, got 0")])
def test_example_rejects_bad_arguments_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        _example().main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_example_without_a_gpu_says_why(capsys, monkeypatch):
    def unavailable(device):
        raise rnnkern.DeviceUnavailableError("device='gpu': no CUDA device is usable (a test's stand-in)")

    example = _example()
    monkeypatch.setattr(example.rnnkern, "LSTM", lambda *a, **k: unavailable(k["device"]))
    with pytest.raises(SystemExit) as info:
        example.main(["--device", "gpu"])
    assert info.value.code == 1
    assert "--device gpu: device='gpu': no CUDA device is usable" in capsys.readouterr().err


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "usage: rnnkern" in out and "--version" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnnkern {rnnkern.__version__}"


def test_python_dash_m_rnnkern_runs_the_command():
    env_path = str(ROOT / "src")
    result = subprocess.run([sys.executable, "-m", "rnnkern", "--version"], capture_output=True, text=True,
                            env={"PYTHONPATH": env_path, "PATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rnnkern {rnnkern.__version__}"
