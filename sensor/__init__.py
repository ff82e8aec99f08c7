"""pii-sensor: finds personal data in HTTP traffic between services."""
__version__ = "0.1.0"
