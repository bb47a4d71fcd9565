"""The AWS cloud: plan and budget, provisioning, discovery and cleanup of a suite's EC2 instances."""
