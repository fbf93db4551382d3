"""The demo program: synthetic B2B data loaded through the same paths real operators use."""
