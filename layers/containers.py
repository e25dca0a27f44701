"""Models: the graph ``Model`` (functional API) and ``Sequential``.

A built model keeps all trainable parameters in one contiguous buffer per dtype (and their
gradients in another); each layer's weights are views into it (see ``ember.engine.flat``).
"""
from ember.engine import functional as F
from ember.engine.flat import FlatParameters
from ember.layers.base import Layer, SymbolicTensor, _flatten, _map_structure
from ember.layers.core import Activation, InputLayer

# Keras's training surface of every Model: declared here, implemented by ember.zoo.keras (the training
# loop lives in optim/, which this room may not import); ``import ember`` registers the implementation.
TRAINING_METHODS = ("compile", "fit", "evaluate", "predict", "predict_classes", "predict_class", "set_tensorboard",
                    "get_train_summary", "get_validation_summary", "set_checkpoint",
                    "set_gradient_clipping_by_l2_norm", "set_constant_gradient_clipping", "clear_gradient_clipping",
                    "training_config", "compile_from_config", "metrics_names")
_TRAINING = {}


def register_training(implementation):
    """Give every Model the training methods of ``implementation`` (a class defining TRAINING_METHODS)."""
    missing = [name for name in TRAINING_METHODS
               if not callable(getattr(implementation, name, None)) and not isinstance(
                   getattr(implementation, name, None), property)]
    if missing:
        raise TypeError(f"register_training: {implementation.__name__} lacks {missing}")
    _TRAINING.update({name: getattr(implementation, name) for name in TRAINING_METHODS})


