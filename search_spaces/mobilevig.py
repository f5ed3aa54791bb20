"""Placeholder until the mobilevig family module lands."""
