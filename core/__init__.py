"""HeatFormer Studio's computing side: no Qt, no VTK."""
__version__ = "0.1.0"
