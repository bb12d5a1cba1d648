"""Pure: platforms, references, Dockerfile scan/render/inject, manifests, masking. No I/O."""
