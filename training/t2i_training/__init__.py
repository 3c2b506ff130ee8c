"""t2i-train: iterative DPO with (Q)LoRA for the prompt rewriter (arXiv 2510.12041)."""
