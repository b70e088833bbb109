#!/usr/bin/python3
"""s3_read: reads an ingrain archive back with an independent S3 client
(boto3, Debian python3-boto3) for the tests: lists every object under a
prefix (but the "_" index objects beside them), downloads it, gunzips it when its key ends in .gz, and prints one
JSON object per archived record with the object key added as "_key".

  s3_read.py --endpoint URL --bucket B [--prefix P] --access-key AK --secret-key SK
             [--keys-only]
"""
import argparse
import gzip
import json
import sys

import boto3
from botocore.config import Config


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="")
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--keys-only", action="store_true")
    a = p.parse_args()
    s3 = boto3.client("s3", endpoint_url=a.endpoint, region_name=a.region,
                      aws_access_key_id=a.access_key, aws_secret_access_key=a.secret_key,
                      config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                    retries={"max_attempts": 1}))
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket, Prefix=a.prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    for key in sorted(keys):
        if key.rsplit("/", 1)[-1].startswith("_"):
            continue  # an index object beside a data object (docs/archive.md)
        if a.keys_only:
            print(key)
            continue
        data = s3.get_object(Bucket=a.bucket, Key=key)["Body"].read()
        if key.endswith(".gz"):
            data = gzip.decompress(data)
        for line in data.decode("utf-8").splitlines():
            rec = json.loads(line)
            rec["_key"] = key
            print(json.dumps(rec, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
