// rnnkern: the Elman RNN step, h = f(clip(gx + gh)), the add and the activation in one pass, and its
// backward. gx = x @ W_ih^T + b_ih + b_hh (biases folded in), gh = h_prev @ W_hh^T. V: the traits
// (kernels/cellmath.cuh); the defaults are tanh or relu, no clip, and save the activation (h itself,
// so a training step writes nothing more); otherwise training keeps a = gx + gh.
#ifndef RK_CELLMATH_CUH
#include "cellmath.cuh"
#endif
#ifndef RK_RNN_CUH  // several kernels may share a translation unit (the host tests)
#define RK_RNN_CUH

template <class V, typename C>
RK_FUNC void rk_rnn_step(C gx, C gh, C& a, C& h) {
  a = gx + gh;
  h = rk_f<V>(a);
}

// Backward: da = dh * f'(a), from the gate form s (h or a).
template <class V, typename C>
RK_FUNC void rk_rnn_backward(C s, C dh, C& da) {
  da = rk_df_of<V>(s, dh);
}

#endif  // RK_RNN_CUH
