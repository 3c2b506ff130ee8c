"""Torch engines: diffusers pipelines and transformers models behind small classes."""
