"""lk.profile on ONNX models: exported from the torch reference nets and built by hand."""

import math
import warnings

import numpy as np
import onnx
import pytest
import torch
from nets import EncoderBlock, MobileNetV2, ResNet18, SmallCNN
from onnx import TensorProto, helper

import labkit as lk


def export(model, x, path, dynamic_batch=True):
    model.eval()
    kwargs = {"dynamic_axes": {"x": {0: "batch"}}} if dynamic_batch else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                         # the legacy exporter's deprecation notice
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], **kwargs)
    return path


def test_small_cnn_batch_from_default_batch_and_example(tmp_path):
    model = SmallCNN()
    path = export(model, torch.zeros(2, 3, 16, 16), tmp_path / "small.onnx")
    one = lk.profile(path)                                      # symbolic batch -> 1
    assert one.batch == 1 and one.source == "onnx" and one.name == "small"
    assert one.macs == lk.profile(model, torch.zeros(1, 3, 16, 16)).macs
    assert one.params == sum(p.numel() for p in model.parameters())
    four = lk.profile(str(path), batch=4)
    assert four.batch == 4 and four.macs == 4 * one.macs
    three = lk.profile(onnx.load(path), np.zeros((3, 3, 16, 16), np.float32))
    assert three.batch == 3 and three.macs == 3 * one.macs
    assert three.layers[0].inputs == ("input",) and three.layers[0].output_shape == (3, 8, 16, 16)
    fc = three.layers[-1]
    assert fc.op == "linear" and fc.gemm == (1, 3, 1024, 10)


@pytest.mark.parametrize("net,size", [(ResNet18, 64), (MobileNetV2, 96)])
def test_torch_and_onnx_agree(tmp_path, net, size):
    torch.manual_seed(0)
    model, x = net(), torch.randn(1, 3, size, size)
    pt = lk.profile(model, x)
    po = lk.profile(export(model, x, tmp_path / "m.onnx"))
    assert po.macs == pytest.approx(pt.macs, rel=0.02)
    graph = onnx.load(tmp_path / "m.onnx").graph                # oracle: the file's float initializers
    stats = {n.input[i] for n in graph.node if n.op_type == "BatchNormalization" for i in (3, 4)}
    assert po.params == sum(math.prod(i.dims) for i in graph.initializer
                            if i.data_type == TensorProto.FLOAT and i.name not in stats)
    adds = [lay for lay in po.layers if lay.op == "add"]        # residual adds: two producers each
    assert adds and all(len(lay.inputs) == 2 for lay in adds)
    names = {lay.name for lay in po.layers}
    assert all(i in names or i == "input" for lay in po.layers for i in lay.inputs)


def test_attention_block_with_computed_shapes(tmp_path):
    x = torch.randn(2, 10, 64)
    model = EncoderBlock(64, 4, 128)
    pt = lk.profile(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                          # every shape must be resolved
        po = lk.profile(export(model, x, tmp_path / "enc.onnx"), batch=2)
    assert po.macs == pt.macs
    scores = [lay for lay in po.layers if lay.op == "matmul" and lay.output_shape == (2, 4, 10, 10)]
    assert len(scores) == 1 and scores[0].macs == 2 * 4 * 10 * 10 * 16
    assert any(lay.op == "softmax" for lay in po.layers)


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_hand_built_gemm_einsum_and_unnamed_nodes():
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.standard_normal((5, 3)).astype(np.float32), "w")
    m = _model(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1),             # (4,3) x (5,3)^T
         helper.make_node("Relu", ["y"], ["r"]),
         helper.make_node("Einsum", ["a", "b"], ["e"], equation="bij,bjk->bik"),
         helper.make_node("Add", ["r", "r"], ["z"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 6, 7]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 7, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("e", TensorProto.FLOAT, None)], [w])
    p = lk.profile(m)
    assert [lay.name for lay in p.layers] == ["Gemm_0", "Relu_1", "Einsum_2", "Add_3"]
    assert p.layer("Gemm_0").macs == 4 * 3 * 5 and p.layer("Gemm_0").gemm == (1, 4, 3, 5)
    assert p.layer("Einsum_2").macs == 2 * 6 * 7 * 8
    assert p.layer("Add_3").inputs == ("Relu_1",) and p.params == 15
    assert p.layer("Gemm_0").inputs == ("input",)               # the initializer is a weight, not an input


def test_ort_fused_graph_keeps_macs(tmp_path):
    import onnxruntime as ort

    model = SmallCNN()
    path = export(model, torch.zeros(1, 3, 16, 16), tmp_path / "s.onnx", dynamic_batch=False)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "s_opt.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    fused = onnx.load(tmp_path / "s_opt.onnx")
    assert any(n.op_type == "FusedConv" for n in fused.graph.node)
    assert lk.profile(fused).macs == lk.profile(path).macs == lk.profile(model, torch.zeros(1, 3, 16, 16)).macs


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="no ONNX file"):
        lk.profile(tmp_path / "missing.onnx")
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq"])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(ValueError, match="symbolic"):
        lk.profile(m)
    assert lk.profile(m, np.zeros((2, 5), np.float32)).layers[0].output_elems == 10
