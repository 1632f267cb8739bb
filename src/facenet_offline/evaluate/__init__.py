"""Evaluation: the LFW verification protocol, the LFW job and its report."""
