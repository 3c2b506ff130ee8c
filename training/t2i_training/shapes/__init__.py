"""Train the tiny "shapes" bundle: CLIP scorer, VAE, GLIGEN drafter and img2img refiner on
scenes from ``t2i_sdk.shapes`` (64x64), small enough for a 2-core CPU in about an hour.

Stages (each resumable, each writes ``RUN/<stage>/final/`` in its library's native format):

    clip     CLIPModel + CLIPProcessor, contrastive on image<->caption and crop<->phrase
    vae      AutoencoderKL 64x64x3 -> 16x16x4, L1 + L2 reconstruction + small KL
    drafter  StableDiffusionGLIGENPipeline: gated UNet trained with the epsilon loss, the CLIP
             text tower frozen as its text encoder
    refiner  StableDiffusionPipeline: the drafter's UNet without the GLIGEN fuser, fine-tuned
             on low-noise timesteps (img2img at strength <= 0.6)
    assemble t2i bundle from the four finals (``t2i_training.shapes.assemble``)

Run ``python -m t2i_training.shapes.cli STAGE --run-dir DIR``.
"""
