"""Placeholder until the mnasnet family module lands."""
