// rnnkern: what the cell templates (rnn.cuh, lstm.cuh, gru.cuh) ask of their traits V, and the
// gate helpers they share. V is a struct generated per CellMath (rnnkern/_backend/cupy/kernels.py, traits_struct):
// the default kernels are the templates at the default traits, every option combination in use is
// another instance, and NVRTC folds V's constants, so each instance compiles to its own straight-line
// code with no per-element branch on an option.
//
//   saves_activations   what a training step leaves in gh for backward: the gate activations (the
//                       defaults) or the gate pre-activations (peephole terms added, before the clip);
//                       backward reads the same form back. "Gate form" below means this.
//   input_forget, peephole   the LSTM's options.
//   act_f/act_g/act_h(x)     the activations (the LSTM's f, g, h; the GRU's f, g; the RNN's f);
//   grad_f/grad_g/grad_h(x)  their derivatives at the pre-activation x (kernels/activations.cuh);
//   dout_f/dout_g/dout_h(y, d)  d times the derivative from the output y = act(x) (saves_activations only);
//   clip(x), inside(x)       the cell clip and its derivative (x and 1 without a clip).
#ifndef RK_COMMON_CUH
#include "common.cuh"
#endif
#ifndef RK_ACTIVATIONS_CUH
#include "activations.cuh"
#endif
#ifndef RK_CELLMATH_CUH
#define RK_CELLMATH_CUH

// Traits that save pre-activations never use dout_*: the generator binds them to this.
template <typename C> RK_FUNC C rk_dout_unused(C, C d) { return d; }

// A gate's activation from its pre-activation a (clipped first).
template <class V, typename C> RK_FUNC C rk_f(C a) { return V::act_f(V::clip(a)); }
template <class V, typename C> RK_FUNC C rk_g(C a) { return V::act_g(V::clip(a)); }

// What training saves of a gate with pre-activation a and activation y: its gate form.
template <class V, typename C> RK_FUNC C rk_form(C a, C y) { return V::saves_activations ? y : a; }

// A gate's activation from its gate form s.
template <class V, typename C> RK_FUNC C rk_f_of(C s) { return V::saves_activations ? s : rk_f<V>(s); }
template <class V, typename C> RK_FUNC C rk_g_of(C s) { return V::saves_activations ? s : rk_g<V>(s); }

// d * act'(pre-activation), from the gate form s: from the output, or at the (clipped) pre-activation.
template <class V, typename C> RK_FUNC C rk_df_of(C s, C d) {
  return V::saves_activations ? V::dout_f(s, d) : d * (V::grad_f(V::clip(s)) * V::inside(s));
}
template <class V, typename C> RK_FUNC C rk_dg_of(C s, C d) {
  return V::saves_activations ? V::dout_g(s, d) : d * (V::grad_g(V::clip(s)) * V::inside(s));
}
// The LSTM's h(c) (never clipped): d * h'(c), from c and y = h(c).
template <class V, typename C> RK_FUNC C rk_dh_at(C c, C y, C d) {
  return V::saves_activations ? V::dout_h(y, d) : d * V::grad_h(c);
}

#endif  // RK_CELLMATH_CUH