class _TrainingMethod:
    """One method of the training surface, looked up in the registered implementation when accessed."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        fn = _TRAINING.get(self.name)
        if fn is None:
            raise AttributeError(f"Model.{self.name}: Keras's training methods come with `import ember` "
                                 "(ember.zoo.keras registers them)")
        return fn if obj is None else fn.__get__(obj, owner)


class Model(Layer):
    """A graph of layers from symbolic ``inputs`` to ``outputs`` (Keras' functional API).

    Several inputs/outputs, shared layers and nested models are supported.

    Example:
        >>> from ember.layers import Input, Dense, Model
        >>> inp = Input(shape=(8,))
        >>> out = Dense(3, activation="softmax")(Dense(16, activation="relu")(inp))
        >>> model = Model(inp, out)
        >>> model.count_params()
        195
    """

    _dtype_kind = "any"
    config_holds_layers = True  # from_config takes custom_objects (see serialization.deserialize_layer)
    # the training state set by compile (Keras's attributes)
    optimizer = loss = metrics = None
    compile = _TrainingMethod()
    fit = _TrainingMethod()
    evaluate = _TrainingMethod()
    predict = _TrainingMethod()
    predict_classes = _TrainingMethod()
    predict_class = _TrainingMethod()
    set_tensorboard = _TrainingMethod()
    get_train_summary = _TrainingMethod()
    get_validation_summary = _TrainingMethod()
    set_checkpoint = _TrainingMethod()
    set_gradient_clipping_by_l2_norm = _TrainingMethod()
    set_constant_gradient_clipping = _TrainingMethod()
    clear_gradient_clipping = _TrainingMethod()
    training_config = _TrainingMethod()
    compile_from_config = _TrainingMethod()
    metrics_names = _TrainingMethod()
    # run a layer and the Activation after it as one op where the layer can (see Layer.fusable_activations)
    fuse_activations = True
    _loss_symbols = ()  # symbolic tensors given to add_loss (computed in every call)

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._flat = None
        self._nodes = None
        self._fusions = {}
        self._overwrites = {}
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model: give both inputs and outputs (symbolic tensors from Input and layers)")
            self._init_graph(inputs, outputs)

    # ---- graph ----
    def _init_graph(self, inputs, outputs):
        in_list, out_list = _flatten(inputs), _flatten(outputs)
        for t in in_list + out_list:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"Model '{self.name}': inputs and outputs must be symbolic tensors, got {t!r}")
        for t in in_list:
            if not isinstance(t.history[0], InputLayer):
                raise ValueError(f"Model '{self.name}': inputs must come from Input(...), got {t!r}")
        self._graph_args = (inputs, outputs)
        self._inputs_are_list = isinstance(inputs, (list, tuple))
        self._outputs_are_list = isinstance(outputs, (list, tuple))
        self.inputs, self.outputs = in_list, out_list
        nodes, seen = [], set()

        def visit(tensor):
            layer, index, _ = tensor.history
            node = layer._inbound_nodes[index]
            if id(node) in seen:
                return
            for parent in node.input_list:
                visit(parent)
            seen.add(id(node))
            nodes.append(node)

        for t in out_list + list(self._loss_symbols):
            visit(t)
        input_ids = {id(t) for t in in_list}
        for node in nodes:
            if isinstance(node.layer, InputLayer) and id(node.outputs) not in input_ids:
                raise ValueError(f"Model '{self.name}': graph disconnected: it needs input "
                                 f"'{node.layer.name}', which is not among the model's inputs")
        self._nodes = [n for n in nodes if not isinstance(n.layer, InputLayer)]
        self._sublayers.clear()
        for t in in_list:
            self._sublayers[t.history[0].name] = t.history[0]
        for node in self._nodes:
            existing = self._sublayers.get(node.layer.name)
            if existing is not None and existing is not node.layer:
                raise ValueError(f"Model '{self.name}': two different layers are named '{node.layer.name}'")
            self._sublayers[node.layer.name] = node.layer
        self.built = True
        self._batch_input_shape = None
        self._flat = FlatParameters(self.trainable_weights)
        self._fusions = self._fusion_plan()

    def _fusion_plan(self):
        """{id(node): (the Activation node after it, its name)} for every node whose only reader is an
        ``Activation`` layer with an activation that the node's layer can apply itself (for example
        BatchNormalization -> ReLU), its output not being one of the model's outputs."""
        readers = {}
        for node in self._nodes:
            for sym in node.input_list:
                readers.setdefault(id(sym), []).append(node)
        outputs = {id(s) for s in list(self.outputs) + list(self._loss_symbols)}
        plan = {}
        for node in self._nodes:
            out = node.outputs
            if isinstance(out, (list, tuple)) or id(out) in outputs or len(readers.get(id(out), ())) != 1:
                continue
            after = readers[id(out)][0]
            name = _activation_name(after.layer)
            if name is not None and name in node.layer.fusable_activations:
                plan[id(node)] = (after, name)
        self._overwrites = self._overwrite_plan(plan, readers, outputs)
        return plan

    def _overwrite_plan(self, plan, readers, outputs):
        """{id(node): index} for each fused residual sum (Add -> ReLU of two inputs) that may write its
        result over input ``index``: read by nothing else, not a model output, and made by a layer whose
        backward pass does not keep its output (a BatchNormalization). ResNet-50 then holds no separate
        array for each block's last batch norm output (353 MB at batch 16)."""
        # NOTE: ResNet-50 training, 16 images: peak 2,706 MiB before, 2,318 after (3 steps); bench/run.py W3
        # 2,292 MiB against main's 2,795 and PyTorch's 2,546 in bench/RESULTS.md (2026-12-04)
        from ember.layers.merge import Add

        producers = {id(n.outputs): n for n in self._nodes if not isinstance(n.outputs, (list, tuple))}
        fused = {id(after) for after, _ in plan.values()}
        overwrites = {}
        for node in self._nodes:
            if id(node) not in plan or not isinstance(node.layer, Add) or len(node.input_list) != 2:
                continue
            for index, sym in enumerate(node.input_list):
                producer = producers.get(id(sym))
                if producer is None or id(sym) in outputs or len(readers.get(id(sym), ())) != 1 \
                        or id(producer) in fused or producer.layer.keeps_output(plan.get(id(producer), (0, None))[1]):
                    continue
                overwrites[id(node)] = index
                break
        return overwrites

    def call(self, inputs, training=False):
        if self._nodes is None:
            raise NotImplementedError(f"Model '{self.name}' has no graph: subclasses must implement call()")
        values = {}
        for sym, val in zip(self.inputs, _flatten(inputs)):
            values[id(sym)] = val
        fusions = self._fusions if self.fuse_activations else {}
        skip = {id(after) for after, _ in fusions.values()}
        for node in self._nodes:
            if id(node) in skip:
                continue
            args = _map_structure(lambda s: values[id(s)], node.inputs)
            fused = fusions.get(id(node))
            if fused is None:
                out = node.layer(args, training=training)
            else:
                after, name = fused
                overwrite = self._overwrites.get(id(node))
                if overwrite is None:
                    out = node.layer(args, training=training, activation=name)
                else:
                    out = node.layer(args, training=training, activation=name, overwrite=overwrite)
                node = after
            for sym, val in zip(_flatten(node.outputs), _flatten(out)):
                values[id(sym)] = val
        for sym in self._loss_symbols:
            self.add_loss(values[id(sym)])
        outs = [values[id(s)] for s in self.outputs]
        return outs if self._outputs_are_list else outs[0]

    def add_loss(self, loss):
        """``Layer.add_loss``; on a functional model also a symbolic tensor of its graph (Keras 2's
        ``model.add_loss(kl_loss)``), computed from the inputs in every call and added to that call's losses.

        Example:
            >>> import numpy as np
            >>> from ember.layers import Input, Dense, Lambda, Model
            >>> from ember.engine import functional as F
            >>> inp = Input(shape=(3,))
            >>> hidden = Dense(2, kernel_initializer="ones")(inp)
            >>> model = Model(inp, Dense(1)(hidden))
            >>> model.add_loss(Lambda(lambda h: F.mean(h * h) * 0.5)(hidden))
            >>> _ = model(np.ones((4, 3)))
            >>> [round(float(p.item()), 3) for p in model.losses]  # 0.5 * mean(3^2)
            [4.5]
        """
        symbols = [x for x in _flatten(loss) if isinstance(x, SymbolicTensor)] if isinstance(
            loss, (list, tuple, SymbolicTensor)) else []
        if not symbols:
            return super().add_loss(loss)
        if self._nodes is None:
            raise ValueError(f"Model '{self.name}': add_loss of a symbolic tensor needs a functional model "
                             "(Model(inputs, outputs)) whose graph computes it")
        self._loss_symbols = list(self._loss_symbols) + symbols
        try:
            self._init_graph(*self._graph_args)  # the graph now also computes the loss tensors
        except ValueError as e:
            self._loss_symbols = self._loss_symbols[:-len(symbols)]
            self._init_graph(*self._graph_args)
            raise ValueError(f"Model '{self.name}': add_loss: the loss tensor is not computed from the model's "
                             f"inputs ({e})") from None

    def _check_input(self, shapes):
        if self._nodes is None:
            return
        if len(shapes) != len(self.inputs):
            raise ValueError(f"Model '{self.name}' expects {len(self.inputs)} input(s), got {len(shapes)}")
        for sym, shape in zip(self.inputs, shapes):
            want = sym.shape
            if len(shape) != len(want) or any(w is not None and w != s for w, s in zip(want[1:], shape[1:])):
                raise ValueError(f"Model '{self.name}': input '{sym.history[0].name}' expects shape {want}, "
                                 f"got {tuple(shape)}")

    def build(self, input_shape):
        if self._nodes is None:
            raise ValueError(f"Model '{self.name}' cannot be built without a graph")

    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self.outputs]
        return shapes if self._outputs_are_list else shapes[0]

    def replayable(self):
        """Whether this model's training calls may be recorded once and replayed: a graph of layers that
        are all ``replayable`` (Dense, Conv2D, pooling, Flatten, Activation...), with no symbolic losses."""
        if self._nodes is None or self._loss_symbols or self.activity_regularizer is not None:
            return False
        return all(node.layer.replayable() for node in self._nodes)

    # ---- flat parameters ----
    def _require_built(self):
        if not self.built:
            raise ValueError(f"Model '{self.name}' is not built yet: give the first layer input_shape, start "
                             "with an Input, or call the model on data once")

    def _flat_parameters(self):
        self._require_built()
        params = self.trainable_weights
        if self._flat is None or not self._flat.is_current(params):
            self._flat = FlatParameters(params)
        return self._flat

    def parameters_flat(self):
        """The contiguous buffer holding every trainable parameter (a dict when dtypes differ)."""
        data = self._flat_parameters().data
        return next(iter(data.values())) if len(data) == 1 else data

    def gradients_flat(self):
        """The contiguous buffer holding every trainable parameter's gradient, aligned with ``parameters_flat``."""
        grad = self._flat_parameters().grad
        return next(iter(grad.values())) if len(grad) == 1 else grad

    def zero_grad(self):
        """Set all parameter gradients to zero (in place, so the flat buffer stays shared)."""
        self._flat_parameters().zero_grad()

    # ---- summary ----
    def summary(self, line_length=80, print_fn=print):
        """Print each layer's type, output shape and parameter count, then the totals (like Keras)."""
        self._require_built()
        widths = [int(line_length * 0.4), int(line_length * 0.3), line_length - int(line_length * 0.7)]

        def row(cells):
            return "".join(str(c)[:w - 1].ljust(w) for c, w in zip(cells, widths)).rstrip()

        lines = [f'Model: "{self.name}"', "_" * line_length, row(["Layer (type)", "Output Shape", "Param #"]),
                 "=" * line_length]
        seen = set()
        for sym in self.inputs:
            layer = sym.history[0]
            seen.add(id(layer))
            lines.append(row([f"{layer.name} (InputLayer)", _shape_str(sym.shape), 0]))
        for node in self._nodes:
            if id(node.layer) in seen:
                continue
            seen.add(id(node.layer))
            shape = _map_structure(lambda s: _shape_str(s.shape), node.outputs)
            lines.append(row([f"{node.layer.name} ({type(node.layer).__name__})", shape,
                              f"{node.layer.count_params():,}"]))
        trainable = sum(w.size for w in self.trainable_weights)
        total = sum(w.size for w in self.weights)
        lines += ["=" * line_length, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * line_length]
        print_fn("\n".join(lines))

    # ---- config ----
    def get_config(self):
        from ember.layers.serialization import graph_config

        return graph_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ember.layers.serialization import graph_from_config

        inputs, outputs, name, loss_tensors = graph_from_config(config, custom_objects)
        model = cls(inputs, outputs, name=name)
        if loss_tensors:
            model.add_loss(loss_tensors)
        return model

    def save(self, path):
        """Save architecture and weights to ``path`` (see ``ember.layers.serialization``)."""
        from ember.layers.serialization import save_model

        save_model(self, path)


