"""The AWS boundary: the only package that imports boto3.

Everything above it sees our own typed results (`app.aws.types`) and our own exceptions
(`app.aws.errors`), never botocore dicts or ClientError.
"""
