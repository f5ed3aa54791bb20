"""Placeholder until the fbnet family module lands."""
