"""Tests of voice-activity detection and endpointing."""
