"""The AWS service catalogue of step 1: services, their use cases and exact principals.

No AWS API lists the console's use cases (aws-iam-behaviour.md A1), so RoleDesk ships its own
table. AWS warns that service principals are case-sensitive and must not be guessed, so each
entry carries the exact principal; a principal typed by hand that is not here is allowed, with
a warning. `suggested` names AWS managed policies the console's use case proposes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UseCase:
    service: str
    use_case: str
    principal: str
    description: str
    suggested: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How the use case reads on its own: "Lambda", "Elastic Container Service Task",
        "Kinesis Analytics: Managed Service for Apache Flink" (never "EC2: EC2")."""
        if self.service.lower() in self.use_case.lower():
            return self.use_case
        return f"{self.service}: {self.use_case}"

    @property
    def key(self) -> str:
        """The picker's value for this use case (service and use case are unique together)."""
        return f"{self.service}|{self.use_case}"


SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"

_U = UseCase
CATALOGUE: tuple[UseCase, ...] = (
    _U(
        "EC2",
        "EC2",
        "ec2.amazonaws.com",
        "Allows EC2 instances to call AWS services on your behalf.",
        (SSM_CORE,),
    ),
    _U(
        "EC2",
        "EC2 Role for AWS Systems Manager",
        "ec2.amazonaws.com",
        "Allows EC2 instances to call AWS services like CloudWatch and Systems Manager.",
        (SSM_CORE,),
    ),
    _U(
        "EC2",
        "EC2 Spot Fleet Role",
        "spotfleet.amazonaws.com",
        "Allows EC2 Spot Fleet to request and terminate Spot Instances on your behalf.",
        ("arn:aws:iam::aws:policy/service-role/AmazonEC2SpotFleetTaggingRole",),
    ),
    _U(
        "Lambda",
        "Lambda",
        "lambda.amazonaws.com",
        "Allows Lambda functions to call AWS services on your behalf.",
        (LAMBDA_BASIC,),
    ),
    _U(
        "Elastic Container Service",
        "Elastic Container Service Task",
        "ecs-tasks.amazonaws.com",
        "Allows ECS tasks to call AWS services on your behalf.",
    ),
    _U(
        "Elastic Container Service",
        "EC2 Role for Elastic Container Service",
        "ec2.amazonaws.com",
        "Allows EC2 instances in an ECS cluster to access ECS.",
        ("arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",),
    ),
    _U(
        "Elastic Container Service",
        "Elastic Container Service",
        "ecs.amazonaws.com",
        "Allows ECS to manage your cluster.",
    ),
    _U(
        "EKS",
        "EKS - Cluster",
        "eks.amazonaws.com",
        "Allows the EKS control plane to manage resources for your cluster.",
        ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",),
    ),
    _U(
        "EKS",
        "EKS - Nodegroup",
        "ec2.amazonaws.com",
        "Allows EC2 instances in an EKS node group to join the cluster and pull images.",
        (
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
            "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        ),
    ),
    _U(
        "EKS",
        "EKS - Pod Identity",
        "pods.eks.amazonaws.com",
        "Allows pods in EKS clusters to call AWS services.",
    ),
    _U(
        "Glue",
        "Glue",
        "glue.amazonaws.com",
        "Allows Glue to call AWS services on your behalf.",
        ("arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole",),
    ),
    _U(
        "SageMaker",
        "SageMaker - Execution",
        "sagemaker.amazonaws.com",
        "Allows SageMaker notebooks, training jobs and models to call AWS services.",
        ("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess",),
    ),
    _U(
        "CodeBuild",
        "CodeBuild",
        "codebuild.amazonaws.com",
        "Allows CodeBuild to call AWS services on your behalf.",
    ),
    _U(
        "CodePipeline",
        "CodePipeline",
        "codepipeline.amazonaws.com",
        "Allows CodePipeline to call AWS services on your behalf.",
    ),
    _U(
        "CodeDeploy",
        "CodeDeploy",
        "codedeploy.amazonaws.com",
        "Allows CodeDeploy to call AWS services such as Auto Scaling on your behalf.",
        ("arn:aws:iam::aws:policy/service-role/AWSCodeDeployRole",),
    ),
    _U(
        "Step Functions",
        "Step Functions",
        "states.amazonaws.com",
        "Allows Step Functions to call AWS services on your behalf.",
    ),
    _U(
        "API Gateway",
        "API Gateway",
        "apigateway.amazonaws.com",
        "Allows API Gateway to push logs to CloudWatch Logs.",
        ("arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",),
    ),
    _U(
        "Batch",
        "Batch",
        "batch.amazonaws.com",
        "Allows Batch to create and manage AWS resources on your behalf.",
    ),
    _U(
        "Redshift",
        "Redshift - Customizable",
        "redshift.amazonaws.com",
        "Allows Redshift clusters to call AWS services on your behalf.",
    ),
    _U(
        "Backup",
        "Backup",
        "backup.amazonaws.com",
        "Allows AWS Backup to create and restore backups on your behalf.",
        ("arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",),
    ),
    _U(
        "Systems Manager",
        "Systems Manager",
        "ssm.amazonaws.com",
        "Allows Systems Manager to call AWS services on your behalf.",
    ),
    _U(
        "CloudFormation",
        "CloudFormation",
        "cloudformation.amazonaws.com",
        "Allows CloudFormation to create and manage AWS stacks and resources.",
    ),
    _U(
        "Elastic Beanstalk",
        "Elastic Beanstalk",
        "elasticbeanstalk.amazonaws.com",
        "Allows Elastic Beanstalk to create and manage AWS resources on your behalf.",
    ),
    _U(
        "EventBridge",
        "EventBridge",
        "events.amazonaws.com",
        "Allows EventBridge rules to invoke targets on your behalf.",
    ),
    _U(
        "EventBridge Scheduler",
        "EventBridge Scheduler",
        "scheduler.amazonaws.com",
        "Allows schedules to invoke targets on your behalf.",
    ),
    _U(
        "EventBridge Pipes",
        "EventBridge Pipes",
        "pipes.amazonaws.com",
        "Allows pipes to read from sources and call targets.",
    ),
    _U(
        "Kinesis Data Firehose",
        "Firehose",
        "firehose.amazonaws.com",
        "Allows Firehose to deliver data to destinations on your behalf.",
    ),
    _U(
        "Kinesis Analytics",
        "Managed Service for Apache Flink",
        "kinesisanalytics.amazonaws.com",
        "Allows Flink applications to read sources and write sinks.",
    ),
    _U(
        "Data Pipeline",
        "Data Pipeline",
        "datapipeline.amazonaws.com",
        "Allows Data Pipeline to access your resources.",
    ),
    _U(
        "EMR",
        "EMR - Service role",
        "elasticmapreduce.amazonaws.com",
        "Allows EMR to call AWS services on your behalf.",
    ),
    _U(
        "DMS",
        "DMS",
        "dms.amazonaws.com",
        "Allows Database Migration Service to manage resources on your behalf.",
    ),
    _U(
        "RDS",
        "RDS - Enhanced Monitoring",
        "monitoring.rds.amazonaws.com",
        "Allows RDS to send Enhanced Monitoring metrics to CloudWatch Logs.",
        ("arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",),
    ),
    _U(
        "RDS",
        "RDS - Add Role to Database",
        "rds.amazonaws.com",
        "Allows RDS database instances to call AWS services on your behalf.",
    ),
    _U(
        "S3",
        "S3 - Batch Operations",
        "batchoperations.s3.amazonaws.com",
        "Allows S3 Batch Operations to call S3 on your behalf.",
    ),
    _U(
        "S3",
        "S3 - Replication",
        "s3.amazonaws.com",
        "Allows S3 to replicate objects on your behalf.",
    ),
    _U(
        "SNS",
        "SNS",
        "sns.amazonaws.com",
        "Allows SNS to write delivery status logs to CloudWatch Logs.",
    ),
    _U(
        "CloudWatch",
        "CloudWatch Events / Alarms",
        "events.amazonaws.com",
        "Allows CloudWatch rules to call targets on your behalf.",
    ),
    _U(
        "CloudTrail",
        "CloudTrail",
        "cloudtrail.amazonaws.com",
        "Allows CloudTrail to deliver events to CloudWatch Logs.",
    ),
    _U(
        "Config",
        "AWS Config",
        "config.amazonaws.com",
        "Allows AWS Config to record resources and deliver snapshots.",
        ("arn:aws:iam::aws:policy/service-role/AWS_ConfigRole",),
    ),
    _U(
        "DataSync",
        "DataSync",
        "datasync.amazonaws.com",
        "Allows DataSync to read and write your storage locations.",
    ),
    _U(
        "Transfer Family",
        "Transfer",
        "transfer.amazonaws.com",
        "Allows Transfer Family servers to access S3 or EFS on your behalf.",
    ),
    _U(
        "AppSync",
        "AppSync",
        "appsync.amazonaws.com",
        "Allows AppSync to call data sources on your behalf.",
    ),
    _U(
        "Amplify",
        "Amplify - Backend deployment",
        "amplify.amazonaws.com",
        "Allows Amplify to deploy backend resources on your behalf.",
    ),
    _U(
        "App Runner",
        "App Runner - Instance",
        "tasks.apprunner.amazonaws.com",
        "Allows App Runner services to call AWS services on your behalf.",
    ),
    _U(
        "App Runner",
        "App Runner - ECR access",
        "build.apprunner.amazonaws.com",
        "Allows App Runner to pull images from private ECR repositories.",
    ),
    _U(
        "Bedrock",
        "Bedrock",
        "bedrock.amazonaws.com",
        "Allows Bedrock model customisation and agents to access your data.",
    ),
    _U(
        "Athena",
        "Athena",
        "athena.amazonaws.com",
        "Allows Athena to access data sources on your behalf.",
    ),
    _U(
        "Lake Formation",
        "Lake Formation",
        "lakeformation.amazonaws.com",
        "Allows Lake Formation to register data locations.",
    ),
    _U("IoT", "IoT", "iot.amazonaws.com", "Allows IoT rules to call AWS services on your behalf."),
    _U(
        "MediaConvert",
        "MediaConvert",
        "mediaconvert.amazonaws.com",
        "Allows MediaConvert to read inputs and write outputs in S3.",
    ),
    _U(
        "Cognito",
        "Cognito - SMS",
        "cognito-idp.amazonaws.com",
        "Allows Cognito user pools to send SMS messages through SNS.",
    ),
    _U(
        "Auto Scaling",
        "Application Auto Scaling",
        "application-autoscaling.amazonaws.com",
        "Allows Application Auto Scaling to scale your resources.",
    ),
    _U(
        "Elastic Transcoder",
        "Elastic Transcoder",
        "elastictranscoder.amazonaws.com",
        "Allows Elastic Transcoder to read and write media in S3.",
    ),
    _U(
        "Storage Gateway",
        "Storage Gateway",
        "storagegateway.amazonaws.com",
        "Allows Storage Gateway to access S3 on your behalf.",
    ),
    _U(
        "OpenSearch Service",
        "OpenSearch Ingestion",
        "osis-pipelines.amazonaws.com",
        "Allows ingestion pipelines to read sources and write to domains.",
    ),
)

BY_PRINCIPAL: dict[str, tuple[UseCase, ...]] = {}
for _case in CATALOGUE:
    BY_PRINCIPAL[_case.principal] = (*BY_PRINCIPAL.get(_case.principal, ()), _case)

EC2_PRINCIPAL = "ec2.amazonaws.com"


def services() -> list[str]:
    """Distinct service names, for counting and listing."""
    return sorted({c.service for c in CATALOGUE})


def use_cases_for(principal: str) -> tuple[UseCase, ...]:
    return BY_PRINCIPAL.get(principal, ())


def search(query: str) -> list[UseCase]:
    """Use cases whose service, use case or principal contains every word of `query`."""
    words = query.lower().split()
    return [
        c
        for c in CATALOGUE
        if all(w in f"{c.service} {c.use_case} {c.principal}".lower() for w in words)
    ]


# The services the console lists first ("Commonly used services"), then the rest A to Z.
COMMON = (
    "EC2",
    "Lambda",
    "Elastic Container Service",
    "EKS",
    "CodeBuild",
    "Glue",
    "Step Functions",
    "SageMaker",
)
BY_KEY: dict[str, UseCase] = {c.key: c for c in CATALOGUE}


def cases_of(service: str) -> tuple[UseCase, ...]:
    """The use cases of one service, in the console's order."""
    return tuple(c for c in CATALOGUE if c.service == service)


def find_case(key: str) -> UseCase | None:
    return BY_KEY.get(key)


def search_services(query: str) -> list[str]:
    """Services whose name, a use case or a principal contains every word of `query`, common
    services first; every service (common first) for an empty query."""
    found = {c.service for c in search(query)}
    rest = sorted(found - set(COMMON), key=str.lower)
    return [s for s in COMMON if s in found] + rest


def service_named(text: str) -> str | None:
    """The catalogue service a person typed by name ("ec2", "Lambda"), if any."""
    wanted = text.strip().lower()
    return next((s for s in services() if s.lower() == wanted), None)


def suggested_policies(principal: str, use_case: str = "") -> list[str]:
    """The chosen use case's suggestions; for a principal typed by hand, those of the first
    (main) use case with that principal (ec2.amazonaws.com: plain EC2)."""
    case = find_case(use_case)
    if case is None or case.principal != principal:
        cases = use_cases_for(principal)
        case = cases[0] if cases else None
    return list(case.suggested) if case else []
