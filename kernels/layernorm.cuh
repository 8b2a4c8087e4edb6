// rnnkern: what the LayerNorm cells' kernels (lnlstm.cuh, lngru.cuh) share: a batch row's threads
// (a "row group") and the reductions over a row that LayerNorm needs.
//
// A row group is either one warp (32 threads; a block holds several, one row each: small rows) or a
// whole block (one row per block: large rows). The kernels are written against a group object G:
//   G.tid, G.size     this thread's index in the group, the group's thread count (a multiple of 32)
//   G.first, G.step   the group's first batch row and the stride between its rows (grid-stride loop)
//   G.sync()          a barrier of the group; G.shfl_xor(v, m): lane tid ^ m's v (within a warp)
//   G.shared<C>()     64 values of C shared by the group
// Each thread owns columns j = tid, tid + size, ... of the H columns and, in a kernel, reads and writes
// only its own columns of every gate block (j, H + j, ...): no thread reads what another wrote, so an
// output may be its input (h_out = h_prev, c_out = c_prev) and no barrier is needed outside the sums.
//
// On CUDA, G is rk_cuda_group; compiled as host C++ (the CPU tests), rk_host_group runs each thread of
// a group as a std::thread, with a barrier and a shuffle emulated through memory, so the reductions
// below run as written.
#ifndef RK_COMMON_CUH
#include "common.cuh"
#endif
#ifndef RK_LAYERNORM_CUH
#define RK_LAYERNORM_CUH

// A (B, width) row view: rows ld elements apart, columns contiguous.
template <typename T>
struct rk_mat {
  T* p;
  long long ld;
  RK_FUNC T* row(long long b) const { return p + b * ld; }
};

#define RK_LN_EPS 1e-5  // LayerNorm's epsilon (F.layer_norm's and Haste's)

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
RK_FUNC float rk_sqrt(float x) { return sqrtf(x); }  // IEEE-rounded (NVRTC's default --prec-sqrt=true)
RK_FUNC double rk_sqrt(double x) { return sqrt(x); }
#else
RK_FUNC float rk_sqrt(float x) { return std::sqrt(x); }
RK_FUNC double rk_sqrt(double x) { return std::sqrt(x); }
#endif

// Zoneout of h, a template parameter of every kernel (never a branch per element).
enum { RK_ZONE_NONE = 0, RK_ZONE_BLEND = 1, RK_ZONE_MASK = 2 };

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
template <bool WARP>
struct rk_cuda_group {
  int tid, size;
  long long first, step;
  __device__ rk_cuda_group() {
    if (WARP) {
      const int warps = blockDim.x / 32;
      tid = threadIdx.x % 32, size = 32;
      first = (long long)blockIdx.x * warps + threadIdx.x / 32, step = (long long)gridDim.x * warps;
    } else {
      tid = threadIdx.x, size = blockDim.x, first = blockIdx.x, step = gridDim.x;
    }
  }
  __device__ void sync() const {
    if (WARP) __syncwarp(); else __syncthreads();
  }
  template <typename C> __device__ C shfl_xor(C v, int m) const { return __shfl_xor_sync(0xffffffffu, v, m); }
  template <typename C> __device__ C* shared() const {
    __shared__ C values[64];
    return values;
  }
};
#else
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

// The state one emulated group shares: a reusable barrier and the memory behind shfl_xor and shared.
struct rk_host_state {
  std::mutex mutex;
  std::condition_variable turned;
  int size, waiting = 0;
  long long generation = 0;
  std::vector<double> lanes;   // shfl_xor's exchange, one value per thread (float and double fit exactly)
  alignas(16) double shared[64];
  explicit rk_host_state(int n) : size(n), lanes(n) {}
  void barrier() {
    std::unique_lock<std::mutex> lock(mutex);
    const long long mine = generation;
    if (++waiting == size) {
      waiting = 0, ++generation;
      turned.notify_all();
    } else {
      turned.wait(lock, [&] { return generation != mine; });
    }
  }
};

struct rk_host_group {
  int tid, size;
  long long first, step;
  rk_host_state* state;
  void sync() const { state->barrier(); }
  template <typename C> C shfl_xor(C v, int m) const {
    state->lanes[tid] = v;
    sync();
    const C other = C(state->lanes[tid ^ m]);
    sync();
    return other;
  }
  template <typename C> C* shared() const { return reinterpret_cast<C*>(state->shared); }
};

