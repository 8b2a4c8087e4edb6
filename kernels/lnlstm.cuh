// rnnkern: the LayerNorm LSTM step (Haste's LayerNormLSTM, torch's gate order i, f, g, o) and its
// backward, one row group per batch row (kernels/layernorm.cuh). Per row b:
//   hh_hat = (gh - mean)*rstd over the 4H columns;  v = gx + gamma_hh*hh_hat   (gx: LN_ih + bias)
//   c' = f*c + i*g;  c_hat = (c' - mean_c)*rstd_c;  h_new = o*tanh(gamma_c*c_hat + beta_c)
//   h' = h_new, or zoneout: h + mask*(h_new - h) (Z = MASK), p*h + (1-p)*h_new (Z = BLEND).
// T is the storage type, C the compute type (float for float16 and float32, double for float64).
// gh is scratch (o waits there for the c-norm); TRAIN also stores gates (activations), hh_hat,
// c_hat and rstd = [rstd, rstd_c]. Unused arguments are stand-ins the variant never touches.
#ifndef RK_LAYERNORM_CUH
#include "layernorm.cuh"
#endif
#ifndef RK_LNLSTM_CUH
#define RK_LNLSTM_CUH

template <int Z, bool TRAIN, class G, typename T, typename C>
RK_FUNC void rk_lnlstm_step(const G& g, long long B, long long H, rk_mat<const T> gx, rk_mat<T> gh,
                            rk_mat<const T> c_prev, rk_mat<const T> h_prev, rk_mat<const T> mask,
                            const T* gamma_hh, const T* gamma_c, const T* beta_c, C prob, rk_mat<T> h_out,
                            rk_mat<T> c_out, rk_mat<T> gates, rk_mat<T> hh_hat, rk_mat<T> c_hat, rk_mat<T> rstd) {
  const C n = C(H), p = prob, q = C(1) - prob;
  for (long long b = g.first; b < B; b += g.step) {
    T* s = gh.row(b);
    C mean, r;
    rk_row_stats<4>(g, s, H, mean, r);
    const T* x = gx.row(b);
    const T* cp = c_prev.row(b);
    T *co = c_out.row(b), *ga = gates.row(b), *hat = hh_hat.row(b);
    C csum = C(0);
    for (long long j = g.tid; j < H; j += g.size) {
      C a[4], act[4];
      for (int k = 0; k < 4; ++k) a[k] = (C(s[k * H + j]) - mean) * r;
      for (int k = 0; k < 4; ++k) act[k] = C(x[k * H + j]) + C(gamma_hh[k * H + j]) * a[k];
      const C i = rk_sigmoid(act[0]), f = rk_sigmoid(act[1]), gg = rk_tanh(act[2]), o = rk_sigmoid(act[3]);
      co[j] = f * C(cp[j]) + i * gg;  // c_prev[j] is read first: c_out may be c_prev
      s[3 * H + j] = o;
      if (TRAIN) {
        ga[j] = i, ga[H + j] = f, ga[2 * H + j] = gg, ga[3 * H + j] = o;
        for (int k = 0; k < 4; ++k) hat[k * H + j] = a[k];
      }
      csum += C(co[j]);  // the statistics of c' as stored (and saved)
    }
    const C mean_c = rk_group_sum(g, csum) / n;
    C cdev = C(0);
    for (long long j = g.tid; j < H; j += g.size) {
      const C d = C(co[j]) - mean_c;
      cdev += d * d;
    }
    const C r_c = rk_rstd(g, cdev, n);
    const T *hp = h_prev.row(b), *keep = mask.row(b);
    T *ho = h_out.row(b), *chat = c_hat.row(b);
    for (long long j = g.tid; j < H; j += g.size) {
      const C ch = (C(co[j]) - mean_c) * r_c;
      const C h_new = C(s[3 * H + j]) * rk_tanh(C(gamma_c[j]) * ch + C(beta_c[j]));
      C h = h_new;
      if (Z == RK_ZONE_MASK) h = C(hp[j]) + C(keep[j]) * (h_new - C(hp[j]));
      if (Z == RK_ZONE_BLEND) h = p * C(hp[j]) + q * h_new;
      ho[j] = h;  // h_prev[j] is read first: h_out may be h_prev
      if (TRAIN) chat[j] = ch;
    }
    if (TRAIN && g.tid == 0) {
      T* rs = rstd.row(b);
      rs[0] = r, rs[1] = r_c;
    }
  }
}

