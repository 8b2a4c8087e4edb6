"""The CPU backend on NumPy alone: arrays, BLAS GEMMs and each cell's step as in-place ufuncs
(``steps``: the forward steps and the backend class; ``grad``: the backward steps)."""
