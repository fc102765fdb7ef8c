"""sincut: unpaired image-to-image translation by patchwise contrastive learning (CUT / SinCUT)."""

__version__ = "0.1.0"
