"""Bake the built-in 2D detector (resources/detector/*.onnx) from the Apache-2.0 BlazePose models inside the
mediapipe 0.10.21 wheel. mediapipe itself is no dependency (it needs numpy<2, jax and opencv-contrib): only its
two .tflite files are read.

Run once (needs `pip install tflite onnx`, and `ai-edge-litert` for the check):
    pip download --no-deps mediapipe==0.10.21 --python-version 3.11 --only-binary=:all: \
        --platform manylinux_2_28_x86_64 -d /tmp/mp
    python packaging/bake_pose_detector.py /tmp/mp/mediapipe-0.10.21-*.whl

The converter below knows exactly the operators these two graphs use (convolutions, depthwise convolutions,
pads, additions, pooling, bilinear resizes, depth-to-space, reshapes, concatenations, a sigmoid, and the float16
weights stored dequantised or as sparse tensors), turned from TFLite's NHWC into ONNX's NCHW; anything else is
refused. With ai-edge-litert installed, each ONNX graph is run beside the original on random and real-looking
inputs and the largest difference is printed and must stay small.
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.resources import DETECTOR_DIR  # noqa: E402

MODELS = {"pose_detection": "mediapipe/modules/pose_detection/pose_detection.tflite",
          "pose_landmark_full": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"}
LICENCE_IN_WHEEL = "mediapipe-0.10.21.dist-info/LICENSE"
NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
ACTIVATIONS = {0: None, 1: "Relu", 3: "Relu6", 4: "Tanh"}  # TFLite's fused activations


def _densify(tensor, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A TFLite sparse constant (dense and CSR dimensions, no blocks) as a dense array."""
    sparsity = tensor.Sparsity()
    order = list(sparsity.TraversalOrderAsNumpy())
    if order != list(range(len(shape))) or sparsity.BlockMapLength():
        raise NotImplementedError("sparse tensors with blocks or a permuted traversal order")
    dims = []
    for d in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(d)
        if meta.Format() == 0:
            dims.append(("dense", meta.DenseSize()))
        else:
            import tflite

            vector_types = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}

            def read(kind, table):
                vector = vector_types[kind]()
                vector.Init(table.Bytes, table.Pos)
                return vector.ValuesAsNumpy()
            dims.append(("csr", read(meta.ArraySegmentsType(), meta.ArraySegments()),
                         read(meta.ArrayIndicesType(), meta.ArrayIndices())))
    dense = np.zeros(shape, values.dtype)
    flat_values = iter(values)

    def walk(level: int, index: tuple[int, ...], position: int) -> None:
        kind = dims[level]
        if kind[0] == "dense":
            children = [(i, position * kind[1] + i) for i in range(kind[1])]
        else:
            segments, indices = kind[1], kind[2]
            children = [(int(indices[k]), k) for k in range(segments[position], segments[position + 1])]
        for coordinate, child in children:
            if level == len(dims) - 1:
                dense[index + (coordinate,)] = next(flat_values)
            else:
                walk(level + 1, index + (coordinate,), child)
    walk(0, (), 0)
    return dense


