"""The embedded upstream: real fal apps (fal's server SDK) that render on the CPU, served on loopback."""
