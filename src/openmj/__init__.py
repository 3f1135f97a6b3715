"""openmj: self-hosted image generation speaking the Midjourney APIs."""

__version__ = "0.1.0"
