"""Float64 reference of every update rule, per framework (torch 2.13.0, paddle 3.3.1).

Each rule has the interface of torch/optim's functional rules, in numpy float64:

    rule(w, g, state, step, **hyper) -> new w

w is the parameter before the step (never modified), g its gradient, state a
dict the rule owns for this parameter (starts empty), step is 1-based; hyper
uses the framework's own argument names. The formula is in each docstring.

Decay is not inside the rules (optax style): it is its own composable step.

    coupled_l2(c)    g <- g + c*w            (before the rule)
    l1(c)            g <- g + c*sign(w)      (before the rule)
    decoupled_lr(c)  w <- rule(w, g) - lr*c*w   (w the old weights, lr the raw lr)

Both frameworks apply decoupled decay as p *= 1 - lr*c before the update; the
rules that do not read w make that identical to the form above, and torch's
Adafactor computes its step size from the pre-decay w, which is this form too.
Paddle's Lamb is the exception: its decay sits inside the trust ratio, so it is
the rule's own `lamb_weight_decay` (rule name `lamb_trust`).

The rules were established by running the frameworks (see the tests), not from
their documentation. Paddle keeps beta**t as float32 running products; its
rules reproduce that (f32_pows) because 1 - beta2**t cancels and the float32
product alone moves Adam-family steps by ~1e-5 relative.
"""
from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np

from .layers import Layer
from .nets import grads_and_bounds

Rule = Callable[..., np.ndarray]


# ---------------------------------------------------------------- decay steps

def coupled_l2(w: np.ndarray, g: np.ndarray, c: float) -> np.ndarray:
    """g <- g + c*w: the gradient of 0.5*c*sum(w^2) (torch weight_decay, paddle L2Decay)."""
    return g + c * w


def l1(w: np.ndarray, g: np.ndarray, c: float) -> np.ndarray:
    """g <- g + c*sign(w): the gradient of c*sum(|w|) (paddle L1Decay; sign(0) = 0)."""
    return g + c * np.sign(w)


def decoupled_lr(w_old: np.ndarray, w_new: np.ndarray, c: float, lr: float) -> np.ndarray:
    """w <- w_new - lr*c*w_old (AdamW: p *= 1 - lr*c before the update)."""
    return w_new - lr * c * w_old


# ---------------------------------------------------------------- torch rules

def _zeros(state, key, like, fill=0.0):
    if key not in state:
        state[key] = np.full_like(like, fill, dtype=np.float64)
    return state[key]


def torch_sgd(w, g, state, step, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False):
    """SGD.
        if momentum != 0:
            b_1 = g                                 (first step: NO dampening applied)
            b_t = momentum*b_{t-1} + (1-dampening)*g   (t>1)
            d   = g + momentum*b_t  if nesterov else b_t
        else d = g
        w <- w - lr*d
    nesterov requires momentum>0 and dampening==0 (ValueError otherwise).
    """
    d = g
    if momentum != 0:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = g.copy()
        else:
            state["momentum_buffer"] = momentum * state["momentum_buffer"] + (1 - dampening) * g
        b = state["momentum_buffer"]
        d = g + momentum * b if nesterov else b
    return w - lr * d


def torch_adam(w, g, state, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, amsgrad=False):
    """Adam / AdamW core (decay composed outside).
        m_t = b1*m + (1-b1)*g ; v_t = b2*v + (1-b2)*g^2
        vmax_t = max(vmax, v_t) if amsgrad (state max_exp_avg_sq), used in place of v_t
        w <- w - lr/(1-b1^t) * m_t / ( sqrt(v_t)/sqrt(1-b2^t) + eps )
    eps is OUTSIDE the sqrt and added to the bias-corrected sqrt(v_hat).
    """
    b1, b2 = betas
    m = _zeros(state, "exp_avg", w); v = _zeros(state, "exp_avg_sq", w)
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    if amsgrad:
        vm = _zeros(state, "max_exp_avg_sq", w)
        vm[...] = np.maximum(vm, v)
        v = vm
    denom = np.sqrt(v) / math.sqrt(1 - b2 ** step) + eps
    return w - lr / (1 - b1 ** step) * m / denom


def torch_adamax(w, g, state, step, lr=2e-3, betas=(0.9, 0.999), eps=1e-8):
    """Adamax.
        m_t = b1*m + (1-b1)*g
        u_t = max(b2*u, |g| + eps)          (eps INSIDE the max, not added to the denominator)
        w <- w - lr/(1-b1^t) * m_t / u_t
    """
    b1, b2 = betas
    m = _zeros(state, "exp_avg", w); u = _zeros(state, "exp_inf", w)
    m[...] = b1 * m + (1 - b1) * g
    u[...] = np.maximum(b2 * u, np.abs(g) + eps)
    return w - lr / (1 - b1 ** step) * m / u


