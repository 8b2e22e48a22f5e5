"""The forwarding AWS Lambda (``lambda_function.py``, deployed as a single file)."""
