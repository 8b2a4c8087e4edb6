"""The LayerNorm LSTM's and GRU's fused steps (issue 20) against an independent float64 transcription of
the spec's equations (ln_reference.py): numba's kernels here, the CUDA kernels' host build and NVRTC
compiles in test_layernorm_kernels_cuda.py. The transcription's backward is itself checked against
central differences of its forward (and against torch's autograd where torch is installed)."""

import numpy as np
import pytest

import ln_reference as ref
from finite_diff import central_differences
from rnnkern._backend import cpu_backend, numba_unavailable_reason

NO_NUMBA = numba_unavailable_reason()
requires_numba = pytest.mark.skipif(NO_NUMBA is not None, reason=f"numba: {NO_NUMBA}")

# float64: rounding only; float32: the kernels' float32 tanh/sigmoid (~2e-7) and float32 row statistics,
# amplified by rstd in LayerNorm's backward.
TOL = {"float32": 3e-5, "float64": 1e-11}


# --- the reference's backward, by central differences of its forward --------------------------------------
def _loss(cell, v, kind):
    out = ref.FORWARD[cell](v, kind)
    loss = np.sum(v["dh"] * out["h"])
    return loss + (np.sum(v["dc"] * out["c"]) if cell == "lstm" else 0.0)


def _expected_grads(cell, v, kind):
    """d loss / d each input, from the backward transcription (sums over the batch for the norms)."""
    saved = ref.FORWARD[cell](v, kind)
    g = ref.BACKWARD[cell](v, saved, kind)
    grads = {"gx": g["dgx"], "gh": g["dgh"], "h_prev": g["dh_direct"]}
    if cell == "lstm":
        grads.update(c_prev=g["dc_prev"], gamma_hh=(g["dgx"] * saved["hh_hat"]).sum(0),
                     gamma_c=(g["dcn"] * saved["c_hat"]).sum(0), beta_c=g["dcn"].sum(0))
    else:
        grads.update(gamma_hh=(g["dghn"] * saved["hh_hat"]).sum(0), b_hh=g["dghn"].sum(0))
    return grads


@pytest.mark.parametrize("shape", [(3, 5), (1, 1), (2, 2)])
@pytest.mark.parametrize("kind", ref.ZONEOUTS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_reference_backward_matches_finite_differences(cell, kind, shape):
    v = ref.draw(cell, *shape, np.random.default_rng(11))
    for name, grad in _expected_grads(cell, v, kind).items():
        numeric = central_differences(lambda: _loss(cell, v, kind), v[name], 1e-6)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7, err_msg=f"{cell} {kind}: d/d{name}")


