"""Thin code shared by the torch-classics experiments."""
