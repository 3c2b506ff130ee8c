"""Bundles: a folder with ``bundle.json`` plus one native-format folder per component.

    from t2i_sdk.bundle import create_bundle, load_bundle
    create_bundle("out/demo", {"drafter": "path/to/gligen",
                               "scorer": "openai/clip-vit-base-patch32"})
    manifest = load_bundle("out/demo")  # checks every file's sha256

Pure Python: nothing here imports torch; ``huggingface_hub`` loads only for hub ids.
"""
from t2i_sdk.bundle.atomic import atomic_directory, atomic_write_bytes, atomic_write_text
from t2i_sdk.bundle.create import create_bundle, detect_kind
from t2i_sdk.bundle.hashing import hash_tree, sha256_file, verify_files
from t2i_sdk.bundle.manifest import (DTYPES, ENGINES, KINDS, MANIFEST_NAME, OPTIONAL_ROLES,
                                     REQUIRED_ROLES, ROLE_KIND, ROLES, SCHEMA_VERSION,
                                     SUPPORTED_SCHEMA_VERSIONS, BundleManifest,
                                     ComponentEntry, component_dir, load_bundle,
                                     read_manifest, write_manifest)

__all__ = [
    "SCHEMA_VERSION", "SUPPORTED_SCHEMA_VERSIONS", "MANIFEST_NAME", "ROLES", "REQUIRED_ROLES",
    "OPTIONAL_ROLES", "ROLE_KIND", "KINDS", "ENGINES", "DTYPES",
    "ComponentEntry", "BundleManifest", "read_manifest", "write_manifest", "load_bundle",
    "component_dir", "sha256_file", "hash_tree", "verify_files", "atomic_write_text",
    "atomic_write_bytes", "atomic_directory", "detect_kind", "create_bundle",
]