@pytest.mark.parametrize("kind", ref.ZONEOUTS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_reference_matches_torch_autograd(cell, kind):
    """The same transcription checked once more, by torch's autograd of Haste's equations written with
    torch's own layer_norm (skipped without torch; the finite differences above do not need it)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    v = ref.draw(cell, 3, 6, np.random.default_rng(12))
    t = {k: torch.tensor(x, requires_grad=True) for k, x in v.items()}
    H = v["h_prev"].shape[1]
    ln = F.layer_norm(t["gh"], (t["gh"].shape[1],), t["gamma_hh"], None, eps=1e-5)
    if kind == "mask":
        mix = t["mask"]
    else:
        mix = torch.full_like(t["h_prev"], 1.0 if kind == "none" else 1 - ref.PROB)
    if cell == "lstm":
        i, f, g, o = (t["gx"] + ln).split(H, 1)
        c = torch.sigmoid(f) * t["c_prev"] + torch.sigmoid(i) * torch.tanh(g)
        cn = F.layer_norm(c, (H,), t["gamma_c"], t["beta_c"], eps=1e-5)
        h_new = torch.sigmoid(o) * torch.tanh(cn)
        loss = (t["dc"].detach() * c).sum()
    else:
        n_r, n_z, n_n = (ln + t["b_hh"]).split(H, 1)
        x_r, x_z, x_n = t["gx"].split(H, 1)
        r, z = torch.sigmoid(x_r + n_r), torch.sigmoid(x_z + n_z)
        h_new = (1 - z) * torch.tanh(x_n + r * n_n) + z * t["h_prev"]
        loss = 0
    h = t["h_prev"] + mix.detach() * (h_new - t["h_prev"])
    (loss + (t["dh"].detach() * h).sum()).backward()
    for name, grad in _expected_grads(cell, v, kind).items():
        np.testing.assert_allclose(grad, t[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"d/d{name}")


# --- numba's fused steps ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def numba_backend():
    if NO_NUMBA is not None:
        pytest.skip(f"numba: {NO_NUMBA}")
    return cpu_backend("numba")


@pytest.mark.parametrize("layout", list(ref.LAYOUTS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ref.ZONEOUTS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_numba_steps_match_reference(numba_backend, cell, kind, dtype, layout):
    """Forward (inference and training, saved arrays included) and backward, on every shape, with and
    without outputs aliasing their inputs (h_out = h_prev, c_out = c_prev, dc_prev_out = dc)."""
    ref.check_backend(numba_backend, np, cell, kind, dtype, ref.LAYOUTS[layout], TOL[dtype])


@requires_numba
def test_numba_lnlstm_backward_needs_dh_direct_with_zoneout():
    backend = cpu_backend("numba")
    v = ref.draw("lstm", 2, 3, np.random.default_rng(0))
    saved = ref.lnlstm_forward(v, "mask")
    with pytest.raises(ValueError, match="dh_direct_out must be a .B, H. array with zoneout.*got None"):
        backend.lnlstm_backward(saved, v["c_prev"], v["dh"], v["dc"],
                                ref.LNLSTMNorms(v["gamma_hh"], v["gamma_c"], v["beta_c"]),
                                ref.Zoneout(ref.PROB, v["mask"]), np.empty((2, 12)), np.empty((2, 12)),
                                np.empty((2, 3)), None, np.empty((2, 3)))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", ["none", "blend"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_numba_ln_time_loops_match_steps(numba_backend, cell, kind, reverse):
    """lnsteps' compiled inference loops (GEMM and step per time step) against the step API driven from
    Python, float32 and float64, T=5, batch 3 and 1."""
    from rnnkern._backend.numba import blas, lnsteps

    if not blas.AVAILABLE:
        pytest.skip("NumPy's BLAS is not scipy-openblas64: no compiled time loop")
    for dtype, (B, H) in [("float64", (3, 7)), ("float32", (1, 5))]:
        rng = np.random.default_rng(B)
        G, T = ref.GATES[cell] * H, 5
        v = ref.draw(cell, B, H, rng)
        v = {k: x.astype(dtype) for k, x in v.items()}
        gx, w_t = rng.standard_normal((T, B, G)).astype(dtype), (rng.standard_normal((H, G)) * 0.4).astype(dtype)
        prob = ref.PROB if kind == "blend" else 0.0
        zone = ref.Zoneout(prob, None)
        h, c, want = v["h_prev"].copy(), v.get("c_prev", v["h_prev"]).copy(), np.empty((T, B, H), dtype)
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            gh = h @ w_t
            if cell == "lstm":
                numba_backend.lnlstm_step(gx[t], gh, c, h, ref.LNLSTMNorms(v["gamma_hh"], v["gamma_c"], v["beta_c"]),
                                          zone, want[t], c)
            else:
                numba_backend.lngru_step(gx[t], gh, h, ref.LNGRUNorms(v["gamma_hh"], v["b_hh"]), zone, want[t])
            h = want[t]
        out, gh = np.full((T, B, H), np.nan, dtype), np.empty((B, G), dtype)
        if cell == "lstm":
            c_loop = v["c_prev"].copy()
            lnsteps.lnlstm_loop(gx, w_t, v["h_prev"], c_loop, np.empty_like(c_loop), v["gamma_hh"], v["gamma_c"],
                                v["beta_c"], prob, out, reverse, gh)
            np.testing.assert_allclose(c_loop, c, rtol=TOL[dtype], atol=TOL[dtype])
        else:
            lnsteps.lngru_loop(gx, w_t, v["h_prev"], v["gamma_hh"], v["b_hh"], prob, out, reverse, gh)
        np.testing.assert_allclose(out, want, rtol=TOL[dtype], atol=TOL[dtype])
