// rnnkern: device helpers shared by the fused RNN, LSTM and GRU step kernels.
//
// Every function here and in the kernel headers beside it is plain arithmetic on
// one element, templated on the compute type C (float for float16 and float32
// storage, double for float64). The same text compiles as CUDA (NVRTC, inside
// CuPy's ElementwiseKernel) and as host C++ (g++, in the CPU tests), so the math
// the tests check on the CPU is the math that runs on the GPU.
#ifndef RK_COMMON_CUH
#define RK_COMMON_CUH

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define RK_FUNC __device__ __forceinline__
// CUDA's math library: tanhf for float, tanh for double (no header needed under NVRTC).
RK_FUNC float rk_tanh(float x) { return tanhf(x); }
RK_FUNC double rk_tanh(double x) { return tanh(x); }
#else
#include <cmath>
#define RK_FUNC inline
RK_FUNC float rk_tanh(float x) { return std::tanh(x); }
RK_FUNC double rk_tanh(double x) { return std::tanh(x); }
#endif

// sigmoid(x) = tanh(x/2)/2 + 1/2 (as Chainer does): no exp, so it cannot overflow,
// and it is the formula of the NumPy backend, so both round alike.
template <typename C>
RK_FUNC C rk_sigmoid(C x) {
  return rk_tanh(x * C(0.5)) * C(0.5) + C(0.5);
}

// max(x, 0) written so that NaN propagates, as NumPy's maximum does.
template <typename C>
RK_FUNC C rk_relu(C x) {
  return x < C(0) ? C(0) : x;
}

// sigmoid'(a) from s = sigmoid(a): the backward kernels get activations, not pre-activations.
template <typename C>
RK_FUNC C rk_dsigmoid(C s) {
  return s * (C(1) - s);
}

#endif  // RK_COMMON_CUH
