"""Placeholder until the nemotron_flash family module lands."""
