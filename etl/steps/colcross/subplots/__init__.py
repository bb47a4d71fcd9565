"""Chart types of a subplot: grouped (stacked) bars and grouped box plots."""
