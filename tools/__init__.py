"""Developer tools, never imported by a deployed function: the CLI and the drift demo."""
