"""Data intake: image decoding, datasets and tensor layouts."""
