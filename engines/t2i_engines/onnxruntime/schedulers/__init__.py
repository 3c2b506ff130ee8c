"""diffusers schedulers re-done in torch float32 on the CPU for the onnxruntime engines, one
module per scheduler as diffusers keeps them; each matches its diffusers class bit for bit."""
from t2i_engines.onnxruntime.schedulers.euler_ancestral import SCHEDULER, EulerAncestral

__all__ = ["EulerAncestral", "SCHEDULER"]
