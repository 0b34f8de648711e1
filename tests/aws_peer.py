"""The AWS side of the events and KMS tests, done with boto3 against moto server (SQS, SNS,
KMS) and SeaweedFS (S3), as AWS would do it.

  aws_peer.py wire MOTO                     -> queue URL and topic ARN, one per line
  aws_peer.py ses MOTO TOPIC BUCKET KEY R.. publish SES's Received notification through SNS
  aws_peer.py ses-lines MOTO TOPIC BUCKET   the same for each "KEY RECIPIENT..." line on stdin,
                                            answering "ok" when published (for benchmarks)
  aws_peer.py raw MOTO QUEUE BODY           send BODY to the queue as it is
  aws_peer.py depth MOTO QUEUE              -> "visible in-flight"
  aws_peer.py encrypt MOTO S3 BUCKET KEY FILE [tamper]
                                            put FILE as SES puts it with a KMS key
"""
import base64
import json
import os
import sys

import boto3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

REGION = "us-east-1"


def client(service, endpoint, **kw):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        **kw,
    )


def ses_notification(bucket, key, recipients):
    """SES's "Received" notification for an S3 action, shaped as the SES developer guide's
    "Examples of notifications for Amazon SES email receiving" shows it."""
    return {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2026-12-02T10:00:00.000Z",
            "source": "sender@other.example",
            "messageId": key.rsplit("/", 1)[-1],
            "destination": recipients,
            "headersTruncated": False,
            "headers": [{"name": "From", "value": "sender@other.example"}],
            "commonHeaders": {"from": ["sender@other.example"], "to": recipients[:1],
                              "subject": "events test"},
        },
        "receipt": {
            "timestamp": "2026-12-02T10:00:00.000Z",
            "processingTimeMillis": 222,
            "recipients": recipients,
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "PASS"},
            "dmarcVerdict": {"status": "PASS"},
            "action": {
                "type": "S3",
                "topicArn": "arn:aws:sns:us-east-1:123456789012:mail",
                "bucketName": bucket,
                "objectKeyPrefix": key.rsplit("/", 1)[0] if "/" in key else "",
                "objectKey": key,
            },
        },
    }


def main():
    cmd, moto = sys.argv[1], sys.argv[2]
    if cmd == "wire":
        sqs, sns = client("sqs", moto), client("sns", moto)
        dlq = sqs.create_queue(QueueName="mail-dead")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName="mail", Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        })["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        topic = sns.create_topic(Name="mail")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        print(url)
        print(topic)
    elif cmd == "ses":
        topic, bucket, key, recipients = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
        client("sns", moto).publish(
            TopicArn=topic,
            Subject="Amazon SES Email Receipt Notification",
            Message=json.dumps(ses_notification(bucket, key, recipients)),
        )
    elif cmd == "ses-lines":
        topic, bucket = sys.argv[3], sys.argv[4]
        sns = client("sns", moto)
        for line in sys.stdin:
            key, *recipients = line.split()
            sns.publish(TopicArn=topic, Subject="Amazon SES Email Receipt Notification",
                        Message=json.dumps(ses_notification(bucket, key, recipients)))
            print("ok", flush=True)
    elif cmd == "raw":
        client("sqs", moto).send_message(QueueUrl=sys.argv[3], MessageBody=sys.argv[4])
    elif cmd == "depth":
        a = client("sqs", moto).get_queue_attributes(
            QueueUrl=sys.argv[3],
            AttributeNames=["ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        print(a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"])
    elif cmd == "encrypt":
        s3_endpoint, bucket, key, path = sys.argv[3:7]
        tamper = len(sys.argv) > 7
        kms = client("kms", moto)
        key_id = kms.create_key(Description="ses")["KeyMetadata"]["Arn"]
        context = {"aws:ses:message-id": key.rsplit("/", 1)[-1], "aws:ses:rule-name": "mail",
                   "aws:ses:source-account": "123456789012", "kms_cmk_id": key_id}
        dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
        iv = os.urandom(12)
        plain = open(path, "rb").read()
        body = bytearray(AESGCM(dk["Plaintext"]).encrypt(iv, plain, None))
        if tamper:
            body[len(body) // 2] ^= 1
        client("s3", s3_endpoint).put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata={
            "x-amz-key-v2": base64.b64encode(dk["CiphertextBlob"]).decode(),
            "x-amz-iv": base64.b64encode(iv).decode(),
            "x-amz-cek-alg": "AES/GCM/NoPadding",
            "x-amz-wrap-alg": "kms",
            "x-amz-matdesc": json.dumps(context),
            "x-amz-tag-len": "128",
            "x-amz-unencrypted-content-length": str(len(plain)),
        })
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
