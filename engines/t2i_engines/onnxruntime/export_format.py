"""What an exported ONNX component folder holds, shared by the onnxruntime engines and the
exporters (``t2i_export.onnx``). Pure Python: importing it loads neither torch nor onnxruntime.
"""

# The manifest each exporter writes beside its graphs: what the graphs are (names, inputs,
# outputs, source hashes) and the component's numbers (VAE scaling, pipeline settings, ...).
MANIFEST_NAME = "onnx_export.json"

# The dtypes an onnxruntime engine's ``load`` accepts. Precision is fixed when the graphs are
# exported; the names are accepted for interface parity with the torch engines (a bundle entry
# passes its dtype) and otherwise not used.
DTYPES = ("auto", "float32", "float16", "bfloat16", "int8")
