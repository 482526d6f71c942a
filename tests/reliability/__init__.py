"""Reliability and security tests that report figures (issue 8); see docs/reliability.md."""
