// rnnkern: the GRU's backward step, from the activations the forward step saved.
// Outputs are the gradients of the gate pre-activations (the caller's GEMMs give dh_prev
// and the weight gradients) and dh_direct, the part of dh_prev that bypasses W_hh.
#ifndef RK_COMMON_CUH
#include "common.cuh"
#endif

// linear_before_reset=True, from r, z, n, ghn = gh_n + b_hn, h_prev and dh: input-side
// gradients da_* and hidden-side dgh_* (they differ only in the n gate, which r scales).
template <typename C>
RK_FUNC void rk_gru_backward(C r, C z, C n, C ghn, C h_prev, C dh, C& da_r, C& da_z, C& da_n,
                             C& dgh_r, C& dgh_z, C& dgh_n, C& dh_direct) {
  da_n = dh * (C(1) - z) * (C(1) - n * n);
  da_r = da_n * ghn * rk_dsigmoid(r);
  da_z = dh * (h_prev - n) * rk_dsigmoid(z);
  dgh_r = da_r;
  dgh_z = da_z;
  dgh_n = da_n * r;
  dh_direct = dh * z;
}

// linear_before_reset=False, phase 1 (before the GEMM d_rh = da_n @ W_hn): z and n gates.
template <typename C>
RK_FUNC void rk_gru_backward_update(C z, C n, C h_prev, C dh, C& da_z, C& da_n, C& dh_direct) {
  da_n = dh * (C(1) - z) * (C(1) - n * n);
  da_z = dh * (h_prev - n) * rk_dsigmoid(z);
  dh_direct = dh * z;
}

// Phase 2, from r and d_rh: the r gate, and d_rh * r added to dh_direct (read and written).
template <typename C>
RK_FUNC void rk_gru_backward_reset(C r, C h_prev, C d_rh, C dh_direct_in, C& da_r, C& dh_direct) {
  da_r = d_rh * h_prev * rk_dsigmoid(r);
  dh_direct = dh_direct_in + d_rh * r;
}
