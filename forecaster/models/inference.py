"""Run a saved forecaster network with NumPy: the fast, TensorFlow-free forward pass.

A ``.keras`` file is a zip holding ``config.json`` (the functional graph) and
``model.weights.h5`` (the weights). :func:`load_network` reads both — with
the standard library's ``zipfile``/``json`` and ``h5py`` (a Keras dependency),
never TensorFlow — and returns a :class:`NumpyNetwork` that evaluates the
graph layer by layer in float64 on the float32 weights.

It knows the layers :func:`forecaster.models.lstm.build_model` uses (inputs,
``Dense``, ``LSTM`` with or without an initial state, stateful or not,
``Concatenate``, nested functional models for ensemble members, and the
``forecaster>RandomInitialState`` / ``forecaster>LearnedInitialState`` layers
of the random and learned strategies). Anything else — another layer class, an
activation it does not have, a layer called twice — raises
:class:`UnsupportedNetwork`, and the caller loads the model with Keras instead
(:func:`forecaster.models.lstm_forecaster.load_forecaster`), so the output
never depends on which path served it.

Weights are addressed the way Keras 3 writes them: inside each functional
model the layers are numbered by class (``dense``, ``dense_1``, ...) in the
order of the model's config, each layer's variables under ``vars/0..n`` (an
LSTM's under ``cell/vars``).

Importing this module imports NumPy only.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecaster.errors import RegistryError

__all__ = ["NumpyNetwork", "UnsupportedNetwork", "load_network"]

#: Arithmetic precision: Keras' own (float32); float64 is no closer to it and 3-6x slower.
_DTYPE = np.float32
#: Rows per pass of a non-stateful network (small enough to stay in cache).
_CHUNK = int(os.environ.get("FORECAST_NUMPY_CHUNK", "512"))
_CONFIG_FILE = "config.json"
_WEIGHTS_FILE = "model.weights.h5"
_KNOWN = {
    "InputLayer",
    "Dense",
    "LSTM",
    "Concatenate",
    "Functional",
    "forecaster>RandomInitialState",
    "forecaster>LearnedInitialState",
}


class UnsupportedNetwork(Exception):
    """The saved network uses something the NumPy forward pass does not implement."""


def _dot(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``x @ matrix`` over the last axis without BLAS: BLAS threads waking for such small
    products cost more than the product, many times more on a busy machine."""
    return np.einsum("...i,ij->...j", x, matrix)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf gives exactly 0, as it should
        return 1.0 / (1.0 + np.exp(-x))


_ACTIVATIONS = {
    "linear": lambda x: x,
    None: lambda x: x,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
}


def _activation(name: Any, layer: str) -> Any:
    if not isinstance(name, (str, type(None))) or name not in _ACTIVATIONS:
        raise UnsupportedNetwork(f"layer {layer!r} has activation {name!r}")
    return _ACTIVATIONS[name]


def _snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case`` (the weight-file names of layers)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _class_of(entry: dict[str, Any]) -> str:
    registered = entry.get("registered_name")
    if registered and registered != entry.get("class_name"):
        return str(registered)
    return str(entry.get("class_name"))


def _read_vars(group: Any) -> list[np.ndarray]:
    if group is None or "vars" not in group:
        return []
    variables = group["vars"]
    return [np.asarray(variables[str(index)][()]) for index in range(len(variables))]


@dataclass
class _Layer:
    """One layer of a functional graph: its class, config, inputs and weights."""

    name: str
    kind: str
    config: dict[str, Any]
    inbound: dict[str, Any]
    weights: list[np.ndarray] = field(default_factory=list)
    graph: _Graph | None = None  # nested functional model


@dataclass
class _Graph:
    """A functional model: layers in config order, its inputs and output references."""

    name: str
    layers: dict[str, _Layer]
    inputs: Any
    outputs: Any


def _tensor_refs(value: Any) -> Any:
    """Replace every serialized KerasTensor in ``value`` by its (layer, node, index) reference."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = value["config"]["keras_history"]
            return ("ref", str(history[0]), int(history[1]), int(history[2]))
        return {key: _tensor_refs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tensor_refs(item) for item in value]
    return value


def _parse_graph(config: dict[str, Any], weights: Any) -> _Graph:
    """A functional model's config and its weight group (``None`` when absent)."""
    layers: dict[str, _Layer] = {}
    used: dict[str, int] = {}
    for entry in config["layers"]:
        kind = _class_of(entry)
        name = str(entry["name"])
        if kind not in _KNOWN:
            raise UnsupportedNetwork(f"layer {name!r} is a {kind}")
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise UnsupportedNetwork(f"layer {name!r} is called {len(nodes)} times")
        base = _snake_case(str(entry["class_name"]))
        count = used.get(base, 0)
        used[base] = count + 1
        key = base if count == 0 else f"{base}_{count}"
        group = None
        if weights is not None and "layers" in weights and key in weights["layers"]:
            group = weights["layers"][key]
        layer = _Layer(
            name=name,
            kind=kind,
            config=entry.get("config") or {},
            inbound=_tensor_refs(nodes[0]) if nodes else {},
        )
        if kind == "Functional":
            layer.graph = _parse_graph(layer.config, group)
        elif kind == "LSTM":
            layer.weights = _read_vars(
                group["cell"] if group is not None and "cell" in group else None
            )
        else:
            layer.weights = _read_vars(group)
        if name in layers:
            raise UnsupportedNetwork(f"two layers are named {name!r}")
        layers[name] = layer
        _check_layer(layer)
    return _Graph(str(config.get("name")), layers, config["input_layers"], config["output_layers"])


