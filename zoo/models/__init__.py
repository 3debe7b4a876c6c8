"""Model families, one file each. Each file registers its variants with ``zoo.registry.register_model``."""
