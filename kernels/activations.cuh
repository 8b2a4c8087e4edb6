// rnnkern: ONNX's recurrent activations, f(x; A, B) as the ONNX operator of each name defines it,
// and their derivatives at the pre-activation x (rk_dact_*), which the cell templates' backward
// uses when a training step saved pre-activations (kernels/cellmath.cuh). rnnkern/_recurrences/activations.py
// holds the same table for the CPU. A and B are alpha and beta (ignored by activations without them).
//
// Three activations also have a derivative from their *output* y = f(x), times an incoming
// gradient d (rk_dout_*): the form the default kernels use, where a training step saves the
// activations. Each is written as the default kernels always wrote it.
#ifndef RK_COMMON_CUH
#include "common.cuh"
#endif
#ifndef RK_ACTIVATIONS_CUH
#define RK_ACTIVATIONS_CUH

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
RK_FUNC float rk_exp(float x) { return expf(x); }
RK_FUNC double rk_exp(double x) { return exp(x); }
RK_FUNC float rk_expm1(float x) { return expm1f(x); }
RK_FUNC double rk_expm1(double x) { return expm1(x); }
RK_FUNC float rk_log1p(float x) { return log1pf(x); }
RK_FUNC double rk_log1p(double x) { return log1p(x); }
#else
RK_FUNC float rk_exp(float x) { return std::exp(x); }
RK_FUNC double rk_exp(double x) { return std::exp(x); }
RK_FUNC float rk_expm1(float x) { return std::expm1(x); }
RK_FUNC double rk_expm1(double x) { return std::expm1(x); }
RK_FUNC float rk_log1p(float x) { return std::log1p(x); }
RK_FUNC double rk_log1p(double x) { return std::log1p(x); }
#endif

template <typename C> RK_FUNC C rk_abs(C x) { return x < C(0) ? -x : x; }

template <typename C> RK_FUNC C rk_act_sigmoid(C x, C, C) { return rk_sigmoid(x); }
template <typename C> RK_FUNC C rk_dact_sigmoid(C x, C, C) { return rk_dsigmoid(rk_sigmoid(x)); }

template <typename C> RK_FUNC C rk_act_tanh(C x, C, C) { return rk_tanh(x); }
template <typename C> RK_FUNC C rk_dact_tanh(C x, C, C) { const C t = rk_tanh(x); return C(1) - t * t; }

template <typename C> RK_FUNC C rk_act_relu(C x, C, C) { return rk_relu(x); }
// 1 at NaN, as torch's relu backward (a mask of x <= 0) passes the gradient of a NaN output
template <typename C> RK_FUNC C rk_dact_relu(C x, C, C) { return x <= C(0) ? C(0) : C(1); }

// max(0, min(1, A*x + B)); NaN propagates
template <typename C> RK_FUNC C rk_act_hardsigmoid(C x, C a, C b) {
  const C y = a * x + b;
  return y < C(0) ? C(0) : (y > C(1) ? C(1) : y);
}
template <typename C> RK_FUNC C rk_dact_hardsigmoid(C x, C a, C b) {
  const C y = a * x + b;
  return (y > C(0) && y < C(1)) ? a : C(0);
}

template <typename C> RK_FUNC C rk_act_leakyrelu(C x, C a, C) { return x >= C(0) ? x : a * x; }
template <typename C> RK_FUNC C rk_dact_leakyrelu(C x, C a, C) { return x >= C(0) ? C(1) : a; }

template <typename C> RK_FUNC C rk_act_thresholdedrelu(C x, C a, C) { return x > a ? x : C(0); }
template <typename C> RK_FUNC C rk_dact_thresholdedrelu(C x, C a, C) { return C(x > a); }

template <typename C> RK_FUNC C rk_act_scaledtanh(C x, C a, C b) { return a * rk_tanh(b * x); }
template <typename C> RK_FUNC C rk_dact_scaledtanh(C x, C a, C b) {
  const C t = rk_tanh(b * x);
  return a * b * (C(1) - t * t);
}

template <typename C> RK_FUNC C rk_act_elu(C x, C a, C) { return x >= C(0) ? x : a * rk_expm1(x); }
template <typename C> RK_FUNC C rk_dact_elu(C x, C a, C) { return x >= C(0) ? C(1) : a * rk_exp(x); }

template <typename C> RK_FUNC C rk_act_softsign(C x, C, C) { return x / (C(1) + rk_abs(x)); }
template <typename C> RK_FUNC C rk_dact_softsign(C x, C, C) {
  const C d = C(1) + rk_abs(x);
  return C(1) / (d * d);
}

// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow
template <typename C> RK_FUNC C rk_act_softplus(C x, C, C) { return rk_relu(x) + rk_log1p(rk_exp(-rk_abs(x))); }
template <typename C> RK_FUNC C rk_dact_softplus(C x, C, C) { return rk_sigmoid(x); }

template <typename C> RK_FUNC C rk_act_affine(C x, C a, C b) { return a * x + b; }
template <typename C> RK_FUNC C rk_dact_affine(C, C a, C) { return a; }

// d * f'(x) from y = f(x): sigmoid s*(1-s), tanh 1-t*t; ReLU is a select, as torch's
// threshold_backward: y <= 0 gives 0 even where d is NaN or infinite, and a NaN y passes d.
template <typename C> RK_FUNC C rk_dout_sigmoid(C y, C d) { return d * rk_dsigmoid(y); }
template <typename C> RK_FUNC C rk_dout_tanh(C y, C d) { return d * (C(1) - y * y); }
template <typename C> RK_FUNC C rk_dout_relu(C y, C d) { return y <= C(0) ? C(0) : d; }

// The cell clip: clamp to [-t, t], and its derivative (1 inside, 0 where it clamps).
template <typename C> RK_FUNC C rk_clip(C x, C t) { return x < -t ? -t : (x > t ? t : x); }
template <typename C> RK_FUNC C rk_inside(C x, C t) { return C(x >= -t && x <= t); }

#endif  // RK_ACTIVATIONS_CUH
