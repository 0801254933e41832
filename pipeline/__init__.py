"""The golden-image pipeline driver: build, boot, test, gate and publish candidate images."""

__version__ = "0.1.0"
