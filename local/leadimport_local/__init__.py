"""The local runner: the same handlers and events as AWS, against moto S3/SQS and throwaway Postgres/Redis."""
