// rnnkern: the variant steps, with ONNX's activations, clip, input_forget and peepholes.
//
// V is a struct generated per combination in use (rnnkern/_kernels.py, variant_kernel), so each
// combination compiles to its own kernel with no per-element branch on the activation:
//   act_f/grad_f, act_g/grad_g, act_h/grad_h: the activations and their derivatives at the
//   pre-activation (the LSTM's f, g, h; the GRU's f, g; the RNN's f);
//   clip(x) and inside(x): the cell clip and its derivative (x and 1 without a clip);
//   input_forget, peephole: the LSTM's options, compile-time constants.
// Unlike the default kernels, these keep the gate *pre-activations* (peephole terms added, before
// the clip) in gh for backward, in training and inference alike, and backward takes them.
#ifndef RK_COMMON_CUH
#include "common.cuh"
#endif
#ifndef RK_ACTIVATIONS_CUH
#include "activations.cuh"
#endif
#ifndef RK_VARIANT_CUH
#define RK_VARIANT_CUH

template <class V, typename C> RK_FUNC C rk_f(C a) { return V::act_f(V::clip(a)); }
template <class V, typename C> RK_FUNC C rk_g(C a) { return V::act_g(V::clip(a)); }
template <class V, typename C> RK_FUNC C rk_df(C a) { return V::grad_f(V::clip(a)) * V::inside(a); }
template <class V, typename C> RK_FUNC C rk_dg(C a) { return V::grad_g(V::clip(a)) * V::inside(a); }

// --- RNN: h = f(clip(gx + gh)) --------------------------------------------------------------
template <class V, typename C>
RK_FUNC void rk_rnn_v(C gx, C gh, C& a, C& h) {
  a = gh + gx;
  h = rk_f<V>(a);
}

template <class V, typename C>
RK_FUNC void rk_rnn_v_backward(C a, C dh, C& da) {
  da = dh * rk_df<V>(a);
}

// --- LSTM, gates i, f, g, o; peepholes p_i, p_o, p_f (ONNX's P order) --------------------
template <class V, typename C>
RK_FUNC void rk_lstm_v(C gx_i, C gx_f, C gx_g, C gx_o, C gh_i, C gh_f, C gh_g, C gh_o, C c_prev,
                       C p_i, C p_o, C p_f, C& a_i, C& a_f, C& a_g, C& a_o, C& h, C& c) {
  a_i = gh_i + gx_i;
  a_f = gh_f + gx_f;
  if (V::peephole) {
    a_i += p_i * c_prev;
    a_f += p_f * c_prev;
  }
  a_g = gh_g + gx_g;
  const C i = rk_f<V>(a_i);
  const C f = V::input_forget ? C(1) - i : rk_f<V>(a_f);
  const C cn = f * c_prev + i * rk_g<V>(a_g);
  a_o = gh_o + gx_o;
  if (V::peephole) a_o += p_o * cn;
  h = rk_f<V>(a_o) * V::act_h(cn);
  c = cn;
}

template <class V, typename C>
RK_FUNC void rk_lstm_v_nopeep(C gx_i, C gx_f, C gx_g, C gx_o, C gh_i, C gh_f, C gh_g, C gh_o, C c_prev,
                              C& a_i, C& a_f, C& a_g, C& a_o, C& h, C& c) {
  rk_lstm_v<V>(gx_i, gx_f, gx_g, gx_o, gh_i, gh_f, gh_g, gh_o, c_prev, C(0), C(0), C(0), a_i, a_f, a_g, a_o, h, c);
}

template <class V, typename C>
RK_FUNC void rk_lstm_v_backward(C a_i, C a_f, C a_g, C a_o, C c_prev, C c, C dh, C dc, C p_i, C p_o, C p_f,
                                C& da_i, C& da_f, C& da_g, C& da_o, C& dc_prev) {
  const C i = rk_f<V>(a_i), g = rk_g<V>(a_g), o = rk_f<V>(a_o);
  da_o = dh * V::act_h(c) * rk_df<V>(a_o);
  C dct = dh * o * V::grad_h(c) + dc;  // total gradient into c
  if (V::peephole) dct += da_o * p_o;
  da_g = dct * i * rk_dg<V>(a_g);
  C dcp;
  if (V::input_forget) {  // c = (1 - i) * c_prev + i * g
    da_i = dct * (g - c_prev) * rk_df<V>(a_i);
    da_f = C(0);
    dcp = dct * (C(1) - i);
  } else {
    da_i = dct * g * rk_df<V>(a_i);
    da_f = dct * c_prev * rk_df<V>(a_f);
    dcp = dct * rk_f<V>(a_f);
  }
  if (V::peephole) dcp += da_i * p_i + da_f * p_f;
  dc_prev = dcp;
}