class Converter:
    """One TFLite subgraph as an ONNX graph: constants folded to float32, 4-D activations kept in NCHW."""

    def __init__(self, data: bytes):
        import tflite
        from tflite.BuiltinOperator import BuiltinOperator

        self.tflite = tflite
        self.model = tflite.Model.GetRootAsModel(data, 0)
        self.graph = self.model.Subgraphs(0)
        self.op_names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
        self.constants: dict[int, np.ndarray] = {}
        self.nodes, self.initializers = [], []
        self.layout: dict[int, str] = {}  # tensor -> "nchw" for 4-D activations turned, else absent

    def tensor(self, index: int):
        return self.graph.Tensors(index)

    def name(self, index: int) -> str:
        return self.tensor(index).Name().decode()

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(v) for v in self.tensor(index).ShapeAsNumpy())

    def buffer(self, index: int) -> np.ndarray | None:
        tensor = self.tensor(index)
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        dtype = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}[tensor.Type()]
        values = data.view(dtype)
        if tensor.Sparsity() is not None:
            return _densify(tensor, values, self.shape(index))
        return values.reshape(self.shape(index))

    def constant(self, index: int) -> np.ndarray:
        if index not in self.constants:
            values = self.buffer(index)
            if values is None:
                raise NotImplementedError(f"{self.name(index)} is neither a constant nor computed before use")
            self.constants[index] = values
        return self.constants[index]

    def add_initializer(self, name: str, values: np.ndarray) -> str:
        """A constant; weights that float16 holds exactly (the originals are float16) are stored so and cast
        back once when the session folds its constants, which halves the files."""
        from onnx import TensorProto, numpy_helper

        values = np.ascontiguousarray(values)
        half = values.astype(np.float16)
        if values.dtype == np.float32 and values.size >= 64 and np.array_equal(half.astype(np.float32), values):
            self.initializers.append(numpy_helper.from_array(half, name + "/f16"))
            return self.node("Cast", [name + "/f16"], name, to=TensorProto.FLOAT)
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def activate(self, code: int, raw: str, output: str) -> None:
        if code not in ACTIVATIONS:
            raise NotImplementedError(f"fused activation {code}")
        activation = ACTIVATIONS[code]
        if activation is None:
            self.node("Identity", [raw], output)
        elif activation == "Relu6":
            low = self.add_initializer(output + "/low", np.float32(0))
            high = self.add_initializer(output + "/high", np.float32(6))
            self.node("Clip", [raw, low, high], output)
        else:
            self.node(activation, [raw], output)

    def nhwc(self, index: int) -> str:
        """An activation's name in TFLite's own layout (transposed back where it is kept in NCHW)."""
        if self.layout.get(index) == "nchw":
            return self.node("Transpose", [self.name(index)], self.name(index) + "/nhwc", perm=NCHW_TO_NHWC)
        return self.name(index)

    def options(self, op, kind):
        table = op.BuiltinOptions()
        value = getattr(self.tflite, kind)()
        value.Init(table.Bytes, table.Pos)
        return value

    @staticmethod
    def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
        out = -(-size // stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    def convolution(self, op, inputs, output, depthwise: bool) -> None:
        kind = "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
        options = self.options(op, kind)
        weights = self.constant(inputs[1]).astype(np.float32)
        _, height, width, channels = self.shape(inputs[0])
        if depthwise:  # (1, kh, kw, C * multiplier) -> (C * multiplier, 1, kh, kw)
            weights, group = weights.transpose(3, 0, 1, 2), channels
        else:  # (out, kh, kw, in) -> (out, in, kh, kw)
            weights, group = weights.transpose(0, 3, 1, 2), 1
        kh, kw = weights.shape[2:]
        strides = [options.StrideH(), options.StrideW()]
        dilations = [options.DilationHFactor(), options.DilationWFactor()]
        if options.Padding() == 0:  # SAME: TensorFlow puts the odd pixel at the end
            top, bottom = self.same_pads(height, kh, strides[0], dilations[0])
            left, right = self.same_pads(width, kw, strides[1], dilations[1])
            pads = [top, left, bottom, right]
        else:
            pads = [0, 0, 0, 0]
        names = [self.name(inputs[0]), self.add_initializer(output + "/W", weights)]
        if len(inputs) > 2 and inputs[2] >= 0:
            names.append(self.add_initializer(output + "/B", self.constant(inputs[2]).astype(np.float32)))
        raw = self.node("Conv", names, output + "/raw", strides=strides, dilations=dilations, pads=pads,
                        group=group, kernel_shape=[kh, kw])
        self.activate(options.FusedActivationFunction(), raw, output)

    def convert(self, graph_name: str):
        from onnx import TensorProto, helper

        g = self.graph
        graph_inputs = []
        for k in range(g.InputsLength()):
            index = g.Inputs(k)
            shape = self.shape(index)
            graph_inputs.append(helper.make_tensor_value_info(self.name(index), TensorProto.FLOAT,
                                                              [shape[i] for i in NHWC_TO_NCHW]))
            self.layout[index] = "nchw"
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            name = self.op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
            inputs = [int(v) for v in op.InputsAsNumpy()]
            result = int(op.Outputs(0))
            output = self.name(result)
            if name in ("DEQUANTIZE", "DENSIFY"):  # weights: folded at bake time
                self.constants[result] = self.constant(inputs[0]).astype(np.float32)
                continue
            four_d = len(self.shape(result)) == 4
            if name == "CONV_2D":
                self.convolution(op, inputs, output, depthwise=False)
            elif name == "DEPTHWISE_CONV_2D":
                self.convolution(op, inputs, output, depthwise=True)
            elif name == "ADD":
                options = self.options(op, "AddOptions")
                operands = []
                for index in inputs:
                    if index in self.constants or self.buffer(index) is not None:
                        values = self.constant(index).astype(np.float32)
                        if four_d and values.ndim == 4:
                            values = values.transpose(NHWC_TO_NCHW)
                        elif four_d and values.ndim == 1:
                            values = values.reshape(-1, 1, 1)
                        operands.append(self.add_initializer(f"{output}/const{len(operands)}", values))
                    else:
                        operands.append(self.name(index))
                self.activate(options.FusedActivationFunction(), self.node("Add", operands, output + "/raw"), output)
            elif name == "PAD":
                paddings = self.constant(inputs[1]).astype(np.int64)[list(NHWC_TO_NCHW)]
                pads = self.add_initializer(output + "/pads", np.concatenate([paddings[:, 0], paddings[:, 1]]))
                self.node("Pad", [self.name(inputs[0]), pads], output, mode="constant")
            elif name == "MAX_POOL_2D":
                options = self.options(op, "Pool2DOptions")
                kernel, strides = [options.FilterHeight(), options.FilterWidth()], [options.StrideH(), options.StrideW()]
                _, height, width, _ = self.shape(inputs[0])
                pads = [0, 0, 0, 0]
                if options.Padding() == 0:
                    top, bottom = self.same_pads(height, kernel[0], strides[0])
                    left, right = self.same_pads(width, kernel[1], strides[1])
                    pads = [top, left, bottom, right]
                raw = self.node("MaxPool", [self.name(inputs[0])], output + "/raw", kernel_shape=kernel,
                                strides=strides, pads=pads)
                self.activate(options.FusedActivationFunction(), raw, output)
            elif name == "RESIZE_BILINEAR":
                options = self.options(op, "ResizeBilinearOptions")
                mode = ("align_corners" if options.AlignCorners() else
                        "half_pixel" if options.HalfPixelCenters() else "asymmetric")
                shape = self.shape(result)
                sizes = self.add_initializer(output + "/sizes", np.array([shape[i] for i in NHWC_TO_NCHW], np.int64))
                self.node("Resize", [self.name(inputs[0]), "", "", sizes], output, mode="linear",
                          coordinate_transformation_mode=mode)
            elif name == "DEPTH_TO_SPACE":
                options = self.options(op, "DepthToSpaceOptions")
                self.node("DepthToSpace", [self.name(inputs[0])], output, blocksize=options.BlockSize(), mode="DCR")
            elif name == "RESHAPE":
                shape = self.add_initializer(output + "/shape", np.array(self.shape(result), np.int64))
                self.node("Reshape", [self.nhwc(inputs[0]), shape], output)
                four_d = False
            elif name == "CONCATENATION":
                options = self.options(op, "ConcatenationOptions")
                axis = options.Axis() % len(self.shape(result))
                if four_d:
                    axis = NHWC_TO_NCHW.index(axis)
                raw = self.node("Concat", [self.name(k) for k in inputs], output + "/raw", axis=axis)
                self.activate(options.FusedActivationFunction(), raw, output)
            elif name == "LOGISTIC":
                self.node("Sigmoid", [self.name(inputs[0])], output)
            else:
                raise NotImplementedError(f"TFLite operator {name}")
            if four_d:
                self.layout[result] = "nchw"
        graph_outputs = []
        for k in range(g.OutputsLength()):
            index = g.Outputs(k)
            name = self.name(index)
            turned = self.nhwc(index)
            self.node("Identity", [turned], name + "_out")
            graph_outputs.append(helper.make_tensor_value_info(name + "_out", TensorProto.FLOAT, list(self.shape(index))))
        graph = helper.make_graph(self.nodes, graph_name, graph_inputs, graph_outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="heatformer-studio bake_pose_detector")
        model.ir_version = 8
        return model


def check_against_litert(tflite_bytes: bytes, onnx_path: Path, shape: tuple[int, ...]) -> float:
    """Largest absolute difference between the ONNX graph and LiteRT's run of the original, over three inputs."""
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite_bytes)
    interpreter.allocate_tensors()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    gradient = np.linspace(0, 1, shape[1] * shape[2] * shape[3], dtype=np.float32).reshape(shape)
    for image in (rng.uniform(0, 1, shape).astype(np.float32), gradient, np.zeros(shape, np.float32)):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
        interpreter.invoke()
        expected = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
        got = session.run(None, {session.get_inputs()[0].name: image.transpose(NHWC_TO_NCHW)})
        for output, values in zip(session.get_outputs(), got):
            reference = expected[output.name[:-len("_out")]]
            worst = max(worst, float(np.abs(values - reference).max() / max(1.0, np.abs(reference).max())))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="mediapipe-0.10.21-*.whl (any platform: only its .tflite files are read)")
    parser.add_argument("--out", type=Path, default=DETECTOR_DIR)
    args = parser.parse_args()
    import onnx

    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.wheel) as wheel:
        (args.out / "LICENSE-mediapipe-Apache-2.0.txt").write_bytes(wheel.read(LICENCE_IN_WHEEL))
        for name, member in MODELS.items():
            data = wheel.read(member)
            model = Converter(data).convert(name)
            onnx.checker.check_model(model)
            path = args.out / f"{name}.onnx"
            onnx.save(model, str(path))
            print(f"{path}: {len(model.graph.node)} nodes, {path.stat().st_size / 1e6:.1f} MB")
            try:
                shape = (1, 224, 224, 3) if name == "pose_detection" else (1, 256, 256, 3)
                print(f"  largest difference to LiteRT (relative to each output's range): "
                      f"{check_against_litert(data, path, shape):.2e}")
            except ImportError:
                print("  ai-edge-litert is not installed: not checked against the original")


if __name__ == "__main__":
    main()
