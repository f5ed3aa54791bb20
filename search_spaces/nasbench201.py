"""Placeholder until the nasbench201 family module lands."""
