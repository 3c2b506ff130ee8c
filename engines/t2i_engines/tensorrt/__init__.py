"""TensorRT engines: serialized plans built by ``t2i-export tensorrt`` from the exported ONNX
graphs, run through :class:`t2i_engines.tensorrt.runtime.TrtModel` (same interface as the
onnxruntime ``OrtModel``). Plans are tied to the TensorRT version and GPU architecture that
built them; a ``<plan>.json`` beside each records both so a mismatch fails with the rebuild
command instead of a TensorRT deserialization error. ``tensorrt`` and ``torch`` are imported only
when a plan is loaded."""
