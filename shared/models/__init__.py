"""The model: where versions live (`layout`), the one way every function loads
the champion (`loading`), and the registry that registers, promotes and rolls back."""
