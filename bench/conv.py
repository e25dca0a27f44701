"""Convolution routes on representative layers: shifted products (stride 1, kernels/cpu/conv.py),
im2col + GEMM (col2im for the input's gradient), Winograd F(2x2, 3x3) (kernels/cpu/winograd.py),
direct loops for few input channels (kernels/cpu/direct.py) and register-blocked direct loops for few
channels and filters (kernels/cpu/blocked.py),
forward, weight gradient and gradient with respect to the input, float32, 2 threads by default.

    python bench/conv.py [--repeat 10] [--layers lenet-conv1 ...]

Prints one JSON line per layer and route with the median milliseconds (the routes take turns) and
the routes ember picks; the thresholds in kernels/cpu/conv.py and kernels/cpu/winograd.py come
from this table.
"""
import argparse
import json
import time

import numpy as np

LAYERS = {  # name: (input shape, kernel shape, padding)
    "lenet-conv1": ((128, 28, 28, 1), (5, 5, 1, 6), 2),
    "lenet-conv2": ((128, 14, 14, 6), (5, 5, 6, 16), 0),
    "mnist-28x28x1-3x3-8": ((128, 28, 28, 1), (3, 3, 1, 8), 1),
    "mnist-28x28x1-3x3-16": ((128, 28, 28, 1), (3, 3, 1, 16), 1),
    "cifar-32x32x3-5x5-6": ((128, 32, 32, 3), (5, 5, 3, 6), 0),
    "resnet-56x56x64-3x3": ((16, 56, 56, 64), (3, 3, 64, 64), 1),
    "resnet-28x28x128-3x3": ((16, 28, 28, 128), (3, 3, 128, 128), 1),
    "resnet-14x14x256-3x3": ((16, 14, 14, 256), (3, 3, 256, 256), 1),
    "resnet-7x7x512-3x3": ((16, 7, 7, 512), (3, 3, 512, 512), 1),
    "inception-28x28x96-3x3": ((16, 28, 28, 96), (3, 3, 96, 128), 1),
    "inception-28x28x16-5x5": ((16, 28, 28, 16), (5, 5, 16, 32), 2),
    "inception-28x28x16-3x3": ((16, 28, 28, 16), (3, 3, 16, 32), 1),
    "inception-14x14x24-3x3": ((16, 14, 14, 24), (3, 3, 24, 64), 1),
    "inception-14x14x112-3x3": ((16, 14, 14, 112), (3, 3, 112, 224), 1),
    "vgg-224x224x3-3x3": ((16, 224, 224, 3), (3, 3, 3, 64), 1),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--layers", nargs="*", choices=sorted(LAYERS), default=None)
    args = parser.parse_args()
    import ember  # noqa: F401 - the allocator settings, as in training
    from ember.kernels.cpu import conv

    rng = np.random.default_rng(0)
    for name, (shape, w_shape, pad) in LAYERS.items():
        if args.layers and name not in args.layers:
            continue
        measure_layer(conv, rng, name, shape, w_shape, pad, args.repeat)


def measure_layer(conv, rng, name, shape, w_shape, pad, repeat):
    from ember.kernels.cpu import winograd

    x = rng.random(shape, dtype=np.float32)
    w = rng.random(w_shape, dtype=np.float32)
    pads = ((pad, pad), (pad, pad))
    y = conv.shifted_forward(x, w, (1, 1), pads)
    dy = rng.random(y.shape, dtype=np.float32)
    _, ho, wo, f = y.shape
    kh, kw = w_shape[:2]
    one = (1, 1)

    def im2col_forward():
        return conv.im2col(x, kh, kw, one, one, pads, ho, wo) @ w.reshape(-1, f)

    def im2col_weight_grad():
        return conv.im2col(x, kh, kw, one, one, pads, ho, wo).T @ dy.reshape(-1, f)

    routes = {  # route: (forward, weight gradient, gradient with respect to the input); None: no such route
        "shifted": (lambda: conv.shifted_forward(x, w, one, pads),
                    lambda: conv.shifted_backward_weight(x, dy, w_shape, one, pads), None),
        "im2col": (im2col_forward, im2col_weight_grad,
                   lambda: conv.col2im_backward_data(dy, w, shape, one, one, pads)),
    }
    if shape[-1] <= 8:  # few input channels: the direct loops too
        from ember.kernels.cpu import direct

        routes["direct"] = (lambda: direct.forward(x, w, one, pads),
                            lambda: direct.backward_weight(x, dy, w_shape, one, pads), None)
    if shape[-1] <= 16 and w_shape[-1] <= 32:  # few channels and filters: the blocked loops too
        from ember.kernels.cpu import blocked

        routes["blocked"] = (lambda: blocked.forward(x, w, pads), lambda: blocked.backward_weight(x, dy, w_shape, pads),
                             lambda: blocked.backward_data(dy, w, shape, pads))
    f32 = np.dtype(np.float32)
    wino_forward = winograd.eligible(shape, w_shape, one, one, pads, f32)
    wino_data = winograd.backward_data_eligible(dy.shape, w_shape, one, one, pads, f32)
    if wino_forward or wino_data:
        routes["winograd"] = (
            (lambda: winograd.forward(x, w, pads, conv.scratch)) if wino_forward else None,
            (lambda: winograd.weight_grad(x, dy, pads, conv.scratch)) if wino_forward else None,
            (lambda: winograd.backward_data(dy, w, pads, conv.scratch)) if wino_data else None)
    # the routes take turns, round after round, so that drifts in this machine's speed hit them all
    times = {(route, part): [] for route, fns in routes.items() for part, fn in enumerate(fns) if fn is not None}
    for fns in routes.values():
        for fn in fns:
            if fn is not None:
                fn()
    for _ in range(repeat):
        for (route, part), samples in times.items():
            t = time.perf_counter()
            routes[route][part]()
            samples.append(time.perf_counter() - t)
    shifted = conv._shifted(shape, w_shape, one, one, pads, f32)
    direct = conv._direct(shape, w_shape, one, 1, f32)
    block = conv._blocked(shape, w_shape, one, one, 1, f32)
    chosen = {"forward": "blocked" if block else "direct" if direct else "winograd" if wino_forward
              else "shifted" if shifted else "im2col",
              "weight_grad": "direct" if direct else "blocked" if block else "winograd" if wino_forward
              else "shifted" if shifted and conv._shifted_weight_grad(shape, w_shape, one, pads) else "im2col",
              "backward_data": "blocked" if block else "winograd" if wino_data else "im2col"}
    for route in routes:
        row = {"layer": name, "route": route}
        for part, key in enumerate(("forward_ms", "weight_grad_ms", "backward_data_ms")):
            if (route, part) in times:
                row[key] = round(float(np.median(times[(route, part)]) * 1e3), 2)
        row.update({"ember_" + k: v for k, v in chosen.items()})
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
