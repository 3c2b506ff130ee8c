"""t2i-sdk: prompt-faithful text-to-image under a latency budget.

    from t2i_sdk import Pipeline
    pipe = Pipeline.from_pretrained("path/to/bundle")
    result = pipe("three red apples left of a blue cup", budget_ms=4000, seed=0)
    result.image.save("out.png")

Importing this package loads no torch; backends load when a bundle does.
"""
from t2i_sdk.errors import BundleError, Cancelled, InputError, PipelineClosed, T2IError
from t2i_sdk.layout import Layout, LayoutObject
from t2i_sdk.progress import Progress

__version__ = "0.1.0"
__all__ = ["Pipeline", "Result", "Progress", "Layout", "LayoutObject", "T2IError", "InputError",
           "BundleError", "Cancelled", "PipelineClosed"]


def __getattr__(name):  # PEP 562: keep `import t2i_sdk` light
    if name == "Pipeline":
        from t2i_sdk.pipeline import Pipeline
        return Pipeline
    if name == "Result":
        from t2i_sdk.result import Result
        return Result
    raise AttributeError(name)
