"""Convolution routes on representative layers: shifted products (stride 1, kernels/cpu/conv.py)
against im2col + GEMM, forward and weight gradient, float32, 2 threads by default.

    python bench/conv.py [--repeat 10]

Prints one JSON line per layer and route with the median milliseconds; the thresholds
``SHIFTED_MAX_OVERHEAD`` and ``SHIFTED_MIN_WEIGHT_GRAD`` in kernels/cpu/conv.py come from this table.
"""
import argparse
import json
import time

import numpy as np

LAYERS = {  # name: (input shape, kernel shape, padding)
    "lenet-conv1": ((128, 28, 28, 1), (5, 5, 1, 6), 2),
    "lenet-conv2": ((128, 14, 14, 6), (5, 5, 6, 16), 0),
    "resnet-56x56x64-3x3": ((16, 56, 56, 64), (3, 3, 64, 64), 1),
    "resnet-28x28x128-3x3": ((16, 28, 28, 128), (3, 3, 128, 128), 1),
    "resnet-14x14x256-3x3": ((16, 14, 14, 256), (3, 3, 256, 256), 1),
    "resnet-7x7x512-3x3": ((16, 7, 7, 512), (3, 3, 512, 512), 1),
    "inception-28x28x96-3x3": ((16, 28, 28, 96), (3, 3, 96, 128), 1),
    "inception-28x28x16-5x5": ((16, 28, 28, 16), (5, 5, 16, 32), 2),
}


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    import ember  # noqa: F401 - the allocator settings, as in training
    from ember.kernels.cpu import conv

    rng = np.random.default_rng(0)
    for name, (shape, w_shape, pad) in LAYERS.items():
        measure_layer(conv, rng, name, shape, w_shape, pad, args.repeat)


def measure_layer(conv, rng, name, shape, w_shape, pad, repeat):
    x = rng.random(shape, dtype=np.float32)
    w = rng.random(w_shape, dtype=np.float32)
    pads = ((pad, pad), (pad, pad))
    y = conv.shifted_forward(x, w, (1, 1), pads)
    dy = rng.random(y.shape, dtype=np.float32)
    _, ho, wo, f = y.shape
    kh, kw = w_shape[:2]

    def im2col_forward():
        return conv.im2col(x, kh, kw, (1, 1), (1, 1), pads, ho, wo) @ w.reshape(-1, f)

    def im2col_weight_grad():
        return conv.im2col(x, kh, kw, (1, 1), (1, 1), pads, ho, wo).T @ dy.reshape(-1, f)

    routes = {
        "shifted": (lambda: conv.shifted_forward(x, w, (1, 1), pads),
                    lambda: conv.shifted_backward_weight(x, dy, w_shape, (1, 1), pads)),
        "im2col": (im2col_forward, im2col_weight_grad),
    }
    chosen = conv._shifted(shape, w_shape, (1, 1), (1, 1), pads, np.dtype(np.float32))
    chosen_grad = chosen and conv._shifted_weight_grad(shape, w_shape, (1, 1), pads)
    for route, (forward, weight_grad) in routes.items():
        print(json.dumps({"layer": name, "route": route, "forward_ms": round(median_ms(forward, repeat), 2),
                          "weight_grad_ms": round(median_ms(weight_grad, repeat), 2),
                          "ember_forward_route": "shifted" if chosen else "im2col",
                          "ember_weight_grad_route": "shifted" if chosen_grad else "im2col"}), flush=True)


if __name__ == "__main__":
    main()
