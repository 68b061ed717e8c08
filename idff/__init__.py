"""IDFF: Implicit Dynamical Flow Fusion, a reference reproduction."""

__version__ = "0.1.0"
