"""bench/gemm_bound.py: the matrix products it attributes to a network's layers."""
from tests.bench_module import load_bench


def test_products_of_forward_and_training():
    bench = load_bench("gemm_bound")
    # (kind, m, k, n, first, geometry): a first 7x7 layer, then a 3x3 stride-1 one on 16 x 56 x 56 x 64 -> 64
    layers = [("gemm", 16 * 112 * 112, 147, 64, True, (16, 112, 112, 3)),
              ("conv3", 16 * 56 * 56, 576, 64, False, (16, 56, 56, 64))]
    assert bench.product_list(layers, training=False) == [(16 * 112 * 112, 147, 64), (16 * 56 * 56, 576, 64)]
    step = bench.product_list(layers, training=True)
    # the first layer has no data gradient; the second has forward, weight and data gradients
    assert step == [(16 * 112 * 112, 147, 64), (147, 16 * 112 * 112, 64),
                    (16 * 56 * 56, 576, 64), (576, 16 * 56 * 56, 64), (16 * 56 * 56, 64, 576)]
    tiles = 16 * 14 * 14
    wino = bench.product_list(layers, training=False, winograd=True)
    assert wino[0] == (16 * 112 * 112, 147, 64) and wino[1:] == [(tiles, 64, 64)] * 36
    # ideal F(4x4, 3x3): 36 products of tiles x C x F hold 4x fewer multiply-adds than the 3x3 im2col product
    assert 36 * tiles * 64 * 64 * 4 == 16 * 56 * 56 * 576 * 64
