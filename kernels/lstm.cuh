// rnnkern: the LSTM step and its backward. Each gate's pre-activation is gx + gh, where gx holds
// x @ W_ih^T with both biases folded in and gh = h_prev @ W_hh^T; gate order i, f, g, o.
//   c = f * c_prev + i * g,   h = o * h(c)
// with ONNX's options from the traits V (kernels/cellmath.cuh): peepholes p_i, p_o, p_f (ONNX's P
// order; i and f add p * c_prev, o adds p * c, before the clip), input_forget (f = 1 - i), the clip
// and the activations. The defaults: sigmoid, tanh, tanh, no options.
#ifndef RK_CELLMATH_CUH
#include "cellmath.cuh"
#endif
#ifndef RK_LSTM_CUH  // several kernels may share a translation unit (the host tests)
#define RK_LSTM_CUH

// Forward; s_* are the gates in gate form (a training step stores them over gh, inference drops them).
template <class V, typename C>
RK_FUNC void rk_lstm_step(C gx_i, C gx_f, C gx_g, C gx_o, C gh_i, C gh_f, C gh_g, C gh_o, C c_prev,
                          C p_i, C p_o, C p_f, C& s_i, C& s_f, C& s_g, C& s_o, C& h, C& c) {
  C a_i = gh_i + gx_i;
  if (V::peephole) a_i += p_i * c_prev;
  const C i = rk_f<V>(a_i);
  C a_f = gh_f + gx_f;
  if (V::peephole) a_f += p_f * c_prev;
  const C f = V::input_forget ? C(1) - i : rk_f<V>(a_f);
  const C a_g = gh_g + gx_g;
  const C g = rk_g<V>(a_g);
  C a_o = gh_o + gx_o;
  C o = rk_f<V>(a_o);  // without peepholes, o before c (the defaults' order); with them, dead code
  const C cn = f * c_prev + i * g;
  if (V::peephole) {
    a_o += p_o * cn;
    o = rk_f<V>(a_o);
  }
  h = V::act_h(cn) * o;
  c = cn;
  s_i = rk_form<V>(a_i, i);
  s_f = rk_form<V>(a_f, f);
  s_g = rk_form<V>(a_g, g);
  s_o = rk_form<V>(a_o, o);
}

// Backward, from the gates in gate form, c_prev, c and the incoming gradients dh and dc (dc: what
// later steps send into c): the pre-activations' gradients and dc_prev.
template <class V, typename C>
RK_FUNC void rk_lstm_backward(C s_i, C s_f, C s_g, C s_o, C c_prev, C c, C dh, C dc, C p_i, C p_o, C p_f,
                              C& da_i, C& da_f, C& da_g, C& da_o, C& dc_prev) {
  const C hc = V::act_h(c), o = rk_f_of<V>(s_o);
  da_o = rk_df_of<V>(s_o, dh * hc);
  C dct = rk_dh_at<V>(c, hc, dh * o) + dc;  // total gradient into c
  if (V::peephole) dct += da_o * p_o;
  const C i = rk_f_of<V>(s_i), g = rk_g_of<V>(s_g);
  if (V::input_forget) {  // c = (1 - i) * c_prev + i * g
    da_i = rk_df_of<V>(s_i, dct * (g - c_prev));
    da_f = C(0);
  } else {
    da_i = rk_df_of<V>(s_i, dct * g);
    da_f = rk_df_of<V>(s_f, dct * c_prev);
  }
  da_g = rk_dg_of<V>(s_g, dct * i);
  C dcp = V::input_forget ? dct * (C(1) - i) : dct * rk_f_of<V>(s_f);
  if (V::peephole) dcp += da_i * p_i + da_f * p_f;
  dc_prev = dcp;
}

#endif  // RK_LSTM_CUH
