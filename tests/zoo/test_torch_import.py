"""PyTorch files without PyTorch: both file formats, torchvision models' logits, hostile and broken files."""
import collections
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import ember
from ember.zoo import load_torch
from ember.zoo.importers.torch import TorchFileError, read_torch
from ember.zoo.models import InceptionV3, MobileNetV2, ResNet50


# ---- hand-made files (no torch needed) ----
def _int(v):
    """A pickle LONG1 opcode for any int."""
    n = (v.bit_length() + 8) // 8 if v else 0
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def _str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def tensor_state_pickle(size, stride, numel, offset=0, storage="FloatStorage"):
    """Protocol-2 pickle of OrderedDict(w=<tensor>) exactly as torch.save writes it (opcodes by hand)."""
    pid = _tuple([_str("storage"), b"ctorch\n" + storage.encode() + b"\n", _str("0"), _str("cpu"), _int(numel)])
    hooks = b"ccollections\nOrderedDict\n)R"
    args = _tuple([pid + b"Q", _int(offset), _tuple(map(_int, size)), _tuple(map(_int, stride)), b"\x89", hooks])
    return (b"\x80\x02ccollections\nOrderedDict\n)R" + _str("w") + b"ctorch._utils\n_rebuild_tensor_v2\n" + args
            + b"Rs.")


def zip_file(path, pkl, storages):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pkl)
        for key, payload in storages.items():
            zf.writestr(f"archive/data/{key}", payload)
        zf.writestr("archive/version", b"3\n")
    return str(path)


def test_hand_made_zip_file_reads(tmp_path):
    values = np.arange(6, dtype=np.float32)
    path = zip_file(tmp_path / "w.pt", tensor_state_pickle((2, 3), (1, 2), 6), {"0": values.tobytes()})
    np.testing.assert_array_equal(read_torch(path)["w"], values.reshape(3, 2).T)  # a transposed view


def test_absurd_sizes_are_refused_before_allocating(tmp_path):
    path = zip_file(tmp_path / "huge.pt", tensor_state_pickle((10**6, 10**6), (10**6, 1), 4),
                    {"0": np.zeros(4, np.float32).tobytes()})
    with pytest.raises(TorchFileError, match="claims more than its storage"):
        read_torch(path)
    path = zip_file(tmp_path / "liar.pt", tensor_state_pickle((4,), (1,), 10**15), {"0": b"\0" * 16})
    with pytest.raises(TorchFileError, match=r"liar\.pt.*claims 1000000000000000 elements.*16 bytes"):
        read_torch(path)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_hostile_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(collections.OrderedDict(w=Exploit(marker)), protocol=2)
    path = zip_file(tmp_path / "evil.pth", payload, {})
    with pytest.raises(TorchFileError, match=r"evil\.pth: refused global '(posix|os)\.system'"):
        read_torch(path)
    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(pickle.dumps(Exploit(marker), protocol=2))
    with pytest.raises(TorchFileError, match="refused global"):
        read_torch(legacy)
    # an allowed rebuild function given something other than a tensor's pieces
    sneaky = b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n" + _tuple(
        [b"cbuiltins\neval\n", b"N", b")", b"N"]) + b"R."
    with pytest.raises(TorchFileError, match="refused global 'builtins.eval'"):
        read_torch(zip_file(tmp_path / "sneaky.pth", sneaky, {}))
    assert not marker.exists()


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not a PyTorch file"),
    (b"PK\x03\x04" + b"\0" * 40, "damaged or truncated zip"),
])
def test_broken_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(TorchFileError, match=f"broken.pth.*{message}|{message}"):
        read_torch(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no_such.pth"):
        read_torch("/nonexistent/no_such.pth")


def test_mapping_errors_list_the_keys():
    from ember.layers import Conv2D, Dense, Flatten, Input
    from ember.layers.containers import Model

    inp = Input(shape=(4, 4, 2))
    model = Model(inp, Dense(3, name="fc")(Flatten()(Conv2D(5, 3, name="conv", use_bias=False)(inp))))
    good = {"conv.weight": np.ones((5, 2, 3, 3), np.float32), "fc.weight": np.ones((3, 20), np.float32),
            "fc.bias": np.arange(3, dtype=np.float32)}
    load_torch(good, model)
    np.testing.assert_array_equal(model.get_weights()[2], np.arange(3))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"1 missing key\(s\): fc.bias.*1 unexpected key\(s\).*fc.gamma"):
        load_torch({**{k: v for k, v in good.items() if k != "fc.bias"}, "fc.gamma": np.ones(3)}, model)
    with pytest.raises(ValueError, match=r"shape mismatch.*fc.weight: file \(3, 21\), model \(20, 3\)"):
        load_torch({**good, "fc.weight": np.ones((3, 21), np.float32)}, model)
    for a, b in zip(before, model.get_weights()):  # nothing copied when anything fails
        np.testing.assert_array_equal(a, b)
    load_torch({**good, "extra.weight": np.ones(2)}, model, strict=False)
    load_torch({f"module.{k}": v for k, v in good.items()}, model)  # DataParallel's prefix


# ---- against PyTorch ----
try:
    import torch
    import torchvision_reference as tv
except ImportError:  # torch is a test-only reference
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (pip install torch==2.13.0)")


