"""Code shared by every Cloud Function: configuration, the model-loading
module, the storage ports and their adapters, training and monitoring.

Nothing in this package imports functions-framework or Flask: everything here
is testable without HTTP.
"""
