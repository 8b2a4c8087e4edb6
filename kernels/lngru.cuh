// rnnkern: the LayerNorm GRU step (Haste's LayerNormGRU, torch's gate order r, z, n) and its backward,
// one row group per batch row (kernels/layernorm.cuh). Per row b:
//   hh_hat = (gh - mean)*rstd over the 3H columns;  ghn = gamma_hh*hh_hat + b_hh   (gx: LN_ih + b_ih)
//   r = s(gx_r + ghn_r), z = s(gx_z + ghn_z), n = tanh(gx_n + r*ghn_n);  h_new = (h - n)*z + n
//   h' = h_new, or zoneout as in lnlstm.cuh. TRAIN stores gates (r, z, n), hh_hat and rstd.
#ifndef RK_LAYERNORM_CUH
#include "layernorm.cuh"
#endif
#ifndef RK_LNGRU_CUH
#define RK_LNGRU_CUH

template <int Z, bool TRAIN, class G, typename T, typename C>
RK_FUNC void rk_lngru_step(const G& g, long long B, long long H, rk_mat<const T> gx, rk_mat<const T> gh,
                           rk_mat<const T> h_prev, rk_mat<const T> mask, const T* gamma_hh, const T* b_hh, C prob,
                           rk_mat<T> h_out, rk_mat<T> gates, rk_mat<T> hh_hat, rk_mat<T> rstd) {
  const C p = prob, q = C(1) - prob;
  for (long long b = g.first; b < B; b += g.step) {
    const T* s = gh.row(b);
    C mean, r_hh;
    rk_row_stats<3>(g, s, H, mean, r_hh);
    const T *x = gx.row(b), *hp = h_prev.row(b), *keep = mask.row(b);
    T *ho = h_out.row(b), *ga = gates.row(b), *hat = hh_hat.row(b);
    for (long long j = g.tid; j < H; j += g.size) {
      C a[3], ghn[3];
      for (int k = 0; k < 3; ++k) {
        a[k] = (C(s[k * H + j]) - mean) * r_hh;
        ghn[k] = C(gamma_hh[k * H + j]) * a[k] + C(b_hh[k * H + j]);
      }
      const C r = rk_sigmoid(C(x[j]) + ghn[0]), z = rk_sigmoid(C(x[H + j]) + ghn[1]);
      const C nn = rk_tanh(C(x[2 * H + j]) + r * ghn[2]);
      const C h0 = C(hp[j]);
      const C h_new = (h0 - nn) * z + nn;
      C h = h_new;
      if (Z == RK_ZONE_MASK) h = h0 + C(keep[j]) * (h_new - h0);
      if (Z == RK_ZONE_BLEND) h = p * h0 + q * h_new;
      ho[j] = h;  // h_prev[j] is read first: h_out may be h_prev
      if (TRAIN) {
        ga[j] = r, ga[H + j] = z, ga[2 * H + j] = nn;
        for (int k = 0; k < 3; ++k) hat[k * H + j] = a[k];
      }
    }
    if (TRAIN && g.tid == 0) rstd.row(b)[0] = r_hh;
  }
}

// Backward: dgx = [da_r, da_z, da_n], dghn = [da_r, da_z, da_n*r] (the gradient of LN_hh's output
// + b_hh), dgh through LN_hh, dh_direct = z*d_new + what zoneout passes straight to h_prev.
template <int Z, class G, typename T, typename C>
RK_FUNC void rk_lngru_backward(const G& g, long long B, long long H, rk_mat<const T> gates, rk_mat<const T> hh_hat,
                               rk_mat<const T> rstd, rk_mat<const T> h_prev, rk_mat<const T> dh,
                               rk_mat<const T> mask, const T* gamma_hh, const T* b_hh, C prob, rk_mat<T> dgx,
                               rk_mat<T> dghn, rk_mat<T> dgh, rk_mat<T> dh_direct) {
  const C p = prob, q = C(1) - prob;
  for (long long b = g.first; b < B; b += g.step) {
    const T *ga = gates.row(b), *hat = hh_hat.row(b), *hp = h_prev.row(b), *d = dh.row(b), *keep = mask.row(b);
    T *dx = dgx.row(b), *dy = dghn.row(b), *direct = dh_direct.row(b);
    C t1 = C(0), t2 = C(0);
    for (long long j = g.tid; j < H; j += g.size) {
      const C dj = C(d[j]);
      const C d_new = rk_zoneout_grad<Z>(dj, Z == RK_ZONE_MASK ? C(keep[j]) : C(0), q);
      const C r = C(ga[j]), z = C(ga[H + j]), nn = C(ga[2 * H + j]);
      const C ghn_n = C(gamma_hh[2 * H + j]) * C(hat[2 * H + j]) + C(b_hh[2 * H + j]);
      const C da_n = d_new * (C(1) - z) * (C(1) - nn * nn);
      const C da_r = da_n * ghn_n * (r * (C(1) - r));
      const C da_z = d_new * (C(hp[j]) - nn) * (z * (C(1) - z));
      dx[j] = da_r, dx[H + j] = da_z, dx[2 * H + j] = da_n;
      dy[j] = da_r, dy[H + j] = da_z, dy[2 * H + j] = da_n * r;
      C through = z * d_new;
      if (Z == RK_ZONE_MASK) through += dj - d_new;
      if (Z == RK_ZONE_BLEND) through += p * dj;
      direct[j] = through;  // dh[j] is read first
      for (int k = 0; k < 3; ++k) {
        const C y = C(dy[k * H + j]) * C(gamma_hh[k * H + j]);
        t1 += y, t2 += y * C(hat[k * H + j]);
      }
    }
    rk_row_norm_backward<3>(g, dy, gamma_hh, hat, C(rstd.row(b)[0]), t1, t2, H, dgh.row(b));
  }
}

#endif  // RK_LNGRU_CUH
