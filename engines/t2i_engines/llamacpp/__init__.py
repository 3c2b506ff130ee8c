"""llama.cpp engines: GGUF chat models behind the same classes as the torch engines.

Modules here import ``llama_cpp`` (the ``llama`` extra); only the bundle loader imports them.
"""