// Run body(group) for every thread of every row group a CUDA launch of grid x block would have
// (warp: block/32 groups of 32 per block; else one group per block), one group at a time.
inline void rk_host_launch(long long grid, int block, bool warp,
                           const std::function<void(const rk_host_group&)>& body) {
  const int size = warp ? 32 : block;
  const long long groups = warp ? grid * (block / 32) : grid;
  for (long long first = 0; first < groups; ++first) {
    rk_host_state state(size);
    std::vector<std::thread> threads;
    for (int tid = 0; tid < size; ++tid)
      threads.emplace_back([&, tid] { body(rk_host_group{tid, size, first, groups, &state}); });
    for (auto& t : threads) t.join();
  }
}
#endif

// The sum over the group of every thread's v, in every thread. Butterfly shuffles: each lane adds the
// same two partial sums (a + b and b + a are equal), so every thread holds the same bits.
template <class G, typename C>
RK_FUNC C rk_warp_sum(const G& g, C v) {
  for (int m = 16; m > 0; m >>= 1) v += g.template shfl_xor<C>(v, m);
  return v;
}

// Two sums at once (LayerNorm's backward needs two means): one barrier pair for both.
template <class G, typename C>
RK_FUNC void rk_group_sum2(const G& g, C& a, C& b) {
  a = rk_warp_sum(g, a);
  b = rk_warp_sum(g, b);
  const int warps = g.size / 32;
  if (warps == 1) return;
  C* s = g.template shared<C>();
  const int lane = g.tid % 32, w = g.tid / 32;
  if (lane == 0) s[w] = a, s[32 + w] = b;
  g.sync();
  a = lane < warps ? s[lane] : C(0);
  b = lane < warps ? s[32 + lane] : C(0);
  g.sync();  // every warp has read s before the next sum writes it
  a = rk_warp_sum(g, a);
  b = rk_warp_sum(g, b);
}

template <class G, typename C>
RK_FUNC C rk_group_sum(const G& g, C v) {
  v = rk_warp_sum(g, v);
  const int warps = g.size / 32;
  if (warps == 1) return v;
  C* s = g.template shared<C>();
  const int lane = g.tid % 32;
  if (lane == 0) s[g.tid / 32] = v;
  g.sync();
  v = lane < warps ? s[lane] : C(0);
  g.sync();
  return rk_warp_sum(g, v);
}

// 1/sqrt(var + EPS) of a row of ``count`` values whose mean is known, from each thread's sum of squared
// deviations (two passes over the row: never E[x^2] - E[x]^2).
template <class G, typename C>
RK_FUNC C rk_rstd(const G& g, C squares, C count) {
  return C(1) / rk_sqrt(rk_group_sum(g, squares) / count + C(RK_LN_EPS));
}

// The mean and rstd of one gate row of K blocks of H columns (block k, column j at s[k*H + j]), the
// group's threads sharing the work, in two passes over the row.
template <int K, class G, typename T, typename C>
RK_FUNC void rk_row_stats(const G& g, const T* s, long long H, C& mean, C& rstd) {
  C sum = C(0), dev = C(0);
  for (long long j = g.tid; j < H; j += g.size)
    for (int k = 0; k < K; ++k) sum += C(s[k * H + j]);
  mean = rk_group_sum(g, sum) / C(K * H);
  for (long long j = g.tid; j < H; j += g.size)
    for (int k = 0; k < K; ++k) {
      const C d = C(s[k * H + j]) - mean;
      dev += d * d;
    }
  rstd = rk_rstd(g, dev, C(K * H));
}

// The LayerNorm backward of one gate row of K blocks of H columns: ``out`` = the gradient of the raw
// row, rstd*(dy*gamma - mean(dy*gamma) - hat*mean(dy*gamma*hat)), from ``dy`` (the gradient of
// gamma*hat) and each thread's partial sums t1 = sum dy*gamma, t2 = sum dy*gamma*hat over its columns.
template <int K, class G, typename T, typename C>
RK_FUNC void rk_row_norm_backward(const G& g, const T* dy, const T* gamma, const T* hat, C rstd, C t1, C t2,
                                  long long H, T* out) {
  rk_group_sum2(g, t1, t2);
  const C u1 = t1 / C(K * H), u2 = t2 / C(K * H);
  for (long long j = g.tid; j < H; j += g.size)
    for (int k = 0; k < K; ++k) {
      const long long c = k * H + j;
      out[c] = rstd * (C(dy[c]) * C(gamma[c]) - u1 - C(hat[c]) * u2);
    }
}

// d (the gradient of h_new) and the part of dh that zoneout sends straight to h_prev, from dh.
template <int Z, typename C>
RK_FUNC C rk_zoneout_grad(C dh, C keep, C q) {
  return Z == RK_ZONE_MASK ? keep * dh : (Z == RK_ZONE_BLEND ? q * dh : dh);
}

#endif  // RK_LAYERNORM_CUH