template <class V, typename C>
RK_FUNC void rk_lstm_v_backward_nopeep(C a_i, C a_f, C a_g, C a_o, C c_prev, C c, C dh, C dc,
                                       C& da_i, C& da_f, C& da_g, C& da_o, C& dc_prev) {
  rk_lstm_v_backward<V>(a_i, a_f, a_g, a_o, c_prev, c, dh, dc, C(0), C(0), C(0), da_i, da_f, da_g, da_o, dc_prev);
}

// --- GRU, gates r, z, n ------------------------------------------------------------------
// linear_before_reset=True: a_n = gx_n + r * (gh_n + b_hn); ghn = gh_n + b_hn is kept for backward.
template <class V, typename C>
RK_FUNC void rk_gru_v(C gx_r, C gx_z, C gx_n, C gh_r, C gh_z, C gh_n, C b_hn, C h_prev,
                      C& a_r, C& a_z, C& a_n, C& ghn, C& h) {
  a_r = gh_r + gx_r;
  a_z = gh_z + gx_z;
  const C r = rk_f<V>(a_r), z = rk_f<V>(a_z);
  ghn = gh_n + b_hn;
  a_n = ghn * r + gx_n;
  const C n = rk_g<V>(a_n);
  h = (h_prev - n) * z + n;
}

template <class V, typename C>
RK_FUNC void rk_gru_v_nobias(C gx_r, C gx_z, C gx_n, C gh_r, C gh_z, C gh_n, C h_prev,
                             C& a_r, C& a_z, C& a_n, C& ghn, C& h) {
  rk_gru_v<V>(gx_r, gx_z, gx_n, gh_r, gh_z, gh_n, C(0), h_prev, a_r, a_z, a_n, ghn, h);
}

template <class V, typename C>
RK_FUNC void rk_gru_v_backward(C a_r, C a_z, C a_n, C ghn, C h_prev, C dh, C& da_r, C& da_z, C& da_n,
                               C& dgh_r, C& dgh_z, C& dgh_n, C& dh_direct) {
  const C z = rk_f<V>(a_z), n = rk_g<V>(a_n);
  da_n = dh * (C(1) - z) * rk_dg<V>(a_n);
  da_r = da_n * ghn * rk_df<V>(a_r);
  da_z = dh * (h_prev - n) * rk_df<V>(a_z);
  dgh_r = da_r;
  dgh_z = da_z;
  dgh_n = da_n * rk_f<V>(a_r);
  dh_direct = dh * z;
}

// linear_before_reset=False, phase 1: a_r kept in gh_r; rh = r * h_prev (the GEMM's input).
template <class V, typename C>
RK_FUNC void rk_gru_v_reset(C gx_r, C gh_r, C h_prev, C& a_r, C& rh) {
  a_r = gh_r + gx_r;
  rh = rk_f<V>(a_r) * h_prev;
}

// Phase 2, with gh_n = (r * h_prev) @ W_hn^T: a_z, a_n kept; h = (1 - z) * n + z * h_prev.
template <class V, typename C>
RK_FUNC void rk_gru_v_update(C gx_z, C gx_n, C gh_z, C gh_n, C h_prev, C& a_z, C& a_n, C& h) {
  a_z = gh_z + gx_z;
  a_n = gh_n + gx_n;
  const C z = rk_f<V>(a_z), n = rk_g<V>(a_n);
  h = (h_prev - n) * z + n;
}

template <class V, typename C>
RK_FUNC void rk_gru_v_backward_update(C a_z, C a_n, C h_prev, C dh, C& da_z, C& da_n, C& dh_direct) {
  const C z = rk_f<V>(a_z), n = rk_g<V>(a_n);
  da_n = dh * (C(1) - z) * rk_dg<V>(a_n);
  da_z = dh * (h_prev - n) * rk_df<V>(a_z);
  dh_direct = dh * z;
}

template <class V, typename C>
RK_FUNC void rk_gru_v_backward_reset(C a_r, C h_prev, C d_rh, C dh_direct_in, C& da_r, C& dh_direct) {
  da_r = d_rh * h_prev * rk_df<V>(a_r);
  dh_direct = dh_direct_in + d_rh * rk_f<V>(a_r);
}

#endif  // RK_VARIANT_CUH
