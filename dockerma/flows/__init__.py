"""The build and push flows, the smoke tests and the metadata they write."""
