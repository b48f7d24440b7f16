"""Float64 NumPy references of the LRP rules, written from the formulas (Bach et al. 2015; Montavon et al. 2019;
Zennit's rules term by term), on layers given as explicit matrices ``z = W x + b`` (W: (out, in))."""

from __future__ import annotations

import numpy as np

STAB = 1e-6


def stab(z, eps=STAB):
    return z + eps * np.where(z >= 0, 1.0, -1.0)


def pos(a):
    return np.maximum(a, 0.0)


def neg(a):
    return np.minimum(a, 0.0)


def epsilon(W, b, x, R, eps=1e-6):
    z = W @ x + b
    return x * (W.T @ (R / stab(z, eps)))


def alpha_beta(W, b, x, R, alpha=2.0, beta=1.0):
    xp, xn, Wp, Wn = pos(x), neg(x), pos(W), neg(W)
    zp = Wp @ xp + pos(b) + Wn @ xn          # positive contributions (and the positive bias)
    zn = Wn @ xp + neg(b) + Wp @ xn          # negative contributions (and the negative bias)
    gp, gn = R / stab(zp), R / stab(zn)
    return alpha * (xp * (Wp.T @ gp) + xn * (Wn.T @ gp)) - beta * (xp * (Wn.T @ gn) + xn * (Wp.T @ gn))


def zplus(W, b, x, R):
    return alpha_beta(W, b, x, R, 1.0, 0.0)


def gamma(W, b, x, R, g=0.25):
    xp, xn = pos(x), neg(x)
    Wp, Wn = W + g * pos(W), W + g * neg(W)
    bp, bn = b + g * pos(b), b + g * neg(b)
    z = W @ x + b
    up = np.where(z > 0, R / stab(Wp @ xp + bp + Wn @ xn), 0.0)
    un = np.where(z < 0, R / stab(Wn @ xp + bn + Wp @ xn), 0.0)
    return xp * (Wp.T @ up + Wn.T @ un) + xn * (Wn.T @ up + Wp.T @ un)


def zbox(W, b, x, R, low, high):
    z = W @ x + b
    den = z - (pos(W) @ low + pos(b)) - (neg(W) @ high + neg(b))
    s = R / stab(den)
    return x * (W.T @ s) - low * (pos(W).T @ s) - high * (neg(W).T @ s)


def flat(W, b, x, R, real=None):
    """`real`: 1 at real inputs, 0 at padded ones (PyTorch pads inside the convolution: they do not exist)."""
    real = np.ones_like(x) if real is None else real
    ones = (W != 0).astype(float)            # every connection weight 1, no bias
    return real * (ones.T @ (R / stab(ones @ real)))


def wsquare(W, b, x, R, real=None):
    real = np.ones_like(x) if real is None else real
    return real * ((W ** 2).T @ (R / stab((W ** 2) @ real + b ** 2)))


RULES = {"epsilon": epsilon, "zplus": zplus, "alpha_beta": alpha_beta, "gamma": gamma, "flat": flat,
         "wsquare": wsquare}


def norm(x, y, J, R):
    """Zennit's Norm: ``R_in = x * J^T (R / stab(y))`` (J: (out, in))."""
    return x * (J.T @ (R / stab(y)))