def torch_adagrad(w, g, state, step, lr=1e-2, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    """Adagrad.
        clr = lr / (1 + (t-1)*lr_decay)
        s_t = s + g^2           (s_0 = initial_accumulator_value)
        w <- w - clr * g / (sqrt(s_t) + eps)
    """
    s = _zeros(state, "sum", w, initial_accumulator_value)
    s[...] = s + g * g
    clr = lr / (1 + (step - 1) * lr_decay)
    return w - clr * g / (np.sqrt(s) + eps)


def torch_adadelta(w, g, state, step, lr=1.0, rho=0.9, eps=1e-6):
    """Adadelta.
        v_t = rho*v + (1-rho)*g^2
        d_t = sqrt(u + eps) / sqrt(v_t + eps) * g      (eps INSIDE both sqrt)
        u_t = rho*u + (1-rho)*d_t^2
        w <- w - lr*d_t
    """
    v = _zeros(state, "square_avg", w); u = _zeros(state, "acc_delta", w)
    v[...] = rho * v + (1 - rho) * g * g
    d = np.sqrt(u + eps) / np.sqrt(v + eps) * g
    u[...] = rho * u + (1 - rho) * d * d
    return w - lr * d


def torch_rmsprop(w, g, state, step, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
    """RMSprop.
        v_t = alpha*v + (1-alpha)*g^2
        centered: ga_t = alpha*ga + (1-alpha)*g ; a = sqrt(v_t - ga_t^2) + eps
        else    : a = sqrt(v_t) + eps                  (eps OUTSIDE the sqrt)
        momentum>0: b_t = momentum*b + g/a ; w <- w - lr*b_t     (b_0 = 0)
        else      : w <- w - lr*g/a
    """
    v = _zeros(state, "square_avg", w)
    v[...] = alpha * v + (1 - alpha) * g * g
    if centered:
        ga = _zeros(state, "grad_avg", w)
        ga[...] = alpha * ga + (1 - alpha) * g
        a = np.sqrt(v - ga * ga) + eps
    else:
        a = np.sqrt(v) + eps
    if momentum > 0:
        b = _zeros(state, "momentum_buffer", w)
        b[...] = momentum * b + g / a
        return w - lr * b
    return w - lr * g / a


def torch_nadam_mu(t, beta1=0.9, momentum_decay=4e-3):
    """mu_t = beta1 * (1 - 0.5 * 0.96**(t*momentum_decay))"""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


def torch_nadam(w, g, state, step, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, momentum_decay=4e-3):
    """NAdam (Dozat), torch variant.
        mu_t = b1*(1 - 0.5*0.96^(t*psi)), mu_{t+1} likewise; P_t = prod_{i<=t} mu_i (state mu_product)
        m_t = b1*m + (1-b1)*g ; v_t = b2*v + (1-b2)*g^2      (m uses b1, NOT mu_t)
        den = sqrt(v_t/(1-b2^t)) + eps
        w <- w - lr*(1-mu_t)/(1-P_t) * g/den - lr*mu_{t+1}/(1-P_t*mu_{t+1}) * m_t/den
    """
    b1, b2 = betas
    mu = torch_nadam_mu(step, b1, momentum_decay)
    mu_next = torch_nadam_mu(step + 1, b1, momentum_decay)
    state["mu_product"] = state.get("mu_product", 1.0) * mu
    P = state["mu_product"]
    m = _zeros(state, "exp_avg", w); v = _zeros(state, "exp_avg_sq", w)
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    den = np.sqrt(v / (1 - b2 ** step)) + eps
    return (w - lr * (1 - mu) / (1 - P) * g / den
              - lr * mu_next / (1 - P * mu_next) * m / den)


def torch_radam(w, g, state, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """RAdam.
        m_t, v_t as Adam ; m_hat = m_t/(1-b1^t)
        rho_inf = 2/(1-b2) - 1 ; rho_t = rho_inf - 2 t b2^t/(1-b2^t)
        rho_t > 5: r = sqrt((rho_t-4)(rho_t-2)rho_inf / ((rho_inf-4)(rho_inf-2)rho_t))
                   w <- w - lr * m_hat * r * sqrt(1-b2^t)/(sqrt(v_t) + eps)
                   (eps added to the UNcorrected sqrt(v_t) -- differs from Adam)
        else     : w <- w - lr * m_hat            (SGD-with-momentum; t<=5 for b2=0.999)
    """
    b1, b2 = betas
    m = _zeros(state, "exp_avg", w); v = _zeros(state, "exp_avg_sq", w)
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    bc1 = 1 - b1 ** step; bc2 = 1 - b2 ** step
    m_hat = m / bc1
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * step * b2 ** step / bc2
    if rho_t > 5.0:
        r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return w - lr * m_hat * r * math.sqrt(bc2) / (np.sqrt(v) + eps)
    return w - lr * m_hat


def torch_asgd(w, g, state, step, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6):
    """ASGD (averaged SGD, Polyak-Ruppert).  State eta, mu (scalars), ax (average).
        eta_t = lr / (1 + lambd*lr*(t-1))**alpha     (eta_1 = lr; torch stores it after step t-1)
        mu_t  = 1 / max(1, (t-1) - t0)               (mu_1 = 1)
        w <- w*(1 - lambd*eta_t) - eta_t*g           (built-in decay by lambd, ALWAYS on)
        ax <- w_new if mu_t == 1 else ax + mu_t*(w_new - ax)
    ax is the averaged iterate; it never feeds back into w.
    """
    eta = state.get("eta", lr)
    mu = state.get("mu", 1.0)
    w_new = w * (1 - lambd * eta) - eta * g
    ax = _zeros(state, "ax", w)
    if mu != 1:
        ax[...] = ax + mu * (w_new - ax)
    else:
        ax[...] = w_new
    state["eta"] = lr / ((1 + lambd * lr * step) ** alpha)
    state["mu"] = 1 / max(1, step - t0)
    return w_new


def torch_rprop(w, g, state, step, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50)):
    """Rprop, per element (prev_0 = 0, step size_0 = lr):
        g*prev > 0: size <- min(size*eta_plus, max) ; w <- w - sign(g)*size ; prev <- g
        g*prev < 0: size <- max(size*eta_minus, min); w unchanged            ; prev <- 0
        else      :                                   w <- w - sign(g)*size ; prev <- g
    (paddle's Rprop is the same rule with learning_rate_range for step_sizes.)
    """
    return paddle_rprop(w, g, state, step, lr, learning_rate_range=step_sizes, etas=etas)


def torch_adafactor(w, g, state, step, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
              param_dtype=np.float32):
    """Adafactor (torch.optim.Adafactor; no first moment / beta1).
        beta2_hat = 1 - t^beta2_decay  (lerp weight t^beta2_decay; =1 at t=1 so no bias corr.)
        rho_t = min(lr, 1/sqrt(t)) ; alpha = max(eps2, RMS(w_old)) * rho_t
        eps1 = finfo(param dtype).eps if None  (float32: 1.19e-7 -- dtype dependent!)
        ndim>=2: R = lerp(R, mean(g^2, -1), t^b2d) ; C = lerp(C, mean(g^2, -2), t^b2d)
                 V = (R @ C) / max(mean(R, -2), eps1)
        ndim==1: V = lerp(V, g^2, t^b2d)
        U = g / sqrt(max(V, eps1^2)) ; U <- U / max(1, RMS(U)/d)
        w <- w - alpha * U
    Weight decay (outside): w_new -= lr*c*w_old, lr = group lr; alpha uses PRE-decay w.
    """
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = float(np.finfo(param_dtype).eps)
    k = float(step) ** beta2_decay
    rho_t = min(lr, 1 / math.sqrt(step))
    alpha = max(eps2, math.sqrt(np.mean(w * w))) * rho_t
    if g.ndim > 1:
        rs = list(g.shape); rs[-1] = 1
        cs = list(g.shape); cs[-2] = 1
        R = state.setdefault("row_var", np.zeros(rs))
        C = state.setdefault("col_var", np.zeros(cs))
        R[...] = R + k * (np.mean(g * g, axis=-1, keepdims=True) - R)
        C[...] = C + k * (np.mean(g * g, axis=-2, keepdims=True) - C)
        V = (R @ C) / np.maximum(np.mean(R, axis=-2, keepdims=True), eps1)
    else:
        Vs = _zeros(state, "variance", w)
        Vs[...] = Vs + k * (g * g - Vs)
        V = Vs.copy()
    U = g / np.sqrt(np.maximum(V, eps1 * eps1))
    denom = max(1.0, math.sqrt(np.mean(U * U)) / d)
    return w - alpha / denom * U


# ---------------------------------------------------------------- paddle rules

def _pow(state, key, beta, step, f32_pows):
    """beta**step.  f32_pows=True emulates paddle's float32 beta-pow accumulator: it holds
    beta^t before step t (filled with float32(beta)), is used, then multiplied by float32(beta)
    in float32.  state[key] therefore mirrors paddle's `beta?_pow_acc` exactly.  Because
    1-beta2^t cancels (beta2=0.999), this float32 state alone moves Adam-family results by
    ~1e-5 relative -- use it (and float32-rounded hypers) for ULP-level replay."""
    if not f32_pows:
        return beta ** step
    p = state.get(key)
    p = np.float32(beta) if p is None else np.float32(p)
    state[key] = np.float32(p * np.float32(beta))
    return float(p)


def paddle_sgd(w, g, state, step, lr):
    """w <- w - lr*g"""
    return w - lr * g


def paddle_momentum(w, g, state, step, lr, momentum=0.9, use_nesterov=False):
    """v <- mu*v + g   (v0 = 0)
    plain:    w <- w - lr*v
    nesterov: w <- w - lr*(g + mu*v)
    (CPU kernel ignores rescale_grad; L2 fused as g+c*w == coupled_l2.)"""
    v = state.get("v", np.zeros_like(w))
    v = momentum * v + g
    state["v"] = v
    if use_nesterov:
        return w - lr * (g + momentum * v)
    return w - lr * v


def paddle_adam(w, g, state, step, lr, beta1=0.9, beta2=0.999, epsilon=1e-8, amsgrad=False, f32_pows=True):
    """m <- b1*m + (1-b1)*g ;  v <- b2*v + (1-b2)*g^2
    amsgrad: vmax <- max(vmax, v), used in place of v (as torch; cases/adam_amsgrad.toml)
    lr_t = lr*sqrt(1-b2^t)/(1-b1^t)
    w <- w - lr_t * m / (sqrt(v) + epsilon*sqrt(1-b2^t))
    (== torch Adam: lr*m_hat/(sqrt(v_hat)+eps).  The paddle docstring omits the
    sqrt(1-b2^t) factor on epsilon.)"""
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    state["m"], state["v"] = m, v
    if amsgrad:
        v = np.maximum(state.get("vmax", 0.0), v)
        state["vmax"] = v
    b1t, b2t = _pow(state, "b1p", beta1, step, f32_pows), _pow(state, "b2p", beta2, step, f32_pows)
    lr_t = lr * np.sqrt(1 - b2t) / (1 - b1t)
    return w - lr_t * m / (np.sqrt(v) + epsilon * np.sqrt(1 - b2t))


def paddle_adamax(w, g, state, step, lr, beta1=0.9, beta2=0.999, epsilon=1e-8, f32_pows=True):
    """m <- b1*m + (1-b1)*g
    u <- max(|g|, b2*u + epsilon)          (torch: max(b2*u, |g| + eps))
    w <- w - lr/(1-b1^t) * m/u"""
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    u = np.maximum(np.abs(g), beta2 * state.get("u", 0.0) + epsilon)
    state["m"], state["u"] = m, u
    return w - lr / (1 - _pow(state, "b1p", beta1, step, f32_pows)) * m / u


def paddle_adagrad(w, g, state, step, lr, epsilon=1e-6, initial_accumulator_value=0.0):
    """s <- s + g^2   (s0 = initial_accumulator_value)
    w <- w - lr*g/(sqrt(s) + epsilon)"""
    s = state.get("s", np.full_like(w, initial_accumulator_value)) + g * g
    state["s"] = s
    return w - lr * g / (np.sqrt(s) + epsilon)


def paddle_adadelta(w, g, state, step, lr=0.001, rho=0.95, epsilon=1e-6):
    """Eg2 <- rho*Eg2 + (1-rho)*g^2
    d    <- -sqrt(Edx2 + eps)/sqrt(Eg2 + eps) * g
    w    <- w + lr*d
    Edx2 <- rho*Edx2 + (1-rho)*d^2       (d without lr, as torch)"""
    eg = rho * state.get("eg", 0.0) + (1 - rho) * g * g
    edx = state.get("edx", np.zeros_like(w))
    d = -np.sqrt(edx + epsilon) / np.sqrt(eg + epsilon) * g
    state["eg"] = eg
    state["edx"] = rho * edx + (1 - rho) * d * d
    return w + lr * d


def paddle_rmsprop(w, g, state, step, lr, rho=0.95, epsilon=1e-6, momentum=0.0, centered=False):
    """ms <- rho*ms + (1-rho)*g^2
    centered: mg <- rho*mg + (1-rho)*g ; den = sqrt(ms - mg^2 + epsilon)
    else:                                den = sqrt(ms + epsilon)      (eps INSIDE sqrt)
    mom <- momentum*mom + lr*g/den                                     (lr INSIDE buffer)
    w   <- w - mom"""
    ms = rho * state.get("ms", 0.0) + (1 - rho) * g * g
    state["ms"] = ms
    if centered:
        mg = rho * state.get("mg", 0.0) + (1 - rho) * g
        state["mg"] = mg
        den = np.sqrt(ms - mg * mg + epsilon)
    else:
        den = np.sqrt(ms + epsilon)
    mom = momentum * state.get("mom", 0.0) + lr * g / den
    state["mom"] = mom
    return w - mom


def paddle_lamb(w, g, state, step, lr, beta1=0.9, beta2=0.999, epsilon=1e-6,
         lamb_weight_decay=0.01, always_adapt=False, f32_pows=True):
    """m <- b1*m + (1-b1)*g ; v <- b2*v + (1-b2)*g^2
    m_hat = m/(1-b1^t) ; v_hat = v/(1-b2^t)     (docstring wrongly says m/b1^t, v/b2^t)
    r = m_hat/(sqrt(v_hat) + eps) + lamb_weight_decay*w
    if lamb_weight_decay > 0 or always_adapt:
        ratio = |w|/|r| if |w|>0 and |r|>0 else 1      (per-tensor L2 norms)
    else:
        ratio = 1     # <- decay 0 (e.g. exclude_from_weight_decay_fn) also disables trust ratio
    w <- w - lr*ratio*r"""
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    state["m"], state["v"] = m, v
    mh = m / (1 - _pow(state, "b1p", beta1, step, f32_pows))
    vh = v / (1 - _pow(state, "b2p", beta2, step, f32_pows))
    r = mh / (np.sqrt(vh) + epsilon) + lamb_weight_decay * w
    ratio = 1.0
    if lamb_weight_decay > 0 or always_adapt:
        pn, tn = np.linalg.norm(w), np.linalg.norm(r)
        if pn > 0 and tn > 0:
            ratio = pn / tn
    return w - lr * ratio * r


def paddle_nadam(w, g, state, step, lr=0.002, beta1=0.9, beta2=0.999, epsilon=1e-8,
          momentum_decay=0.004, f32_pows=True):
    """mu_t   = b1*(1 - 0.5*0.96^(t*psi)) ; mu_t1 = b1*(1 - 0.5*0.96^((t+1)*psi))
    P_t    = prod_{i<=t} mu_i
    m <- b1*m + (1-b1)*g ; v <- b2*v + (1-b2)*g^2
    m_hat = mu_t1*m/(1-P_t*mu_t1) + (1-mu_t)*g/(1-P_t) ; v_hat = v/(1-b2^t)
    w <- w - lr*m_hat/(sqrt(v_hat)+eps)        (== torch NAdam)"""
    if f32_pows:  # paddle keeps 0.96^t, beta2^t and prod(mu) as float32 running products
        d = np.float32(state.get("mdp", np.float32(1.0)) * np.float32(0.96))
        state["mdp"] = d
        mu_t = beta1 * (1 - 0.5 * float(d) ** momentum_decay)
        mu_t1 = beta1 * (1 - 0.5 * float(d) ** momentum_decay * 0.96 ** momentum_decay)
        P = float(np.float32(state.get("mu_prod", 1.0) * mu_t))
        b2t = float(np.float32(state.get("b2p", np.float32(1.0)) * np.float32(beta2)))
        state["b2p"] = b2t
    else:
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_t1 = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        P = state.get("mu_prod", 1.0) * mu_t
        b2t = beta2 ** step
    state["mu_prod"] = P
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    state["m"], state["v"] = m, v
    mh = mu_t1 * m / (1 - P * mu_t1) + (1 - mu_t) * g / (1 - P)
    vh = v / (1 - b2t)
    return w - lr * mh / (np.sqrt(vh) + epsilon)


def paddle_radam(w, g, state, step, lr, beta1=0.9, beta2=0.999, epsilon=1e-8, f32_pows=True):
    """m,v as Adam ; m_hat = m/(1-b1^t)
    rho_inf = 2/(1-b2)-1 ; rho_t = rho_inf - 2 t b2^t/(1-b2^t)
    rho_t > 5: l = sqrt(1-b2^t)/(sqrt(v)+eps) ; r = sqrt((rho_t-4)(rho_t-2)rho_inf/((rho_inf-4)(rho_inf-2)rho_t))
               w <- w - lr*m_hat*r*l
    else:      w <- w - lr*m_hat                 (== torch RAdam, decoupled=False)
    rho_t uses beta2^t exactly (paddle's `rho` accumulator), not the float32 running
    product l_t uses: with the float32 product the replay of steps 6-8 (the first where
    rho_t > 5) is off by ~50x the tolerance, with the exact power it fits (cases/radam.toml)."""
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    state["m"], state["v"] = m, v
    mh = m / (1 - _pow(state, "b1p", beta1, step, f32_pows))
    b2t = _pow(state, "b2p", beta2, step, f32_pows)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2 ** step / (1 - beta2 ** step)
    if rho_t > 5:
        l_t = np.sqrt(1 - b2t) / (np.sqrt(v) + epsilon)
        r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return w - lr * mh * r_t * l_t
    return w - lr * mh


def paddle_asgd(w, g, state, step, lr, batch_num=1):
    """paddle ASGD (really SAG, not torch's averaged SGD), as it RUNS in dygraph:
    d <- d - y[i] + g ; y[i] <- g ; i = (t-1) mod n ;  w <- w - lr*d/min(t, n)
    (decay, if any, is inside g, so it is averaged into d too; the docstring's
    separate '+ lambda*x' term does not exist)"""
    n = batch_num
    ys = state.setdefault("y", [np.zeros_like(w) for _ in range(n)])
    d = state.get("d", np.zeros_like(w))
    i = (step - 1) % n
    d = d - ys[i] + g
    ys[i] = g
    state["d"] = d
    return w - lr * d / min(step, n)


def paddle_rprop(w, g, state, step, lr, learning_rate_range=(1e-5, 50.0), etas=(0.5, 1.2)):
    """per element, prev0 = 0, eta0 = lr:
    g*prev > 0: eta <- min(eta*eta_plus, max);  w <- w - sign(g)*eta ; prev <- g
    g*prev < 0: eta <- max(eta*eta_minus, min); w unchanged          ; prev <- 0
    else:                                       w <- w - sign(g)*eta ; prev <- g"""
    prev = state.get("prev", np.zeros_like(w))
    eta = state.get("eta", np.full_like(w, lr))
    s = g * prev
    eta = np.where(s > 0, np.minimum(eta * etas[1], learning_rate_range[1]),
                   np.where(s < 0, np.maximum(eta * etas[0], learning_rate_range[0]), eta))
    gg = np.where(s < 0, 0.0, g)
    state["prev"], state["eta"] = gg, eta
    return w - np.sign(gg) * eta


RULES: dict[tuple[str, str], Rule] = {
    ("torch", "SGD"): torch_sgd, ("torch", "Adam"): torch_adam, ("torch", "AdamW"): torch_adam,
    ("torch", "Adamax"): torch_adamax, ("torch", "Adagrad"): torch_adagrad,
    ("torch", "Adadelta"): torch_adadelta, ("torch", "RMSprop"): torch_rmsprop,
    ("torch", "NAdam"): torch_nadam, ("torch", "RAdam"): torch_radam, ("torch", "ASGD"): torch_asgd,
    ("torch", "Adafactor"): torch_adafactor, ("torch", "Rprop"): torch_rprop,
    ("paddle", "SGD"): paddle_sgd, ("paddle", "Momentum"): paddle_momentum,
    ("paddle", "Adam"): paddle_adam, ("paddle", "AdamW"): paddle_adam,
    ("paddle", "Adamax"): paddle_adamax, ("paddle", "Adagrad"): paddle_adagrad,
    ("paddle", "Adadelta"): paddle_adadelta, ("paddle", "RMSProp"): paddle_rmsprop,
    ("paddle", "Lamb"): paddle_lamb, ("paddle", "NAdam"): paddle_nadam,
    ("paddle", "RAdam"): paddle_radam, ("paddle", "ASGD"): paddle_asgd,
    ("paddle", "Rprop"): paddle_rprop,
}


# Paddle hands its kernels hyper-parameters (and decay coefficients) as float32.
FLOAT32_HYPER = {"torch": False, "paddle": True}


def hyper_value(framework: str, value: Any) -> Any:
    """A hyper-parameter as the framework's kernel sees it."""
    if FLOAT32_HYPER[framework] and isinstance(value, float):
        return float(np.float32(value))
    return value


def rule_kwargs(framework: str, rule: Rule, hyper: dict[str, Any]) -> dict[str, Any]:
    """The rule's keyword arguments from an optimizer's hyper-parameters (native names)."""
    names = set(parameters(rule)) - {"w", "g", "state", "step"}
    given = dict(hyper)
    if "learning_rate" in given:           # paddle's name for lr
        given["lr"] = given.pop("learning_rate")
    return {k: tuple(v) if isinstance(v, list) else hyper_value(framework, v)
            for k, v in given.items() if k in names}


def uses_f32_pows(rule: Rule, kwargs: dict[str, Any]) -> bool:
    """Does the rule emulate paddle's float32 beta^t products (see _pow) with these arguments?"""
    p = parameters(rule).get("f32_pows")
    return p is not None and kwargs.get("f32_pows", p.default) is True


@functools.cache
def parameters(func: Callable) -> Mapping[str, inspect.Parameter]:
    """A function's parameters, looked up once: inspect.signature took a tenth of a warm
    run_case's analysis (asked for every candidate fit), and ~0.03 CPU s of the workers'
    83 shipped cases (every run reports its optimizer constructor's hyper-parameters)."""
    return inspect.signature(func).parameters


def model_grads(params: dict[str, np.ndarray], x: np.ndarray, target: np.ndarray | None,
                loss: str, norm_eps: float = 1e-5, forward: dict[str, np.ndarray] | None = None
                ) -> dict[str, np.ndarray]:
    """Float64 gradients of the loss of y = x @ weight.T + bias, optionally followed by
    z = LayerNorm(y) * norm_gain + norm_bias (biased variance, eps inside the sqrt).

    mean: L = mean(out)              -> dL/dout = 1/out.size
    mse:  L = mean((out - target)^2) -> dL/dout = 2*(out - target)/out.size
    zero: L = mean(out) * 0          -> dL/dout = 0
    LayerNorm backward, with yh = (y - mean)/s, s = sqrt(var + eps), n features:
      d norm_gain = sum_batch(dz * yh), d norm_bias = sum_batch(dz),
      dy = (dyh - mean(dyh) - yh*mean(dyh*yh)) / s, dyh = dz * norm_gain
    `forward`: model_forward's result for these arguments, if the caller has it.
    """
    p = {n: np.asarray(v, np.float64) for n, v in params.items()}
    x = np.asarray(x, np.float64)
    f = forward or model_forward(params, x, norm_eps)
    norm = "norm_gain" in p
    out = f["out"]
    if norm:
        s, yh = f["s"], f["yh"]
    dout = (2.0 * (out - target) if loss == "mse" else np.ones_like(out) * (loss == "mean")) / out.size
    grads = {}
    if norm:
        grads["norm_gain"] = (dout * yh).sum(axis=0)
        grads["norm_bias"] = dout.sum(axis=0)
        dyh = dout * p["norm_gain"]
        dy = (dyh - dyh.mean(axis=1, keepdims=True) - yh * (dyh * yh).mean(axis=1, keepdims=True)) / s
    else:
        dy = dout
    grads["weight"] = dy.T @ x
    if "bias" in p:
        grads["bias"] = dy.sum(axis=0)
    return grads


def layer_grads(layer: Layer | None, params: dict[str, np.ndarray], x: np.ndarray, target: np.ndarray | None,
                loss: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """model_grads and gradient_bounds of a spec's layer: the Linear's (layer None) or
    another kind's (engine/nets.py), by canonical parameter name."""
    if layer is None:
        forward = model_forward(params, x)      # both need it: computed once
        return (model_grads(params, x, target, loss, forward=forward),
                gradient_bounds(params, x, target, loss, forward=forward))
    return grads_and_bounds(layer, params, x, target, loss)


def gradient_bounds(params: dict[str, np.ndarray], x: np.ndarray, target: np.ndarray | None,
                    loss: str, norm_eps: float = 1e-5, forward: dict[str, np.ndarray] | None = None
                    ) -> dict[str, np.ndarray]:
    """Per element, the a-priori scale G of float32 rounding in a framework's gradient:
    |fl(g) - g| <= gamma_n * G (Higham's running bound: every sum and product of the
    forward and backward pass taken over absolute values, and the forward error of
    the output carried into dL/dout). Where terms cancel, G >> |g|. `forward`:
    model_forward's result for these arguments, if the caller has it.
    """
    p = {n: np.asarray(v, np.float64) for n, v in params.items()}
    exact = forward or model_forward(params, x, norm_eps)
    x = np.abs(np.asarray(x, np.float64))
    y_abs = x @ np.abs(p["weight"]).T + np.abs(p.get("bias", 0.0))     # bound of y's rounding
    if "norm_gain" in p:
        s, yh, out = exact["s"], exact["yh"], exact["out"]
        out_err = np.abs(p["norm_gain"]) * (y_abs + y_abs.mean(axis=1, keepdims=True)) / s
    else:
        out, out_err = exact["out"], y_abs
    if loss != "mse":
        dout = np.full_like(out, (loss == "mean") / out.size)
    else:
        dout = 2.0 * (np.abs(out - target) + out_err) / out.size
    bounds = {}
    if "norm_gain" in p:
        bounds["norm_gain"] = (dout * np.abs(yh)).sum(axis=0)
        bounds["norm_bias"] = dout.sum(axis=0)
        dyh = dout * np.abs(p["norm_gain"])
        dy = (dyh + dyh.mean(axis=1, keepdims=True) + np.abs(yh) * (dyh * np.abs(yh)).mean(axis=1, keepdims=True)) / s
    else:
        dy = dout
    bounds["weight"] = dy.T @ x
    if "bias" in p:
        bounds["bias"] = dy.sum(axis=0)
    return bounds


def model_forward(params: dict[str, np.ndarray], x: np.ndarray, norm_eps: float = 1e-5) -> dict[str, np.ndarray]:
    """The float64 forward pass: y = x @ weight.T + bias, then optionally LayerNorm."""
    p = {n: np.asarray(v, np.float64) for n, v in params.items()}
    y = np.asarray(x, np.float64) @ p["weight"].T + p.get("bias", 0.0)
    if "norm_gain" not in p:
        return {"y": y, "out": y}
    s = np.sqrt(y.var(axis=1, keepdims=True) + norm_eps)
    yh = (y - y.mean(axis=1, keepdims=True)) / s
    return {"y": y, "s": s, "yh": yh, "out": yh * p["norm_gain"] + p["norm_bias"]}


ROW_BLOCK = 256    # weight rows converted to float64 at a time: no whole float64 copy of a large layer


def linear_forward_rows(weight: np.ndarray, bias: np.ndarray | None, x: np.ndarray,
                        rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y[:, rows] of y = x @ weight.T + bias in float64, and the same sums over absolute
    values (the rounding scale of y, as in gradient_bounds)."""
    x64 = np.asarray(x, np.float64)
    x_abs = np.abs(x64)
    y = np.empty((len(x64), len(rows)))
    y_abs = np.empty_like(y)
    every = len(rows) == len(weight)          # all rows, in order: blocks are plain slices
    for s in range(0, len(rows), ROW_BLOCK):
        block = slice(s, s + ROW_BLOCK) if every else rows[s:s + ROW_BLOCK]
        w = np.array(weight[block], np.float64)       # a copy: |w| is taken in place
        y[:, s:s + ROW_BLOCK] = x64 @ w.T
        y_abs[:, s:s + ROW_BLOCK] = x_abs @ np.abs(w, out=w).T
    if bias is not None:
        b = np.asarray(bias[rows], np.float64)
        y += b
        y_abs += np.abs(b)
    return y, y_abs


def grads_at(params: dict[str, np.ndarray], x: np.ndarray, target: np.ndarray | None, loss: str,
             select: dict[str, np.ndarray],
             forward: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """model_grads and gradient_bounds at the selected flat elements of each parameter.

    For a Linear without LayerNorm the forward pass is needed only for the output rows
    those elements touch (a row of the weight feeds one output), so a 4096x4096 layer
    costs a few rows, not a whole float64 copy. `forward` = (rows, y, y_abs) already
    computed by linear_forward_rows may be passed in. With LayerNorm every output
    depends on every row: the whole gradient is computed, then indexed.
    """
    if "norm_gain" in params:
        g, b = layer_grads(None, params, x, target, loss)
        return ({n: g[n].reshape(-1)[i] for n, i in select.items()},
                {n: b[n].reshape(-1)[i] for n, i in select.items()})
    weight = params["weight"]
    out_f, in_f = weight.shape
    if forward is None:
        rows = np.unique(np.concatenate([i // in_f if n == "weight" else i for n, i in select.items()]))
        forward = (rows, *linear_forward_rows(weight, params.get("bias"), x, rows))
    rows, y, y_abs = forward
    size = len(x) * out_f
    if loss != "mse":
        dout = dout_abs = np.full_like(y, (loss == "mean") / size)
    else:
        miss = y - np.asarray(target, np.float64)[:, rows]
        dout, dout_abs = 2.0 * miss / size, 2.0 * (np.abs(miss) + y_abs) / size
    x64 = np.asarray(x, np.float64)
    grads, bounds = {}, {}
    for name, idx in select.items():
        if name == "weight":
            col = np.searchsorted(rows, idx // in_f)
            xi = x64[:, idx % in_f]
            grads[name] = np.einsum("be,be->e", dout[:, col], xi)
            bounds[name] = np.einsum("be,be->e", dout_abs[:, col], np.abs(xi))
        else:
            col = np.searchsorted(rows, idx)
            grads[name], bounds[name] = dout[:, col].sum(axis=0), dout_abs[:, col].sum(axis=0)
    return grads, bounds