@needs_torch
def test_both_file_formats_read_like_torch(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = collections.OrderedDict(
        a=torch.randn(3, 4, generator=g), t=torch.randn(4, 3, generator=g).t(), n=torch.arange(5),
        h=torch.randn(3, generator=g).half(), b=torch.randn(3, generator=g).bfloat16(), m=torch.tensor(True),
        e=torch.zeros(0, 3), s=torch.randn(10, generator=g)[2:7:2])
    for name, kwargs in (("zip.pt", {}), ("legacy.pt", {"_use_new_zipfile_serialization": False})):
        torch.save(state, tmp_path / name, **kwargs)
        got = read_torch(tmp_path / name)
        assert list(got) == list(state)
        for k, v in state.items():
            want = v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
            np.testing.assert_array_equal(got[k], want)
            assert got[k].shape == tuple(v.shape)


@needs_torch
def test_a_checkpoint_dict_and_torch_tensors(tmp_path):
    model = tv.randomize(tv.MobileNetV2(num_classes=10))
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "best": 0.5}, tmp_path / "ckpt.pth")
    ours = MobileNetV2(num_classes=10, input_shape=(32, 32, 3))
    load_torch(tmp_path / "ckpt.pth", ours)
    other = MobileNetV2(num_classes=10, input_shape=(32, 32, 3))
    load_torch(model.state_dict(), other)
    for a, b in zip(ours.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


@needs_torch
def test_another_architecture_is_refused(tmp_path):
    torch.save(tv.MobileNetV2().state_dict(), tmp_path / "mobilenet.pth")
    with pytest.raises(ValueError, match=r"mobilenet\.pth.*missing key\(s\): conv1\.weight.*unexpected key"):
        load_torch(tmp_path / "mobilenet.pth", ResNet50())


def _compare(reference, ours, size, tmp_path, skip=()):
    torch.save(reference.state_dict(), tmp_path / "model.pth")
    load_torch(tmp_path / "model.pth", ours, skip=skip)
    x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        want = reference(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    with ember.no_grad():
        got = ours.eval()(x).numpy()
    # NOTE: measured max abs differences: ResNet-50 2.7e-7, MobileNetV2 8.2e-8, InceptionV3 8.9e-8 (logits ~0.5)
    assert np.abs(got - want).max() < 1e-4
    assert (got.argmax(1) == want.argmax(1)).all()


@needs_torch
def test_torchvision_resnet50_gives_the_same_logits(tmp_path):
    _compare(tv.randomize(tv.ResNet50()), ResNet50(), 224, tmp_path)


@needs_torch
def test_torchvision_mobilenet_v2_gives_the_same_logits(tmp_path):
    _compare(tv.randomize(tv.MobileNetV2()), MobileNetV2(), 224, tmp_path)


@needs_torch
def test_torchvision_inception_v3_gives_the_same_logits(tmp_path):
    _compare(tv.randomize(tv.Inception3()), InceptionV3(), 299, tmp_path, skip=("AuxLogits.",))


def test_only_regular_files_are_read(tmp_path):
    import os

    from ember.layers.archive import ModelFileError

    os.mkfifo(tmp_path / "fifo.pth")
    os.symlink("/dev/zero", tmp_path / "zero.pth")
    for name in ("fifo.pth", "zero.pth"):  # a FIFO hung, /dev/zero read until MemoryError
        with pytest.raises(ModelFileError, match="not a regular file"):
            read_torch(tmp_path / name)


def test_recurrent_and_transposed_convolution_layers_give_torchs_outputs():
    torch = pytest.importorskip("torch")
    from ember.layers import GRU, LSTM, Bidirectional, Conv2DTranspose, Cropping2D, Dense, Input, SimpleRNN
    from ember.layers.containers import Model

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 5, batch_first=True)
            self.gru = torch.nn.GRU(5, 4, batch_first=True)
            self.rnn = torch.nn.RNN(4, 3, batch_first=True, bidirectional=True)
            self.fc = torch.nn.Linear(6, 2)

        def forward(self, x):
            return self.fc(self.rnn(self.gru(self.lstm(x)[0])[0])[0][:, -1])

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        for p in net.parameters():  # biases far from zero: the two PyTorch biases must both arrive
            p.add_(torch.rand_like(p) - 0.5)
    inp = Input(shape=(6, 3))
    x = LSTM(5, return_sequences=True, name="lstm")(inp)
    x = GRU(4, return_sequences=True, name="gru")(x)
    # PyTorch's bidirectional output at the last step: the forward state there, the backward one after one step
    x = Bidirectional(SimpleRNN(3, return_sequences=True), name="rnn")(x)
    ours = Model(inp, Dense(2, name="fc")(x))
    load_torch(net.state_dict(), ours)
    xs = np.random.default_rng(0).normal(size=(4, 6, 3)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(xs)).numpy()
    with ember.no_grad():
        got = ours.eval()(xs).numpy()[:, -1]
    np.testing.assert_allclose(got, want, atol=1e-5)

    up = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1).eval()
    inp = Input(shape=(5, 5, 3))
    # NOTE: PyTorch's padding=1, output_padding=1 crops one row and column from the top left of the "valid"
    # output; Keras's (and ember's) padding="same" crops them at the bottom right: not the same layer
    model = Model(inp, Cropping2D(((1, 0), (1, 0)))(Conv2DTranspose(4, 3, strides=2, name="up")(inp)))
    load_torch({"up.weight": up.weight, "up.bias": up.bias}, model)
    images = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype(np.float32)
    with torch.no_grad():
        want = up(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    with ember.no_grad():
        np.testing.assert_allclose(model(images).numpy(), want, atol=1e-5)