def _check_layer(layer: _Layer) -> None:
    """Refuse settings the forward pass does not implement (before any forecast is made)."""
    config, name = layer.config, layer.name
    if layer.kind == "Dense":
        _activation(config.get("activation"), name)
        expected = 2 if config.get("use_bias", True) else 1
        if len(layer.weights) != expected:
            raise UnsupportedNetwork(f"Dense {name!r} has {len(layer.weights)} weights")
    elif layer.kind == "LSTM":
        if config.get("activation") != "tanh" or config.get("recurrent_activation") != "sigmoid":
            raise UnsupportedNetwork(f"LSTM {name!r} uses other activations")
        for flag in ("return_sequences", "return_state", "go_backwards"):
            if config.get(flag):
                raise UnsupportedNetwork(f"LSTM {name!r} has {flag}")
        if not config.get("use_bias", True) or len(layer.weights) != 3:
            raise UnsupportedNetwork(f"LSTM {name!r} has {len(layer.weights)} weights")
    elif layer.kind == "forecaster>LearnedInitialState" and len(layer.weights) != 2:
        raise UnsupportedNetwork(f"layer {name!r} has {len(layer.weights)} weights")
    elif layer.kind == "Concatenate" and config.get("axis", -1) not in (-1, 1):
        raise UnsupportedNetwork(f"Concatenate {name!r} on axis {config.get('axis')}")


