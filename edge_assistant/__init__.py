"""edge-assistant: an in-car voice assistant and vehicle-state toolkit for Raspberry Pi and Jetson.

Heavy parts (onnxruntime, python-can) are imported by the submodules that need them, not here.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
