from app.roles.trust import summarise_trust


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_service_principals_are_shortened_like_the_console():
    policy = doc(
        {
            "Effect": "Allow",
            "Principal": {"Service": ["ec2.amazonaws.com", "ssm.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    )
    assert summarise_trust(policy) == ("AWS service: ec2", "AWS service: ssm")


def test_account_root_and_role_principals():
    policy = doc(
        {
            "Effect": "Allow",
            "Principal": {
                "AWS": [
                    "arn:aws:iam::111122223333:root",
                    "arn:aws:iam::444455556666:role/x",
                    "777788889999",
                ]
            },
            "Action": "sts:AssumeRole",
        }
    )
    assert summarise_trust(policy) == (
        "Account: 111122223333",
        "Account: 444455556666 (role/x)",
        "Account: 777788889999",
    )


def test_federated_principals():
    policy = doc(
        {
            "Effect": "Allow",
            "Principal": {
                "Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"
            },
            "Action": "sts:AssumeRoleWithWebIdentity",
        },
        {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:saml-provider/Okta"},
            "Action": "sts:AssumeRoleWithSAML",
        },
        {
            "Effect": "Allow",
            "Principal": {"Federated": "accounts.google.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        },
    )
    assert summarise_trust(policy) == (
        "Identity provider: token.actions.githubusercontent.com",
        "SAML: Okta",
        "Identity provider: accounts.google.com",
    )


def test_wildcard_deny_and_duplicates():
    policy = doc(
        {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "*"},
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
    )
    assert summarise_trust(policy) == ("Anyone (*)",)


def test_single_statement_object_and_unreadable_document():
    assert summarise_trust(
        {"Statement": {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}}
    ) == ("AWS service: lambda",)
    assert summarise_trust("not json") == ("Unreadable trust policy",)
