"""Times JAX's jit(value_and_grad) on workloads W3 and W4 (issue 5), on the
same data as the Rust benchmarks (benches/common/w3.rs, w4.rs: the same
SplitMix64 generator and seeds), in float64, on one CPU thread.

Run by hand, not in CI:

    pip install "jax[cpu]"
    python3 benches/jax_w3_w4.py

It prints the value and gradient norms (to compare with the Rust benches'
agreement checks) and the median time per gradient over repeated calls.
"""

import os

# One thread, as the Rust benchmarks run: set before JAX is imported.
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
)
os.environ.setdefault("JAX_ENABLE_X64", "1")

import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

EPS = 1e-7
MASK = (1 << 64) - 1


class Rng:
    """SplitMix64, as benches/common/mod.rs."""

    def __init__(self, seed):
        self.state = seed

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def unit(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def uniform(self, lo, hi):
        return lo + (hi - lo) * self.unit()


def sigmoid(z):
    e = np.exp(-abs(z))
    return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)


def w3_data(n=100_000, d=8):
    rng = Rng(0x5EED0003)
    truth = [rng.uniform(-2.0, 2.0) for _ in range(d)]
    x = np.empty((n, d))
    y = np.empty(n)
    for i in range(n):
        row = [rng.uniform(-1.0, 1.0) for _ in range(d)]
        z = 0.3 + sum(a * t for a, t in zip(row, truth))
        y[i] = 1.0 if rng.unit() < sigmoid(z) else 0.0
        x[i] = row
    w = np.array([rng.uniform(-0.5, 0.5) for _ in range(d)])
    return x, y, w, 0.1


def w4_data(n=256, d_in=8, hidden=16):
    rng = Rng(0x5EED0004)
    x = np.empty((n, d_in))
    y = np.empty(n)
    for i in range(n):
        row = [rng.uniform(-1.0, 1.0) for _ in range(d_in)]
        y[i] = 1.0 if row[0] * row[1] + 0.5 * row[2] - row[3] * row[3] + 0.2 > 0.0 else 0.0
        x[i] = row
    a1 = (6.0 / (d_in + hidden)) ** 0.5
    a2 = (6.0 / (hidden + 1)) ** 0.5
    w1 = np.array([[rng.uniform(-a1, a1) for _ in range(d_in)] for _ in range(hidden)])
    b1 = np.array([rng.uniform(-0.1, 0.1) for _ in range(hidden)])
    w2 = np.array([rng.uniform(-a2, a2) for _ in range(hidden)])
    b2 = rng.uniform(-0.1, 0.1)
    return x, y, (w1, b1, w2, b2)


def bce(p, y):
    p = jnp.clip(p, EPS, 1.0 - EPS)
    return -(y * jnp.log(p) + (1.0 - y) * jnp.log(1.0 - p))


def w3_loss(params, x, y):
    w, b = params
    return jnp.mean(bce(jax.nn.sigmoid(x @ w + b), y))


def w4_loss(params, x, y):
    w1, b1, w2, b2 = params
    h = jnp.tanh(x @ w1.T + b1)
    return jnp.mean(bce(jax.nn.sigmoid(h @ w2 + b2), y))


def median_time(f, *args, repeats):
    jax.block_until_ready(f(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name, f, params, x, y, repeats):
    value, grads = f(params, x, y)
    leaves = jax.tree_util.tree_leaves(grads)
    norm = float(jnp.sqrt(sum(jnp.sum(g * g) for g in leaves)))
    t = median_time(f, params, x, y, repeats=repeats)
    print(f"{name}: value {float(value):.12f}, |gradient| {norm:.12f}, median {t * 1e6:.1f} µs")


def main():
    print(f"jax {jax.__version__}, devices {jax.devices()}, x64 {jax.config.read('jax_enable_x64')}")
    x, y, w, b = w3_data()
    f3 = jax.jit(jax.value_and_grad(w3_loss))
    report("W3", f3, (jnp.asarray(w), jnp.asarray(b)), jnp.asarray(x), jnp.asarray(y), 200)
    x, y, params = w4_data()
    f4 = jax.jit(jax.value_and_grad(w4_loss))
    params = tuple(jnp.asarray(p) for p in params)
    report("W4", f4, params, jnp.asarray(x), jnp.asarray(y), 2000)


if __name__ == "__main__":
    main()
