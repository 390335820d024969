"""Target networks: the built-in digits MLP and user weights files."""
