"""The built-in sample: a crawlr snapshot made from scikit-image's bundled photos."""
