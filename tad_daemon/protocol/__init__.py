"""The OSC protocol v1 (docs/osc.md): the table of addresses, packet encoding, and the `send` client.

Pure Python, no torch: `tad-daemon send` imports this package and must start fast.
"""
