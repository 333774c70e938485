"""Reference fits for lthlang's elastic-net logistic solver (src/solvers/elastic_net.rs).

Reads a JSON problem on stdin: standardised inputs `x` [n, C], class labels `y`, `lambda`,
`l1_ratio`, and lthlang's fits `ours` = {"ovr": {"weight", "bias"}, "multinomial": {...}}.
Writes JSON on stdout: for each kind, the objective of our fit and of each reference, all computed
here by the same formula, and each reference's weights.

lthlang minimises  mean loss + λρ‖W‖₁ + λ(1−ρ)‖W‖²₂  (bias unpenalised). scikit-learn's
LogisticRegression minimises  C Σ loss + ρ'‖W‖₁ + (1−ρ')/2 ‖W‖²₂. Dividing by C·n, the two agree
when 1/(C n) = λ(2 − ρ) and ρ' = ρ / (2 − ρ).

References:
- `saga`: scikit-learn's saga, warm-started from our solution (from a cold start it needs tens of
  thousands of epochs at these λ). If our point were not optimal, saga would move off it to a
  lower objective, and its zero pattern would differ.
- `lbfgsb`: an independent solver from a cold start: W = P − N with P, N ≥ 0 makes the penalty
  smooth (λρ Σ(P + N) + λ(1−ρ)‖P − N‖²), solved by SciPy's L-BFGS-B with the exact gradient; a
  weight is zero when both parts sit on their bound.
"""

import json
import sys
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit, logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression


def objective(kind, x, y, lam, rho, w, b):
    n, k = x.shape[0], w.shape[0]
    z = x @ w.T + b
    onehot = np.eye(k)[y]
    if kind == "ovr":
        loss = -(onehot * log_expit(z) + (1 - onehot) * log_expit(-z)).sum() / n
    else:
        loss = (logsumexp(z, axis=1) - z[np.arange(n), y]).sum() / n
    return loss + lam * rho * np.abs(w).sum() + lam * (1 - rho) * (w * w).sum()


def saga(kind, x, y, lam, rho, start_w, start_b):
    n = x.shape[0]
    settings = dict(
        penalty="elasticnet",
        solver="saga",
        l1_ratio=rho / (2 - rho),
        C=1.0 / (n * lam * (2 - rho)),
        tol=1e-12,
        max_iter=3000,
        warm_start=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        if kind == "ovr":
            w, b = np.zeros_like(start_w), np.zeros_like(start_b)
            for c in range(start_w.shape[0]):
                model = LogisticRegression(**settings)
                model.coef_ = start_w[c : c + 1].copy()
                model.intercept_ = start_b[c : c + 1].copy()
                model.classes_ = np.array([0, 1])
                model.fit(x, (y == c).astype(int))
                w[c], b[c] = model.coef_[0], model.intercept_[0]
            return w, b
        model = LogisticRegression(**settings)
        model.coef_, model.intercept_ = start_w.copy(), start_b.copy()
        model.fit(x, y)
        return model.coef_.copy(), model.intercept_.copy()


def lbfgsb(kind, x, y, lam, rho, classes):
    n, d = x.shape
    onehot = np.eye(classes)[y]
    size = classes * d

    def unpack(theta):
        p, q, b = theta[:size], theta[size : 2 * size], theta[2 * size :]
        return p.reshape(classes, d), q.reshape(classes, d), b

    def value_and_gradient(theta):
        p, q, b = unpack(theta)
        w = p - q
        z = x @ w.T + b
        if kind == "ovr":
            loss = -(onehot * log_expit(z) + (1 - onehot) * log_expit(-z)).sum() / n
            residual = (expit(z) - onehot) / n
        else:
            lse = logsumexp(z, axis=1)
            loss = (lse - z[np.arange(n), y]).sum() / n
            residual = (np.exp(z - lse[:, None]) - onehot) / n
        gw = residual.T @ x + 2 * lam * (1 - rho) * w
        value = loss + lam * rho * (p.sum() + q.sum()) + lam * (1 - rho) * (w * w).sum()
        gradient = np.concatenate([(gw + lam * rho).ravel(), (-gw + lam * rho).ravel(), residual.sum(axis=0)])
        return value, gradient

    start = np.zeros(2 * size + classes)
    bounds = [(0, None)] * (2 * size) + [(None, None)] * classes
    result = minimize(
        value_and_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options=dict(maxiter=100000, maxfun=200000, ftol=1e-16, gtol=1e-11, maxcor=30),
    )
    p, q, b = unpack(result.x)
    return p - q, b


def main():
    problem = json.load(sys.stdin)
    x = np.asarray(problem["x"], dtype=np.float64)
    y = np.asarray(problem["y"], dtype=np.int64)
    lam, rho = problem["lambda"], problem["l1_ratio"]
    out = {}
    for kind, ours in problem["ours"].items():
        w0, b0 = np.asarray(ours["weight"], dtype=np.float64), np.asarray(ours["bias"], dtype=np.float64)
        entry = {"ours": {"objective": objective(kind, x, y, lam, rho, w0, b0)}}
        for name, (w, b) in {
            "saga": saga(kind, x, y, lam, rho, w0, b0),
            "lbfgsb": lbfgsb(kind, x, y, lam, rho, w0.shape[0]),
        }.items():
            entry[name] = {"objective": objective(kind, x, y, lam, rho, w, b), "weight": w.tolist(), "bias": b.tolist()}
        out[kind] = entry
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
