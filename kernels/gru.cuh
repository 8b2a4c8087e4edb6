// rnnkern: the GRU step and its backward, gate order r, z, n; gx holds x @ W_ih^T with every bias
// that is added linearly folded in, gh = h_prev @ W_hh^T. V: the traits (kernels/cellmath.cuh):
// the activations f (r, z) and g (n) and the clip; the defaults are sigmoid and tanh, no clip.
// s_* are gates in gate form: what a training step leaves in gh and backward reads back.
// Backward's outputs are the gradients of the gate pre-activations (the caller's GEMMs give dh_prev
// and the weight gradients) and dh_direct, the part of dh_prev that bypasses W_hh.
#ifndef RK_CELLMATH_CUH
#include "cellmath.cuh"
#endif
#ifndef RK_GRU_CUH  // several kernels may share a translation unit (the host tests)
#define RK_GRU_CUH

// h = (1 - z) * n + z * h_prev, written as n + z * (h_prev - n) like the NumPy backend.
template <typename C>
RK_FUNC C rk_gru_blend(C z, C n, C h_prev) {
  return (h_prev - n) * z + n;
}

// --- linear_before_reset=True (PyTorch, cuDNN): n = g(clip(gx_n + r * (gh_n + b_hn))) ----------
// b_hn stays separate because r multiplies it (0 without bias); ghn = gh_n + b_hn is kept for backward.
template <class V, typename C>
RK_FUNC void rk_gru_step(C gx_r, C gx_z, C gx_n, C gh_r, C gh_z, C gh_n, C b_hn, C h_prev,
                         C& s_r, C& s_z, C& s_n, C& ghn, C& h) {
  const C a_r = gh_r + gx_r;
  const C r = rk_f<V>(a_r);
  const C a_z = gh_z + gx_z;
  const C z = rk_f<V>(a_z);
  ghn = gh_n + b_hn;
  const C a_n = ghn * r + gx_n;
  const C n = rk_g<V>(a_n);
  h = rk_gru_blend(z, n, h_prev);
  s_r = rk_form<V>(a_r, r);
  s_z = rk_form<V>(a_z, z);
  s_n = rk_form<V>(a_n, n);
}

// Backward, from the gates' gate form, ghn, h_prev and dh: input-side gradients da_* and
// hidden-side dgh_* (they differ only in the n gate, which r scales).
template <class V, typename C>
RK_FUNC void rk_gru_backward(C s_r, C s_z, C s_n, C ghn, C h_prev, C dh, C& da_r, C& da_z, C& da_n,
                             C& dgh_r, C& dgh_z, C& dgh_n, C& dh_direct) {
  const C z = rk_f_of<V>(s_z), n = rk_g_of<V>(s_n);
  da_n = rk_dg_of<V>(s_n, dh * (C(1) - z));
  da_r = rk_df_of<V>(s_r, da_n * ghn);
  da_z = rk_df_of<V>(s_z, dh * (h_prev - n));
  dgh_r = da_r;
  dgh_z = da_z;
  dgh_n = da_n * rk_f_of<V>(s_r);
  dh_direct = dh * z;
}

// --- linear_before_reset=False (Cho et al., ONNX's default) ---------------------------------
// It needs a GEMM on r * h_prev between the gates, so the step is two kernels. Phase 1: r (kept in
// gate form: training saves it) and rh = r * h_prev, the GEMM's input.
template <class V, typename C>
RK_FUNC void rk_gru_reset(C gx_r, C gh_r, C h_prev, C& s_r, C& rh) {
  const C a_r = gh_r + gx_r;
  const C r = rk_f<V>(a_r);
  rh = r * h_prev;
  s_r = rk_form<V>(a_r, r);
}

// Phase 2, with gh_n = (r * h_prev) @ W_hn^T: z = f(clip(gx_z + gh_z)), n = g(clip(gx_n + gh_n)).
template <class V, typename C>
RK_FUNC void rk_gru_update(C gx_z, C gx_n, C gh_z, C gh_n, C h_prev, C& s_z, C& s_n, C& h) {
  const C a_z = gh_z + gx_z;
  const C z = rk_f<V>(a_z);
  const C a_n = gh_n + gx_n;
  const C n = rk_g<V>(a_n);
  h = rk_gru_blend(z, n, h_prev);
  s_z = rk_form<V>(a_z, z);
  s_n = rk_form<V>(a_n, n);
}

// Backward phase 1 (before the GEMM d_rh = da_n @ W_hn): the z and n gates.
template <class V, typename C>
RK_FUNC void rk_gru_backward_update(C s_z, C s_n, C h_prev, C dh, C& da_z, C& da_n, C& dh_direct) {
  const C z = rk_f_of<V>(s_z), n = rk_g_of<V>(s_n);
  da_n = rk_dg_of<V>(s_n, dh * (C(1) - z));
  da_z = rk_df_of<V>(s_z, dh * (h_prev - n));
  dh_direct = dh * z;
}

// Backward phase 2, from r and d_rh: the r gate, and d_rh * r added to dh_direct (read and written).
template <class V, typename C>
RK_FUNC void rk_gru_backward_reset(C s_r, C h_prev, C d_rh, C dh_direct_in, C& da_r, C& dh_direct) {
  da_r = rk_df_of<V>(s_r, d_rh * h_prev);
  dh_direct = dh_direct_in + d_rh * rk_f_of<V>(s_r);
}

#endif  // RK_GRU_CUH
