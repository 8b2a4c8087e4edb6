// rnnkern: the LSTM step. Each gate's pre-activation is gx + gh, where gx holds
// x @ W_ih^T with both biases folded in and gh = h_prev @ W_hh^T; gate order i, f, g, o.
//   c = f * c_prev + i * g,   h = o * tanh(c)
#ifndef RK_COMMON_CUH
#include "common.cuh"
#endif

// Forward for training: also returns the activations (i, f, g, o), which backward needs.
template <typename C>
RK_FUNC void rk_lstm_step_train(C gx_i, C gx_f, C gx_g, C gx_o, C gh_i, C gh_f, C gh_g, C gh_o,
                                C c_prev, C& i, C& f, C& g, C& o, C& h, C& c) {
  i = rk_sigmoid(gh_i + gx_i);
  f = rk_sigmoid(gh_f + gx_f);
  g = rk_tanh(gh_g + gx_g);
  o = rk_sigmoid(gh_o + gx_o);
  c = f * c_prev + i * g;
  h = rk_tanh(c) * o;
}

// Inference: the same math (so both give identical h and c), activations discarded.
template <typename C>
RK_FUNC void rk_lstm_step(C gx_i, C gx_f, C gx_g, C gx_o, C gh_i, C gh_f, C gh_g, C gh_o,
                          C c_prev, C& h, C& c) {
  C i, f, g, o;
  rk_lstm_step_train(gx_i, gx_f, gx_g, gx_o, gh_i, gh_f, gh_g, gh_o, c_prev, i, f, g, o, h, c);
}

// Backward, from the activations (i, f, g, o), c_prev, c and the incoming gradients dh and dc
// (dc: what later steps send into c): the pre-activations' gradients and dc_prev.
template <typename C>
RK_FUNC void rk_lstm_backward(C i, C f, C g, C o, C c_prev, C c, C dh, C dc,
                              C& da_i, C& da_f, C& da_g, C& da_o, C& dc_prev) {
  const C tc = rk_tanh(c);
  da_o = dh * tc * rk_dsigmoid(o);
  const C dct = dh * o * (C(1) - tc * tc) + dc;  // total gradient into c
  da_i = dct * g * rk_dsigmoid(i);
  da_f = dct * c_prev * rk_dsigmoid(f);
  da_g = dct * i * (C(1) - g * g);
  dc_prev = dct * f;
}
