"""Command-line tools: model fixtures, config printing, data preparation."""
