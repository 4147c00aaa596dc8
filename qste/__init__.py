"""qste: train activation-quantized neural networks with the coarse gradient method."""

__version__ = "0.1.0"
