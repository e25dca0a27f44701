"""How fast ember could be on W1, W3 and W4 if everything but its matrix products were free.

    python bench/gemm_bound.py [W1 W3 W4] [--threads 2] [--repeat 5]

ember's dense and convolution layers are matrix products in the BLAS that NumPy (and SciPy) ship:
OpenBLAS. PyTorch's CPU wheels run theirs in Intel MKL and oneDNN. This script takes the layers of each
workload's PyTorch model (bench/models.py, the same networks as ember's), the matrix products an
im2col / shifted-product convolution must do for them (forward: (N*Ho*Wo x kh*kw*C) @ (kh*kw*C x F);
training adds the weight gradient and, but for the first layer, the data gradient), and times exactly
those products in NumPy's OpenBLAS and, for comparison, in PyTorch's ``torch.mm`` (MKL), in one process
with the same threads. It then times PyTorch's whole forward pass and training step (SGD momentum 0.9,
default and channels_last layouts) and prints

    bound = PyTorch's time / ember's products alone in OpenBLAS

the ratio ember / PyTorch that ember would reach with every other cost (im2col, bias, normalisation,
activations, pooling, the optimizer, Python) at zero. A goal above the bound cannot be met by any
im2col-style convolution on OpenBLAS. ``winograd`` repeats the bound with every 3x3 stride-1
convolution counted as ideal Winograd F(4x4, 3x3) (36 products of (N*ceil(Ho/4)*ceil(Wo/4) x C) @
(C x F), its input, filter and output transforms free): the most any 3x3 algorithm built on those
products could gain.
"""
import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def layer_products(model, x):
    """[(kind, m, k, n, first)] for every Conv2d and Linear of ``model`` run on ``x``: kind "conv3" for a
    3x3 stride-1 convolution (Winograd-eligible), else "gemm"; the products of one group (groups = 1 here)."""
    import torch

    found = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            n, c, _, _ = inputs[0].shape
            _, f, ho, wo = output.shape
            kh, kw = module.kernel_size
            kind = "conv3" if (kh, kw) == (3, 3) and module.stride == (1, 1) else "gemm"
            found.append((kind, n * ho * wo, c * kh * kw // module.groups, f, (n, ho, wo, c)))
        else:
            found.append(("gemm", math.prod(inputs[0].shape[:-1]), module.in_features, module.out_features, None))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return [(kind, m, k, n, i == 0, geometry) for i, (kind, m, k, n, geometry) in enumerate(found)]


def product_list(layers, training, winograd=False):
    """The (m, k, n) products (C = A @ B, A m x k) of the layers, repeated as often as they run."""
    out = []
    for kind, m, k, n, first, geometry in layers:
        if winograd and kind == "conv3":
            batch, ho, wo, c = geometry
            tiles = batch * math.ceil(ho / 4) * math.ceil(wo / 4)
            forms = [(tiles, c, n)] + ([(c, tiles, n)] + ([] if first else [(tiles, n, c)]) if training else [])
            out += forms * 36
            continue
        out.append((m, k, n))
        if training:
            out.append((k, m, n))  # weight gradient: cols^T @ dy
            if not first:
                out.append((m, n, k))  # data gradient: dy @ w^T
    return out


def _best(fn, repeat, floor_s=0.05):
    fn()
    t = time.perf_counter()
    fn()
    once = time.perf_counter() - t
    calls = max(1, int(floor_s / max(once, 1e-6)))
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def time_products(products, repeat, library):
    """Seconds for all ``products`` in ``library`` ("openblas": NumPy's matmul, "mkl": torch.mm), each
    distinct shape timed once (best of ``repeat``) with preallocated operands and output."""
    import numpy as np

    counts = {}
    for shape in products:
        counts[shape] = counts.get(shape, 0) + 1
    rng = np.random.default_rng(0)
    warm = np.ones((512, 512), np.float32)
    _best(lambda: warm @ warm, 3)  # the BLAS's threads started and its buffers made before the first shape
    total = 0.0
    for (m, k, n), count in counts.items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        if library == "openblas":
            out = np.empty((m, n), np.float32)
            seconds = _best(lambda a=a, b=b, out=out: np.matmul(a, b, out=out), repeat)
        else:
            import torch

            ta, tb, out = torch.from_numpy(a), torch.from_numpy(b), torch.empty(m, n)
            seconds = _best(lambda ta=ta, tb=tb, out=out: torch.mm(ta, tb, out=out), repeat)
        total += seconds * count
    return total


def torch_times(workload, repeat, channels_last):
    """PyTorch's forward (eval, no_grad) and training-step seconds (best of ``repeat``), the model and its input."""
    import torch

    sys.path.insert(0, HERE)
    import models

    torch.manual_seed(0)
    model, x, y = models.torch_inputs(workload, models.IMAGES[workload][2], channels_last)
    model.eval()
    with torch.no_grad():
        forward = _best(lambda: model(x), repeat, floor_s=0.0)
    model.train()
    step = models.torch_sgd_step(model, x, y)
    for _ in range(3):
        step()
    return forward, _best(step, repeat, floor_s=0.0), model, x


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=["W1", "W3", "W4"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for w in args.workloads:
        result = {"workload": w, "threads": args.threads, "load_before": os.getloadavg()[0]}
        # PyTorch first: NumPy's OpenBLAS threads are not started yet
        fwd, step, model, x = torch_times(w, args.repeat, channels_last=False)
        result.update(torch_forward_s=fwd, torch_step_s=step)
        if w != "W1":
            fwd_cl, step_cl, _, _ = torch_times(w, args.repeat, channels_last=True)
            result.update(torch_cl_forward_s=fwd_cl, torch_cl_step_s=step_cl)
        layers = layer_products(model.eval(), x)
        for phase, training in (("forward", False), ("step", True)):
            products = product_list(layers, training)
            result[f"mkl_{phase}_products_s"] = time_products(products, args.repeat, "mkl")
            result[f"openblas_{phase}_products_s"] = time_products(products, args.repeat, "openblas")
            if any(kind == "conv3" for kind, *_ in layers):
                result[f"openblas_{phase}_products_winograd_s"] = time_products(
                    product_list(layers, training, winograd=True), args.repeat, "openblas")
        result["load_after"] = os.getloadavg()[0]
        rows.append(result)
        print(json.dumps(result), flush=True)
    print()
    print("bound = PyTorch's time / ember's matrix products alone in OpenBLAS (the most ember/PyTorch can be)")
    print(f"{'':4} {'phase':8} {'OpenBLAS ms':>12} {'MKL ms':>8} {'OB/MKL':>7} {'torch ms':>9} {'bound':>6} "
          f"{'torch-cl ms':>12} {'bound cl':>9} {'Winograd bound cl':>18}")
    for r in rows:
        for phase in ("forward", "step"):
            ob, mkl = r[f"openblas_{phase}_products_s"], r[f"mkl_{phase}_products_s"]
            t = r[f"torch_{phase}_s"]
            cl = r.get(f"torch_cl_{phase}_s")
            wino = r.get(f"openblas_{phase}_products_winograd_s")
            print(f"{r['workload']:4} {phase:8} {ob * 1e3:12.2f} {mkl * 1e3:8.2f} {mkl / ob:7.2f} {t * 1e3:9.2f} "
                  f"{t / ob:6.2f} " + (f"{cl * 1e3:12.2f} {cl / ob:9.2f} " if cl else f"{'':12} {'':9} ")
                  + (f"{cl / wino:18.2f}" if cl and wino else ""))


if __name__ == "__main__":
    main()
