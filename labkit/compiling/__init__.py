"""The parts behind ``lk.compile`` (lab 04): ort (ONNX Runtime levels), torch_jit (torch.compile timing),
jax_port (a torch model as a pure JAX function). Learners use ``lk.compile``; see labkit/compile.py."""
