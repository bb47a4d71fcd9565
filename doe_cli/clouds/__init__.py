"""Where a suite's hosts come from: this machine (local), existing SSH hosts, or AWS EC2 instances."""
