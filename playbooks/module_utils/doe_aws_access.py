"""One wording, for every doe module, of why AWS cannot be used from here: the endpoint cannot be
reached, there are no credentials, or AWS rejected them.

A module fails with `access_problem(...)` as its result; doe reads `aws_access_problem` (unreachable,
no_credentials or rejected) to choose its exit code, and shows `msg` as it is.
"""

from __future__ import annotations

try:
    from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, PartialCredentialsError
    from botocore.exceptions import ConnectionError as BotoConnectionError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore itself

# Error codes with which AWS refuses the credentials themselves (not a missing permission).
REJECTED_CREDENTIAL_CODES = {
    "AuthFailure", "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "InvalidClientTokenId",
    "InvalidToken", "SignatureDoesNotMatch", "UnrecognizedClientException",
}
SET_CREDENTIALS = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"


def access_problem(error: Exception, region: str) -> dict | None:
    """The failure result for an error that means AWS cannot be used at all; None for any other error."""
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        # botocore has masked the user and password of a proxy URL already
        endpoint, proxy = error.kwargs.get("endpoint_url"), error.kwargs.get("proxy_url")
        what = (f"the AWS endpoint {endpoint}" if endpoint
                else f"the proxy {proxy} to the AWS API" if proxy else "the AWS API")
        return {"aws_access_problem": "unreachable",
                "msg": f"cannot reach {what} for region {region} ({_network_reason(error)}); "
                       "check the network and proxy settings (HTTPS_PROXY), and aws_endpoint_url in "
                       "group_vars/all/main.yml or AWS_ENDPOINT_URL if an emulator is meant"}
    if isinstance(error, NoCredentialsError):
        return {"aws_access_problem": "no_credentials", "msg": f"no AWS credentials found; {SET_CREDENTIALS}"}
    if isinstance(error, PartialCredentialsError):
        # botocore names the missing variable, never a value
        return {"aws_access_problem": "no_credentials",
                "msg": f"incomplete AWS credentials ({_one_line(error)}); {SET_CREDENTIALS}"}
    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in REJECTED_CREDENTIAL_CODES:
        details = error.response["Error"]
        return {"aws_access_problem": "rejected",
                "msg": f"AWS credentials rejected ({details['Code']}: {_one_line(details.get('Message', ''))}); "
                       f"{SET_CREDENTIALS}"}
    return None


def _network_reason(error: Exception) -> str:
    """The operating system's words (connection refused, name not known, timed out) when it gave any."""
    cause = error.kwargs.get("error")
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__context__
    return _one_line(error)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
