"""Metric sources: one module per backend behind lastgood.sources.base.MetricSource."""
