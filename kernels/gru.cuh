// rnnkern: the GRU step, gate order r, z, n; gx holds x @ W_ih^T with every bias that
// is added linearly folded in, gh = h_prev @ W_hh^T.
#ifndef RK_COMMON_CUH
#include "common.cuh"
#endif

// h = (1 - z) * n + z * h_prev, written as n + z * (h_prev - n) like the NumPy backend.
template <typename C>
RK_FUNC C rk_gru_blend(C z, C n, C h_prev) {
  return (h_prev - n) * z + n;
}

// linear_before_reset=True (PyTorch, cuDNN): n = tanh(gx_n + r * (gh_n + b_hn)); b_hn stays
// separate because r multiplies it. For training it also returns the activations r, z, n
// and ghn = gh_n + b_hn, which backward needs.
template <typename C>
RK_FUNC void rk_gru_step_train(C gx_r, C gx_z, C gx_n, C gh_r, C gh_z, C gh_n, C b_hn, C h_prev,
                               C& r, C& z, C& n, C& ghn, C& h) {
  r = rk_sigmoid(gh_r + gx_r);
  z = rk_sigmoid(gh_z + gx_z);
  ghn = gh_n + b_hn;
  n = rk_tanh(ghn * r + gx_n);
  h = rk_gru_blend(z, n, h_prev);
}

template <typename C>
RK_FUNC void rk_gru_step(C gx_r, C gx_z, C gx_n, C gh_r, C gh_z, C gh_n, C b_hn, C h_prev, C& h) {
  C r, z, n, ghn;
  rk_gru_step_train(gx_r, gx_z, gx_n, gh_r, gh_z, gh_n, b_hn, h_prev, r, z, n, ghn, h);
}

// Without bias (bias=False): one argument fewer than reading an array of zeros.
template <typename C>
RK_FUNC void rk_gru_step_nobias(C gx_r, C gx_z, C gx_n, C gh_r, C gh_z, C gh_n, C h_prev, C& h) {
  rk_gru_step(gx_r, gx_z, gx_n, gh_r, gh_z, gh_n, C(0), h_prev, h);
}

template <typename C>
RK_FUNC void rk_gru_step_train_nobias(C gx_r, C gx_z, C gx_n, C gh_r, C gh_z, C gh_n, C h_prev,
                                      C& r, C& z, C& n, C& ghn, C& h) {
  rk_gru_step_train(gx_r, gx_z, gx_n, gh_r, gh_z, gh_n, C(0), h_prev, r, z, n, ghn, h);
}

// linear_before_reset=False (Cho et al., ONNX's default) needs a GEMM on r * h_prev between
// the gates, so the step is two kernels. Phase 1: r = sigmoid(gx_r + gh_r) (kept: training
// saves it) and rh = r * h_prev.
template <typename C>
RK_FUNC void rk_gru_reset(C gx_r, C gh_r, C h_prev, C& r, C& rh) {
  r = rk_sigmoid(gh_r + gx_r);
  rh = r * h_prev;
}

// Phase 2, with gh_n = (r * h_prev) @ W_hn^T: z = sigmoid(gx_z + gh_z), n = tanh(gx_n + gh_n).
template <typename C>
RK_FUNC void rk_gru_update_train(C gx_z, C gx_n, C gh_z, C gh_n, C h_prev, C& z, C& n, C& h) {
  z = rk_sigmoid(gh_z + gx_z);
  n = rk_tanh(gh_n + gx_n);
  h = rk_gru_blend(z, n, h_prev);
}

template <typename C>
RK_FUNC void rk_gru_update(C gx_z, C gx_n, C gh_z, C gh_n, C h_prev, C& h) {
  C z, n;
  rk_gru_update_train(gx_z, gx_n, gh_z, gh_n, h_prev, z, n, h);
}