def _activation_name(layer):
    """"relu" for an ``Activation("relu")`` layer (exactly that class), else None."""
    if type(layer) is Activation and layer.activation is F.relu:
        return "relu"
    return None


def _shape_str(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _is_shape_list(shape):
    """Whether ``shape`` is a list of shapes (one per input) rather than one shape."""
    return isinstance(shape, (list, tuple)) and len(shape) > 0 and all(isinstance(s, (list, tuple)) for s in shape)


class Sequential(Model):
    """A linear stack of layers.

    Args:
        layers: optional list of layers (the first may carry ``input_shape``, or start with ``Input``).

    Example:
        >>> from ember.layers import Sequential, Dense
        >>> model = Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(2)])
        >>> model.count_params()
        26
    """

    def __init__(self, layers=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._layer_list = []
        self._input = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or an ``Input(...)``/``InputLayer(...)`` as the first entry); returns the model."""
        if isinstance(layer, InputLayer):  # Keras's Sequential([InputLayer(shape=...), ...])
            layer = layer.output
        if isinstance(layer, SymbolicTensor):
            if self._layer_list or self._input is not None:
                raise ValueError("Sequential: an Input may only come first")
            self._input = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if any(existing.name == layer.name for existing in self._layer_list):
            raise ValueError(f"Sequential '{self.name}': a layer named '{layer.name}' is already in the model")
        self._layer_list.append(layer)
        self._sublayers[layer.name] = layer
        shape = self._known_input_shape()
        if shape is not None:
            self._build_graph(shape)
        return self  # BigDL's add returns the model, so that calls chain

    def _known_input_shape(self):
        if self._input is not None:
            return [t.shape for t in self._input] if isinstance(self._input, list) else self._input.shape
        if self._nodes is not None:
            return [t.shape for t in self.inputs] if len(self.inputs) > 1 else self.inputs[0].shape
        first = self._layer_list[0] if self._layer_list else None
        return getattr(first, "_batch_input_shape", None)

    def _build_graph(self, batch_input_shape):
        if _is_shape_list(batch_input_shape):  # a first layer taking several inputs (Keras 1's Merge of branches)
            if self._known_input_shape() != [tuple(s) for s in batch_input_shape] or not isinstance(self._input, list):
                self._input = [InputLayer(batch_input_shape=tuple(s), name=f"{self.name}_input_{i}").output
                               for i, s in enumerate(batch_input_shape)]
        elif self._input is None or isinstance(self._input, list) or \
                tuple(self._input.shape) != tuple(batch_input_shape):
            self._input = InputLayer(batch_input_shape=batch_input_shape, name=f"{self.name}_input").output
        x = self._input
        for layer in self._layer_list:
            x = layer(x)
        self._init_graph(self._input, x)

    def build(self, input_shape=None):
        """Build for ``input_shape`` (with the batch axis, e.g. ``(None, 28, 28, 1)``)."""
        if input_shape is None:
            input_shape = self._known_input_shape()
        if input_shape is None:
            raise ValueError(f"Sequential '{self.name}': build needs an input shape")
        self._build_graph(tuple(input_shape))

    def __call__(self, inputs, training=None, **kwargs):
        if self._nodes is None and isinstance(inputs, (list, tuple)) and inputs and all(
                hasattr(x, "shape") for x in inputs):  # one array per input of a multi-input first layer
            self._build_graph([(None,) + tuple(x.shape[1:]) for x in inputs])
        elif self._nodes is None and not isinstance(inputs, SymbolicTensor):
            first = inputs.shape if hasattr(inputs, "shape") else None
            if first is None:
                raise TypeError(f"Sequential '{self.name}' expects an array input, got {type(inputs).__name__}")
            self._build_graph((None,) + tuple(first[1:]))
        elif self._nodes is None:
            self._build_graph(inputs.shape)
        return super().__call__(inputs, training=training, **kwargs)

    @property
    def layers(self):
        return list(self._layer_list)

    def get_config(self):
        from ember.layers.serialization import serialize_layer

        cfg = {"name": self.name, "layers": [serialize_layer(layer) for layer in self._layer_list]}
        if self._nodes is not None:
            cfg["build_input_shape"] = list(self.inputs[0].shape)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ember.layers.serialization import deserialize_layer

        model = cls(name=config["name"])
        for layer_cfg in config["layers"]:
            model.add(deserialize_layer(layer_cfg, custom_objects))
        if model._nodes is None and config.get("build_input_shape") is not None:
            model.build(tuple(config["build_input_shape"]))
        return model