class NumpyNetwork:
    """A saved forecaster network evaluated with NumPy (see the module docstring).

    ``predict_on_batch({"sequence": (B, L, F), "context": (B, C)})`` returns the
    output (B, members) as a Keras model's would; a stateful network carries
    each LSTM's state from one call to the next until :meth:`reset_states`.
    """

    #: Marks the NumPy engine for code that also accepts Keras models.
    engine = "numpy"

    def __init__(self, graph: _Graph, path: Path) -> None:
        self._graph = graph
        self.name = graph.name
        self.path = path
        self._states: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.stateful = any(
            layer.kind == "LSTM" and bool(layer.config.get("stateful")) for layer in _walk(graph)
        )

    def reset_states(self) -> None:
        """Forget the carried state of every stateful LSTM."""
        self._states.clear()

    def predict_on_batch(self, x: dict[str, np.ndarray]) -> np.ndarray:
        """The network's output for one batch, float64 (B, outputs)."""
        feeds = {key: np.asarray(value, dtype=_DTYPE) for key, value in x.items()}
        rows = len(next(iter(feeds.values())))
        if self.stateful or rows <= _CHUNK:
            return np.asarray(self._run(self._graph, feeds), dtype=np.float64)
        # Rows are independent: cache-sized chunks are faster than one large batch.
        parts = [
            self._run(
                self._graph, {key: value[start : start + _CHUNK] for key, value in feeds.items()}
            )
            for start in range(0, rows, _CHUNK)
        ]
        return np.concatenate(parts).astype(np.float64)

    # ------------------------------------------------------------ evaluation
    def _run(self, graph: _Graph, feeds: Any) -> Any:
        values: dict[str, Any] = {}
        inputs = graph.inputs
        if isinstance(inputs, dict):
            if not isinstance(feeds, dict):
                raise UnsupportedNetwork(f"model {graph.name!r} takes named inputs")
            for key, ref in inputs.items():
                values[str(ref[0])] = feeds[key]
        else:
            refs = inputs if inputs and isinstance(inputs[0], list) else [inputs]
            if isinstance(feeds, dict):
                # Keras matches a dict to unnamed inputs by the input layers' names.
                feeds = [feeds[str(ref[0])] for ref in refs]
            for ref, value in zip(refs, feeds, strict=True):
                values[str(ref[0])] = value
        for layer in graph.layers.values():
            if layer.kind == "InputLayer":
                if layer.name not in values:
                    raise UnsupportedNetwork(f"input {layer.name!r} is not fed")
                continue
            args = _resolve(layer.inbound.get("args", []), values)
            kwargs = _resolve(layer.inbound.get("kwargs", {}), values)
            values[layer.name] = self._call(layer, args, kwargs)
        outputs = graph.outputs
        if outputs and isinstance(outputs[0], list):
            if len(outputs) != 1:
                raise UnsupportedNetwork(f"model {graph.name!r} has {len(outputs)} outputs")
            outputs = outputs[0]
        return values[str(outputs[0])]

    def _call(self, layer: _Layer, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if layer.kind == "Dense":
            kernel, *bias = layer.weights
            out = _dot(args[0], kernel.astype(_DTYPE))
            if bias:
                out = out + bias[0].astype(_DTYPE)
            return _activation(layer.config.get("activation"), layer.name)(out)
        if layer.kind == "Concatenate":
            parts = args[0] if len(args) == 1 and isinstance(args[0], list) else args
            return np.concatenate(parts, axis=-1)
        if layer.kind == "Functional":
            return self._run(layer.graph, args[0] if len(args) == 1 else args)
        if layer.kind == "forecaster>RandomInitialState":  # zeros at inference
            shape = (args[0].shape[0], int(layer.config["units"]))
            return [np.zeros(shape, _DTYPE), np.zeros(shape, _DTYPE)]
        if layer.kind == "forecaster>LearnedInitialState":
            batch = args[0].shape[0]
            return [np.broadcast_to(w.astype(_DTYPE), (batch, w.shape[-1])) for w in layer.weights]
        if layer.kind == "LSTM":
            return self._lstm(layer, args[0], kwargs.get("initial_state"))
        raise UnsupportedNetwork(f"layer {layer.name!r} is a {layer.kind}")  # pragma: no cover

    def _lstm(self, layer: _Layer, sequence: np.ndarray, initial_state: Any) -> np.ndarray:
        kernel, recurrent, bias = (w.astype(_DTYPE) for w in layer.weights)
        units = recurrent.shape[0]
        batch = sequence.shape[0]
        stateful = bool(layer.config.get("stateful"))
        if initial_state is not None:
            if stateful:
                raise UnsupportedNetwork(f"stateful LSTM {layer.name!r} given an initial state")
            hidden, cell = (np.asarray(state, dtype=_DTYPE) for state in initial_state)
        elif stateful and id(layer) in self._states:
            hidden, cell = self._states[id(layer)]
        else:
            hidden, cell = np.zeros((batch, units), _DTYPE), np.zeros((batch, units), _DTYPE)
        projected = _dot(sequence, kernel) + bias  # (B, L, 4U): the input part of every step
        for step in range(sequence.shape[1]):
            gates = projected[:, step] + _dot(hidden, recurrent)
            input_gate = _sigmoid(gates[:, :units])
            forget_gate = _sigmoid(gates[:, units : 2 * units])
            cell = forget_gate * cell + input_gate * np.tanh(gates[:, 2 * units : 3 * units])
            hidden = _sigmoid(gates[:, 3 * units :]) * np.tanh(cell)
        if stateful:
            self._states[id(layer)] = (hidden, cell)
        return hidden


def _walk(graph: _Graph):
    for layer in graph.layers.values():
        yield layer
        if layer.graph is not None:
            yield from _walk(layer.graph)


def _resolve(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, tuple) and value and value[0] == "ref":
        _, name, node, index = value
        if node != 0 or name not in values:
            raise UnsupportedNetwork(f"reference to {name!r} node {node}")
        found = values[name]
        if isinstance(found, list):
            return found[index]
        if index != 0:
            raise UnsupportedNetwork(f"reference to output {index} of {name!r}")
        return found
    if isinstance(value, dict):
        return {key: _resolve(item, values) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_resolve(item, values) for item in value]
    return value


def load_network(path: str | Path) -> NumpyNetwork:
    """Read a ``.keras`` file written by :func:`forecaster.models.lstm.save_model`.

    Raises
    ------
    UnsupportedNetwork
        The network uses a layer or setting the NumPy pass does not implement
        (load it with Keras instead).
    RegistryError
        The file is missing, not a ``.keras`` zip, or corrupt; the message names it.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise RegistryError(
            f"model file {path} does not exist; train a model first or check the registry path"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read(_CONFIG_FILE))
            with archive.open(_WEIGHTS_FILE) as raw:
                import io

                with h5py.File(io.BytesIO(raw.read()), "r") as weights:
                    if config.get("class_name") != "Functional":
                        raise UnsupportedNetwork(f"top-level model is a {config.get('class_name')}")
                    graph = _parse_graph(config["config"], weights)
    except UnsupportedNetwork:
        raise
    except Exception as exc:  # zip, JSON, h5 and missing keys all mean a corrupt file
        raise RegistryError(
            f"cannot load model file {path}: {type(exc).__name__}: {exc}. The file is corrupt "
            "or was written by an incompatible version; retrain the model or restore the file"
        ) from exc
    return NumpyNetwork(graph, path)