// Backward from the saved gates, hh_hat, c_hat, rstd, c_prev and the incoming dh (into h') and dc (into
// c'): dgx = dv (4H), dgh (through LN_hh), dc_prev (may be dc), dh_direct = (1-mask)*dh or p*dh
// (not written without zoneout) and dcn, the gradient of gamma_c*c_hat + beta_c.
template <int Z, class G, typename T, typename C>
RK_FUNC void rk_lnlstm_backward(const G& g, long long B, long long H, rk_mat<const T> gates, rk_mat<const T> hh_hat,
                                rk_mat<const T> c_hat, rk_mat<const T> rstd, rk_mat<const T> c_prev,
                                rk_mat<const T> dh, rk_mat<const T> dc, rk_mat<const T> mask, const T* gamma_hh,
                                const T* gamma_c, const T* beta_c, C prob, rk_mat<T> dgx, rk_mat<T> dgh,
                                rk_mat<T> dc_prev, rk_mat<T> dh_direct, rk_mat<T> dcn) {
  const C n = C(H), p = prob, q = C(1) - prob;
  for (long long b = g.first; b < B; b += g.step) {
    const T *ga = gates.row(b), *chat = c_hat.row(b), *d = dh.row(b), *keep = mask.row(b), *hat = hh_hat.row(b);
    T *dx = dgx.row(b), *dn = dcn.row(b), *direct = dh_direct.row(b);
    const C r = C(rstd.row(b)[0]), r_c = C(rstd.row(b)[1]);
    C s1 = C(0), s2 = C(0);
    for (long long j = g.tid; j < H; j += g.size) {  // h_new = o*tanh(cn)
      const C dj = C(d[j]);
      const C d_new = rk_zoneout_grad<Z>(dj, Z == RK_ZONE_MASK ? C(keep[j]) : C(0), q);
      if (Z == RK_ZONE_MASK) direct[j] = dj - d_new;
      if (Z == RK_ZONE_BLEND) direct[j] = p * dj;
      const C o = C(ga[3 * H + j]), ch = C(chat[j]);
      const C t = rk_tanh(C(gamma_c[j]) * ch + C(beta_c[j]));
      dx[3 * H + j] = d_new * t * (o * (C(1) - o));
      dn[j] = d_new * o * (C(1) - t * t);
      const C y = C(dn[j]) * C(gamma_c[j]);
      s1 += y, s2 += y * ch;
    }
    rk_group_sum2(g, s1, s2);
    const C m1 = s1 / n, m2 = s2 / n;
    const T *cp = c_prev.row(b), *dcr = dc.row(b);
    T* dcp = dc_prev.row(b);
    C t1 = C(0), t2 = C(0);
    for (long long j = g.tid; j < H; j += g.size) {  // c' = f*c + i*g, dct its total gradient
      const C dct = r_c * (C(dn[j]) * C(gamma_c[j]) - m1 - C(chat[j]) * m2) + C(dcr[j]);
      const C i = C(ga[j]), f = C(ga[H + j]), gg = C(ga[2 * H + j]);
      dx[j] = dct * gg * (i * (C(1) - i));
      dx[H + j] = dct * C(cp[j]) * (f * (C(1) - f));
      dx[2 * H + j] = dct * i * (C(1) - gg * gg);
      dcp[j] = dct * f;  // dc[j] is read first: dc_prev may be dc
      for (int k = 0; k < 4; ++k) {
        const C y = C(dx[k * H + j]) * C(gamma_hh[k * H + j]);
        t1 += y, t2 += y * C(hat[k * H + j]);
      }
    }
    rk_row_norm_backward<4>(g, dx, gamma_hh, hat, r, t1, t2, H, dgh.row(b));
  }
}

#endif  // RK_LNLSTM_CUH
