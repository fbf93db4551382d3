"""referrals domain (issue 4)."""
