// rnnkern: the Elman RNN step, h = act(gx + gh), the add and the activation in one pass.
// gx = x @ W_ih^T + b_ih + b_hh (biases folded in), gh = h_prev @ W_hh^T.
#ifndef RK_COMMON_CUH
#include "common.cuh"
#endif

template <typename C>
RK_FUNC void rk_rnn_tanh(C gx, C gh, C& h) {
  h = rk_tanh(gx + gh);
}

template <typename C>
RK_FUNC void rk_rnn_relu(C gx, C gh, C& h) {
  h = rk_relu(gx + gh);
}

// Backward: da = dh * act'(a), from the output h = act(a): 1 - h^2 (tanh); relu: 0 where h <= 0, else dh.
template <typename C>
RK_FUNC void rk_rnn_backward_tanh(C h, C dh, C& da) {
  da = (C(1) - h * h) * dh;
}

template <typename C>
RK_FUNC void rk_rnn_backward_relu(C h, C dh, C& da) {
  da = h <= C(0) ? C(0) : dh;  // torch's threshold_backward: a NaN output (NaN <= 0 is false) passes dh
}
