"""The LayerNorm cells' step-API types (issue 20's shared design): the norms a step applies and its zoneout."""

from typing import NamedTuple, Optional

EPS = 1e-5  # LayerNorm's epsilon, as F.layer_norm's default and Haste's


class LNLSTMNorms(NamedTuple):
    gamma_hh: object  # (4H,) gain of LN(h W_hh^T)
    gamma_c: object  # (H,) gain of LN(c')
    beta_c: object  # (H,) shift of LN(c')


class LNGRUNorms(NamedTuple):
    gamma_hh: object  # (3H,) gain of LN(h W_hh^T)
    b_hh: object  # (3H,) recurrent bias (zeros when the layer has no bias)


class Zoneout(NamedTuple):
    prob: float
    mask: Optional[object]  # (B, H) 0/1 in the dtype: training; None and prob > 0: inference blend
